"""Uploads one file with tuspy (the Python tus client), for test/harness/tuspy.ts.

Takes one JSON object as its argument, or on stdin without one:
  endpoint         the creation URL (".../files/")
  file_path        the file to upload
  chunk_size       bytes per PATCH (optional; one PATCH for the whole file without it)
  metadata         Upload-Metadata as a dict of strings (optional)
  headers          headers sent with every request, e.g. Authorization (optional)
  upload_checksum  send Upload-Checksum with every PATCH (optional, false by default)
  url              an existing upload to resume instead of creating one (optional)

Prints one JSON line, {"url": ..., "offset": ...}, once the upload has finished. On failure it
prints one JSON line to stderr, {"error", "message", "status", "body"}, and exits with 1.
"""

import json
import sys

from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError


def upload(options):
    client = TusClient(options["endpoint"], headers=options.get("headers") or {})
    extra = {"chunk_size": options["chunk_size"]} if options.get("chunk_size") else {}
    uploader = client.uploader(
        file_path=options["file_path"],
        url=options.get("url"),
        metadata=options.get("metadata") or {},
        upload_checksum=bool(options.get("upload_checksum")),
        **extra,
    )
    uploader.upload()
    return {"url": uploader.url, "offset": uploader.offset}


def main():
    options = json.loads(sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read())
    try:
        print(json.dumps(upload(options)))
    except TusCommunicationError as error:
        # tuspy keeps the failed response's status and body on the error (None when the
        # request never got an answer).
        body = error.response_content
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        failure = {
            "error": type(error).__name__,
            "message": str(error),
            "status": error.status_code,
            "body": body,
        }
        print(json.dumps(failure), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
