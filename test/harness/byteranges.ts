/** One body part of a multipart/byteranges response. */
export type BodyPart = { headers: Record<string, string>; data: Buffer };

/**
 * Splits a multipart/byteranges body (RFC 9110 §14.6, RFC 2046 §5.1.1) into its parts, so
 * each part's Content-Range and bytes can be checked against the source.
 */
export function parseByteranges(body: Buffer, contentType: string): BodyPart[] {
  const boundary = /boundary=("?)([^";]+)\1/.exec(contentType)?.[2];
  if (!boundary) throw new Error(`no boundary in ${contentType}`);
  const delimiter = Buffer.from(`--${boundary}`);
  const starts: number[] = [];
  for (let at = body.indexOf(delimiter); at !== -1; at = body.indexOf(delimiter, at + 1)) {
    starts.push(at);
  }
  const parts: BodyPart[] = [];
  for (const [index, start] of starts.entries()) {
    const next = starts[index + 1];
    const afterDelimiter = start + delimiter.length;
    if (next === undefined) {
      // The close delimiter: `--boundary--`.
      if (body.subarray(afterDelimiter, afterDelimiter + 2).toString() !== '--') {
        throw new Error('multipart body does not end with a close delimiter');
      }
      break;
    }
    // The CRLF before the next delimiter belongs to the delimiter, not to the part.
    const part = body.subarray(afterDelimiter + 2, next - 2);
    const headerEnd = part.indexOf('\r\n\r\n');
    const headers: Record<string, string> = {};
    for (const line of part.subarray(0, headerEnd).toString('latin1').split('\r\n')) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    parts.push({ headers, data: part.subarray(headerEnd + 4) });
  }
  return parts;
}
