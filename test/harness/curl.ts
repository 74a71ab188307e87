import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** What curl received: status, headers (raw and by lower-case name) and the body's bytes. */
export type CurlResponse = {
  status: number;
  /** Header lines exactly as the server sent their bytes, without the status line. */
  headerLines: Buffer[];
  /** Header values by lower-case name, bytes read as latin1; repeated names joined by ", ". */
  headers: Record<string, string>;
  body: Buffer;
};

function parseHead(head: Buffer): Pick<CurlResponse, 'status' | 'headerLines' | 'headers'> {
  const lines: Buffer[] = [];
  for (let at = 0; at < head.length; ) {
    const end = head.indexOf('\r\n', at);
    lines.push(head.subarray(at, end === -1 ? head.length : end));
    at = end === -1 ? head.length : end + 2;
  }
  const [statusLine, ...headerLines] = lines;
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const text = line.toString('latin1');
    const colon = text.indexOf(':');
    const name = text.slice(0, colon).toLowerCase();
    const value = text.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { status: Number(statusLine?.toString('latin1').split(' ')[1]), headerLines, headers };
}

/**
 * Runs the real curl against `url` with extra arguments (`-r 0-9`, `-H 'If-Range: …'`, `-I`).
 * Paths go out as written (`--path-as-is`), so `..` reaches the server.
 */
export async function curl(url: string, args: string[] = []): Promise<CurlResponse> {
  const isHead = args.includes('-I') || args.includes('--head');
  const { stdout } = await run(
    'curl',
    ['-sS', '--path-as-is', ...(isHead ? [] : ['-D', '-']), ...args, url],
    { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 },
  );
  const split = stdout.indexOf('\r\n\r\n');
  const head = split === -1 ? stdout : stdout.subarray(0, split);
  return { ...parseHead(head), body: split === -1 ? Buffer.alloc(0) : stdout.subarray(split + 4) };
}
