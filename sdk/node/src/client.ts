/**
 * {@link ExecutionGovernorClient}: the whole API on one configured client. The module-level
 * functions (`submitAction`, `getAction`, ...) use a shared instance of it (see `configure`).
 */

import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import { resolveConfig, type ClientConfig, type ResolvedConfig } from "./config.js";
import {
  DeferredError,
  DenyError,
  FarameshBatchError,
  FarameshConflictError,
  FarameshDeniedError,
  FarameshError,
  FarameshNotFoundError,
  FarameshPolicyError,
  FarameshTimeoutError,
  FarameshValidationError,
  type BatchFailure,
} from "./errors.js";
import { isUnreachable, sleep, Transport, type RequestOptions } from "./http.js";
import { EventStream, type EventStreamOptions } from "./sse.js";
import type {
  Action,
  ActionEvent,
  ActionSpec,
  ActionStatus,
  DecideOptions,
  GateDecision,
  JsonObject,
  ListActionsOptions,
  PolicyInfo,
  ReplayResult,
  ReportResultOptions,
  StreamEvent,
  SubmitActionRequest,
  SubmitAndWaitConfig,
  SubmitAndWaitOptions,
  WaitOptions,
} from "./types.js";

/** A submission in object form, optionally with its own Idempotency-Key. */
export interface SubmitOptions extends ActionSpec {
  /**
   * Sent as `Idempotency-Key`; generated when omitted. Every retry of one call sends the same
   * key, so the server records the action once however many attempts it takes.
   */
  idempotencyKey?: string;
}

/** Options of {@link ExecutionGovernorClient.govern}. */
export interface GovernOptions<A extends unknown[] = unknown[]> {
  /** The action's tool (`shell`, `http`, `stripe`, ...). */
  tool: string;
  /** The action's operation; default: the function's name, else `invoke`. */
  operation?: string;
  /** The submitting agent; default: the client's agent id. */
  agentId?: string;
  /**
   * Turns the call's arguments into the action's params. Default: a single plain-object
   * argument is the params itself; otherwise `{ args: [...] }`.
   */
  params?: (...args: A) => JsonObject;
  /** The action's context, or a function of the call's arguments that returns it. */
  context?: JsonObject | ((...args: A) => JsonObject);
  /** How long to wait for a human to approve (default 300000 ms). */
  approvalTimeoutMs?: number;
  /** Poll interval while waiting for approval (default 1000 ms). */
  pollIntervalMs?: number;
  /**
   * Whether the function's return value is reported as the result's `output` (default true,
   * when it is JSON-serializable), or a function that turns it into the output.
   */
  reportOutput?: boolean | ((result: unknown) => unknown);
  /** Called once when the action waits for approval (for example to tell someone). */
  onPending?: (action: Action) => void | Promise<void>;
  /** Cancels waiting for approval. */
  signal?: AbortSignal;
}

/** A governed function: same arguments, always async. */
export type GovernedFunction<A extends unknown[], R> = ((...args: A) => Promise<Awaited<R>>) & {
  readonly tool: string;
  readonly operation: string;
};

/** Options of {@link ExecutionGovernorClient.executeIfAllowed}. */
export interface ExecuteIfAllowedConfig {
  agentId?: string;
  tool: string;
  operation: string;
  params?: JsonObject;
  context?: JsonObject;
  executor?: (tool: string, operation: string, params: JsonObject, context: JsonObject) => unknown;
}

export interface ExecuteIfAllowedResult {
  decision: GateDecision;
  outcome: string;
  reasonCode: string;
  executed: boolean;
  executionResult?: unknown;
  executionError?: string;
}

/** Statuses from which nothing changes any more. */
export const TERMINAL_STATUSES: readonly ActionStatus[] = ["succeeded", "failed", "denied", "timeout"];

const AFTER_APPROVAL: ActionStatus[] = ["approved", "executing", "succeeded", "failed", "timeout"];
const AFTER_START: ActionStatus[] = ["executing", "succeeded", "failed", "timeout"];

const enc = encodeURIComponent;

