/**
 * The live stream (`GET /v1/events`, Server-Sent Events), parsed by hand over the fetch response
 * body so the request can carry `Authorization` and `Last-Event-ID` headers. The stream
 * reconnects by itself and resumes after the last message it delivered.
 */

import type { ResolvedConfig } from "./config.js";
import { FarameshConnectionError, FarameshError } from "./errors.js";
import { baseHeaders, buildUrl, errorFromResponse, sleep } from "./http.js";
import type { ActionStatus, StreamEvent } from "./types.js";

/** One dispatched SSE message. */
export interface SseMessage {
  /** The last event ID at dispatch time (the `id:` of this message or an earlier one). */
  id: string | undefined;
  /** The `event:` field, `message` when absent. */
  event: string;
  /** The joined `data:` lines; undefined when the message had none (it only moves the id). */
  data: string | undefined;
}

/** Incremental parser of the `text/event-stream` format (any of CRLF, LF, CR line endings). */
export class SseParser {
  private buffer = "";
  private dataLines: string[] = [];
  private sawData = false;
  private eventName = "";
  private started = false;
  /** The last event ID buffer: kept across messages, as the SSE format says. */
  lastEventId: string | undefined;
  /** The last `retry:` value sent by the server, in milliseconds. */
  retry: number | undefined;

  constructor(lastEventId?: string) {
    this.lastEventId = lastEventId;
  }

  /** Feeds decoded text; returns the messages it completed. */
  feed(text: string): SseMessage[] {
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    this.buffer += text;
    const out: SseMessage[] = [];
    for (;;) {
      const cr = this.buffer.indexOf("\r");
      const lf = this.buffer.indexOf("\n");
      if (cr === -1 && lf === -1) break;
      let end: number;
      let next: number;
      if (cr !== -1 && (lf === -1 || cr < lf)) {
        // A CR at the very end may be the first half of a CRLF: wait for more text.
        if (cr === this.buffer.length - 1) break;
        end = cr;
        next = this.buffer[cr + 1] === "\n" ? cr + 2 : cr + 1;
      } else {
        end = lf;
        next = lf + 1;
      }
      const line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(next);
      const message = this.line(line);
      if (message) out.push(message);
    }
    return out;
  }

  private line(line: string): SseMessage | undefined {
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) return undefined; // comment, e.g. ": ping"
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "data":
        this.dataLines.push(value);
        this.sawData = true;
        break;
      case "event":
        this.eventName = value;
        break;
      case "id":
        if (!value.includes("\0")) this.lastEventId = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
    }
    return undefined;
  }

  private dispatch(): SseMessage | undefined {
    const message: SseMessage = {
      id: this.lastEventId,
      event: this.eventName || "message",
      data: this.sawData ? this.dataLines.join("\n") : undefined,
    };
    this.dataLines = [];
    this.sawData = false;
    this.eventName = "";
    return message;
  }
}

export interface EventStreamOptions {
  /** Only this action's messages (filtered by the server). */
  actionId?: string;
  /** Only this agent's messages (filtered by the server). */
  agentId?: string;
  /** Only messages whose action has this status (filtered by the server). */
  status?: ActionStatus | (string & {});
  /** Only these message types (`action.created`, `action.updated`). */
  eventTypes?: string[];
  /**
   * Start after this message id instead of the server's replay of its last 10 messages:
   * every buffered message with a greater id is delivered first.
   */
  lastEventId?: string | number;
  /** Reconnect after errors and disconnections (default true). */
  reconnect?: boolean;
  /** First wait before reconnecting, doubled after each failed attempt (default 500 ms). */
  reconnectDelayMs?: number;
  /** Longest wait between reconnection attempts (default 15000 ms). */
  maxReconnectDelayMs?: number;
  /**
   * Reconnect when nothing at all (not even the server's keep-alive ping, sent at least every
   * 15 s) arrived for this long (default 45000 ms; 0 disables).
   */
  idleTimeoutMs?: number;
  /** Closes the stream when aborted. */
  signal?: AbortSignal;
  /** Called each time a connection is established. */
  onOpen?: (info: { reconnect: boolean; lastEventId: string | undefined }) => void;
  /** Called when a connection is lost and the stream is about to reconnect. */
  onDisconnect?: (error: Error | undefined) => void;
}

class IdleTimeout extends Error {}

class Fatal {
  constructor(readonly error: Error) {}
}

/**
 * A live stream of action changes: an async iterable of {@link StreamEvent}s.
 *
 * ```ts
 * const stream = eventStream({ agentId: "my-agent" });
 * for await (const event of stream) console.log(event.type, event.data.status);
 * ```
 * It reconnects with `Last-Event-ID` after errors, so a server restart loses nothing that is
 * still in the server's buffer. Fatal errors (401, 403, other 4xx) end the iteration with a
 * typed error. {@link close} (or the `signal`) ends it quietly.
 */
export class EventStream implements AsyncIterable<StreamEvent> {
  /** The id of the last message delivered (or passed over); sent as `Last-Event-ID` on reconnect. */
  lastEventId: string | undefined;
  private closedFlag = false;
  private readonly closer = new AbortController();
  private current: AbortController | undefined;
  /** The silence timer of the open connection (cleared by close(), even while a value is out). */
  private idle: ReturnType<typeof setTimeout> | undefined;
  private iterating = false;
  private readonly options: EventStreamOptions;
  private readonly config: ResolvedConfig;

