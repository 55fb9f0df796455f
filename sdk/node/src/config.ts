/** Client configuration: explicit options, else environment variables, else defaults. */

export type FailMode = "open" | "closed";

export interface ClientConfig {
  /** Server URL. Env `FARAMESH_BASE_URL`, `FARAMESH_URL` or `FARA_API_BASE`; default `http://127.0.0.1:8000`. */
  baseUrl?: string;
  /** Bearer token. Env `FARAMESH_TOKEN` (first of a comma-separated list) or `FARA_AUTH_TOKEN`. */
  token?: string;
  /** Agent id used when a call does not name one. Env `FARAMESH_AGENT_ID`; default `default-agent`. */
  agentId?: string;
  /** Time limit of one HTTP attempt, default 30000 ms. */
  timeoutMs?: number;
  /** Retries after a connection error, timeout or 5xx. Env `FARAMESH_RETRIES`; default 3. */
  maxRetries?: number;
  /** Backoff before retry n (from 0) is `retryBackoffFactor * 2^n` seconds. Env `FARAMESH_RETRY_BACKOFF`; default 0.5. */
  retryBackoffFactor?: number;
  /**
   * What submissions and decisions do when the server cannot be reached (after retries):
   * `"closed"` (default) throws, so nothing runs; `"open"` returns a stand-in "allowed"
   * result marked `fail_open: true`. Env `FARAMESH_FAIL_MODE=open|closed` or `FARAMESH_FAIL_OPEN=1`.
   */
  failMode?: FailMode;
  /** Shorthand for `failMode: "open"` (true) or `"closed"` (false). */
  failOpen?: boolean;
  /** Extra headers sent with every request. */
  headers?: Record<string, string>;
  /** The fetch implementation to use (default: the global `fetch`). */
  fetch?: typeof fetch;
  /** Called before each HTTP request. */
  onRequestStart?: (method: string, url: string) => void;
  /** Called after each HTTP request with the final status (0 when no response). */
  onRequestEnd?: (method: string, url: string, statusCode: number, durationMs: number) => void;
  /** Called with every error the SDK throws or retries on, and when it fails open. */
  onError?: (error: Error) => void;
}

/** A configuration with every setting resolved. */
export interface ResolvedConfig {
  baseUrl: string;
  token: string | undefined;
  agentId: string;
  timeoutMs: number;
  maxRetries: number;
  retryBackoffFactor: number;
  failMode: FailMode;
  headers: Record<string, string>;
  fetch: typeof fetch | undefined;
  onRequestStart: ClientConfig["onRequestStart"];
  onRequestEnd: ClientConfig["onRequestEnd"];
  onError: ClientConfig["onError"];
}

export const DEFAULT_BASE_URL = "http://127.0.0.1:8000";

function env(name: string): string | undefined {
  const value = process.env[name];
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

function envNumber(name: string): number | undefined {
  const raw = env(name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

function envFailMode(): FailMode | undefined {
  const mode = env("FARAMESH_FAIL_MODE")?.toLowerCase();
  if (mode === "open" || mode === "closed") return mode;
  const open = env("FARAMESH_FAIL_OPEN")?.toLowerCase();
  if (open === undefined) return undefined;
  return ["1", "true", "yes", "on"].includes(open) ? "open" : "closed";
}

function firstToken(list: string | undefined): string | undefined {
  if (list === undefined) return undefined;
  return list.split(",").map((t) => t.trim()).find((t) => t !== "");
}

const warnedHosts = new Set<string>();

/** Resolves options against the environment and defaults. */
export function resolveConfig(options: ClientConfig = {}): ResolvedConfig {
  const snake = options as { agent_id?: string; base_url?: string };
  const baseUrl = (
    options.baseUrl ??
    snake.base_url ??
    env("FARAMESH_BASE_URL") ??
    env("FARAMESH_URL") ??
    env("FARA_API_BASE") ??
    DEFAULT_BASE_URL
  ).replace(/\/+$/, "");
  let failMode: FailMode = options.failMode ?? envFailMode() ?? "closed";
  if (options.failMode === undefined && options.failOpen !== undefined) {
    failMode = options.failOpen ? "open" : "closed";
  }
  if (failMode !== "open" && failMode !== "closed") {
    throw new TypeError(`failMode must be "open" or "closed", not ${JSON.stringify(failMode)}`);
  }
  warnPlainHttp(baseUrl);
  return {
    baseUrl,
    token: options.token ?? firstToken(env("FARAMESH_TOKEN")) ?? firstToken(env("FARA_AUTH_TOKEN")),
    agentId: options.agentId ?? snake.agent_id ?? env("FARAMESH_AGENT_ID") ?? "default-agent",
    timeoutMs: options.timeoutMs ?? 30_000,
    maxRetries: Math.max(0, Math.floor(options.maxRetries ?? envNumber("FARAMESH_RETRIES") ?? 3)),
    retryBackoffFactor: options.retryBackoffFactor ?? envNumber("FARAMESH_RETRY_BACKOFF") ?? 0.5,
    failMode,
    headers: { ...(options.headers ?? {}) },
    fetch: options.fetch,
    onRequestStart: options.onRequestStart,
    onRequestEnd: options.onRequestEnd,
    onError: options.onError,
  };
}

/** Tokens and decisions should not cross a network in clear text. */
function warnPlainHttp(baseUrl: string): void {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    return; // reported as a connection error on first use
  }
  const local = ["127.0.0.1", "localhost", "[::1]", "::1"].includes(url.hostname);
  if (url.protocol === "http:" && !local && !warnedHosts.has(url.host)) {
    warnedHosts.add(url.host);
    process.emitWarning(
      `Faramesh base URL ${baseUrl} uses plain HTTP to a non-local host; use https:// so tokens and decisions are not sent in clear text`,
      { code: "FARAMESH_PLAIN_HTTP" },
    );
  }
}
