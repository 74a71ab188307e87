import type { IncomingMessage } from 'node:http';
import { Upload } from '@tus/utils';
import type { Logger } from 'pino';
import { HttpError, isNotFoundError } from '../errors/answer.ts';
import { contextOf, nodeRequestOf } from '../request/context.ts';
import { concatOf, isReservedKey, OWNER_KEY, stampMetadata } from '../request/metadata.ts';
import { ServiceUnavailable, type UploadStorage } from '../storage/types.ts';
import { UPLOAD_ID } from '../storage/uploadId.ts';
import { HookDeliveryError, type HttpHookSender } from './http/HttpHookSender.ts';
import {
  canonicalHeaderKey,
  type FileInfo,
  type HookEvent,
  type HookHttpRequest,
  type HookHttpResponse,
  type HookResponse,
  type HookType,
  mergeResponses,
  TERMINATION_REJECTED,
  UPLOAD_REJECTED,
  UPLOAD_STOPPED,
} from './wire.ts';

/** What a hook decided against the request, as the error that answers it (tusd's, merged). */
function refusal(response: HookHttpResponse): HttpError {
  return new HttpError(response.StatusCode, response.Body, response.Header);
}

/** Counts of hook deliveries, by type (the metrics). */
type HookCounters = {
  invoked(type: HookType): void;
  failed(type: HookType): void;
};

export type UploadHooksParts = {
  sender: HttpHookSender;
  events: HookType[];
  storage: UploadStorage;
  logger: Logger;
  /** Where the server makes the absolute URL of an upload (partial uploads of a final). */
  counters?: HookCounters;
};

/** What the pre-create hook may change of the upload about to be created. */
type CreationChanges = { id?: string; metadata?: Record<string, string> };

/** Ids a hook cannot choose: names the storage uses for itself. */
const RESERVED_IDS = new Set(['refs']);

/**
 * tusd-compatible hooks over HTTP: pre-* hooks decide before the server acts and may change or
 * refuse what it does; post-* hooks tell the receiver afterwards, never delaying the client.
 */
export class UploadHooks {
  private readonly enabled: Set<HookType>;

  constructor(private readonly parts: UploadHooksParts) {
    this.enabled = new Set(parts.events);
  }

  has(type: HookType): boolean {
    return this.enabled.has(type);
  }

  /** tusd's HTTPRequest of the Node request behind `req`. */
  requestOf(req: object): HookHttpRequest {
    const node = nodeRequestOf(req) as IncomingMessage;
    const Header: Record<string, string[]> = {};
    for (const [name, values] of Object.entries(node.headersDistinct ?? {})) {
      if (values) Header[canonicalHeaderKey(name)] = values;
    }
    const { remoteAddress = '', remotePort = 0 } = node.socket ?? {};
    return {
      Method: node.method ?? '',
      URI: (node as { originalUrl?: string }).originalUrl ?? node.url ?? '',
      RemoteAddr: remoteAddress.includes(':')
        ? `[${remoteAddress}]:${remotePort}`
        : `${remoteAddress}:${remotePort}`,
      Header,
    };
  }

  /**
   * tusd's FileInfo of an upload. MetaData is the client's, plus `tus-owner` (the token's
   * `sub`) when auth is on: clients cannot set `tus-` keys, so the receiver can trust it.
   */
  async fileInfoOf(upload: Upload, withStorage = true): Promise<FileInfo> {
    const metadata = upload.metadata ?? {};
    const MetaData: Record<string, string> = {};
    for (const [key, value] of Object.entries(metadata)) {
      if (value !== null && (!isReservedKey(key) || key === OWNER_KEY)) MetaData[key] = value;
    }
    const concat = concatOf(metadata);
    return {
      ID: upload.id,
      Size: upload.size ?? 0,
      SizeIsDeferred: upload.size === undefined,
      Offset: upload.offset,
      MetaData,
      IsPartial: concat?.kind === 'partial',
      IsFinal: concat?.kind === 'final',
      PartialUploads: concat?.kind === 'final' ? concat.ids : null,
      Storage: withStorage ? await this.storageOf(upload.id) : null,
    };
  }

  private async storageOf(id: string): Promise<Record<string, string> | null> {
    return this.parts.storage.locationOf(id).catch(() => null);
  }