function isPlainObject(value: unknown): value is JsonObject {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** A JSON copy (bigints as strings, functions and symbols dropped); undefined when impossible. */
function jsonCopy(value: unknown): unknown {
  try {
    const text = JSON.stringify(value, (_key, v) => (typeof v === "bigint" ? v.toString() : v));
    return text === undefined ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}

function errorText(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

function waitArgs(
  pollIntervalOrOptions: number | WaitOptions | undefined,
  timeout: number | undefined,
  defaults: { pollIntervalMs: number; timeoutMs: number },
): Required<Omit<WaitOptions, "signal">> & { signal?: AbortSignal } {
  const options = typeof pollIntervalOrOptions === "object" ? pollIntervalOrOptions : {};
  return {
    pollIntervalMs:
      (typeof pollIntervalOrOptions === "number" ? pollIntervalOrOptions : options.pollIntervalMs) ??
      defaults.pollIntervalMs,
    timeoutMs: (typeof pollIntervalOrOptions === "number" ? timeout : options.timeoutMs) ?? timeout ?? defaults.timeoutMs,
    signal: options.signal,
  };
}

/** The whole Faramesh API on one configured client. */
export class ExecutionGovernorClient {
  /** The resolved configuration (options, then environment, then defaults). */
  readonly config: ResolvedConfig;
  /** The agent id used when a call does not name one. */
  readonly agentId: string;
  private readonly http: Transport;

  /**
   * @param baseUrlOrConfig a base URL, or a {@link ClientConfig}; omitted: environment and defaults.
   * @param config more options when the first argument is a URL.
   */
  constructor(baseUrlOrConfig?: string | ClientConfig, config?: ClientConfig) {
    const options: ClientConfig =
      typeof baseUrlOrConfig === "string"
        ? { ...(config ?? {}), baseUrl: baseUrlOrConfig }
        : { ...(baseUrlOrConfig ?? config ?? {}) };
    this.config = resolveConfig(options);
    this.agentId = this.config.agentId;
    this.http = new Transport(this.config);
  }

  /** A client configured only from the environment. */
  static fromEnv(): ExecutionGovernorClient {
    return new ExecutionGovernorClient();
  }

  /** This client's settings with some replaced. */
  withOptions(options: ClientConfig): ExecutionGovernorClient {
    const next: ClientConfig = { ...this.config, ...options };
    if (options.failOpen !== undefined && options.failMode === undefined) delete next.failMode;
    return new ExecutionGovernorClient(next);
  }

  private async call<T>(options: RequestOptions): Promise<T> {
    return (await this.http.request<T>(options)).data;
  }

  private notify(error: Error): void {
    try {
      this.config.onError?.(error);
    } catch {
      // ignore hook failures
    }
  }

  private failOpen(error: unknown): boolean {
    if (this.config.failMode === "open" && isUnreachable(error)) {
      this.notify(error as Error);
      return true;
    }
    return false;
  }

  private spec(
    specOrTool: SubmitOptions | string,
    operation?: string,
    params?: JsonObject,
    context?: JsonObject,
    agentId?: string,
  ): { body: Required<SubmitActionRequest>; idempotencyKey?: string } {
    if (typeof specOrTool === "object" && specOrTool !== null) {
      const s = specOrTool;
      return {
        body: {
          agent_id: s.agentId ?? s.agent_id ?? agentId ?? this.agentId,
          tool: s.tool,
          operation: s.operation,
          params: s.params ?? {},
          context: s.context ?? {},
        },
        idempotencyKey: s.idempotencyKey,
      };
    }
    return {
      body: {
        agent_id: agentId ?? this.agentId,
        tool: specOrTool,
        operation: operation as string,
        params: params ?? {},
        context: context ?? {},
      },
    };
  }

  // ---- submissions -------------------------------------------------------------------------

  /**
   * Submits an action for a decision (`POST /v1/actions`).
   *
   * Resolves with the recorded action (`allowed` or `pending_approval`). A denied action is
   * recorded too, and rejects with {@link FarameshPolicyError} whose `action` is the record.
   * Retries reuse one Idempotency-Key, so the action is recorded once. With fail-open and the
   * server unreachable, resolves with a stand-in allowed action (`fail_open: true`, empty `id`).
   */
  submitAction(tool: string, operation: string, params?: JsonObject, context?: JsonObject): Promise<Action>;
  submitAction(spec: SubmitOptions): Promise<Action>;
  submitAction(specOrTool: SubmitOptions | string, operation?: string, params?: JsonObject, context?: JsonObject): Promise<Action> {
    return this.submit(this.spec(specOrTool, operation, params, context));
  }

  /** @internal used by the module-level functions, which name the agent first. */
  _submitFor(agentId: string | undefined, spec: SubmitOptions | string, operation?: string, params?: JsonObject, context?: JsonObject): Promise<Action> {
    return this.submit(this.spec(spec, operation, params, context, agentId));
  }

  private async submit({ body, idempotencyKey }: { body: Required<SubmitActionRequest>; idempotencyKey?: string }): Promise<Action> {
    let action: Action;
    try {
      action = await this.call<Action>({
        method: "POST",
        path: "/v1/actions",
        body,
        headers: { "idempotency-key": idempotencyKey ?? randomUUID() },
      });
    } catch (error) {
      if (this.failOpen(error)) return failOpenAction(body, error as Error);
      throw error;
    }
    if (action.status === "denied") {
      const reason = action.reason ?? "no reason given";
      const error = new FarameshPolicyError(`Action denied by policy: ${reason}`, { detail: reason, action });
      this.notify(error);
      throw error;
    }
    return action;
  }

  /** Submits several actions one by one; failures become `{ error, action_spec }` entries. */
  async submitActions(specs: SubmitOptions[]): Promise<Array<Action | { error: string; action_spec: SubmitOptions }>> {
    const results: Array<Action | { error: string; action_spec: SubmitOptions }> = [];
    for (const spec of specs) {
      try {
        results.push(await this.submitAction(spec));
      } catch (error) {
        results.push({ error: errorText(error), action_spec: spec });
      }
    }
    return results;
  }

  /**
   * Submits several actions one by one. With `raiseOnError`, any failure rejects with a
   * {@link FarameshBatchError} listing successes and failures; otherwise failures are returned
   * in place as `{ error, index, actionSpec }`.
   */
  async submitActionsBulk(
    specs: SubmitOptions[],
    options: { raiseOnError?: boolean } = {},
  ): Promise<Array<Action | BatchFailure>> {
    const successes: Action[] = [];
    const failures: BatchFailure[] = [];
    const results: Array<Action | BatchFailure> = [];
    for (const [index, spec] of specs.entries()) {
      try {
        const action = await this.submitAction(spec);
        successes.push(action);
        results.push(action);
      } catch (error) {
        const failure: BatchFailure = { error: errorText(error), index, actionSpec: spec, cause: error };
        failures.push(failure);
        results.push(failure);
      }
    }
    if (options.raiseOnError && failures.length > 0) {
      throw new FarameshBatchError(
        `Batch submission failed: ${failures.length} of ${specs.length} actions failed`,
        successes,
        failures,
      );
    }
    return results;
  }

  /** Reads an action from a JSON (or, with the `yaml` package installed, YAML) file and submits it. */
  async apply(filePath: string): Promise<Action> {
    let text: string;
    try {
      text = await readFile(filePath, "utf8");
    } catch (cause) {
      throw new FarameshValidationError(`Cannot read ${filePath}: ${errorText(cause)}`, { cause });
    }
    let data: unknown;
    const ext = extname(filePath).toLowerCase();
    if (ext === ".yaml" || ext === ".yml") {
      data = await parseYaml(text, filePath);
    } else {
      try {
        data = JSON.parse(text);
      } catch (cause) {
        if (ext === ".json") throw new FarameshValidationError(`${filePath} is not valid JSON: ${errorText(cause)}`, { cause });
        data = await parseYaml(text, filePath);
      }
    }
    if (!isPlainObject(data)) throw new FarameshValidationError(`${filePath} must hold one action object`);
    const missing = ["agent_id", "tool", "operation"].filter((key) => typeof data[key] !== "string");
    if (missing.length > 0) {
      throw new FarameshValidationError(`${filePath} lacks ${missing.join(", ")}`);
    }
    return this.submitAction({
      agentId: data.agent_id as string,
      tool: data.tool as string,
      operation: data.operation as string,
      params: (data.params as JsonObject | undefined) ?? {},
      context: (data.context as JsonObject | undefined) ?? {},
    });
  }

  // ---- reading -----------------------------------------------------------------------------

  /** One action (`GET /v1/actions/{id}`); {@link FarameshNotFoundError} when there is none. */
  getAction(actionId: string): Promise<Action> {
    return this.call<Action>({ method: "GET", path: `/v1/actions/${enc(actionId)}` });
  }

  /** Actions, newest first, with optional filters (`GET /v1/actions`). */
  async listActions(options: ListActionsOptions = {}): Promise<Action[]> {
    const result = await this.call<Action[] | { actions: Action[] }>({
      method: "GET",
      path: "/v1/actions",
      query: {
        limit: options.limit ?? 20,
        offset: options.offset ?? 0,
        agent_id: options.agentId ?? options.agent_id,
        tool: options.tool,
        status: options.status,
        q: options.search,
      },
    });
    return Array.isArray(result) ? result : (result.actions ?? []);
  }

  /** An action's ledger events, oldest first (`GET /v1/actions/{id}/events`). */
  getEvents(actionId: string): Promise<ActionEvent[]> {
    return this.call<ActionEvent[]>({ method: "GET", path: `/v1/actions/${enc(actionId)}/events` });
  }

  /** The active policy: file, version, hash, rule counts (`GET /v1/policy/info`). */
  getPolicyInfo(): Promise<PolicyInfo> {
    return this.call<PolicyInfo>({ method: "GET", path: "/v1/policy/info" });
  }

  /** `GET /health`: `{status: "healthy"}` while the server runs. */
  health(): Promise<{ status: string }> {
    return this.call<{ status: string }>({ method: "GET", path: "/health", retry: false });
  }

  /** `GET /ready`: `{status: "ready"}`, or a {@link FarameshServerError} (503) when not ready. */
  ready(): Promise<{ status: string }> {
    return this.call<{ status: string }>({ method: "GET", path: "/ready", retry: false });
  }

  // ---- approval and execution --------------------------------------------------------------

  /**
   * Approves a pending action. Without a token, the action's `approval_token` is fetched first
   * (it is visible to approver and admin tokens). Resolves with the `approved` action;
   * {@link FarameshConflictError} if it is no longer pending, {@link FarameshForbiddenError}
   * when this token's role may not approve.
   */
  approveAction(actionId: string, token?: string, reason?: string): Promise<Action>;
  approveAction(actionId: string, options: DecideOptions): Promise<Action>;
  approveAction(actionId: string, tokenOrOptions?: string | DecideOptions, reason?: string): Promise<Action> {
    return this.decide(actionId, true, tokenOrOptions, reason);
  }

  /** Denies a pending action (as {@link approveAction}); resolves with the `denied` action. */
  denyAction(actionId: string, token?: string, reason?: string): Promise<Action>;
  denyAction(actionId: string, options: DecideOptions): Promise<Action>;
  denyAction(actionId: string, tokenOrOptions?: string | DecideOptions, reason?: string): Promise<Action> {
    return this.decide(actionId, false, tokenOrOptions, reason);
  }

  private async decide(
    actionId: string,
    approve: boolean,
    tokenOrOptions: string | DecideOptions | undefined,
    reasonArg: string | undefined,
  ): Promise<Action> {
    const options =
      typeof tokenOrOptions === "object" && tokenOrOptions !== null
        ? tokenOrOptions
        : { token: tokenOrOptions ?? undefined, reason: reasonArg };
    let token = options.token;
    if (!token) {
      const action = await this.getAction(actionId);
      if (action.status !== "pending_approval") {
        const verb = approve ? "approved" : "denied";
        throw new FarameshConflictError(
          `Action ${actionId} is ${action.status}; only a pending_approval action can be ${verb}`,
          { status: 409, detail: `Action ${actionId} is ${action.status}; it cannot be ${verb}`, currentStatus: action.status, actionId, action },
        );
      }
      // An agent token never sees the approval token; the server then answers 403 for its role.
      token = action.approval_token ?? "";
    }
    const body: Record<string, unknown> = { token, approve };
    if (options.reason !== undefined) body.reason = options.reason;
    return this.transition(actionId, "approval", body, approve ? AFTER_APPROVAL : ["denied"]);
  }

  /** Starts an allowed or approved action (`POST /v1/actions/{id}/start`). */
  startAction(actionId: string): Promise<Action> {
    return this.transition(actionId, "start", undefined, AFTER_START);
  }

  /**
   * Reports how the action went (`POST /v1/actions/{id}/result`), from `allowed`, `approved`
   * or `executing`; resolves with the `succeeded` or `failed` action.
   */
  reportResult(actionId: string, result: ReportResultOptions): Promise<Action>;
  reportResult(actionId: string, success: boolean, error?: string, output?: unknown): Promise<Action>;
  reportResult(actionId: string, resultOrSuccess: ReportResultOptions | boolean, error?: string, output?: unknown): Promise<Action> {
    const result: ReportResultOptions =
      typeof resultOrSuccess === "boolean" ? { success: resultOrSuccess, error, output } : resultOrSuccess;
    const body: Record<string, unknown> = { success: result.success };
    if (result.error !== undefined) body.error = result.error;
    if (result.output !== undefined) body.output = result.output;
    return this.transition(actionId, "result", body, [result.success ? "succeeded" : "failed"]);
  }

  /**
   * A state change. Retried like any request; if a retry meets 409 because an earlier attempt
   * did get through (the answer was lost), the action already has the wanted status and is
   * returned instead of the conflict.
   */
  private async transition(actionId: string, step: string, body: unknown, reached: ActionStatus[]): Promise<Action> {
    try {
      return await this.call<Action>({ method: "POST", path: `/v1/actions/${enc(actionId)}/${step}`, body: body ?? {} });
    } catch (error) {
      if (error instanceof FarameshConflictError && (error.attempts ?? 1) > 1) {
        const current = await this.getAction(actionId).catch(() => undefined);
        if (current && reached.includes(current.status)) return current;
      }
      throw error;
    }
  }

  /** Submits a copy of an allowed, approved or succeeded action; its context gets `replayed_from`. */
  async replayAction(actionId: string): Promise<Action> {
    const original = await this.getAction(actionId);
    if (!["allowed", "approved", "succeeded"].includes(original.status)) {
      throw new FarameshConflictError(
        `Action ${actionId} is ${original.status}; only allowed, approved or succeeded actions can be replayed`,
        { currentStatus: original.status, actionId, action: original },
      );
    }
    return this.submitAction({
      agentId: original.agent_id,
      tool: original.tool,
      operation: original.operation,
      params: original.params ?? {},
      context: { ...(original.context ?? {}), replayed_from: original.id, replay: true },
    });
  }

  // ---- waiting -----------------------------------------------------------------------------

  private async poll(
    actionId: string,
    options: { pollIntervalMs: number; timeoutMs: number; signal?: AbortSignal },
    done: (action: Action) => boolean,
    what: string,
  ): Promise<Action> {
    const deadline = Date.now() + options.timeoutMs;
    for (;;) {
      if (options.signal?.aborted) throw options.signal.reason;
      const action = await this.getAction(actionId);
      if (done(action)) return action;
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new FarameshTimeoutError(
          `Action ${actionId} did not ${what} within ${options.timeoutMs} ms (status: ${action.status})`,
          { action },
        );
      }
      await sleep(Math.min(options.pollIntervalMs, remaining), options.signal);
    }
  }

  /**
   * Waits until the action is finished (`succeeded`, `failed`, `denied` or `timeout`) and
   * resolves with it; {@link FarameshTimeoutError} after `timeout` ms (default 60000).
   */
  waitForCompletion(actionId: string, pollInterval?: number, timeout?: number): Promise<Action>;
  waitForCompletion(actionId: string, options: WaitOptions): Promise<Action>;
  waitForCompletion(actionId: string, pollIntervalOrOptions?: number | WaitOptions, timeout?: number): Promise<Action> {
    const options = waitArgs(pollIntervalOrOptions, timeout, { pollIntervalMs: 1000, timeoutMs: 60_000 });
    return this.poll(actionId, options, (a) => TERMINAL_STATUSES.includes(a.status), "finish");
  }

  /**
   * Waits until a human decides a pending action. Resolves with the action once it may run
   * (`approved`, or already past that); rejects with {@link FarameshDeniedError} when it is
   * denied and {@link FarameshTimeoutError} when the approval expired or `timeoutMs`
   * (default 300000) passed.
   */
  async blockUntilApproved(actionId: string, options: WaitOptions = {}): Promise<Action> {
    const action = await this.poll(
      actionId,
      { pollIntervalMs: options.pollIntervalMs ?? 1000, timeoutMs: options.timeoutMs ?? 300_000, signal: options.signal },
      (a) => a.status !== "pending_approval",
      "get a decision",
    );
    if (action.status === "denied") {
      const reason = action.reason ?? "no reason given";
      throw new FarameshDeniedError(`Action ${actionId} was denied: ${reason}`, { detail: reason, action });
    }
    if (action.status === "timeout") {
      throw new FarameshTimeoutError(`Action ${actionId} expired while waiting for approval`, { action });
    }
    return action;
  }

  /** Same as {@link blockUntilApproved}. */
  waitForApproval(actionId: string, options: WaitOptions = {}): Promise<Action> {
    return this.blockUntilApproved(actionId, options);
  }

  /**
   * Submits an action and waits, as options say: `requireApproval` waits for a human to approve
   * a pending action, `autoApprove` approves it with its token, `autoStart` starts an allowed or
   * approved action and waits until it finishes. Without them the submitted action is returned.
   */
  submitAndWait(tool: string, operation: string, params?: JsonObject, context?: JsonObject, options?: SubmitAndWaitOptions): Promise<Action>;
  submitAndWait(config: SubmitAndWaitConfig): Promise<Action>;
  submitAndWait(
    toolOrConfig: string | SubmitAndWaitConfig,
    operation?: string,
    params?: JsonObject,
    context?: JsonObject,
    options?: SubmitAndWaitOptions,
  ): Promise<Action> {
    if (typeof toolOrConfig === "object") {
      const { agentId, agent_id, tool, operation: op, params: p, context: c, ...rest } = toolOrConfig;
      return this._submitAndWaitFor(agentId ?? agent_id, tool, op, p, c, rest);
    }
    return this._submitAndWaitFor(undefined, toolOrConfig, operation as string, params, context, options);
  }

  /** @internal */
  async _submitAndWaitFor(
    agentId: string | undefined,
    tool: string,
    operation: string,
    params: JsonObject | undefined,
    context: JsonObject | undefined,
    options: SubmitAndWaitOptions = {},
  ): Promise<Action> {
    const wait = {
      pollIntervalMs: options.pollIntervalMs ?? options.pollInterval ?? 1000,
      timeoutMs: options.timeoutMs ?? options.timeout ?? 300_000,
      signal: options.signal,
    };
    let action = await this._submitFor(agentId, { tool, operation, params, context });
    if (action.fail_open) return action;
    if (action.status === "pending_approval") {
      if (options.autoApprove) {
        action = await this.approveAction(action.id, action.approval_token ?? undefined);
      } else if (options.requireApproval) {
        action = await this.blockUntilApproved(action.id, wait);
      } else {
        return action;
      }
    }
    if (options.autoStart && (action.status === "allowed" || action.status === "approved")) {
      action = await this.startAction(action.id);
      return this.waitForCompletion(action.id, wait);
    }
    return action;
  }

  // ---- decisions without recording ---------------------------------------------------------

  /**
   * The decision the policy would make, without recording anything (`POST /v1/gate/decide`).
   * With fail-open and the server unreachable, a stand-in EXECUTE decision (`fail_open: true`).
   */
  gateDecide(tool: string, operation: string, params?: JsonObject, context?: JsonObject): Promise<GateDecision>;
  gateDecide(spec: ActionSpec): Promise<GateDecision>;
  gateDecide(specOrTool: ActionSpec | string, operation?: string, params?: JsonObject, context?: JsonObject): Promise<GateDecision> {
    return this._decideFor(undefined, specOrTool, operation, params, context);
  }

  /** @internal */
  async _decideFor(
    agentId: string | undefined,
    specOrTool: ActionSpec | string,
    operation?: string,
    params?: JsonObject,
    context?: JsonObject,
  ): Promise<GateDecision> {
    const { body } = this.spec(specOrTool, operation, params, context, agentId);
    try {
      return await this.call<GateDecision>({ method: "POST", path: "/v1/gate/decide", body });
    } catch (error) {
      if (this.failOpen(error)) return failOpenDecision(error as Error);
      throw error;
    }
  }

  /** Same as {@link gateDecide}, typed as a plain object. */
  async gateDecideDict(tool: string, operation: string, params?: JsonObject, context?: JsonObject): Promise<Record<string, unknown>> {
    return { ...(await this.gateDecide(tool, operation, params, context)) };
  }

  /**
   * Returns the decision only when it is EXECUTE; throws {@link DenyError} for HALT and
   * {@link DeferredError} for ABSTAIN (approval needed).
   */
  gateGovern(tool: string, operation: string, params?: JsonObject, context?: JsonObject): Promise<GateDecision>;
  gateGovern(spec: ActionSpec): Promise<GateDecision>;
  gateGovern(specOrTool: ActionSpec | string, operation?: string, params?: JsonObject, context?: JsonObject): Promise<GateDecision> {
    return this._gateGovernFor(undefined, specOrTool, operation, params, context);
  }

  /** @internal */
  async _gateGovernFor(
    agentId: string | undefined,
    specOrTool: ActionSpec | string,
    operation?: string,
    params?: JsonObject,
    context?: JsonObject,
  ): Promise<GateDecision> {
    const decision = await this._decideFor(agentId, specOrTool, operation, params, context);
    const outcome = String(decision.outcome ?? "").toUpperCase();
    if (outcome === "EXECUTE") return decision;
    const code = decision.reason_code || "unknown";
    if (outcome === "HALT") {
      throw new DenyError(`Governance denied: ${code}`, { detail: decision.reason ?? code, decision });
    }
    if (outcome === "ABSTAIN") {
      throw new DeferredError(`Governance deferred (approval required): ${code}`, { detail: decision.reason ?? code, decision });
    }
    throw new FarameshError(`Unexpected gate outcome ${JSON.stringify(decision.outcome)}`);
  }

  /**
   * Re-decides a recorded action with the current policy and compares outcome, reason code and
   * hashes with the recorded decision.
   */
  async replayDecision(options: { actionId?: string; provenanceId?: string }): Promise<ReplayResult> {
    let original: Action | undefined;
    if (options.actionId) {
      original = await this.getAction(options.actionId);
    } else if (options.provenanceId) {
      const recent = await this.listActions({ limit: 1000 });
      original = recent.find((a) => a.provenance_id === options.provenanceId);
      if (!original) {
        throw new FarameshNotFoundError(`No recent action has provenance_id ${options.provenanceId}`);
      }
    } else {
      throw new FarameshValidationError("replayDecision needs an actionId or a provenanceId");
    }
    const replayed = await this.gateDecide({
      agentId: original.agent_id,
      tool: original.tool,
      operation: original.operation,
      params: original.params ?? {},
      context: original.context ?? {},
    });
    const mismatches: string[] = [];
    const originalOutcome = String(original.outcome ?? "");
    const replayedOutcome = String(replayed.outcome ?? "");
    if (originalOutcome !== replayedOutcome) mismatches.push(`outcome: ${originalOutcome} != ${replayedOutcome}`);
    const originalReasonCode = String(original.reason_code ?? "");
    const replayedReasonCode = String(replayed.reason_code ?? "");
    if (originalReasonCode !== replayedReasonCode) {
      mismatches.push(`reason_code: ${originalReasonCode} != ${replayedReasonCode}`);
    }
    const same = (a: unknown, b: unknown) => (a ?? null) === (b ?? null);
    const requestHashMatch = same(original.request_hash, replayed.request_hash);
    if (!requestHashMatch) mismatches.push("request_hash differs");
    const policyHashMatch = same(original.policy_hash, replayed.policy_hash);
    if (!policyHashMatch) mismatches.push("policy_hash differs: the policy changed since this decision");
    const profileHashMatch = same(original.profile_hash, replayed.profile_hash);
    if (!profileHashMatch) mismatches.push("profile_hash differs: the profile changed since this decision");
    const runtimeVersionMatch = same(original.runtime_version, replayed.runtime_version);
    if (!runtimeVersionMatch) {
      mismatches.push(`runtime_version: ${original.runtime_version} != ${replayed.runtime_version}`);
    }
    return {
      success: mismatches.length === 0,
      originalOutcome,
      replayedOutcome,
      originalReasonCode,
      replayedReasonCode,
      requestHashMatch,
      policyHashMatch,
      profileHashMatch,
      runtimeVersionMatch,
      mismatches,
      decision: replayed,
    };
  }

  /** Asks the gate and runs `executor` only when the outcome is EXECUTE; nothing is recorded. */
  async executeIfAllowed(config: ExecuteIfAllowedConfig): Promise<ExecuteIfAllowedResult> {
    const { tool, operation, params = {}, context = {}, executor } = config;
    const decision = await this._decideFor(config.agentId, { tool, operation, params, context });
    const result: ExecuteIfAllowedResult = {
      decision,
      outcome: decision.outcome,
      reasonCode: decision.reason_code,
      executed: false,
    };
    if (decision.outcome === "EXECUTE" && executor) {
      try {
        result.executionResult = await executor(tool, operation, params, context);
        result.executed = true;
      } catch (error) {
        result.executionError = errorText(error);
      }
    }
    return result;
  }

  // ---- govern ------------------------------------------------------------------------------

  /**
   * Wraps a function as a governed tool. Each call submits an action, waits for a human when
   * approval is required, runs the function only once the action is allowed or approved, and
   * reports the outcome (`succeeded` with the return value as output, or `failed` with the
   * error). A denied call rejects with {@link FarameshPolicyError} (policy) or
   * {@link FarameshDeniedError} (human) without running the function. With fail-open and the
   * server unreachable, the function runs and nothing is reported.
   */
  govern<A extends unknown[], R>(fn: (...args: A) => R, options: GovernOptions<A>): GovernedFunction<A, R>;
  govern<A extends unknown[], R>(options: GovernOptions<A>, fn: (...args: A) => R): GovernedFunction<A, R>;
  govern<A extends unknown[], R>(
    a: ((...args: A) => R) | GovernOptions<A>,
    b: ((...args: A) => R) | GovernOptions<A>,
  ): GovernedFunction<A, R> {
    const fn = (typeof a === "function" ? a : b) as (...args: A) => R;
    const options = (typeof a === "function" ? b : a) as GovernOptions<A>;
    if (typeof fn !== "function" || !options || typeof options.tool !== "string") {
      throw new TypeError("govern needs a function and options with a tool");
    }
    const operation = options.operation ?? (fn.name || "invoke");
    const client = this;
    const governed = async function (this: unknown, ...args: A): Promise<Awaited<R>> {
      return client.runGoverned(fn, this, args, options, operation);
    };
    Object.defineProperties(governed, {
      tool: { value: options.tool, enumerable: true },
      operation: { value: operation, enumerable: true },
      name: { value: fn.name ? `governed ${fn.name}` : "governed" },
    });
    return governed as GovernedFunction<A, R>;
  }

  private async runGoverned<A extends unknown[], R>(
    fn: (...args: A) => R,
    self: unknown,
    args: A,
    options: GovernOptions<A>,
    operation: string,
  ): Promise<Awaited<R>> {
    const params = options.params
      ? options.params(...args)
      : args.length === 1 && isPlainObject(args[0])
        ? (jsonCopy(args[0]) as JsonObject)
        : ((jsonCopy({ args }) as JsonObject | undefined) ?? { args: [] });
    const context = typeof options.context === "function" ? options.context(...args) : (options.context ?? {});
    let action = await this._submitFor(options.agentId, { tool: options.tool, operation, params, context });
    if (action.fail_open) return (await fn.apply(self, args)) as Awaited<R>;
    if (action.status === "pending_approval") {
      await options.onPending?.(action);
      action = await this.blockUntilApproved(action.id, {
        pollIntervalMs: options.pollIntervalMs,
        timeoutMs: options.approvalTimeoutMs,
        signal: options.signal,
      });
    }
    if (action.status !== "allowed" && action.status !== "approved") {
      throw new FarameshConflictError(
        `Action ${action.id} is ${action.status}; a governed call runs only an allowed or approved action`,
        { currentStatus: action.status, actionId: action.id, action },
      );
    }
    let value: Awaited<R>;
    try {
      value = (await fn.apply(self, args)) as Awaited<R>;
    } catch (error) {
      await this.reportQuietly(action.id, { success: false, error: errorText(error) });
      throw error;
    }
    const report = options.reportOutput ?? true;
    const output = report === false ? undefined : jsonCopy(typeof report === "function" ? report(value) : value);
    await this.reportQuietly(action.id, { success: true, output });
    return value;
  }

  /** The function has run: a failed report must not look like a failed run (the caller might run it again). */
  private async reportQuietly(actionId: string, result: ReportResultOptions): Promise<void> {
    try {
      await this.reportResult(actionId, result);
    } catch (error) {
      this.notify(error as Error);
    }
  }

  // ---- live stream -------------------------------------------------------------------------

  /** The live stream as an async iterable; see {@link EventStream}. */
  eventStream(options: EventStreamOptions = {}): EventStream {
    return new EventStream(this.config, options);
  }

  /**
   * Calls `handler` for each live message until the returned function is called (or the signal
   * aborts). Errors (including a throwing handler) go to `options.onError`, else the client's
   * `onError` hook.
   */
  onEvents(
    handler: (event: StreamEvent) => unknown,
    options: EventStreamOptions & { onError?: (error: Error) => void } = {},
  ): () => void {
    const stream = this.eventStream(options);
    const report = (error: Error) => {
      try {
        (options.onError ?? this.config.onError)?.(error);
      } catch {
        // ignore hook failures
      }
    };
    void (async () => {
      try {
        for await (const event of stream) {
          try {
            await handler(event);
          } catch (error) {
            report(error instanceof Error ? error : new Error(String(error)));
          }
        }
      } catch (error) {
        report(error instanceof Error ? error : new Error(String(error)));
      }
    })();
    return () => stream.close();
  }

  /** {@link onEvents} that also stops after `stopAfter` messages or `timeoutMs`. */
  streamEvents(
    handler: (event: StreamEvent) => unknown,
    options: EventStreamOptions & { stopAfter?: number; timeoutMs?: number; onError?: (error: Error) => void } = {},
  ): () => void {
    let count = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let close = () => {};
    const stop = () => {
      clearTimeout(timer);
      close();
    };
    close = this.onEvents(async (event) => {
      await handler(event);
      count++;
      if (options.stopAfter !== undefined && options.stopAfter > 0 && count >= options.stopAfter) stop();
    }, options);
    if (options.timeoutMs !== undefined && options.timeoutMs > 0) timer = setTimeout(stop, options.timeoutMs);
    return stop;
  }

  /**
   * Follows the live stream, calling `callback` for each message (default: print one line).
   * Resolves when the stream ends (`signal`, `stopAfter`); rejects on a fatal error (401, 403,
   * ...) or when the callback throws.
   */
  async tailEvents(
    callback?: (event: StreamEvent) => unknown,
    actionIdOrOptions?: string | (EventStreamOptions & { stopAfter?: number }),
  ): Promise<void> {
    const options = typeof actionIdOrOptions === "string" ? { actionId: actionIdOrOptions } : (actionIdOrOptions ?? {});
    const cb = callback ?? printEvent;
    const stream = this.eventStream(options);
    let count = 0;
    try {
      for await (const event of stream) {
        await cb(event);
        count++;
        if (options.stopAfter !== undefined && options.stopAfter > 0 && count >= options.stopAfter) break;
      }
    } finally {
      stream.close();
    }
  }
}

function printEvent(event: StreamEvent): void {
  const d = event.data;
  process.stdout.write(
    `${event.timestamp} ${event.type} ${event.action_id} ${d.status} ${d.agent_id} ${d.tool}.${d.operation}\n`,
  );
}

async function parseYaml(text: string, filePath: string): Promise<unknown> {
  const name = "yaml";
  let yaml: { parse: (text: string) => unknown };
  try {
    const mod = await import(name);
    yaml = (mod.default ?? mod) as typeof yaml;
  } catch (cause) {
    throw new FarameshValidationError(
      `Reading ${filePath} needs the optional \`yaml\` package (npm install yaml), or use a .json file`,
      { cause },
    );
  }
  try {
    return yaml.parse(text);
  } catch (cause) {
    throw new FarameshValidationError(`${filePath} is not valid YAML: ${errorText(cause)}`, { cause });
  }
}

function failOpenAction(body: Required<SubmitActionRequest>, error: Error): Action {
  const now = new Date().toISOString();
  return {
    id: "",
    agent_id: body.agent_id,
    tool: body.tool,
    operation: body.operation,
    params: body.params,
    context: body.context,
    status: "allowed",
    decision: "allow",
    reason: `Faramesh was unreachable (${error.message}); allowed because the client fails open`,
    risk_level: null,
    approval_token: null,
    policy_version: null,
    created_at: now,
    updated_at: now,
    outcome: "EXECUTE",
    reason_code: "FAIL_OPEN",
    fail_open: true,
  };
}

function failOpenDecision(error: Error): GateDecision {
  return {
    outcome: "EXECUTE",
    decision: "allow",
    reason_code: "FAIL_OPEN",
    reason: `Faramesh was unreachable (${error.message}); allowed because the client fails open`,
    request_hash: "",
    policy_version: null,
    policy_hash: null,
    profile_id: null,
    profile_version: null,
    profile_hash: null,
    runtime_version: null,
    provenance_id: null,
    risk_level: null,
    fail_open: true,
  };
}
