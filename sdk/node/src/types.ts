/** Types of the Faramesh HTTP API, as the server sends them (snake_case field names). */

export type ActionStatus =
  | "allowed"
  | "pending_approval"
  | "approved"
  | "denied"
  | "executing"
  | "succeeded"
  | "failed"
  | "timeout";

export type Decision = "allow" | "deny" | "require_approval";

export type RiskLevel = "low" | "medium" | "high";

/** The decision engine's outcome: EXECUTE → allowed, HALT → denied, ABSTAIN → pending_approval. */
export type DecisionOutcome = "EXECUTE" | "ABSTAIN" | "HALT";

/** JSON object as sent and stored (params, context, metadata). */
export type JsonObject = Record<string, unknown>;

/** An action: one tool call an agent asked to make, with its decision and lifecycle. */
export interface Action {
  id: string;
  agent_id: string;
  tool: string;
  operation: string;
  params: JsonObject;
  context: JsonObject;
  status: ActionStatus;
  decision: Decision | null;
  reason: string | null;
  risk_level: RiskLevel | null;
  /** Present only while `pending_approval`, and never for callers with the agent role. */
  approval_token: string | null;
  policy_version: string | null;
  created_at: string;
  updated_at: string;
  outcome?: DecisionOutcome | null;
  reason_code?: string | null;
  reason_details?: JsonObject | null;
  request_hash?: string | null;
  policy_hash?: string | null;
  profile_id?: string | null;
  profile_version?: string | null;
  profile_hash?: string | null;
  runtime_version?: string | null;
  provenance_id?: string | null;
  /** Executor output when the server ran the action itself (or the reported output). */
  result?: JsonObject | null;
  /** True for the demonstration actions `faramesh serve --demo` seeds. */
  demo?: boolean;
  js_example?: string;
  python_example?: string;
  /**
   * Set only on the stand-in action returned in fail-open mode when the server could not be
   * reached: nothing was recorded, and `id` is empty.
   */
  fail_open?: boolean;
}

/** One entry of an action's hash-chained ledger (`GET /v1/actions/{id}/events`). */
export interface ActionEvent {
  id: string;
  action_id: string;
  event_type:
    | "created"
    | "decision_made"
    | "approved"
    | "denied"
    | "started"
    | "succeeded"
    | "failed"
    | "timeout"
    | (string & {});
  meta: JsonObject;
  created_at: string;
  prev_hash: string | null;
  record_hash: string;
  /** The event's position in the ledger's Merkle log (0-based, no gaps). */
  log_index: number | null;
}

/** `POST /v1/gate/decide`: a decision without storing an action. */
export interface GateDecision {
  outcome: DecisionOutcome;
  decision?: Decision;
  reason_code: string;
  reason?: string | null;
  request_hash: string;
  policy_version?: string | null;
  policy_hash?: string | null;
  profile_id?: string | null;
  profile_version?: string | null;
  profile_hash?: string | null;
  runtime_version?: string | null;
  provenance_id?: string | null;
  risk_level?: RiskLevel | null;
  /** Set only on the stand-in decision returned in fail-open mode. */
  fail_open?: boolean;
}

/** `GET /v1/policy/info`. */
export interface PolicyInfo {
  policy_file: string;
  policy_path: string;
  exists: boolean;
  policy_version: string;
  policy_hash: string;
  /** The policy's rules, as parsed. */
  rules: JsonObject[];
  /** The policy's risk rules, as parsed. */
  risk_rules: JsonObject[];
  loaded_at: string;
}

/** What the server sends in each live-stream message's `data` field. */
export interface ActionSummary {
  id: string;
  status: ActionStatus;
  decision: Decision | null;
  agent_id: string;
  tool: string;
  operation: string;
  reason: string | null;
  risk_level: RiskLevel | null;
}

/** One message of the live stream (`GET /v1/events`). */
export interface StreamEvent {
  /** The SSE `id:`: the server's monotonic event sequence number, as text. */
  id: string;
  /** `action.created` on submission, `action.updated` on every later transition. */
  type: "action.created" | "action.updated" | (string & {});
  /** Same as `type` (the name earlier SDK versions used). */
  event_type: string;
  action_id: string;
  data: ActionSummary;
  timestamp: string;
}

/** Earlier SDK name of a stream message. */
export type FarameshEvent = StreamEvent;

/** A submission (`POST /v1/actions` and `POST /v1/gate/decide` body). */
export interface SubmitActionRequest {
  agent_id: string;
  tool: string;
  operation: string;
  params?: JsonObject;
  context?: JsonObject;
}

/** A submission in camelCase, accepted wherever a submission object is. */
export interface ActionSpec {
  agentId?: string;
  agent_id?: string;
  tool: string;
  operation: string;
  params?: JsonObject;
  context?: JsonObject;
}

export interface ListActionsOptions {
  /** Default 20; the server clamps it to 1..1000. */
  limit?: number;
  offset?: number;
  agent_id?: string;
  agentId?: string;
  tool?: string;
  status?: ActionStatus;
  /** Only actions whose agent id, tool or operation contains this, ignoring case. */
  search?: string;
}

export interface ApprovalRequest {
  token: string;
  approve: boolean;
  reason?: string;
}

/** Options of {@link approveAction} / {@link denyAction} in object form. */
export interface DecideOptions {
  /** The action's approval token; fetched from the action when omitted. */
  token?: string;
  reason?: string;
}

/** `POST /v1/actions/{id}/result`. */
export interface ReportResultOptions {
  success: boolean;
  /** Error text for a failure (the server keeps the first 1,000 characters). */
  error?: string;
  /** Any JSON value: the tool's output. */
  output?: unknown;
}

export interface WaitOptions {
  /** Time between polls, default 1000 ms. */
  pollIntervalMs?: number;
  /** Give up after this long with a {@link FarameshTimeoutError}. */
  timeoutMs?: number;
  /** Cancel the wait. */
  signal?: AbortSignal;
}

export interface SubmitAndWaitOptions extends WaitOptions {
  /** Wait for a human to approve a `pending_approval` action (default false: return it as is). */
  requireApproval?: boolean;
  /** Approve a pending action with its approval token (needs an approver or admin token). */
  autoApprove?: boolean;
  /** Start an allowed/approved action and wait until it finishes (default false). */
  autoStart?: boolean;
  /** Earlier names: `pollInterval` and `timeout`, in milliseconds. */
  pollInterval?: number;
  timeout?: number;
}

export interface SubmitAndWaitConfig extends SubmitAndWaitOptions {
  agentId?: string;
  agent_id?: string;
  tool: string;
  operation: string;
  params?: JsonObject;
  context?: JsonObject;
}

/** Result of {@link replayDecision}. */
export interface ReplayResult {
  success: boolean;
  originalOutcome: string;
  replayedOutcome: string;
  originalReasonCode: string;
  replayedReasonCode: string;
  requestHashMatch: boolean;
  policyHashMatch: boolean;
  profileHashMatch: boolean;
  runtimeVersionMatch: boolean;
  mismatches: string[];
  decision: GateDecision;
}
