// A typed client for image-service. The types come from the API's OpenAPI
// document (`npm run generate` writes src/schema.ts from
// docs/openapi.json); the requests go through openapi-fetch, so every path,
// parameter and body is checked against that document at compile time.
//
// What this file adds on top: the API key, `?tenant=` for admin keys, an
// `Idempotency-Key` on every POST (the same one on its retries), retries
// that honour `Retry-After`, errors as a typed `ApiError`, and the calls
// that take more than one request (presigned uploads, waiting for a job,
// walking every page).

import createClient, { type Client, type Middleware } from "openapi-fetch";

import { type components, type paths, problemCodeValues } from "./schema.js";

export type { components, paths } from "./schema.js";

type Schemas = components["schemas"];
export type Job = Schemas["JobView"];
export type JobStatus = Schemas["JobStatusView"];
export type Image = Schemas["ImageView"];
export type Variant = Schemas["VariantView"];
export type UploadTicket = Schemas["UploadTicket"];
export type UploadRequest = Schemas["UploadRequest"];
export type ReplaySummary = Schemas["ReplaySummary"];
export type Readiness = Schemas["Readiness"];
export type Problem = Schemas["Problem"];
/** Every code the API's problem+json bodies carry. */
export type ErrorCode = Problem["code"];

/** The statuses a job ends in. */
export const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set<JobStatus>(["succeeded", "failed", "dead"]);

/**
 * A request the API refused or could not serve, from its problem+json body.
 * `code` is one of the API's codes, or `"other"` for one this version of the
 * client does not know (a newer server); `rawCode` is what was sent.
 */
export class ApiError extends Error {
  readonly status: number;
  readonly code: ErrorCode | "other";
  readonly rawCode: string;
  readonly detail: string;
  /** Seconds from `Retry-After`, when the answer carried one. */
  readonly retryAfter: number | undefined;
  /** The request's `x-request-id`: the server's logs carry it. */
  readonly requestId: string | undefined;

  constructor(response: Response, body: unknown) {
    const problem = isProblem(body) ? body : undefined;
    const rawCode = problem?.code ?? `http-${response.status}`;
    super(`${response.status} ${rawCode}: ${problem?.detail ?? response.statusText}`);
    this.name = "ApiError";
    this.status = response.status;
    this.rawCode = rawCode;
    this.code = KNOWN_CODES.has(rawCode) ? (rawCode as ErrorCode) : "other";
    this.detail = problem?.detail ?? "";
    this.retryAfter = retryAfterSeconds(response);
    this.requestId = response.headers.get("x-request-id") ?? undefined;
  }
}

/** The codes of the document this client was generated from. */
export const KNOWN_CODES: ReadonlySet<string> = new Set<string>(problemCodeValues);

function isProblem(body: unknown): body is Problem {
  return typeof body === "object" && body !== null && typeof (body as { code?: unknown }).code === "string";
}

function retryAfterSeconds(response: Response): number | undefined {
  const value = response.headers.get("retry-after");
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value);
}

export interface ClientOptions {
  /** Where the API answers, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** An API key (`image-service keys create`), sent as `Authorization: Bearer`. */
  apiKey?: string;
  /** Admin keys only: act for the tenant of this name (`?tenant=`). */
  tenant?: string;
  /** Retries after the first attempt (default 4). */
  maxRetries?: number;
  /** The longest wait a retry may take, in ms (default 30 000). A
   * `Retry-After` beyond it (a daily quota, say) returns the error at once. */
  maxWaitMs?: number;
  /** The first backoff, in ms, doubled on each retry with full jitter (default 200). */
  baseDelayMs?: number;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
}

/** What an upload answered: its job, and whether it was an earlier answer replayed. */
export interface Accepted {
  job: Job;
  /** `true` when an earlier request with the same `Idempotency-Key` answered. */
  replayed: boolean;
}

export interface UploadOptions {
  /** The image's media type, e.g. `image/jpeg`. */
  contentType: string;
  /** The caller's own id for the image, unique within the tenant. */
  externalId?: string;
  /** A JSON object kept with the image. */
  metadata?: Record<string, unknown>;
  /** Default: a new UUID, reused on this call's retries. */
  idempotencyKey?: string;
}

