/**
 * Typed errors. Every failure of a request or a wait is a {@link FarameshError} (a call cancelled
 * through an AbortSignal rejects with the signal's reason instead). HTTP errors carry the
 * response `status` and the server's `detail` text (the `{"detail": ...}` body of the API).
 */

import type { Action, GateDecision } from "./types.js";

export interface FarameshErrorOptions {
  /** HTTP status of the response, when there was one. */
  status?: number;
  /** The server's `detail` text (or the SDK's own explanation when no server answered). */
  detail?: string;
  /** The server's machine-readable `code` (`not_found`, `conflict`, ...), when given. */
  code?: string;
  /** The whole parsed error body. */
  body?: unknown;
  /** The action concerned, when known (a denied submission, a denial during a wait, ...). */
  action?: Action;
  /** The underlying error (network failure, abort, ...). */
  cause?: unknown;
}

/** Base class of every error the SDK throws. */
export class FarameshError extends Error {
  /** HTTP status, or undefined when no response was received. */
  readonly status?: number;
  /** Human-readable explanation: the server's `detail` when it sent one. */
  readonly detail: string;
  /** The server's machine-readable error `code`, when it sent one. */
  readonly code?: string;
  /** The parsed error body, when the server sent one. */
  readonly body?: unknown;
  /** The action this error is about, when known. */
  readonly action?: Action;
  /** How many HTTP attempts were made before giving up (set for errors of a request). */
  attempts?: number;

  constructor(message: string, options: FarameshErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.status = options.status;
    this.detail = options.detail ?? message;
    this.code = options.code;
    this.body = options.body;
    this.action = options.action;
  }

  /** The HTTP status under the name the earlier SDK used. */
  get statusCode(): number | undefined {
    return this.status;
  }
}

/** 401: the bearer token is missing or not accepted. */
export class FarameshAuthError extends FarameshError {}

/** 403: the token is valid but its role may not do this (for example an agent approving). */
export class FarameshForbiddenError extends FarameshAuthError {}

/** 404: no such action (or endpoint). */
export class FarameshNotFoundError extends FarameshError {}

/** 422 (also 400 and 413): the request was rejected as invalid; `detail` names the field. */
export class FarameshValidationError extends FarameshError {}

/**
 * 409: the action is not in a status that allows this (already decided, not startable, ...),
 * or an Idempotency-Key was reused with a different body. `currentStatus` is the action's
 * status as the server reported it.
 */
export class FarameshConflictError extends FarameshError {
  /** The action's status at the time of the conflict, when the server said. */
  readonly currentStatus?: string;
  /** The action's id, when the server said. */
  readonly actionId?: string;

  constructor(message: string, options: FarameshErrorOptions & { currentStatus?: string; actionId?: string } = {}) {
    super(message, options);
    this.currentStatus = options.currentStatus;
    this.actionId = options.actionId;
  }
}

/** The policy denied the action (a submission came back with status `denied`). */
export class FarameshPolicyError extends FarameshError {
  /** The decision's reason text. */
  get reason(): string | undefined {
    return this.action?.reason ?? undefined;
  }
  /** The decision's reason code (`POLICY_DENY`, ...). */
  get reasonCode(): string | undefined {
    return this.action?.reason_code ?? undefined;
  }
}

/** The action was denied while the SDK waited for it (a human denied it). */
export class FarameshDeniedError extends FarameshPolicyError {}

/** {@link gateGovern}: the gate's outcome is HALT. */
export class DenyError extends FarameshDeniedError {
  readonly decision?: GateDecision;
  constructor(message: string, options: FarameshErrorOptions & { decision?: GateDecision } = {}) {
    super(message, options);
    this.decision = options.decision;
  }
  override get reason(): string | undefined {
    return this.decision?.reason ?? super.reason;
  }
  override get reasonCode(): string | undefined {
    return this.decision?.reason_code ?? super.reasonCode;
  }
}

/** {@link gateGovern}: the gate's outcome is ABSTAIN (a human must approve first). */
export class DeferredError extends FarameshError {
  readonly decision?: GateDecision;
  constructor(message: string, options: FarameshErrorOptions & { decision?: GateDecision } = {}) {
    super(message, options);
    this.decision = options.decision;
  }
  get reason(): string | undefined {
    return this.decision?.reason ?? undefined;
  }
  get reasonCode(): string | undefined {
    return this.decision?.reason_code ?? undefined;
  }
}

/** A request took longer than `timeoutMs`, or a wait (approval, completion) ran out of time. */
export class FarameshTimeoutError extends FarameshError {}

/** The server could not be reached (refused, reset, DNS failure, ...), after every retry. */
export class FarameshConnectionError extends FarameshError {}

/** The server answered 5xx, after every retry. */
export class FarameshServerError extends FarameshError {}

/** {@link submitActionsBulk} with `raiseOnError`: some submissions failed. */
export class FarameshBatchError extends FarameshError {
  readonly successes: Action[];
  readonly errors: BatchFailure[];
  constructor(message: string, successes: Action[], errors: BatchFailure[]) {
    super(message);
    this.successes = successes;
    this.errors = errors;
  }
}

/** One failed submission of a batch. */
export interface BatchFailure {
  error: string;
  index: number;
  actionSpec: unknown;
  /** The typed error itself. */
  cause?: unknown;
}
