/**
 * The functional API: module-level functions on one shared {@link ExecutionGovernorClient},
 * set up by {@link configure} (or from the environment on first use).
 */

import {
  ExecutionGovernorClient,
  type ExecuteIfAllowedConfig,
  type ExecuteIfAllowedResult,
  type GovernedFunction,
  type GovernOptions,
  type SubmitOptions,
} from "./client.js";
import type { ClientConfig, ResolvedConfig } from "./config.js";
import type { BatchFailure } from "./errors.js";
import type { EventStream, EventStreamOptions } from "./sse.js";
import type {
  Action,
  ActionEvent,
  ActionSpec,
  DecideOptions,
  GateDecision,
  JsonObject,
  ListActionsOptions,
  PolicyInfo,
  ReplayResult,
  ReportResultOptions,
  StreamEvent,
  SubmitAndWaitConfig,
  SubmitAndWaitOptions,
  WaitOptions,
} from "./types.js";

let options: ClientConfig = {};
let shared: ExecutionGovernorClient | undefined;

/**
 * Sets up the shared client. Options given here are merged with those of earlier calls;
 * anything never given comes from the environment (`FARAMESH_BASE_URL`, `FARAMESH_TOKEN`,
 * `FARAMESH_AGENT_ID`, `FARAMESH_RETRIES`, `FARAMESH_RETRY_BACKOFF`, `FARAMESH_FAIL_MODE`)
 * or the defaults.
 */
export function configure(config: ClientConfig = {}): void {
  const defined = Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined));
  const next: ClientConfig = { ...options, ...defined };
  if ("failOpen" in defined && !("failMode" in defined)) delete next.failMode;
  if ("failMode" in defined && !("failOpen" in defined)) delete next.failOpen;
  shared = new ExecutionGovernorClient(next);
  options = next;
}

/** Forgets every {@link configure} option: the next call reads the environment again. */
export function resetConfig(): void {
  options = {};
  shared = undefined;
}

/** The shared client (created from the environment if {@link configure} was never called). */
export function getClient(): ExecutionGovernorClient {
  shared ??= new ExecutionGovernorClient(options);
  return shared;
}

/** The shared client's resolved settings. */
export function getActiveConfig(): ResolvedConfig {
  return { ...getClient().config };
}

/** Submits an action; see {@link ExecutionGovernorClient.submitAction}. */
export function submitAction(agentId: string, tool: string, operation: string, params?: JsonObject, context?: JsonObject): Promise<Action>;
export function submitAction(spec: SubmitOptions): Promise<Action>;
export function submitAction(
  agentIdOrSpec: string | SubmitOptions,
  tool?: string,
  operation?: string,
  params?: JsonObject,
  context?: JsonObject,
): Promise<Action> {
  if (typeof agentIdOrSpec === "object") return getClient().submitAction(agentIdOrSpec);
  return getClient()._submitFor(agentIdOrSpec, tool as string, operation, params, context);
}

/** Submits several actions; failures become `{ error, action_spec }` entries. */
export function submitActions(specs: SubmitOptions[]): Promise<Array<Action | { error: string; action_spec: SubmitOptions }>> {
  return getClient().submitActions(specs);
}

/** Submits several actions; with `raiseOnError` any failure throws a `FarameshBatchError`. */
export function submitActionsBulk(specs: SubmitOptions[], opts: { raiseOnError?: boolean } = {}): Promise<Array<Action | BatchFailure>> {
  return getClient().submitActionsBulk(specs, opts);
}

/** Submits the action described in a JSON (or YAML, with the `yaml` package) file. */
export function apply(filePath: string): Promise<Action> {
  return getClient().apply(filePath);
}

export function getAction(actionId: string): Promise<Action> {
  return getClient().getAction(actionId);
}

export function listActions(opts: ListActionsOptions = {}): Promise<Action[]> {
  return getClient().listActions(opts);
}

