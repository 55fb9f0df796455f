/** HTTP transport: JSON requests with typed errors, timeouts and retries with backoff. */

import type { ResolvedConfig } from "./config.js";
import {
  FarameshAuthError,
  FarameshConflictError,
  FarameshConnectionError,
  FarameshError,
  FarameshForbiddenError,
  FarameshNotFoundError,
  FarameshServerError,
  FarameshTimeoutError,
  FarameshValidationError,
} from "./errors.js";
import { traceHeaders } from "./tracing.js";
import { VERSION } from "./version.js";

export type Method = "GET" | "POST" | "DELETE";

export interface RequestOptions {
  method: Method;
  path: string;
  query?: Record<string, string | number | undefined>;
  /** JSON body; serialized once, so every retry sends the same bytes. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Retry connection errors, timeouts and 5xx (default true). */
  retry?: boolean;
  signal?: AbortSignal;
}

export interface HttpResult<T> {
  data: T;
  status: number;
  /** How many HTTP attempts were made (1 when the first one answered). */
  attempts: number;
}

/** Statuses after which a retry may succeed. */
function retryableStatus(status: number): boolean {
  return status >= 500;
}

/** Errors that mean the server (or a proxy in front of it) could not be reached or could not answer. */
export function isUnreachable(error: unknown): boolean {
  if (error instanceof FarameshConnectionError || error instanceof FarameshTimeoutError) return true;
  return error instanceof FarameshServerError && [502, 503, 504].includes(error.status ?? 0);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }
    function onAbort() {
      clearTimeout(timer);
      reject(signal!.reason);
    }
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Builds the full URL of an API path. */
export function buildUrl(baseUrl: string, path: string, query?: RequestOptions["query"]): string {
  const url = new URL(baseUrl + (path.startsWith("/") ? path : `/${path}`));
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== "") url.searchParams.set(key, String(value));
  }
  return url.toString();
}

/**
 * Headers every request carries; built for each request, since the trace context headers
 * (`traceparent`, `tracestate`: see tracing.ts) are those of the span current at the call.
 * Headers set in the configuration take precedence over them.
 */
export function baseHeaders(config: ResolvedConfig): Record<string, string> {
  const headers: Record<string, string> = {
    accept: "application/json",
    "user-agent": `faramesh-node/${VERSION}`,
    ...traceHeaders(),
    ...lowerKeys(config.headers),
  };
  if (config.token) headers.authorization = `Bearer ${config.token}`;
  return headers;
}

function lowerKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}

function describeDetail(body: unknown, text: string, statusText: string): string {
  if (body && typeof body === "object" && "detail" in body) {
    const detail = (body as { detail: unknown }).detail;
    return typeof detail === "string" ? detail : JSON.stringify(detail);
  }
  const trimmed = text.trim();
  if (trimmed) return trimmed.length > 500 ? `${trimmed.slice(0, 500)}…` : trimmed;
  return statusText || "no detail given";
}

/** The typed error for an HTTP error response. */
export function errorFromResponse(
  status: number,
  statusText: string,
  text: string,
  method: string,
  path: string,
): FarameshError {
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  const detail = describeDetail(body, text, statusText);
  const fields = body && typeof body === "object" ? (body as Record<string, unknown>) : {};
  const code = typeof fields.code === "string" ? fields.code : undefined;
  const where = `${method} ${path}`;
  const options = { status, detail, code, body };
  switch (status) {
    case 401:
      return new FarameshAuthError(`Authentication failed (401) on ${where}: ${detail}`, options);
    case 403:
      return new FarameshForbiddenError(`Forbidden (403) on ${where}: ${detail}`, options);
    case 404:
      return new FarameshNotFoundError(`Not found (404) on ${where}: ${detail}`, options);
    case 409:
      return new FarameshConflictError(`Conflict (409) on ${where}: ${detail}`, {
        ...options,
        currentStatus: typeof fields.status === "string" ? fields.status : undefined,
        actionId: typeof fields.action_id === "string" ? fields.action_id : undefined,
      });
    case 400:
    case 413:
    case 422:
      return new FarameshValidationError(`Validation error (${status}) on ${where}: ${detail}`, options);
  }
  if (status >= 500) {
    return new FarameshServerError(`Server error (${status}) on ${where}: ${detail}`, options);
  }
  return new FarameshError(`Request failed (${status}) on ${where}: ${detail}`, options);
}