export interface WaitOptions {
  /** Give up after this long, in ms (default 120 000). */
  timeoutMs?: number;
  /** Poll every this many ms (default 250). */
  pollMs?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A fetch that retries what may succeed later: a failed connection, a 429
 * that says when to come back, and 502, 503 and 504. Every retry sends a
 * copy of the same request, so its `Idempotency-Key` is the same.
 */
export function retryingFetch(
  inner: typeof fetch,
  { maxRetries = 4, maxWaitMs = 30_000, baseDelayMs = 200 }: Pick<ClientOptions, "maxRetries" | "maxWaitMs" | "baseDelayMs"> = {},
): (input: Request) => Promise<Response> {
  const backoff = (attempt: number) => Math.random() * Math.min(maxWaitMs, baseDelayMs * 2 ** attempt);
  return async (input: Request) => {
    // A body read once can't be sent again: keep it, and build each attempt from it.
    const body = input.body === null ? undefined : await input.arrayBuffer();
    for (let attempt = 0; ; attempt += 1) {
      const request = new Request(input, { body });
      let response: Response;
      try {
        response = await inner(request);
      } catch (err) {
        // The caller's abort is an answer, not a failed connection: every retry would abort too.
        if (attempt >= maxRetries || input.signal.aborted) throw err;
        await sleep(backoff(attempt));
        continue;
      }
      const retryable = response.status === 429 || (response.status >= 502 && response.status <= 504);
      const told = retryAfterSeconds(response);
      // A 429 without Retry-After is not one waiting fixes.
      if (!retryable || attempt >= maxRetries || (response.status === 429 && told === undefined)) return response;
      const wait = told === undefined ? backoff(attempt) : told * 1000;
      if (wait > maxWaitMs) return response;
      await response.body?.cancel();
      await sleep(wait);
    }
  };
}

/** The operations `?tenant=` does not apply to: signed, not keyed. */
function unscoped(request: Request): boolean {
  const path = new URL(request.url).pathname;
  return path.startsWith("/v1/status/") || (request.method === "PUT" && path.startsWith("/v1/uploads/"));
}

function middleware({ apiKey, tenant }: ClientOptions): Middleware {
  return {
    async onRequest({ request }) {
      if (apiKey !== undefined) request.headers.set("authorization", `Bearer ${apiKey}`);
      if (request.method === "POST" && !request.headers.has("idempotency-key")) {
        request.headers.set("idempotency-key", crypto.randomUUID());
      }
      if (tenant === undefined || unscoped(request)) return request;
      const url = new URL(request.url);
      url.searchParams.set("tenant", tenant);
      const body = request.body === null ? undefined : await request.arrayBuffer();
      return new Request(url, { method: request.method, headers: request.headers, body, signal: request.signal });
    },
  };
}

type Result<T> = { data?: T; error?: unknown; response: Response };

/** The data of a successful answer, or the ApiError of any other. */
function unwrap<T>({ data, error, response }: Result<T>): T {
  if (!response.ok) throw new ApiError(response, error);
  return data as T;
}

/** Bytes as a request body, whatever the caller holds. */
type Bytes = Uint8Array | ArrayBuffer | Blob;
const asIs = (body: unknown) => body as BodyInit;

export class ImageServiceClient {
  /** The openapi-fetch client itself, for `{ data, error }` without throwing. */
  readonly raw: Client<paths>;
  private readonly fetch: (input: Request) => Promise<Response>;
  private readonly baseUrl: string;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl;
    this.fetch = retryingFetch(options.fetch ?? globalThis.fetch, options);
    this.raw = createClient<paths>({ baseUrl: options.baseUrl, fetch: this.fetch });
    this.raw.use(middleware(options));
  }

  /** Liveness: resolves when the process answers. */
  async healthz(): Promise<Schemas["Health"]> {
    return unwrap(await this.raw.GET("/healthz"));
  }

  /** Readiness, 200 or 503 alike: `ready` says which, `checks` why. */
  async readyz(): Promise<{ ready: boolean } & Readiness> {
    const { data, error, response } = await this.raw.GET("/readyz");
    const body = (data ?? error) as Readiness | undefined;
    if (body === undefined || (response.status !== 200 && response.status !== 503)) {
      throw new ApiError(response, error);
    }
    return { ready: response.status === 200, ...body };
  }

  /** Uploads an image through the API (`POST /v1/images`); the job is queued at once. */
  async upload(bytes: Bytes, options: UploadOptions): Promise<Accepted & { deduplicated: boolean }> {
    const header: Record<string, string> = { "content-type": options.contentType };
    if (options.externalId !== undefined) header["image-external-id"] = options.externalId;
    if (options.metadata !== undefined) header["image-metadata"] = JSON.stringify(options.metadata);
    if (options.idempotencyKey !== undefined) header["idempotency-key"] = options.idempotencyKey;
    const result = await this.raw.POST("/v1/images", {
      body: bytes as unknown as string,
      bodySerializer: asIs,
      headers: header,
    });
    const job = unwrap(result);
    return { job, replayed: replayed(result.response), deduplicated: job.deduplicated === true };
  }

  /** Starts a presigned upload (`POST /v1/uploads`): the job, and where to PUT the bytes. */
  async createUpload(request: UploadRequest, idempotencyKey?: string): Promise<UploadTicket & Accepted> {
    const headers = idempotencyKey === undefined ? {} : { "idempotency-key": idempotencyKey };
    const result = await this.raw.POST("/v1/uploads", { body: request, headers });
    const ticket = unwrap(result);
    return { ...ticket, replayed: replayed(result.response) };
  }

