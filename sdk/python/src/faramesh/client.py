"""The HTTP client: :class:`ExecutionGovernorClient`.

Every call retries with exponential backoff on connection errors, timeouts and 5xx answers.
``submit_action`` sends an ``Idempotency-Key`` header (a fresh UUID per call, the same on every
retry of that call), so a retry after a lost response returns the action the first attempt
created instead of creating a second one. Transitions (approve, deny, start, result) that hit
409 on a retry check whether their own earlier attempt already went through.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from datetime import datetime, timezone
from pathlib import Path
from typing import (
    Any,
    Callable,
    Dict,
    Generator,
    Iterator,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    Union,
    overload,
)
from urllib.parse import quote

import httpx

from ._sse import parse_sse
from ._tracing import trace_headers
from ._version import __version__
from .config import ClientConfig
from .exceptions import (
    FarameshAuthError,
    FarameshBatchError,
    FarameshConflictError,
    FarameshConnectionError,
    FarameshDeniedError,
    FarameshError,
    FarameshForbiddenError,
    FarameshNotFoundError,
    FarameshPolicyError,
    FarameshServerError,
    FarameshTimeoutError,
    FarameshValidationError,
)
from .models import TERMINAL_STATUSES, Action, Event, GateDecision, ReplayResult

__all__ = ["ExecutionGovernorClient"]

logger = logging.getLogger("faramesh")

_FAIL_OPEN_PREFIX = "fail-open-"
_MAX_LOCAL_ACTIONS = 1000

_STATUS_LABELS = {
    400: "Bad request",
    401: "Authentication failed",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Request too large",
    422: "Validation error",
}


def _error_class(status: int) -> Type[FarameshError]:
    if status == 401:
        return FarameshAuthError
    if status == 403:
        return FarameshForbiddenError
    if status == 404:
        return FarameshNotFoundError
    if status == 409:
        return FarameshConflictError
    if status in (400, 413, 422):
        return FarameshValidationError
    if status >= 500:
        return FarameshServerError
    return FarameshError


def _error_from_response(response: httpx.Response, method: str, path: str) -> FarameshError:
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        body = None
    detail: Optional[str] = None
    if isinstance(body, Mapping) and "detail" in body:
        raw = body["detail"]
        detail = raw if isinstance(raw, str) else json.dumps(raw)
    if detail is None:
        text = response.text.strip()
        detail = text[:500] if text else response.reason_phrase
    status = response.status_code
    label = _STATUS_LABELS.get(status, "Server error" if status >= 500 else "HTTP error")
    cls = _error_class(status)
    return cls(
        f"{label} ({status}) on {method} {path}: {detail}",
        status_code=status,
        detail=detail,
        body=body,
        method=method,
        url=str(response.request.url) if response.request is not None else None,
    )


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _quote_id(action_id: str) -> str:
    if not isinstance(action_id, str) or not action_id:
        raise ValueError("action_id must be a non-empty string")
    return quote(action_id, safe="")


_ACTION_FIELDS = ("agent_id", "tool", "operation", "params", "context")


def _action_args(
    args: Sequence[Any], kwargs: Dict[str, Any], default_agent: str
) -> Tuple[str, str, str, Optional[Mapping[str, Any]], Optional[Mapping[str, Any]]]:
    """Accept both ``(agent_id, tool, operation, params?, context?)`` and the class API of
    earlier releases, ``(tool, operation, params?, context?)`` with the client's agent_id.

    The two are told apart by the third positional argument: an operation is a string, params
    are a mapping. Consumes the five action keywords from ``kwargs``.
    """
    values: Dict[str, Any] = {name: kwargs.pop(name) for name in _ACTION_FIELDS if name in kwargs}
    if len(args) >= 3 and isinstance(args[2], str):
        names: Tuple[str, ...] = _ACTION_FIELDS
    else:
        names = _ACTION_FIELDS[1:]
    if len(args) > len(names):
        raise TypeError(f"too many positional arguments ({len(args)})")
    for name, value in zip(names, args):
        if name in values:
            raise TypeError(f"got multiple values for argument {name!r}")
        values[name] = value
    agent_id = values.get("agent_id")
    if agent_id is None:
        agent_id = default_agent
    tool = values.get("tool")
    operation = values.get("operation")
    if tool is None or operation is None:
        raise TypeError("tool and operation are required")
    return agent_id, tool, operation, values.get("params"), values.get("context")


class ExecutionGovernorClient:
    """A client of one Faramesh server.

    Args:
        base_url: Server URL, or a :class:`ClientConfig` (the form of earlier releases).
        config: A :class:`ClientConfig` to start from.
        token: Bearer token (else ``FARAMESH_TOKEN``).
        agent_id: Default ``agent_id`` for submissions that do not name one.
        timeout, max_retries, retry_backoff_factor, fail_open, raise_on_deny, poll_interval:
            See :class:`ClientConfig`.
        transport: An ``httpx`` transport, for tests or custom networking.

    The client is thread-safe and may be used as a context manager (``close()`` on exit).
    """

    def __init__(
        self,
        base_url: Union[str, ClientConfig, None] = None,
        config: Optional[ClientConfig] = None,
        *,
        token: Optional[str] = None,
        agent_id: Optional[str] = None,
        timeout: Optional[float] = None,
        max_retries: Optional[int] = None,
        retry_backoff_factor: Optional[float] = None,
        fail_open: Optional[bool] = None,
        raise_on_deny: Optional[bool] = None,
        poll_interval: Optional[float] = None,
        transport: Optional[httpx.BaseTransport] = None,
        **options: Any,
    ) -> None:
        if isinstance(base_url, ClientConfig):
            config, base_url = base_url, None
        if config is None:
            config = ClientConfig(base_url=base_url) if base_url else ClientConfig()
        elif base_url:
            options["base_url"] = base_url
        self.config: ClientConfig = config.replace(
            token=token,
            agent_id=agent_id,
            timeout=timeout,
            max_retries=max_retries,
            retry_backoff_factor=retry_backoff_factor,
            fail_open=fail_open,
            raise_on_deny=raise_on_deny,
            poll_interval=poll_interval,
            **options,
        )
        self._http = httpx.Client(
            timeout=self.config.timeout,
            transport=transport,
            headers={"User-Agent": f"faramesh-python/{__version__}"},
        )
        self._local: "OrderedDict[str, Action]" = OrderedDict()
        self._local_lock = threading.Lock()

    @classmethod
    def from_env(cls) -> "ExecutionGovernorClient":
        """A client configured only from environment variables."""
        return cls(ClientConfig())

    # ------------------------------------------------------------------ plumbing

    @property
    def agent_id(self) -> str:
        return self.config.agent_id

    @property
    def base_url(self) -> str:
        return self.config.base_url

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> "ExecutionGovernorClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"ExecutionGovernorClient(base_url={self.config.base_url!r}, agent_id={self.config.agent_id!r})"
        )

    def _headers(self, extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
        headers = {"Accept": "application/json"}
        # The agent's current span, if any: the server's spans join its trace. Configured
        # headers win.
        headers.update(trace_headers())
        headers.update(self.config.headers)
        if self.config.token:
            headers["Authorization"] = f"Bearer {self.config.token}"
        if extra:
            headers.update(extra)
        return headers

    def _backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt + 1`` (exponential, capped)."""
        delay = self.config.retry_backoff_factor * (2.0**attempt)
        return max(0.0, min(delay, self.config.max_backoff))

    def _hook(self, name: str, *args: Any) -> None:
        hook = getattr(self.config, name)
        if hook is None:
            return
        try:
            hook(*args)
        except Exception:  # a telemetry hook must never break a call
            logger.debug("faramesh %s hook raised", name, exc_info=True)

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        query: Optional[Mapping[str, Any]] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Any:
        """Send one API call with retries; return the decoded JSON body or raise a typed error."""
        cfg = self.config
        url = cfg.base_url + path
        request_headers = self._headers(headers)
        attempts = cfg.max_retries + 1
        maybe_applied = False
        last_error: Optional[FarameshError] = None
        for attempt in range(attempts):
            if attempt:
                delay = self._backoff(attempt - 1)
                logger.info(
                    "faramesh: retrying %s %s in %.2fs (attempt %d of %d) after: %s",
                    method,
                    path,
                    delay,
                    attempt + 1,
                    attempts,
                    last_error,
                )
                time.sleep(delay)
            self._hook("on_request_start", method, url)
            started = time.monotonic()
            try:
                response = self._http.request(
                    method,
                    url,
                    json=json_body,
                    params={k: v for k, v in (query or {}).items() if v is not None},
                    headers=request_headers,
                )
            except httpx.TimeoutException as exc:
                if not isinstance(exc, httpx.ConnectTimeout):
                    maybe_applied = True
                last_error = FarameshTimeoutError(
                    f"{method} {path} to {cfg.base_url} timed out after {cfg.timeout}s",
                    method=method,
                    url=url,
                )
            except httpx.UnsupportedProtocol as exc:
                raise FarameshConnectionError(
                    f"Cannot use {cfg.base_url!r}: {exc}", method=method, url=url
                ) from exc
            except httpx.TransportError as exc:
                if not isinstance(exc, httpx.ConnectError):
                    maybe_applied = True
                last_error = FarameshConnectionError(
                    f"Could not reach the Faramesh server at {cfg.base_url} ({method} {path}): "
                    f"{str(exc) or type(exc).__name__}. Is `faramesh serve` running there?",
                    method=method,
                    url=url,
                )
            else:
                duration_ms = (time.monotonic() - started) * 1000.0
                self._hook("on_request_end", method, url, response.status_code, duration_ms)
                if response.status_code >= 500:
                    maybe_applied = True
                    last_error = _error_from_response(response, method, path)
                elif response.status_code >= 400:
                    error = _error_from_response(response, method, path)
                    error.retried = maybe_applied
                    self._hook("on_error", error)
                    raise error
                else:
                    if not response.content:
                        return None
                    try:
                        return response.json()
                    except ValueError as exc:
                        error = FarameshServerError(
                            f"The server answered {method} {path} with a body that is not JSON",
                            status_code=response.status_code,
                            method=method,
                            url=url,
                        )
                        self._hook("on_error", error)
                        raise error from exc
                self._hook("on_error", last_error)
                continue
            self._hook("on_request_end", method, url, 0, (time.monotonic() - started) * 1000.0)
            self._hook("on_error", last_error)
        if last_error is None:  # unreachable: there is always at least one attempt
            raise FarameshError(f"{method} {path} was not attempted")
        last_error.retried = maybe_applied
        raise last_error

    def _request_object(self, method: str, path: str, **kwargs: Any) -> Dict[str, Any]:
        """:meth:`_request` for endpoints that answer one JSON object."""
        data = self._request(method, path, **kwargs)
        if not isinstance(data, dict):
            raise FarameshServerError(
                f"The server answered {method} {path} with {type(data).__name__}, not a JSON object",
                method=method,
                url=self.config.base_url + path,
            )
        return data

    def _request_list(self, method: str, path: str, **kwargs: Any) -> List[Dict[str, Any]]:
        """:meth:`_request` for endpoints that answer a JSON array of objects."""
        data = self._request(method, path, **kwargs)
        if isinstance(data, dict) and isinstance(data.get("actions"), list):
            data = data["actions"]
        if not isinstance(data, list):
            raise FarameshServerError(
                f"The server answered {method} {path} with {type(data).__name__}, not a JSON array",
                method=method,
                url=self.config.base_url + path,
            )
        return data

    # ------------------------------------------------------------------ fail-open bookkeeping

    def _remember_local(self, action: Action) -> None:
        with self._local_lock:
            self._local[action["id"]] = action
            while len(self._local) > _MAX_LOCAL_ACTIONS:
                self._local.popitem(last=False)

    def _local_action(self, action_id: str) -> Optional[Action]:
        if not action_id.startswith(_FAIL_OPEN_PREFIX):
            return None
        with self._local_lock:
            action = self._local.get(action_id)
        if action is None:
            raise FarameshNotFoundError(
                f"Action {action_id} was a fail-open placeholder that this client no longer holds"
            )
        return action

    def _update_local(self, action: Action, status: str, **fields: Any) -> Action:
        with self._local_lock:
            action.update(fields, status=status, updated_at=_now())
            return dict(action)

    def _fail_open_action(self, payload: Mapping[str, Any], error: FarameshError) -> Action:
        now = _now()
        action: Action = {
            "id": f"{_FAIL_OPEN_PREFIX}{uuid.uuid4()}",
            "agent_id": payload["agent_id"],
            "tool": payload["tool"],
            "operation": payload["operation"],
            "params": payload["params"],
            "context": payload["context"],
            "status": "allowed",
            "decision": "allow",
            "reason": f"Faramesh was unreachable; allowed without a decision because fail_open is set ({error})",
            "risk_level": None,
            "approval_token": None,
            "outcome": "EXECUTE",
            "reason_code": "FAIL_OPEN",
            "result": None,
            "created_at": now,
            "updated_at": now,
            "fail_open": True,
            "error": str(error),
        }
        logger.warning(
            "faramesh: server unreachable; FAIL-OPEN allows %s/%s for agent %s without a decision: %s",
            payload["tool"],
            payload["operation"],
            payload["agent_id"],
            error,
        )
        self._remember_local(action)
        return dict(action)

    # ------------------------------------------------------------------ actions

    @overload
    def submit_action(
        self,
        agent_id: str,
        tool: str,
        operation: str,
        params: Optional[Mapping[str, Any]] = None,
        context: Optional[Mapping[str, Any]] = None,
        *,
        idempotency_key: Optional[str] = None,
    ) -> Action: ...

    @overload
    def submit_action(
        self,
        tool: str,
        operation: str,
        params: Optional[Mapping[str, Any]] = None,
        context: Optional[Mapping[str, Any]] = None,
        *,
        agent_id: Optional[str] = None,
        idempotency_key: Optional[str] = None,
    ) -> Action: ...

    def submit_action(self, *args: Any, **kwargs: Any) -> Action:
        """Submit a tool call for a decision; returns the stored action.

        Call it as ``submit_action(agent_id, tool, operation, params, context)`` or, as in
        earlier releases of this class, ``submit_action(tool, operation, params, context)``
        (the client's ``agent_id`` is used). A ``denied`` action is returned, not raised,
        unless the client was configured with ``raise_on_deny=True``.

        ``idempotency_key`` (optional) replaces the generated ``Idempotency-Key``: submitting
        twice with the same key and body returns the first action.
        """
        idempotency_key: Optional[str] = kwargs.pop("idempotency_key", None)
        agent_id, tool, operation, params, context = _action_args(args, kwargs, self.config.agent_id)
        if kwargs:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(kwargs))}")
        payload = {
            "agent_id": agent_id,
            "tool": tool,
            "operation": operation,
            "params": dict(params or {}),
            "context": dict(context or {}),
        }
        key = idempotency_key or str(uuid.uuid4())
        try:
            action = self._request_object(
                "POST", "/v1/actions", json_body=payload, headers={"Idempotency-Key": key}
            )
        except (FarameshConnectionError, FarameshTimeoutError) as exc:
            if self.config.fail_open:
                return self._fail_open_action(payload, exc)
            raise
        if self.config.raise_on_deny and action.get("status") == "denied":
            reason = action.get("reason") or "Action denied by policy"
            raise FarameshPolicyError(f"Action denied by policy: {reason}", action=action, reason=reason)
        return action

    def submit_actions(self, actions: Iterable[Mapping[str, Any]]) -> List[Dict[str, Any]]:
        """Submit several actions one by one; a failed one is returned as
        ``{"error": ..., "action_spec": ...}`` in its place."""
        results: List[Dict[str, Any]] = []
        for spec in actions:
            try:
                results.append(self._submit_spec(spec))
            except Exception as exc:
                results.append({"error": str(exc), "action_spec": dict(spec)})
        return results

    def submit_actions_bulk(
        self, actions: Sequence[Mapping[str, Any]], *, raise_on_error: bool = False
    ) -> List[Dict[str, Any]]:
        """Like :meth:`submit_actions`; with ``raise_on_error`` a :class:`FarameshBatchError`
        listing the successes and failures is raised when any submission failed."""
        successes: List[Dict[str, Any]] = []
        errors: List[Dict[str, Any]] = []
        for index, spec in enumerate(actions):
            try:
                successes.append(self._submit_spec(spec))
            except Exception as exc:
                entry = {"error": str(exc), "index": index, "action_spec": dict(spec)}
                errors.append(entry)
                if not raise_on_error:
                    successes.append(entry)
        if raise_on_error and errors:
            raise FarameshBatchError(
                f"Batch submission failed: {len(errors)} of {len(actions)} actions failed",
                successes=successes,
                errors=errors,
            )
        return successes

    def _submit_spec(self, spec: Mapping[str, Any]) -> Action:
        return self.submit_action(
            agent_id=spec.get("agent_id") or self.config.agent_id,
            tool=spec["tool"],
            operation=spec["operation"],
            params=spec.get("params") or {},
            context=spec.get("context") or {},
        )

    def apply(self, file_path: Union[str, Path]) -> Action:
        """Submit the action described in a JSON file (or YAML, when PyYAML is installed)."""
        path = Path(file_path)
        if not path.exists():
            raise FileNotFoundError(f"File not found: {file_path}")
        text = path.read_text(encoding="utf-8")
        try:
            if path.suffix.lower() in (".yaml", ".yml"):
                try:
                    import yaml  # type: ignore[import-untyped]
                except ImportError as exc:
                    raise FarameshValidationError(
                        f"Reading {file_path} needs PyYAML (pip install pyyaml), or use JSON"
                    ) from exc
                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except FarameshError:
            raise
        except Exception as exc:
            raise FarameshValidationError(f"Failed to parse file {file_path}: {exc}") from exc
        if not isinstance(data, Mapping):
            raise FarameshValidationError(f"{file_path} must hold one action object")
        missing = [name for name in ("agent_id", "tool", "operation") if name not in data]
        if missing:
            raise FarameshValidationError(f"Missing required fields: {', '.join(missing)}")
        return self._submit_spec(data)

    def get_action(self, action_id: str) -> Action:
        """Fetch one action by id."""
        local = self._local_action(action_id)
        if local is not None:
            return dict(local)
        return self._request_object("GET", f"/v1/actions/{_quote_id(action_id)}")

    def list_actions(
        self,
        limit: int = 20,
        offset: int = 0,
        agent_id: Optional[str] = None,
        tool: Optional[str] = None,
        status: Optional[str] = None,
        search: Optional[str] = None,
    ) -> List[Action]:
        """List actions, newest first (``limit`` is clamped to 1..1000 by the server).

        ``search`` keeps the actions whose agent id, tool or operation contains it, ignoring case.
        """
        query = {
            "limit": limit,
            "offset": offset,
            "agent_id": agent_id,
            "tool": tool,
            "status": status,
            "q": search,
        }
        return self._request_list("GET", "/v1/actions", query=query)

    def get_events(self, action_id: str) -> List[Dict[str, Any]]:
        """The action's ledger events, oldest first (each with ``prev_hash``/``record_hash``)."""
        return self._request_list("GET", f"/v1/actions/{_quote_id(action_id)}/events")

    def _decide(self, action_id: str, approve: bool, token: Optional[str], reason: Optional[str]) -> Action:
        local = self._local_action(action_id)
        if local is not None:
            raise FarameshConflictError(
                f"Action {action_id} was allowed locally (fail-open); there is nothing to decide",
                status_code=409,
            )
        if token is None:
            # The approval token is shown only while the action is pending, and never to a
            # token whose role may not approve; the server then answers 409 or 401/403.
            token = self.get_action(action_id).get("approval_token")
        body: Dict[str, Any] = {"token": token, "approve": approve}
        if reason:
            body["reason"] = reason
        try:
            return self._request_object(
                "POST", f"/v1/actions/{_quote_id(action_id)}/approval", json_body=body
            )
        except FarameshConflictError as exc:
            if exc.retried:
                current = self.get_action(action_id)
                if current.get("status") == ("approved" if approve else "denied"):
                    return current
            raise

    def approve_action(
        self, action_id: str, token: Optional[str] = None, reason: Optional[str] = None
    ) -> Action:
        """Approve a pending action. Without ``token`` the approval token is fetched with
        :meth:`get_action` first (the caller's role must be allowed to see it)."""
        return self._decide(action_id, True, token, reason)

    def deny_action(
        self, action_id: str, token: Optional[str] = None, reason: Optional[str] = None
    ) -> Action:
        """Deny a pending action (fetches the approval token itself when not given)."""
        return self._decide(action_id, False, token, reason)

    # Short names of earlier releases.
    allow = approve_action
    deny = deny_action

    def start_action(self, action_id: str) -> Action:
        """Move an ``allowed``/``approved`` action to ``executing``. Tools with a built-in
        executor on the server (``shell``, ``http``) are then run by the server itself."""
        local = self._local_action(action_id)
        if local is not None:
            return self._update_local(local, "executing")
        try:
            return self._request_object("POST", f"/v1/actions/{_quote_id(action_id)}/start")
        except FarameshConflictError as exc:
            if exc.retried:
                current = self.get_action(action_id)
                if current.get("status") in ("executing", "succeeded", "failed", "timeout"):
                    return current
            raise

    def report_result(
        self,
        action_id: str,
        success: bool,
        error: Optional[str] = None,
        output: Any = None,
        *,
        result: Any = None,
    ) -> Action:
        """Report how the call ended: ``succeeded`` (with ``output``) or ``failed`` (with
        ``error``, kept up to 1,000 characters). ``result`` is another name for ``output``."""
        if output is None:
            output = result
        local = self._local_action(action_id)
        if local is not None:
            return self._update_local(
                local, "succeeded" if success else "failed", result=output, reason=error or local["reason"]
            )
        body: Dict[str, Any] = {"success": bool(success)}
        if error is not None:
            body["error"] = str(error)
        if output is not None:
            body["output"] = output
        try:
            return self._request_object("POST", f"/v1/actions/{_quote_id(action_id)}/result", json_body=body)
        except FarameshConflictError as exc:
            if exc.retried:
                current = self.get_action(action_id)
                if current.get("status") == ("succeeded" if success else "failed"):
                    return current
            raise

    def replay_action(self, action_id: str) -> Action:
        """Submit a copy of an ``allowed``/``approved``/``succeeded`` action; the copy's
        context gets ``replayed_from`` (the original id) and ``replay: true``."""
        original = self.get_action(action_id)
        status = original.get("status")
        if status not in ("allowed", "approved", "succeeded"):
            raise FarameshConflictError(
                f"Cannot replay action {action_id} with status '{status}': only allowed, "
                "approved or succeeded actions can be replayed",
                detail=f"action {action_id} is {status}",
            )
        context = original.get("context")
        if not isinstance(context, Mapping):
            context = {}
        new_context = {**context, "replayed_from": original.get("id", action_id), "replay": True}
        return self.submit_action(
            agent_id=original["agent_id"],
            tool=original["tool"],
            operation=original["operation"],
            params=original.get("params") or {},
            context=new_context,
        )

    # ------------------------------------------------------------------ waiting

    def _poll(self, poll_interval: Optional[float]) -> float:
        return self.config.poll_interval if poll_interval is None else max(0.0, poll_interval)

    def _watch(
        self, action_id: str, poll_interval: Optional[float], timeout: Optional[float]
    ) -> Iterator[Tuple[Action, bool]]:
        """The action, fetched every ``poll_interval`` seconds, with whether ``timeout`` has
        run out (``None``: never). The caller stops iterating once it has its answer."""
        interval = self._poll(poll_interval)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            action = self.get_action(action_id)
            expired = deadline is not None and time.monotonic() >= deadline
            yield action, expired
            if deadline is None:
                time.sleep(interval)
            else:
                time.sleep(min(interval, max(0.0, deadline - time.monotonic())))

    def wait_for_completion(
        self,
        action_id: str,
        poll_interval: Optional[float] = None,
        timeout: Optional[float] = 60.0,
    ) -> Action:
        """Poll until the action is finished (``succeeded``, ``failed``, ``denied`` or
        ``timeout``) and return it; :class:`FarameshTimeoutError` after ``timeout`` seconds
        (``None``: no limit)."""
        for action, expired in self._watch(action_id, poll_interval, timeout):
            status = action.get("status")
            if status in TERMINAL_STATUSES:
                return action
            if expired:
                raise FarameshTimeoutError(
                    f"Action {action_id} did not complete within {timeout}s (status: {status})",
                    action=action,
                )
        raise AssertionError("unreachable: _watch never ends")

    def block_until_approved(
        self,
        action_id: str,
        *,
        poll_interval: Optional[float] = None,
        timeout: Optional[float] = 300.0,
    ) -> Action:
        """Poll while the action is ``pending_approval``; return it once approved (or any
        other non-pending, non-denied status). Raises :class:`FarameshDeniedError` if it is
        denied, :class:`FarameshTimeoutError` if the approval expired on the server or
        ``timeout`` seconds passed (``None``: wait as long as it takes)."""
        for action, expired in self._watch(action_id, poll_interval, timeout):
            status = action.get("status")
            if status == "denied":
                reason = action.get("reason") or "Action denied"
                raise FarameshDeniedError(
                    f"Action {action_id} was denied: {reason}", action=action, reason=reason
                )
            if status == "timeout":
                raise FarameshTimeoutError(
                    f"The approval of action {action_id} expired before anyone decided",
                    action=action,
                )
            if status != "pending_approval":
                return action
            if expired:
                raise FarameshTimeoutError(
                    f"Action {action_id} was still pending approval after {timeout}s",
                    action=action,
                )
        raise AssertionError("unreachable: _watch never ends")

    def submit_and_wait(
        self,
        *args: Any,
        require_approval: Optional[bool] = None,
        auto_approve: bool = False,
        auto_start: bool = False,
        timeout: Optional[float] = 300.0,
        poll_interval: Optional[float] = None,
        idempotency_key: Optional[str] = None,
        **kwargs: Any,
    ) -> Action:
        """Submit, then wait for a human while the action is pending approval.

        Returns the ``allowed``/``approved`` action, or with ``auto_start`` the finished one
        (started, then waited for). Raises :class:`FarameshDeniedError` when the action is
        denied (by the policy or by a human) and :class:`FarameshTimeoutError` when
        ``timeout`` seconds pass first. ``require_approval=False`` returns a pending action at
        once instead of waiting; ``auto_approve`` approves it with its own approval token
        (needs a token allowed to approve). A fail-open placeholder is returned as is.
        """
        agent_id, tool, operation, params, context = _action_args(args, kwargs, self.config.agent_id)
        if kwargs:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(kwargs))}")
        deadline = None if timeout is None else time.monotonic() + timeout

        def remaining() -> Optional[float]:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        action = self.submit_action(
            agent_id=agent_id,
            tool=tool,
            operation=operation,
            params=params,
            context=context,
            idempotency_key=idempotency_key,
        )
        if action.get("fail_open"):
            return action
        if action.get("status") == "denied":
            reason = action.get("reason") or "Action denied by policy"
            raise FarameshDeniedError(f"Action denied: {reason}", action=action, reason=reason)
        if action.get("status") == "pending_approval":
            if auto_approve:
                action = self.approve_action(action["id"], token=action.get("approval_token"))
            elif require_approval is False:
                return action
            else:
                action = self.block_until_approved(
                    action["id"], poll_interval=poll_interval, timeout=remaining()
                )
        if auto_start and action.get("status") in ("allowed", "approved"):
            self.start_action(action["id"])
            return self.wait_for_completion(action["id"], poll_interval=poll_interval, timeout=remaining())
        return action

    # ------------------------------------------------------------------ gate

    def gate_decide_dict(self, *args: Any, **kwargs: Any) -> Dict[str, Any]:
        """``POST /v1/gate/decide``: the decision for an action, without storing anything."""
        agent_id, tool, operation, params, context = _action_args(args, kwargs, self.config.agent_id)
        if kwargs:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(kwargs))}")
        payload = {
            "agent_id": agent_id,
            "tool": tool,
            "operation": operation,
            "params": dict(params or {}),
            "context": dict(context or {}),
        }
        try:
            return self._request_object("POST", "/v1/gate/decide", json_body=payload)
        except (FarameshConnectionError, FarameshTimeoutError) as exc:
            if not self.config.fail_open:
                raise
            logger.warning(
                "faramesh: server unreachable; FAIL-OPEN answers EXECUTE for %s/%s: %s",
                tool,
                operation,
                exc,
            )
            return {
                "outcome": "EXECUTE",
                "decision": "allow",
                "reason_code": "FAIL_OPEN",
                "reason": f"Faramesh was unreachable; fail_open is set ({exc})",
                "fail_open": True,
            }

    def gate_decide(self, *args: Any, **kwargs: Any) -> GateDecision:
        """Like :meth:`gate_decide_dict`, as a :class:`GateDecision`
        (``outcome``: ``EXECUTE`` / ``HALT`` / ``ABSTAIN``)."""
        return GateDecision.from_dict(self.gate_decide_dict(*args, **kwargs))

    def replay_decision(
        self, action_id: Optional[str] = None, provenance_id: Optional[str] = None
    ) -> ReplayResult:
        """Decide a stored action again with the current policy and compare outcome, reason
        code and hashes with what was stored."""
        if not action_id and not provenance_id:
            raise ValueError("Must provide either action_id or provenance_id")
        if action_id:
            original = self.get_action(action_id)
        else:
            matches = [a for a in self.list_actions(limit=1000) if a.get("provenance_id") == provenance_id]
            if not matches:
                raise FarameshNotFoundError(f"No action found with provenance_id '{provenance_id}'")
            original = matches[0]
        replayed = self.gate_decide_dict(
            agent_id=original["agent_id"],
            tool=original["tool"],
            operation=original["operation"],
            params=original.get("params") or {},
            context=original.get("context") or {},
        )
        mismatches: List[str] = []

        def same(name: str) -> bool:
            return original.get(name) == replayed.get(name)

        if not same("outcome"):
            mismatches.append(f"outcome: {original.get('outcome')} != {replayed.get('outcome')}")
        if not same("reason_code"):
            mismatches.append(f"reason_code: {original.get('reason_code')} != {replayed.get('reason_code')}")
        checks = {
            "request_hash": "request_hash mismatch",
            "policy_hash": "policy_hash mismatch (policy may have changed)",
            "profile_hash": "profile_hash mismatch (profile may have changed)",
            "runtime_version": "runtime_version mismatch",
        }
        for name, text in checks.items():
            if not same(name):
                mismatches.append(text)
        return ReplayResult(
            success=not mismatches,
            original_outcome=str(original.get("outcome") or ""),
            replayed_outcome=str(replayed.get("outcome") or ""),
            original_reason_code=str(original.get("reason_code") or ""),
            replayed_reason_code=str(replayed.get("reason_code") or ""),
            request_hash_match=same("request_hash"),
            policy_hash_match=same("policy_hash"),
            profile_hash_match=same("profile_hash"),
            runtime_version_match=same("runtime_version"),
            mismatches=mismatches,
        )

    # ------------------------------------------------------------------ server info

    def health(self) -> Dict[str, Any]:
        """``GET /health``."""
        return self._request_object("GET", "/health")

    def policy_info(self) -> Dict[str, Any]:
        """``GET /v1/policy/info``: the active policy's file, version, hash and rules."""
        return self._request_object("GET", "/v1/policy/info")

    # ------------------------------------------------------------------ live events

    def iter_events(
        self,
        action_id: Optional[str] = None,
        *,
        agent_id: Optional[str] = None,
        status: Optional[str] = None,
        last_event_id: Union[str, int, None] = None,
        event_types: Optional[Sequence[str]] = None,
        stop_after: Optional[int] = None,
        timeout: Optional[float] = None,
        reconnect: bool = True,
        max_reconnects: Optional[int] = None,
        read_timeout: float = 60.0,
    ) -> Generator[Event, None, None]:
        """Generator over the live stream ``GET /v1/events`` (Server-Sent Events).

        Each item is the message's JSON (``type``, ``data``, ``timestamp``, ``action_id``)
        plus ``event_id`` (its SSE ``id``). When the connection drops, the generator
        reconnects by itself (exponential backoff) and sends ``Last-Event-ID`` so that no
        event is lost or repeated, as long as the server still holds them.

        Args:
            action_id, agent_id, status: Server-side filters.
            last_event_id: Resume after this event id (the first connection too).
            event_types: Yield only these ``type`` values (``action.created``, ``action.updated``).
            stop_after: Stop after this many events.
            timeout: Stop (return) after this many seconds in total.
            reconnect: ``False`` raises :class:`FarameshConnectionError` when the stream breaks.
            max_reconnects: Give up after this many failed connection attempts in a row
                (``None``: never).
            read_timeout: Seconds without any byte (the server pings every 15 s) after which
                the connection is considered dead and reopened.

        Errors that a retry cannot fix (401, 403, 404, 422) are raised at once.
        """
        url = self.config.base_url + "/v1/events"
        query = {
            k: v for k, v in {"action_id": action_id, "agent_id": agent_id, "status": status}.items() if v
        }
        deadline = None if timeout is None else time.monotonic() + timeout
        wanted = set(event_types) if event_types else None
        last_id: Optional[str] = None if last_event_id is None else str(last_event_id)
        delivered = 0
        failures = 0
        server_retry: Optional[float] = None

        def expired() -> bool:
            return deadline is not None and time.monotonic() >= deadline

        while True:
            if expired():
                return
            headers = self._headers({"Accept": "text/event-stream", "Cache-Control": "no-cache"})
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            per_read = (
                read_timeout
                if deadline is None
                else max(0.05, min(read_timeout, deadline - time.monotonic()))
            )
            cause: Union[str, Exception]
            try:
                with self._http.stream(
                    "GET",
                    url,
                    params=query,
                    headers=headers,
                    timeout=httpx.Timeout(self.config.timeout, read=per_read),
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        error = _error_from_response(response, "GET", "/v1/events")
                        if response.status_code < 500:
                            raise error
                        cause = error
                    else:
                        if failures:
                            logger.info("faramesh: event stream reconnected (Last-Event-ID %s)", last_id)
                        failures = 0
                        for message in parse_sse(response.iter_lines()):
                            if message.retry is not None:
                                server_retry = message.retry / 1000.0
                            if message.id is not None:
                                last_id = message.id
                            if message.data is not None:
                                try:
                                    payload = json.loads(message.data)
                                except ValueError:
                                    payload = {"data": message.data}
                                if not isinstance(payload, dict):
                                    payload = {"data": payload}
                                payload["event_id"] = message.id
                                if message.event and "event" not in payload:
                                    payload["event"] = message.event
                                if wanted is None or payload.get("type") in wanted:
                                    yield payload
                                    delivered += 1
                                    if stop_after is not None and delivered >= stop_after:
                                        return
                            if expired():
                                return
                        cause = "the server closed the stream"
            except httpx.TimeoutException as exc:
                if expired():
                    return
                cause = exc
            except httpx.TransportError as exc:
                cause = exc
            if not reconnect:
                raise FarameshConnectionError(
                    f"The event stream from {self.config.base_url} broke: {cause}",
                    method="GET",
                    url=url,
                )
            failures += 1
            if max_reconnects is not None and failures > max_reconnects:
                raise FarameshConnectionError(
                    f"Could not reconnect to the event stream at {self.config.base_url} after "
                    f"{failures} attempt(s): {cause}",
                    method="GET",
                    url=url,
                )
            delay = self._backoff(failures - 1)
            if server_retry is not None and failures == 1:
                delay = server_retry
            if deadline is not None:
                delay = min(delay, max(0.0, deadline - time.monotonic()))
            logger.info(
                "faramesh: event stream lost (%s); reconnecting in %.2fs (Last-Event-ID %s)",
                cause,
                delay,
                last_id,
            )
            time.sleep(delay)

    @overload
    def tail_events(
        self, callback: None = None, action_id: Optional[str] = None, **options: Any
    ) -> Generator[Event, None, None]: ...

    @overload
    def tail_events(
        self, callback: Callable[[Event], Any], action_id: Optional[str] = None, **options: Any
    ) -> None: ...

    def tail_events(
        self,
        callback: Optional[Callable[[Event], Any]] = None,
        action_id: Optional[str] = None,
        **options: Any,
    ) -> Optional[Generator[Event, None, None]]:
        """Follow the live stream. Without ``callback``: returns the generator of
        :meth:`iter_events` (reconnects and resumes by itself). With ``callback``: calls it
        for each event and returns when the stream stops (``stop_after``/``timeout``)."""
        events = self.iter_events(action_id, **options)
        if callback is None:
            return events
        try:
            for event in events:
                callback(event)
        finally:
            events.close()
        return None

    def stream_events(
        self,
        callback: Callable[[Event], Any],
        *,
        event_types: Optional[List[str]] = None,
        stop_after: Optional[int] = None,
        timeout: Optional[float] = None,
        action_id: Optional[str] = None,
        **options: Any,
    ) -> None:
        """Call ``callback`` for each live event (the callback form of :meth:`tail_events`)."""
        self.tail_events(
            callback,
            action_id,
            event_types=event_types,
            stop_after=stop_after,
            timeout=timeout,
            **options,
        )