class AttemptTimeout extends Error {}

/** Network failure codes worth naming in the message. */
function networkCode(error: unknown): string | undefined {
  let e: unknown = error;
  for (let depth = 0; e && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export class Transport {
  constructor(readonly config: ResolvedConfig) {}

  private notify(error: Error): void {
    try {
      this.config.onError?.(error);
    } catch {
      // a failing hook never breaks a request
    }
  }

  /** Sends one JSON request, retrying connection errors, timeouts and 5xx with backoff. */
  async request<T>(options: RequestOptions): Promise<HttpResult<T>> {
    const { config } = this;
    const url = buildUrl(config.baseUrl, options.path, options.query);
    const headers = { ...baseHeaders(config), ...lowerKeys(options.headers ?? {}) };
    let payload: string | undefined;
    if (options.body !== undefined) {
      payload = JSON.stringify(options.body);
      headers["content-type"] = "application/json";
    }
    const maxAttempts = options.retry === false ? 1 : config.maxRetries + 1;
    const started = Date.now();
    try {
      config.onRequestStart?.(options.method, url);
    } catch {
      // ignore hook failures
    }
    let lastStatus = 0;
    for (let attempt = 1; ; attempt++) {
      let error: FarameshError;
      try {
        const { status, statusText, text } = await this.attempt(url, options.method, headers, payload, options.signal);
        lastStatus = status;
        if (status >= 200 && status < 300) {
          let data: T;
          try {
            data = (text ? JSON.parse(text) : null) as T;
          } catch (cause) {
            throw new FarameshError(`The server's answer to ${options.method} ${options.path} is not JSON`, {
              status,
              detail: text.slice(0, 500),
              cause,
            });
          }
          this.end(options.method, url, status, started);
          return { data, status, attempts: attempt };
        }
        error = errorFromResponse(status, statusText, text, options.method, options.path);
      } catch (caught) {
        if (options.signal?.aborted) {
          this.end(options.method, url, 0, started);
          throw options.signal.reason;
        }
        error = caught instanceof FarameshError ? caught : this.networkError(caught, options, url);
      }
      error.attempts = attempt;
      const retryable =
        error instanceof FarameshConnectionError ||
        error instanceof FarameshTimeoutError ||
        (error.status !== undefined && retryableStatus(error.status));
      this.notify(error);
      if (!retryable || attempt >= maxAttempts) {
        this.end(options.method, url, error.status ?? lastStatus, started);
        throw error;
      }
      await sleep(config.retryBackoffFactor * 1000 * 2 ** (attempt - 1), options.signal);
    }
  }

  private end(method: string, url: string, status: number, started: number): void {
    try {
      this.config.onRequestEnd?.(method, url, status, Date.now() - started);
    } catch {
      // ignore hook failures
    }
  }

  private networkError(caught: unknown, options: RequestOptions, url: string): FarameshError {
    if (caught instanceof AttemptTimeout) {
      return new FarameshTimeoutError(
        `Request timed out after ${this.config.timeoutMs} ms: ${options.method} ${url}`,
        { detail: `no answer within ${this.config.timeoutMs} ms`, cause: caught },
      );
    }
    const code = networkCode(caught);
    const why = code ?? (caught instanceof Error ? caught.message : String(caught));
    return new FarameshConnectionError(
      `Cannot reach the Faramesh server at ${this.config.baseUrl} (${why}); is it running? Start one with \`faramesh serve\``,
      { detail: `${options.method} ${url} failed: ${why}`, code, cause: caught },
    );
  }

  /** One HTTP exchange, body included, under the per-attempt time limit. */
  private async attempt(
    url: string,
    method: Method,
    headers: Record<string, string>,
    body: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<{ status: number; statusText: string; text: string }> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new AttemptTimeout()), this.config.timeoutMs);
    const onAbort = () => controller.abort(signal!.reason);
    if (signal?.aborted) onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    const doFetch = this.config.fetch ?? globalThis.fetch;
    try {
      const response = await doFetch(url, { method, headers, body, signal: controller.signal });
      const text = await response.text();
      return { status: response.status, statusText: response.statusText, text };
    } catch (error) {
      if (controller.signal.aborted && controller.signal.reason instanceof AttemptTimeout) {
        throw controller.signal.reason;
      }
      throw error;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }
}