  constructor(config: ResolvedConfig, options: EventStreamOptions = {}) {
    this.config = config;
    this.options = options;
    this.lastEventId = options.lastEventId === undefined ? undefined : String(options.lastEventId);
    if (options.signal) {
      if (options.signal.aborted) this.close();
      else options.signal.addEventListener("abort", () => this.close(), { once: true });
    }
  }

  /** Whether {@link close} was called (or the signal aborted). */
  get closed(): boolean {
    return this.closedFlag;
  }

  /** Ends the stream; a pending iteration step finishes with `done: true`. */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.closer.abort();
    this.current?.abort();
    clearTimeout(this.idle);
  }

  [Symbol.asyncIterator](): AsyncIterator<StreamEvent> {
    if (this.iterating) throw new FarameshError("An EventStream can be iterated only once");
    this.iterating = true;
    return this.run();
  }

  private url(): string {
    const { actionId, agentId, status } = this.options;
    return buildUrl(this.config.baseUrl, "/v1/events", { action_id: actionId, agent_id: agentId, status });
  }

  private async *run(): AsyncGenerator<StreamEvent, void, undefined> {
    const reconnect = this.options.reconnect ?? true;
    const firstDelay = this.options.reconnectDelayMs ?? 500;
    const maxDelay = this.options.maxReconnectDelayMs ?? 15_000;
    const idleMs = this.options.idleTimeoutMs ?? 45_000;
    const types = this.options.eventTypes;
    const doFetch = this.config.fetch ?? globalThis.fetch;
    let delay = firstDelay;
    let opened = false;
    try {
      while (!this.closedFlag) {
        const controller = new AbortController();
        this.current = controller;
        const touch = () => {
          if (idleMs <= 0) return;
          clearTimeout(this.idle);
          this.idle = setTimeout(() => controller.abort(new IdleTimeout()), idleMs);
        };
        let failure: Error | undefined;
        try {
          const headers: Record<string, string> = {
            ...baseHeaders(this.config),
            accept: "text/event-stream",
            "cache-control": "no-cache",
          };
          if (this.lastEventId !== undefined) headers["last-event-id"] = this.lastEventId;
          touch();
          const response = await doFetch(this.url(), { headers, signal: controller.signal });
          if (!response.ok) {
            const text = await response.text().catch(() => "");
            const error = errorFromResponse(response.status, response.statusText, text, "GET", "/v1/events");
            if (response.status < 500 || !reconnect) throw new Fatal(error);
            failure = error;
          } else if (!response.body) {
            throw new Fatal(new FarameshError("The event stream response has no body"));
          } else {
            delay = firstDelay;
            try {
              this.options.onOpen?.({ reconnect: opened, lastEventId: this.lastEventId });
            } catch {
              // a failing hook never breaks the stream
            }
            opened = true;
            const parser = new SseParser(this.lastEventId);
            const decoder = new TextDecoder();
            const reader = response.body.getReader();
            try {
              for (;;) {
                const { done, value } = await reader.read();
                if (done) break;
                touch();
                for (const message of parser.feed(decoder.decode(value, { stream: true }))) {
                  if (parser.retry !== undefined) delay = parser.retry;
                  this.lastEventId = message.id;
                  if (message.data === undefined || message.event !== "message") continue;
                  const event = parseEvent(message);
                  if (!event) continue;
                  if (types && !types.includes(event.type)) continue;
                  yield event;
                  if (this.closedFlag) return;
                }
              }
            } finally {
              reader.releaseLock();
            }
          }
        } catch (error) {
          if (error instanceof Fatal) throw error.error;
          if (this.closedFlag) return;
          failure =
            error instanceof IdleTimeout || controller.signal.reason instanceof IdleTimeout
              ? new FarameshConnectionError(`The event stream was silent for ${idleMs} ms; reconnecting`)
              : new FarameshConnectionError(
                  `Lost the event stream from ${this.config.baseUrl} (${describe(error)})`,
                  { cause: error },
                );
        } finally {
          clearTimeout(this.idle);
          controller.abort();
        }
        if (this.closedFlag) return;
        if (!reconnect) {
          if (failure) throw failure;
          return;
        }
        try {
          this.options.onDisconnect?.(failure);
        } catch {
          // ignore hook failures
        }
        if (failure) {
          try {
            this.config.onError?.(failure);
          } catch {
            // ignore hook failures
          }
        }
        try {
          await sleep(delay, this.closer.signal);
        } catch {
          return; // closed while waiting
        }
        delay = Math.min(delay * 2, maxDelay);
      }
    } finally {
      this.close();
    }
  }
}

function describe(error: unknown): string {
  let e: unknown = error;
  for (let depth = 0; e && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
    e = (e as { cause?: unknown }).cause;
  }
  return error instanceof Error ? error.message : String(error);
}

function parseEvent(message: SseMessage): StreamEvent | undefined {
  let payload: unknown;
  try {
    payload = JSON.parse(message.data ?? "");
  } catch {
    return undefined;
  }
  if (!payload || typeof payload !== "object") return undefined;
  const body = payload as Record<string, unknown>;
  const data = (body.data ?? {}) as StreamEvent["data"];
  const type = typeof body.type === "string" ? body.type : "";
  return {
    ...body,
    id: message.id ?? "",
    type,
    event_type: type,
    action_id: typeof body.action_id === "string" ? body.action_id : String(data.id ?? ""),
    data,
    timestamp: typeof body.timestamp === "string" ? body.timestamp : "",
  };
}
