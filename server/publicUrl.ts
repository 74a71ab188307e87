/** Reads one request header by lower-case name, whatever the request's type. */
type HeaderReader = (name: string) => string | null | undefined;

// host = uri-host [ ":" port ] (RFC 9110 §7.2): a reg-name, IPv4 or bracketed IPv6 literal.
const HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

function first(value: string | null | undefined): string | undefined {
  return value?.split(',')[0]?.trim() || undefined;
}

/**
 * Makes the absolute URLs the server hands out (`Location`, links). With PUBLIC_URL they start
 * with it whatever the request says; otherwise with the request's Host (and, with TRUST_PROXY,
 * the proxy's X-Forwarded-Proto / X-Forwarded-Host). A host that is not a host gives a path only.
 */
export function createUrlBuilder(options: { publicUrl?: string; trustProxy: boolean }) {
  return (header: HeaderReader, path: string): string => {
    if (options.publicUrl) return `${options.publicUrl}${path}`;
    let proto = 'http';
    let host = first(header('host'));
    if (options.trustProxy) {
      const forwardedProto = first(header('x-forwarded-proto'));
      if (forwardedProto === 'http' || forwardedProto === 'https') proto = forwardedProto;
      host = first(header('x-forwarded-host')) ?? host;
    }
    return host && HOST.test(host) ? `${proto}://${host}${path}` : path;
  };
}