  /** Invokes a hook and waits for its answer; an unreachable receiver is a 503 (retry later). */
  private async invoke(type: HookType, req: object, Upload: FileInfo): Promise<HookResponse> {
    const event: HookEvent = { Upload, HTTPRequest: this.requestOf(req) };
    this.parts.counters?.invoked(type);
    try {
      return await this.parts.sender.invoke(type, event);
    } catch (error) {
      this.parts.counters?.failed(type);
      this.parts.logger.error(
        {
          uploadId: Upload.ID || undefined,
          hook: type,
          err: { message: (error as Error).message },
        },
        'hook delivery failed',
      );
      if (error instanceof HookDeliveryError) throw new ServiceUnavailable('hooks', error);
      throw error;
    }
  }

  /**
   * pre-create: before anything is stored. A refusal (RejectUpload) throws an HttpError with
   * tusd's 400 merged with the hook's HTTPResponse; ChangeFileInfo may give the upload another
   * id and other client metadata. Returns the changes and the headers to add to the answer.
   */
  async preCreate(req: object, upload: Upload): Promise<void> {
    if (!this.has('pre-create')) return;
    // The upload as it would be stored (owner, concatenation role); tusd knows no id yet.
    const info = await this.fileInfoOf(
      new Upload({ ...upload, metadata: stampMetadata(upload.metadata, req) }),
      false,
    );
    info.ID = '';
    const answer = await this.invoke('pre-create', req, info);
    if (answer.RejectUpload) {
      throw refusal(mergeResponses(UPLOAD_REJECTED, answer.HTTPResponse));
    }
    const changes: CreationChanges = {};
    const { ID, MetaData } = answer.ChangeFileInfo;
    if (ID) {
      if (!UPLOAD_ID.test(ID) || RESERVED_IDS.has(ID)) {
        throw new HttpError(
          500,
          'the pre-create hook chose an upload id that is not 1 to 128 letters, digits, - or _\n',
        );
      }
      const taken = await this.parts.storage.recordOf(ID).then(
        () => true,
        (error: unknown) => {
          if (isNotFoundError(error)) return false;
          throw error;
        },
      );
      if (taken) {
        throw new HttpError(500, 'the pre-create hook chose an upload id that is taken\n');
      }
      changes.id = ID;
    }
    if (MetaData) changes.metadata = MetaData;
    const facts = contextOf(req);
    facts.hookChanges = changes;
    facts.hookHeaders = answer.HTTPResponse.Header;
  }

  /** pre-finish: the upload is whole; the hook's HTTPResponse is merged into the answer. */
  async preFinish(req: object, upload: Upload): Promise<HookHttpResponse | undefined> {
    if (!this.has('pre-finish')) return undefined;
    return (await this.invoke('pre-finish', req, await this.fileInfoOf(upload))).HTTPResponse;
  }

  /** pre-terminate: a refusal (RejectTermination) keeps the upload and answers tusd's 400. */
  async preTerminate(req: object, info: FileInfo): Promise<void> {
    if (!this.has('pre-terminate')) return;
    const answer = await this.invoke('pre-terminate', req, info);
    if (answer.RejectTermination) {
      throw refusal(mergeResponses(TERMINATION_REJECTED, answer.HTTPResponse));
    }
  }

  /**
   * post-receive: the bytes received so far. Its answer may stop the upload (StopUpload):
   * returned is then the answer the client gets (tusd's 400 merged with the hook's).
   */
  async postReceive(req: object, info: FileInfo): Promise<HookHttpResponse | undefined> {
    if (!this.has('post-receive')) return undefined;
    try {
      const answer = await this.invoke('post-receive', req, info);
      return answer.StopUpload ? mergeResponses(UPLOAD_STOPPED, answer.HTTPResponse) : undefined;
    } catch {
      // Logged and counted: progress that cannot be told changes nothing for the upload.
      return undefined;
    }
  }

  /** post-create, post-finish, post-terminate: sent in the background, failures logged. */
  notify(
    type: 'post-create' | 'post-finish' | 'post-terminate',
    req: object,
    info: FileInfo | Promise<FileInfo>,
  ): void {
    if (!this.has(type)) return;
    // The request's headers are read now: the request object may be reused after the answer.
    const request = this.requestOf(req);
    void Promise.resolve(info)
      .then((Upload) => {
        this.parts.counters?.invoked(type);
        return this.parts.sender.invoke(type, { Upload, HTTPRequest: request });
      })
      .catch((error: Error) => {
        this.parts.counters?.failed(type);
        this.parts.logger.error(
          { hook: type, err: { message: error.message } },
          'hook delivery failed',
        );
      });
  }
}
