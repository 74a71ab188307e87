import { ServiceUnavailable } from './storage/types.ts';

/** How long a client is asked to wait before retrying a request that met an outage. */
export const RETRY_AFTER_SECONDS = 5;

/** The short reason sent with a 503, as JSON: it names the service, never the internal error. */
export function unavailableReason(service: ServiceUnavailable['service']): string {
  return `${service} unavailable, retry later`;
}

/** The service an error says is away, or undefined when it is not an outage. */
export function unavailableService(error: unknown): ServiceUnavailable['service'] | undefined {
  return error instanceof ServiceUnavailable ? error.service : undefined;
}
