/**
 * Faramesh for the Vercel AI SDK (`ai`): tools made with the AI SDK's `tool()`, governed.
 *
 * ```ts
 * import { generateText, tool, stepCountIs } from "ai";
 * import { governTools } from "@faramesh/sdk/ai";
 *
 * const tools = governTools({ shell: tool({ ... }), http: tool({ ... }) }, { agentId: "ops-bot" });
 * await generateText({ model, tools, stopWhen: stepCountIs(5), prompt });
 * ```
 *
 * Each call of a governed tool's `execute` submits an action (tool = the tool's name, params =
 * the tool input), waits while it is pending approval, runs the original `execute` only when
 * the action is allowed or approved, and reports the outcome, all through the SDK's
 * {@link ExecutionGovernorClient.govern}. A refused call does not run: `execute` throws a
 * {@link GovernedToolDeniedError} whose text, `"Faramesh denied this call: <reason>"`, is what
 * the AI SDK hands the model as the tool's error (or returns `onDenied(error)` instead).
 *
 * This module does not import `ai`: it wraps any object with an `execute(input, options)`
 * function, so the AI SDK stays an optional peer dependency of the SDK.
 */

import type { ExecutionGovernorClient } from "./client.js";
import { FarameshPolicyError, FarameshTimeoutError, type FarameshErrorOptions } from "./errors.js";
import { getClient } from "./functions.js";
import type { Action, JsonObject } from "./types.js";

/** Start of the text a refused call gives the model (the same as the Python LangChain adapter's). */
export const DENIAL_PREFIX = "Faramesh denied this call";

/** The value of `context.integration` on every action a governed AI SDK tool submits. */
export const INTEGRATION = "vercel-ai-sdk";

/** What the AI SDK passes to `execute` as its second argument, as far as governing uses it. */
export interface ToolCallOptions {
  /** The id of the model's tool call; sent as `context.tool_call_id`. */
  toolCallId?: string;
  /** Aborts the generation; also stops waiting for an approval. */
  abortSignal?: AbortSignal;
  [key: string]: unknown;
}

/** Any tool with an `execute(input, options)` function: what the AI SDK's `tool()` returns. */
export interface GovernableTool {
  // `any` so that every tool type of the AI SDK (whose execute is optional, or `never` for
  // provider-executed tools) is accepted; governTool checks at run time.
  execute?: ((input: any, options: any) => unknown) | undefined;
}

/**
 * The input type of a tool's `execute`. The AI SDK's `Tool` type is a union (with `execute`, or
 * with only an `outputSchema` and `execute?: never`), so the function is taken from the union
 * first and its input inferred from that.
 */
export type ToolInputOf<T> =
  NonNullable<T extends { execute?: infer E } ? E : never> extends (input: infer I, ...rest: never[]) => unknown
    ? I
    : unknown;

/** Options of {@link governTool}. */
export interface GovernToolOptions<INPUT = unknown> {
  /**
   * The action's tool. {@link governTools} uses each tool's key in the tool set; a single tool
   * made with `tool()` does not know its name, so {@link governTool} needs it.
   */
  toolName: string;
  /** The action's operation (default `"run"`). */
  operation?: string;
  /** The submitting agent (default: the client's agent id). */
  agentId?: string;
  /** The client to use (default: the shared one set up by `configure`, looked up at each call). */
  client?: ExecutionGovernorClient;
  /** Turns the tool input into the action's params (default: the input itself when it is an object, else `{ input }`). */
  params?: (input: INPUT) => JsonObject;
  /**
   * The action's context, or a function of the tool input and call options that returns it.
   * `integration` (`"vercel-ai-sdk"`) and `tool_call_id` (the model's tool call id) are added.
   */
  context?: JsonObject | ((input: INPUT, options: ToolCallOptions) => JsonObject);
  /** How long to wait for a human to approve (default 300000 ms); past it the call is refused. */
  approvalTimeoutMs?: number;
  /** Poll interval while waiting for approval (default 1000 ms). */
  pollIntervalMs?: number;
  /**
   * Whether the tool's output is reported as the result's `output` (default true), or a
   * function that turns it into the reported output. A streaming tool's output is its last value.
   */
  reportOutput?: boolean | ((output: unknown) => unknown);
  /** Called once when a call waits for approval (for example to tell someone how to approve it). */
  onPending?: (action: Action) => void | Promise<void>;
  /**
   * Called instead of throwing when a call is refused; its return value becomes the tool's
   * output, e.g. `(e) => e.message` to give the model the refusal as an ordinary result.
   */
  onDenied?: (error: GovernedToolDeniedError) => unknown;
}