/** An action's ledger events, oldest first. */
export function getEvents(actionId: string): Promise<ActionEvent[]> {
  return getClient().getEvents(actionId);
}

export function getPolicyInfo(): Promise<PolicyInfo> {
  return getClient().getPolicyInfo();
}

export function health(): Promise<{ status: string }> {
  return getClient().health();
}

export function ready(): Promise<{ status: string }> {
  return getClient().ready();
}

export function approveAction(actionId: string, token?: string, reason?: string): Promise<Action>;
export function approveAction(actionId: string, opts: DecideOptions): Promise<Action>;
export function approveAction(actionId: string, tokenOrOptions?: string | DecideOptions, reason?: string): Promise<Action> {
  return typeof tokenOrOptions === "object"
    ? getClient().approveAction(actionId, tokenOrOptions)
    : getClient().approveAction(actionId, tokenOrOptions, reason);
}

export function denyAction(actionId: string, token?: string, reason?: string): Promise<Action>;
export function denyAction(actionId: string, opts: DecideOptions): Promise<Action>;
export function denyAction(actionId: string, tokenOrOptions?: string | DecideOptions, reason?: string): Promise<Action> {
  return typeof tokenOrOptions === "object"
    ? getClient().denyAction(actionId, tokenOrOptions)
    : getClient().denyAction(actionId, tokenOrOptions, reason);
}

/** Same as {@link approveAction}. */
export const allow = approveAction;
/** Same as {@link denyAction}. */
export const deny = denyAction;

export function startAction(actionId: string): Promise<Action> {
  return getClient().startAction(actionId);
}

export function reportResult(actionId: string, result: ReportResultOptions): Promise<Action>;
export function reportResult(actionId: string, success: boolean, error?: string, output?: unknown): Promise<Action>;
export function reportResult(actionId: string, resultOrSuccess: ReportResultOptions | boolean, error?: string, output?: unknown): Promise<Action> {
  return typeof resultOrSuccess === "boolean"
    ? getClient().reportResult(actionId, resultOrSuccess, error, output)
    : getClient().reportResult(actionId, resultOrSuccess);
}

export function replayAction(actionId: string): Promise<Action> {
  return getClient().replayAction(actionId);
}

export function waitForCompletion(actionId: string, pollInterval?: number, timeout?: number): Promise<Action>;
export function waitForCompletion(actionId: string, opts: WaitOptions): Promise<Action>;
export function waitForCompletion(actionId: string, pollIntervalOrOptions?: number | WaitOptions, timeout?: number): Promise<Action> {
  return typeof pollIntervalOrOptions === "object"
    ? getClient().waitForCompletion(actionId, pollIntervalOrOptions)
    : getClient().waitForCompletion(actionId, pollIntervalOrOptions, timeout);
}

export function blockUntilApproved(actionId: string, opts: WaitOptions = {}): Promise<Action> {
  return getClient().blockUntilApproved(actionId, opts);
}

export function waitForApproval(actionId: string, opts: WaitOptions = {}): Promise<Action> {
  return getClient().blockUntilApproved(actionId, opts);
}

export function submitAndWait(
  agentId: string,
  tool: string,
  operation: string,
  params?: JsonObject,
  context?: JsonObject,
  opts?: SubmitAndWaitOptions,
): Promise<Action>;
export function submitAndWait(config: SubmitAndWaitConfig): Promise<Action>;
export function submitAndWait(
  agentIdOrConfig: string | SubmitAndWaitConfig,
  tool?: string,
  operation?: string,
  params?: JsonObject,
  context?: JsonObject,
  opts?: SubmitAndWaitOptions,
): Promise<Action> {
  if (typeof agentIdOrConfig === "object") return getClient().submitAndWait(agentIdOrConfig);
  return getClient()._submitAndWaitFor(agentIdOrConfig, tool as string, operation as string, params, context, opts);
}

