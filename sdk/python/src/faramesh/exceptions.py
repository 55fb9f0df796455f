"""Typed exceptions raised by the Faramesh SDK.

Every exception derives from :class:`FarameshError` and carries what the server said:
``status_code`` (the HTTP status, ``None`` when no response arrived) and ``detail`` (the
``detail`` field of the server's ``{"detail": ...}`` error body).

=======================================  ==========================================
exception                                raised when
=======================================  ==========================================
:class:`FarameshAuthError`               401: missing or wrong API token, or a wrong
                                         approval token
:class:`FarameshForbiddenError`          403: the token's role may not do this
                                         (a subclass of :class:`FarameshAuthError`)
:class:`FarameshNotFoundError`           404: no such action
:class:`FarameshConflictError`           409: the action is not in a state that
                                         allows this (already decided, not started)
:class:`FarameshValidationError`         400 / 413 / 422: the request was rejected
:class:`FarameshPolicyError`             an action was decided ``denied``
:class:`FarameshTimeoutError`            a request or a wait ran out of time
:class:`FarameshConnectionError`         the server could not be reached
:class:`FarameshServerError`             5xx after every retry
=======================================  ==========================================
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

__all__ = [
    "FarameshError",
    "FarameshAuthError",
    "FarameshForbiddenError",
    "AuthorizationError",
    "FarameshNotFoundError",
    "FarameshConflictError",
    "FarameshValidationError",
    "FarameshPolicyError",
    "FarameshDeniedError",
    "DenyError",
    "DeferredError",
    "FarameshTimeoutError",
    "FarameshConnectionError",
    "FarameshServerError",
    "FarameshBatchError",
    "GovernorError",
    "GovernorAuthError",
    "GovernorTimeoutError",
    "GovernorConnectionError",
]


class FarameshError(Exception):
    """Base class of every error the SDK raises.

    Attributes:
        message: The full human-readable message (also ``str(error)``).
        status_code: HTTP status of the response, or ``None`` if no response arrived.
        detail: The server's ``detail`` text, or ``None``.
        body: The parsed error body (a dict for JSON errors), or ``None``.
        method: HTTP method of the failed request, if any.
        url: URL of the failed request, if any.
    """

    def __init__(
        self,
        message: str = "",
        *,
        status_code: Optional[int] = None,
        detail: Optional[str] = None,
        body: Any = None,
        method: Optional[str] = None,
        url: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.detail = detail
        self.body = body
        self.method = method
        self.url = url
        # True when an earlier attempt of the same call may already have reached the server
        # (its response was lost or was a 5xx); used to make retried transitions safe.
        self.retried = False

    @property
    def status(self) -> Optional[int]:
        """Alias of :attr:`status_code`."""
        return self.status_code

    @property
    def code(self) -> Optional[str]:
        """The machine-readable ``code`` of the error body, when the server sent one."""
        if isinstance(self.body, Mapping):
            value = self.body.get("code")
            return value if isinstance(value, str) else None
        return None


class FarameshAuthError(FarameshError):
    """401 (missing or wrong API token, or a wrong approval token) and, as its subclass, 403."""


class FarameshForbiddenError(FarameshAuthError):
    """403: the API token is valid but its role may not make this request
    (an ``agent`` token approving an action, a non-admin reloading the policy)."""


#: Another name for :class:`FarameshForbiddenError`.
AuthorizationError = FarameshForbiddenError


class FarameshNotFoundError(FarameshError):
    """404: the action (or path) does not exist."""


class FarameshConflictError(FarameshError):
    """409: the action's current status does not allow the transition (for example a second
    approval), or an ``Idempotency-Key`` was reused with a different body."""

    @property
    def action_id(self) -> Optional[str]:
        if isinstance(self.body, Mapping):
            value = self.body.get("action_id")
            return value if isinstance(value, str) else None
        return None

    @property
    def current_status(self) -> Optional[str]:
        """The action's status at the time of the conflict, when the server said."""
        if isinstance(self.body, Mapping):
            value = self.body.get("status")
            return value if isinstance(value, str) else None
        return None


class FarameshValidationError(FarameshError):
    """422 (or 400/413): the server rejected the request; ``detail`` names the field."""


class FarameshPolicyError(FarameshError):
    """An action was decided ``denied`` (by the policy, the profile, or a human).

    Attributes:
        action: The denied action as the server returned it (``None`` for a gate decision).
        reason: Why it was denied.
        reason_code: The decision's reason code (``POLICY_DENY``, ``DEFAULT_DENY_NO_MATCH``...).
    """

    def __init__(
        self,
        message: str = "",
        *,
        action: Optional[Mapping[str, Any]] = None,
        reason: Optional[str] = None,
        reason_code: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.action: Optional[Dict[str, Any]] = dict(action) if action is not None else None
        self.reason = reason
        self.reason_code = reason_code or (str(action.get("reason_code") or "") if action is not None else "")

    @property
    def action_id(self) -> Optional[str]:
        if self.action is None:
            return None
        value = self.action.get("id")
        return value if isinstance(value, str) else None


class FarameshDeniedError(FarameshPolicyError):
    """Raised by the waiting helpers (``submit_and_wait``, ``block_until_approved``) when the
    action ends up ``denied``."""


class DenyError(FarameshDeniedError):
    """Raised by :func:`faramesh.govern` when a governed call is denied.

    ``decision`` holds the gate decision when ``govern`` was used as a one-off gate check.
    """

    def __init__(
        self,
        message: str = "",
        *,
        reason_code: str = "",
        reason: Optional[str] = None,
        decision: Optional[Any] = None,
        action: Optional[Mapping[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, action=action, reason=reason, reason_code=reason_code, **kwargs)
        self.decision = decision


class DeferredError(FarameshError):
    """Raised by the one-off gate check ``govern(agent_id, tool, operation, ...)`` when the
    decision is ``ABSTAIN`` (a human must approve)."""

    def __init__(
        self,
        message: str = "",
        *,
        reason_code: str = "",
        reason: Optional[str] = None,
        decision: Optional[Any] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.reason_code = reason_code
        self.reason = reason
        self.decision = decision


class FarameshTimeoutError(FarameshError):
    """A request timed out, or a wait (for approval, for completion) reached its deadline.

    ``action`` holds the last state seen when a wait timed out.
    """

    def __init__(
        self, message: str = "", *, action: Optional[Mapping[str, Any]] = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.action: Optional[Dict[str, Any]] = dict(action) if action is not None else None


class FarameshConnectionError(FarameshError):
    """The server could not be reached (refused, reset, DNS), after every retry."""


class FarameshServerError(FarameshError):
    """The server answered 5xx on every attempt."""


class FarameshBatchError(FarameshError):
    """Raised by ``submit_actions_bulk(..., raise_on_error=True)`` when some submissions failed."""

    def __init__(
        self,
        message: str,
        successes: List[Dict[str, Any]],
        errors: List[Dict[str, Any]],
    ) -> None:
        super().__init__(message)
        self.successes = successes
        self.errors = errors


# Names used by the class-based API of earlier SDK releases.
GovernorError = FarameshError
GovernorAuthError = FarameshAuthError
GovernorTimeoutError = FarameshTimeoutError
GovernorConnectionError = FarameshConnectionError