  /** Sends a ticket's bytes exactly as it says: to S3, or to the API on local disk. */
  async putUpload(ticket: UploadTicket, bytes: Bytes): Promise<void> {
    const upload = ticket.upload;
    if (upload === null || upload === undefined) throw new Error(`job ${ticket.job.id} has no upload to send`);
    const request = new Request(new URL(upload.url, this.baseUrl), {
      method: upload.method,
      headers: upload.headers,
      body: bytes instanceof Blob ? bytes : new Blob([bytes as BlobPart]),
    });
    const response = await this.fetch(request);
    if (!response.ok) {
      const body = await response.json().catch(() => undefined);
      throw new ApiError(response, body);
    }
    await response.body?.cancel();
  }

  /** A presigned upload end to end: the ticket, then the bytes. Returns the ticket. */
  async uploadPresigned(bytes: Bytes, options: UploadOptions): Promise<UploadTicket & Accepted> {
    const size = bytes instanceof Blob ? bytes.size : bytes.byteLength;
    const request: UploadRequest = { content_type: options.contentType, content_length: size };
    if (options.externalId !== undefined) request.external_id = options.externalId;
    if (options.metadata !== undefined) request.metadata = options.metadata;
    const ticket = await this.createUpload(request, options.idempotencyKey);
    if (!ticket.replayed || ticket.job.status === "awaiting_upload") await this.putUpload(ticket, bytes);
    return ticket;
  }

  async job(id: string): Promise<Job> {
    return unwrap(await this.raw.GET("/v1/jobs/{id}", { params: { path: { id } } }));
  }

  async jobs(query: NonNullable<paths["/v1/jobs"]["get"]["parameters"]["query"]> = {}): Promise<Schemas["JobPage"]> {
    return unwrap(await this.raw.GET("/v1/jobs", { params: { query } }));
  }

  /** Polls a job until it ends (`succeeded`, `failed` or `dead`), and returns it. */
  async waitForJob(id: string, { timeoutMs = 120_000, pollMs = 250 }: WaitOptions = {}): Promise<Job> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const job = await this.job(id);
      if (TERMINAL_STATUSES.has(job.status)) return job;
      if (Date.now() + pollMs > deadline) throw new Error(`job ${id} is still ${job.status} after ${timeoutMs} ms`);
      await sleep(pollMs);
    }
  }

  async image(id: string): Promise<Image> {
    return unwrap(await this.raw.GET("/v1/images/{id}", { params: { path: { id } } }));
  }

  async images(query: NonNullable<paths["/v1/images"]["get"]["parameters"]["query"]> = {}): Promise<Schemas["ImagePage"]> {
    return unwrap(await this.raw.GET("/v1/images", { params: { query } }));
  }

  /** Every image, page after page, newest first. */
  async *allImages(query: { external_id?: string; limit?: number } = {}): AsyncGenerator<Image> {
    let cursor: string | undefined;
    do {
      const page = await this.images(cursor === undefined ? query : { ...query, cursor });
      yield* page.images;
      cursor = page.next_cursor ?? undefined;
    } while (cursor !== undefined);
  }

  async deleteImage(id: string): Promise<void> {
    const { error, response } = await this.raw.DELETE("/v1/images/{id}", { params: { path: { id } } });
    if (!response.ok) throw new ApiError(response, error);
  }

  /** A variant's bytes, following the redirect to S3 where there is one. */
  async variant(id: string, preset: string): Promise<{ bytes: Uint8Array; contentType: string }> {
    const result = await this.raw.GET("/v1/images/{id}/variants/{preset}", {
      params: { path: { id, preset } },
      parseAs: "arrayBuffer",
    });
    const data = unwrap(result as Result<ArrayBuffer>);
    return { bytes: new Uint8Array(data), contentType: result.response.headers.get("content-type") ?? "" };
  }

  /** Admin: moves the dead-letter queue's messages back to the job queue. */
  async replayDlq(body: Schemas["DlqRequest"] = {}): Promise<ReplaySummary> {
    return unwrap(await this.raw.POST("/v1/admin/replay/dlq", { body }));
  }

  /** Admin: re-enqueues past failed or dead jobs matching a filter. */
  async replayJobs(body: Schemas["JobsRequest"]): Promise<ReplaySummary> {
    return unwrap(await this.raw.POST("/v1/admin/replay/jobs", { body }));
  }

  /** Admin: regenerates one preset's variants. */
  async reprocess(body: Schemas["ReprocessRequest"]): Promise<ReplaySummary> {
    return unwrap(await this.raw.POST("/v1/admin/reprocess", { body }));
  }
}

function replayed(response: Response): boolean {
  return response.headers.get("idempotent-replayed") === "true";
}

/** A client for the API at `options.baseUrl`. */
export function createImageServiceClient(options: ClientOptions): ImageServiceClient {
  return new ImageServiceClient(options);
}