/** Options of {@link governTools}: those of {@link governTool} for every tool, and per tool. */
export type GovernToolsOptions<TOOLS extends Record<string, GovernableTool> = Record<string, GovernableTool>> = Omit<
  GovernToolOptions,
  "toolName" | "params" | "context"
> & {
  /** The action's context for every tool (a function gets each tool's input and call options). */
  context?: JsonObject | ((input: unknown, options: ToolCallOptions) => JsonObject);
  /** Options for single tools by their key, over the shared ones (`toolName` defaults to the key). */
  overrides?: { [K in keyof TOOLS]?: Partial<GovernToolOptions<ToolInputOf<TOOLS[K]>>> };
};

/**
 * A governed tool call that was refused: denied by the policy or by a human, or not approved
 * in time. The tool did not run. `message`, which the AI SDK hands the model as the tool error
 * (AI SDK 7 uses `toString()`, which is the same text), is `"Faramesh denied this call: <reason>"`.
 */
export class GovernedToolDeniedError extends FarameshPolicyError {
  /** The governed tool's name (the action's tool). */
  readonly toolName: string;
  /** The model's tool call id, when the AI SDK gave one. */
  readonly toolCallId?: string;
  private readonly refusalReason: string;

  constructor(
    message: string,
    options: FarameshErrorOptions & { reason: string; toolName: string; toolCallId?: string },
  ) {
    super(message, { detail: options.reason, ...options });
    this.refusalReason = options.reason;
    this.toolName = options.toolName;
    this.toolCallId = options.toolCallId;
  }

  /** Why the call was refused: the policy's or the human's reason, or why no approval came. */
  override get reason(): string {
    return this.refusalReason;
  }

  /** The refusal text alone, like `message` (AI SDK 7 gives the model `error.toString()`). */
  override toString(): string {
    return this.message;
  }
}

const NOT_GOVERNABLE =
  "has no execute function: only tools that the AI SDK executes (tool() with execute) can be governed";

/**
 * Wraps one AI SDK tool so that each call is decided by Faramesh first (see the module
 * comment). Returns a copy of the tool whose `execute` is governed; everything else (schema,
 * description, ...) is unchanged.
 */
export function governTool<T extends GovernableTool>(tool: T, options: GovernToolOptions<ToolInputOf<T>>): T {
  if (tool === null || typeof tool !== "object") throw new TypeError("governTool needs a tool object");
  if (!options || typeof options.toolName !== "string" || options.toolName === "") {
    throw new TypeError("governTool needs options.toolName (the name the model calls the tool by)");
  }
  const execute = tool.execute;
  if (typeof execute !== "function") throw new TypeError(`Tool ${options.toolName} ${NOT_GOVERNABLE}`);
  return { ...tool, execute: governedExecute(tool, execute, options as GovernToolOptions) };
}

/**
 * Wraps every tool of an AI SDK tool set (`{ name: tool(...) }`); each tool's name is its key.
 * Every tool must have an `execute` function.
 */
export function governTools<TOOLS extends Record<string, GovernableTool>>(
  tools: TOOLS,
  options: GovernToolsOptions<TOOLS> = {},
): TOOLS {
  if (tools === null || typeof tools !== "object") throw new TypeError("governTools needs a tool set object");
  const { overrides, ...shared } = options;
  const governed: Record<string, GovernableTool> = {};
  for (const [name, tool] of Object.entries(tools)) {
    const own = (overrides as Record<string, Partial<GovernToolOptions>> | undefined)?.[name] ?? {};
    governed[name] = governTool(tool, { ...(shared as GovernToolOptions), toolName: name, ...own });
  }
  return governed as TOOLS;
}

// ---- the governed execute --------------------------------------------------------------------

type Execute = (input: unknown, options: ToolCallOptions) => unknown;

function isPlainObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** A JSON copy (bigints as strings); undefined when impossible. */
function jsonCopy(value: unknown): unknown {
  try {
    const text = JSON.stringify(value, (_key, v) => (typeof v === "bigint" ? v.toString() : v));
    return text === undefined ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === "function"
  );
}

function isAsyncGeneratorFunction(fn: unknown): boolean {
  return Object.prototype.toString.call(fn) === "[object AsyncGeneratorFunction]";
}

function paramsFor(input: unknown, options: GovernToolOptions): JsonObject {
  if (options.params) return options.params(input);
  if (input === undefined) return {};
  const copy = jsonCopy(input);
  return isPlainObject(copy) ? copy : { input: (copy ?? null) as JsonObject[string] };
}

