import { setTimeout as sleep } from 'node:timers/promises';
import {
  canonicalHeaderKey,
  type HookEvent,
  type HookResponse,
  HookResponseError,
  type HookType,
  parseHookResponse,
} from '../wire.ts';

export type HttpHookOptions = {
  url: string;
  /** Further attempts after a failed one (network error, timeout, 429 or 5xx). */
  retries: number;
  /** Wait before each further attempt (tusd: linear, the same each time). */
  backoffMs: number;
  /** Per attempt. */
  timeoutMs: number;
  /** Request headers of the client's request sent along with the hook request. */
  forwardHeaders: string[];
};

/** Bytes of a receiver's answer that are read at most. */
const ANSWER_LIMIT = 64 * 1024;

/** The receiver could not be reached, or did not answer with a hook response. */
export class HookDeliveryError extends Error {
  override name = 'HookDeliveryError';
}

/** A failure worth another attempt: the receiver may answer next time. */
class Retryable extends HookDeliveryError {}

/**
 * tusd's HTTP hook backend (pkg/hooks/http): each event is POSTed as `{"Type", "Event"}` JSON to
 * one URL, and the receiver answers with a HookResponse as JSON (`Content-Type:
 * application/json`) and a 2xx status; anything else is a failed delivery.
 */
export class HttpHookSender {
  constructor(private readonly options: HttpHookOptions) {}

  async invoke(type: HookType, event: HookEvent): Promise<HookResponse> {
    const body = JSON.stringify({ Type: type, Event: event });
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    for (const name of this.options.forwardHeaders) {
      const values = event.HTTPRequest.Header[canonicalHeaderKey(name)];
      if (values?.length) headers[name] = values.join(', ');
    }
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await this.attempt(body, headers);
      } catch (error) {
        if (!(error instanceof Retryable) || attempt >= this.options.retries) throw error;
        await sleep(this.options.backoffMs);
      }
    }
  }

  private async attempt(body: string, headers: Record<string, string>): Promise<HookResponse> {
    let answer: Response;
    try {
      answer = await fetch(this.options.url, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
    } catch (error) {
      throw new Retryable(`hook receiver unreachable: ${(error as Error).message}`);
    }
    const text = await readLimited(answer);
    if (answer.status === 429 || answer.status >= 500) {
      throw new Retryable(`hook receiver answered ${answer.status}: ${text.slice(0, 200)}`);
    }
    if (answer.status < 200 || answer.status >= 300) {
      throw new HookDeliveryError(`hook receiver answered ${answer.status}: ${text.slice(0, 200)}`);
    }
    const type = answer.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json') {
      throw new HookDeliveryError(
        `hook response must be Content-Type: application/json, got ${type ?? 'none'}`,
      );
    }
    try {
      return parseHookResponse(JSON.parse(text));
    } catch (error) {
      const reason = error instanceof HookResponseError ? error.message : 'invalid JSON';
      throw new HookDeliveryError(`hook response not understood: ${reason}`);
    }
  }
}

async function readLimited(answer: Response): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = answer.body?.getReader();
  while (reader) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > ANSWER_LIMIT) {
      await reader.cancel().catch(() => undefined);
      throw new HookDeliveryError(`hook response larger than ${ANSWER_LIMIT} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
