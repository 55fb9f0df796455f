/**
 * Faramesh Node.js SDK: submit AI agents' tool calls to a Faramesh server for a decision
 * (allow, deny, require approval), wait for approval, report results, follow the live stream.
 *
 * ```ts
 * import { configure, submitAction, govern } from "@faramesh/sdk";
 * configure({ baseUrl: "http://127.0.0.1:8000", token: process.env.FARAMESH_TOKEN });
 * const action = await submitAction("my-agent", "http", "get", { url: "https://example.com" });
 * ```
 */

export { VERSION, VERSION as __version__ } from "./version.js";
export { resolveConfig, DEFAULT_BASE_URL, type ClientConfig, type ResolvedConfig, type FailMode } from "./config.js";
export type { ClientConfig as GovernorConfig } from "./config.js";
export {
  FarameshError,
  FarameshError as GovernorError,
  FarameshAuthError,
  FarameshForbiddenError,
  FarameshNotFoundError,
  FarameshValidationError,
  FarameshConflictError,
  FarameshPolicyError,
  FarameshDeniedError,
  DenyError,
  DeferredError,
  FarameshTimeoutError,
  FarameshConnectionError,
  FarameshServerError,
  FarameshBatchError,
  type BatchFailure,
  type FarameshErrorOptions,
} from "./errors.js";
export {
  ExecutionGovernorClient,
  TERMINAL_STATUSES,
  type SubmitOptions,
  type GovernOptions,
  type GovernedFunction,
  type ExecuteIfAllowedConfig,
  type ExecuteIfAllowedResult,
} from "./client.js";
export { EventStream, SseParser, type EventStreamOptions, type SseMessage } from "./sse.js";
export type {
  Action,
  ActionEvent,
  ActionSpec,
  ActionStatus,
  ActionSummary,
  ApprovalRequest,
  DecideOptions,
  Decision,
  DecisionOutcome,
  FarameshEvent,
  GateDecision,
  JsonObject,
  ListActionsOptions,
  PolicyInfo,
  ReplayResult,
  ReportResultOptions,
  RiskLevel,
  StreamEvent,
  SubmitActionRequest,
  SubmitAndWaitConfig,
  SubmitAndWaitOptions,
  WaitOptions,
} from "./types.js";
export {
  configure,
  resetConfig,
  getClient,
  getActiveConfig,
  submitAction,
  submitActions,
  submitActionsBulk,
  apply,
  getAction,
  listActions,
  getEvents,
  getPolicyInfo,
  health,
  ready,
  approveAction,
  denyAction,
  allow,
  deny,
  startAction,
  reportResult,
  replayAction,
  waitForCompletion,
  blockUntilApproved,
  waitForApproval,
  submitAndWait,
  gateDecide,
  gateDecideDict,
  gateGovern,
  replayDecision,
  executeIfAllowed,
  govern,
  eventStream,
  onEvents,
  streamEvents,
  tailEvents,
} from "./functions.js";

// The Python SDK's names, for code moving between the two.
export {
  getActiveConfig as get_active_config,
  submitAction as submit_action,
  submitActions as submit_actions,
  submitActionsBulk as submit_actions_bulk,
  getAction as get_action,
  listActions as list_actions,
  getEvents as get_events,
  approveAction as approve_action,
  denyAction as deny_action,
  startAction as start_action,
  reportResult as report_result,
  replayAction as replay_action,
  waitForCompletion as wait_for_completion,
  blockUntilApproved as block_until_approved,
  submitAndWait as submit_and_wait,
  gateDecide as gate_decide,
  gateDecideDict as gate_decide_dict,
  replayDecision as replay_decision,
  executeIfAllowed as execute_if_allowed,
  tailEvents as tail_events,
  streamEvents as stream_events,
  onEvents as on_events,
} from "./functions.js";

import * as functions from "./functions.js";
/** The functional API as one object (`import faramesh from "@faramesh/sdk"`). */
export default functions;