export function gateDecide(agentId: string, tool: string, operation: string, params?: JsonObject, context?: JsonObject): Promise<GateDecision>;
export function gateDecide(spec: ActionSpec): Promise<GateDecision>;
export function gateDecide(
  agentIdOrSpec: string | ActionSpec,
  tool?: string,
  operation?: string,
  params?: JsonObject,
  context?: JsonObject,
): Promise<GateDecision> {
  if (typeof agentIdOrSpec === "object") return getClient()._decideFor(undefined, agentIdOrSpec);
  return getClient()._decideFor(agentIdOrSpec, tool as string, operation, params, context);
}

export async function gateDecideDict(
  agentId: string,
  tool: string,
  operation: string,
  params?: JsonObject,
  context?: JsonObject,
): Promise<Record<string, unknown>> {
  return { ...(await getClient()._decideFor(agentId, tool, operation, params, context)) };
}

/** The decision when it is EXECUTE; throws `DenyError` (HALT) or `DeferredError` (ABSTAIN). */
export function gateGovern(agentId: string, tool: string, operation: string, params?: JsonObject, context?: JsonObject): Promise<GateDecision>;
export function gateGovern(spec: ActionSpec): Promise<GateDecision>;
export function gateGovern(
  agentIdOrSpec: string | ActionSpec,
  tool?: string,
  operation?: string,
  params?: JsonObject,
  context?: JsonObject,
): Promise<GateDecision> {
  if (typeof agentIdOrSpec === "object") return getClient()._gateGovernFor(undefined, agentIdOrSpec);
  return getClient()._gateGovernFor(agentIdOrSpec, tool as string, operation, params, context);
}

export function replayDecision(opts: { actionId?: string; provenanceId?: string }): Promise<ReplayResult> {
  return getClient().replayDecision(opts);
}

export function executeIfAllowed(config: ExecuteIfAllowedConfig): Promise<ExecuteIfAllowedResult> {
  return getClient().executeIfAllowed(config);
}

/** Wraps a function as a governed tool; see {@link ExecutionGovernorClient.govern}. */
export function govern<A extends unknown[], R>(fn: (...args: A) => R, opts: GovernOptions<A>): GovernedFunction<A, R>;
export function govern<A extends unknown[], R>(opts: GovernOptions<A>, fn: (...args: A) => R): GovernedFunction<A, R>;
export function govern<A extends unknown[], R>(
  a: ((...args: A) => R) | GovernOptions<A>,
  b: ((...args: A) => R) | GovernOptions<A>,
): GovernedFunction<A, R> {
  // The shared client is looked up at call time, so configure() after govern() still applies.
  const fn = (typeof a === "function" ? a : b) as (...args: A) => R;
  const opts = (typeof a === "function" ? b : a) as GovernOptions<A>;
  const probe = getClient().govern(fn, opts);
  const governed = async function (this: unknown, ...args: A): Promise<Awaited<R>> {
    return getClient().govern(fn, opts).apply(this, args);
  };
  Object.defineProperties(governed, {
    tool: { value: probe.tool, enumerable: true },
    operation: { value: probe.operation, enumerable: true },
    name: { value: probe.name },
  });
  return governed as GovernedFunction<A, R>;
}

/** The live stream as an async iterable of messages. */
export function eventStream(opts: EventStreamOptions = {}): EventStream {
  return getClient().eventStream(opts);
}

export function onEvents(
  handler: (event: StreamEvent) => unknown,
  opts: EventStreamOptions & { onError?: (error: Error) => void } = {},
): () => void {
  return getClient().onEvents(handler, opts);
}

export function streamEvents(
  handler: (event: StreamEvent) => unknown,
  opts: EventStreamOptions & { stopAfter?: number; timeoutMs?: number; onError?: (error: Error) => void } = {},
): () => void {
  return getClient().streamEvents(handler, opts);
}

export function tailEvents(
  callback?: (event: StreamEvent) => unknown,
  actionIdOrOptions?: string | (EventStreamOptions & { stopAfter?: number }),
): Promise<void> {
  return getClient().tailEvents(callback, actionIdOrOptions);
}