function contextFor(input: unknown, call: ToolCallOptions, options: GovernToolOptions): JsonObject {
  const own = typeof options.context === "function" ? options.context(input, call) : (options.context ?? {});
  const context: JsonObject = { ...own, integration: INTEGRATION };
  if (typeof call.toolCallId === "string") context.tool_call_id = call.toolCallId;
  return context;
}

/** The refusal for an error of the governance step (submit or wait), or undefined for other errors. */
function refusalFor(error: unknown, options: GovernToolOptions, call: ToolCallOptions): GovernedToolDeniedError | undefined {
  let reason: string;
  let action: Action | undefined;
  if (error instanceof FarameshPolicyError) {
    // Denied by the policy at submission, or by a human while the call waited.
    action = error.action;
    reason = error.reason ?? error.detail ?? "denied";
  } else if (error instanceof FarameshTimeoutError && error.action) {
    // No decision in time (a timeout of an HTTP request has no action and is not a refusal).
    action = error.action;
    reason =
      action.status === "timeout"
        ? "the approval request expired before anyone decided"
        : `no one approved it within ${(options.approvalTimeoutMs ?? 300_000) / 1000} seconds ` +
          `(action ${action.id} is still ${action.status.replace(/_/g, " ")})`;
  } else {
    return undefined;
  }
  return new GovernedToolDeniedError(`${DENIAL_PREFIX}: ${reason}`, {
    reason,
    action,
    cause: error,
    toolName: options.toolName,
    toolCallId: call.toolCallId,
  });
}

function governedExecute(tool: GovernableTool, original: Execute, options: GovernToolOptions): Execute {
  const operation = options.operation ?? "run";

  /**
   * One call: govern() submits, waits, runs `body` and reports. `onItem` receives each value of
   * a streaming tool as it comes. Resolves with the output (a streaming tool's last value), or
   * with onDenied's value when the call was refused.
   */
  async function call(
    input: unknown,
    callOptions: ToolCallOptions | undefined,
    onItem?: (item: unknown) => void,
  ): Promise<{ value: unknown; ran: boolean }> {
    const opts: ToolCallOptions = callOptions ?? {};
    let ran = false;
    const body = async (): Promise<unknown> => {
      ran = true;
      const result = await original.call(tool, input, callOptions as ToolCallOptions);
      if (!isAsyncIterable(result)) return result;
      // A streaming tool (async *execute): its outcome is known only once it has finished.
      let last: unknown;
      for await (const item of result) {
        last = item;
        onItem?.(item);
      }
      return last;
    };
    const client = options.client ?? getClient();
    const governed = client.govern(body, {
      tool: options.toolName,
      operation,
      agentId: options.agentId,
      params: () => paramsFor(input, options),
      context: () => contextFor(input, opts, options),
      approvalTimeoutMs: options.approvalTimeoutMs,
      pollIntervalMs: options.pollIntervalMs,
      reportOutput: options.reportOutput,
      onPending: options.onPending,
      signal: opts.abortSignal,
    });
    try {
      return { value: await governed(), ran: true };
    } catch (error) {
      // An error of the tool itself (already reported as failed) is the tool's own error.
      if (ran) throw error;
      const refusal = refusalFor(error, options, opts);
      if (!refusal) throw error; // server unreachable (fail-closed), auth, ...: the tool did not run
      if (options.onDenied) return { value: await options.onDenied(refusal), ran: false };
      throw refusal;
    }
  }

  if (!isAsyncGeneratorFunction(original)) {
    return async function governedExecute(input: unknown, callOptions: ToolCallOptions): Promise<unknown> {
      return (await call(input, callOptions)).value;
    };
  }

  // A streaming tool stays a streaming tool: its values are passed on as they come, and the
  // outcome is reported once it has finished.
  return async function* governedStreamingExecute(input: unknown, callOptions: ToolCallOptions): AsyncGenerator<unknown> {
    const items: unknown[] = [];
    let wake: (() => void) | undefined;
    let settled: { ok: true; value: unknown; ran: boolean } | { ok: false; error: unknown } | undefined;
    void call(input, callOptions, (item) => {
      items.push(item);
      wake?.();
    }).then(
      ({ value, ran }) => {
        settled = { ok: true, value, ran };
        wake?.();
      },
      (error: unknown) => {
        settled = { ok: false, error };
        wake?.();
      },
    );
    for (;;) {
      if (items.length > 0) {
        yield items.shift();
        continue;
      }
      if (settled) break;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
    if (!settled.ok) throw settled.error;
    if (!settled.ran) yield settled.value; // refused with onDenied: its value is the output
  };
}
