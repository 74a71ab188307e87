#!/usr/bin/env bash
# The one test entry point (`npm test`): installs the services the tests need where they are
# missing, checks lint, format, types and unused code (knip), then runs every jest suite. The
# suites start MinIO and Redis themselves (containers where a Docker engine answers, local
# processes otherwise) and VersityGW (always a local process), and stop them at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

# MinIO's community edition ships as source; this is its documented install, pinned to one commit.
MINIO_MODULE="github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"
# VersityGW, the second S3 of the tests (it answers as AWS does where MinIO does not), pinned.
VERSITYGW_MODULE="github.com/versity/versitygw/cmd/versitygw@v1.8.0"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

docker_engine() {
  [ "${TEST_SERVICES:-}" != local ] && command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1
}

install_redis() {
  command -v redis-server >/dev/null 2>&1 && return
  echo "test: installing redis-server from Debian's packages"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
}

# The upload page's tests drive Debian's chromium through playwright-core.
install_chromium() {
  [ -x /usr/bin/chromium ] && return
  echo "test: installing chromium from Debian's packages"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
}

# The deploy suite runs deploy/nginx.conf with Debian's nginx, always as a local process.
install_nginx() {
  [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 && return
  echo "test: installing nginx from Debian's packages"
  as_root apt-get update -qq
  # The package starts its service (port 80) unless policy-rc.d forbids it, and fails where
  # there is no init system to start it with; the tests need only the binary.
  local policy=/usr/sbin/policy-rc.d added="" status=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    added=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null || status=$?
  if [ -n "$added" ]; then as_root rm -f "$policy"; fi
  [ "$status" = 0 ] || return "$status"
  # A policy-rc.d that allowed the start: stop that nginx, and keep systemd from starting it.
  as_root invoke-rc.d nginx stop >/dev/null 2>&1 || true
  if [ -d /run/systemd/system ]; then as_root systemctl disable --quiet nginx || true; fi
}

install_minio() {
  local gobin
  gobin="$(go env GOPATH)/bin"
  if [ -x "$gobin/minio" ] || command -v minio >/dev/null 2>&1; then return; fi
  echo "test: building MinIO from source (go install $MINIO_MODULE); the first build takes minutes"
  if ! go install "$MINIO_MODULE"; then
    echo "test: retrying the MinIO build with GOTOOLCHAIN=go1.24.8"
    GOTOOLCHAIN=go1.24.8 go install "$MINIO_MODULE"
  fi
}

install_versitygw() {
  local gobin
  gobin="$(go env GOPATH)/bin"
  if [ -x "$gobin/versitygw" ] || command -v versitygw >/dev/null 2>&1; then return; fi
  echo "test: building VersityGW from source (go install $VERSITYGW_MODULE); the first build takes minutes"
  go install "$VERSITYGW_MODULE"
}

# The tuspy suite drives the Python tus client from a venv of its own, pinned in
# test/requirements.txt; a copy of that file in the venv says what it holds.
TUSPY_VENV=.cache/tuspy-venv
install_tuspy() {
  cmp -s test/requirements.txt "$TUSPY_VENV/requirements.txt" && return
  echo "test: installing tuspy into $TUSPY_VENV (pip install -r test/requirements.txt)"
  rm -rf "$TUSPY_VENV"
  if ! python3 -m venv "$TUSPY_VENV" >/dev/null 2>&1; then
    # Debian's python3 leaves venv (ensurepip) to a package of its own.
    echo "test: installing python3-venv from Debian's packages"
    rm -rf "$TUSPY_VENV"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$TUSPY_VENV"
  fi
  "$TUSPY_VENV/bin/pip" install -q --disable-pip-version-check -r test/requirements.txt
  cp test/requirements.txt "$TUSPY_VENV/requirements.txt"
}

if docker_engine; then
  echo "test: Docker engine found; MinIO and Redis run in containers"
else
  export TEST_SERVICES=local
  install_redis
  install_minio
fi
install_versitygw
install_chromium
install_nginx
install_tuspy

npm run lint
npm run typecheck
npm run knip
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
NODE_OPTIONS=--experimental-vm-modules npx jest "$@"
