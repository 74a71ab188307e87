/**
 * tusd v2's hook wire format (pkg/hooks, pkg/handler): what a hook receiver is sent and what it
 * may answer. Field names are tusd's, so a receiver written for tusd works unchanged.
 */

export const HOOK_TYPES = [
  'pre-create',
  'post-create',
  'post-receive',
  'pre-finish',
  'post-finish',
  'pre-terminate',
  'post-terminate',
] as const;
export type HookType = (typeof HOOK_TYPES)[number];

/** tusd's default `-hooks-enabled-events`. */
export const TUSD_DEFAULT_HOOKS: HookType[] = [
  'pre-create',
  'post-create',
  'post-receive',
  'post-terminate',
  'post-finish',
];

/** tusd's FileInfo: the upload an event is about. */
export type FileInfo = {
  ID: string;
  Size: number;
  SizeIsDeferred: boolean;
  Offset: number;
  MetaData: Record<string, string>;
  IsPartial: boolean;
  IsFinal: boolean;
  PartialUploads: string[] | null;
  Storage: Record<string, string> | null;
};

/** tusd's HTTPRequest: the request that caused the event. Header is Go's http.Header. */
export type HookHttpRequest = {
  Method: string;
  URI: string;
  RemoteAddr: string;
  Header: Record<string, string[]>;
};

export type HookEvent = { Upload: FileInfo; HTTPRequest: HookHttpRequest };

/** tusd's HTTPResponse: what a hook asks the server to answer with. */
export type HookHttpResponse = { StatusCode: number; Body: string; Header: Record<string, string> };

/** tusd's HookResponse, with every field present (Go's zero values where the receiver sent none). */
export type HookResponse = {
  HTTPResponse: HookHttpResponse;
  RejectUpload: boolean;
  RejectTermination: boolean;
  StopUpload: boolean;
  ChangeFileInfo: {
    ID: string;
    MetaData: Record<string, string> | null;
    Storage: Record<string, string> | null;
  };
};

/** A receiver's answer that is not a HookResponse. */
export class HookResponseError extends Error {
  override name = 'HookResponseError';
}

/** Go's encoding/json matches field names case-insensitively; so does this. */
function field(object: Record<string, unknown>, name: string): unknown {
  const lower = name.toLowerCase();
  const key = Object.keys(object).find((candidate) => candidate.toLowerCase() === lower);
  return key === undefined ? undefined : object[key];
}

function objectOf(value: unknown, what: string): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new HookResponseError(`${what} must be an object`);
  }
  return value as Record<string, unknown>;
}

function stringMap(value: unknown, what: string): Record<string, string> | null {
  if (value === undefined || value === null) return null;
  const object = objectOf(value, what);
  for (const [key, item] of Object.entries(object)) {
    if (typeof item !== 'string') throw new HookResponseError(`${what}.${key} must be a string`);
  }
  return object as Record<string, string>;
}

function typed<T>(value: unknown, type: string, what: string, zero: T): T {
  if (value === undefined || value === null) return zero;
  if (typeof value !== type) throw new HookResponseError(`${what} must be a ${type}`);
  return value as T;
}

/** Reads a receiver's JSON answer as tusd does; missing fields take Go's zero values. */
export function parseHookResponse(body: unknown): HookResponse {
  const root = objectOf(body, 'the hook response');
  const http = objectOf(field(root, 'HTTPResponse'), 'HTTPResponse');
  const change = objectOf(field(root, 'ChangeFileInfo'), 'ChangeFileInfo');
  const status = typed(field(http, 'StatusCode'), 'number', 'HTTPResponse.StatusCode', 0);
  if (status !== 0 && !(Number.isInteger(status) && status >= 200 && status <= 599)) {
    throw new HookResponseError('HTTPResponse.StatusCode must be an HTTP status from 200 to 599');
  }
  return {
    HTTPResponse: {
      StatusCode: status,
      Body: typed(field(http, 'Body'), 'string', 'HTTPResponse.Body', ''),
      Header: stringMap(field(http, 'Header'), 'HTTPResponse.Header') ?? {},
    },
    RejectUpload: typed(field(root, 'RejectUpload'), 'boolean', 'RejectUpload', false),
    RejectTermination: typed(
      field(root, 'RejectTermination'),
      'boolean',
      'RejectTermination',
      false,
    ),
    StopUpload: typed(field(root, 'StopUpload'), 'boolean', 'StopUpload', false),
    ChangeFileInfo: {
      ID: typed(field(change, 'ID'), 'string', 'ChangeFileInfo.ID', ''),
      MetaData: stringMap(field(change, 'MetaData'), 'ChangeFileInfo.MetaData'),
      Storage: stringMap(field(change, 'Storage'), 'ChangeFileInfo.Storage'),
    },
  };
}

/** tusd's HTTPResponse.MergeWith: `other`'s status and body when set, headers of both. */
export function mergeResponses(base: HookHttpResponse, other: HookHttpResponse): HookHttpResponse {
  return {
    StatusCode: other.StatusCode || base.StatusCode,
    Body: other.Body || base.Body,
    Header: { ...base.Header, ...other.Header },
  };
}

/** tusd's errors for what a hook refused, as tusd sends them (status, `CODE: message` body). */
function tusdError(code: string, message: string, status: number): HookHttpResponse {
  return {
    StatusCode: status,
    Body: `${code}: ${message}\n`,
    Header: { 'Content-Type': 'text/plain; charset=utf-8' },
  };
}
export const UPLOAD_REJECTED = tusdError(
  'ERR_UPLOAD_REJECTED',
  'upload creation has been rejected by server',
  400,
);
export const TERMINATION_REJECTED = tusdError(
  'ERR_UPLOAD_TERMINATION_REJECTED',
  'upload termination has been rejected by server',
  400,
);
export const UPLOAD_STOPPED = tusdError(
  'ERR_UPLOAD_STOPPED',
  'upload has been stopped by server',
  400,
);

/** Go's canonical header key (`upload-length` → `Upload-Length`), as http.Header holds them. */
export function canonicalHeaderKey(name: string): string {
  return name
    .toLowerCase()
    .split('-')
    .map((part) => (part ? part[0]?.toUpperCase() + part.slice(1) : part))
    .join('-');
}
