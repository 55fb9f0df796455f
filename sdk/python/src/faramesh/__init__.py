"""Faramesh Python SDK: govern AI agents' tool calls with a Faramesh server.

>>> from faramesh import configure, submit_action, approve_action
>>> configure(base_url="http://127.0.0.1:8000", token="...")
>>> action = submit_action("my-agent", "shell", "run", {"cmd": "ls"})
>>> action["status"]   # "allowed", "denied" or "pending_approval"

>>> from faramesh import govern
>>> @govern("shell", "run")
... def run_shell(cmd: str) -> str: ...
"""

from ._version import __version__
from .api import (
    allow,
    apply,
    approve_action,
    block_until_approved,
    configure,
    deny,
    deny_action,
    execute_if_allowed,
    gate_decide,
    gate_decide_dict,
    get_action,
    get_client,
    get_config,
    get_events,
    list_actions,
    replay_action,
    replay_decision,
    report_result,
    set_client,
    start_action,
    stream_events,
    submit_action,
    submit_actions,
    submit_actions_bulk,
    submit_and_wait,
    tail_events,
    wait_for_completion,
)
from .client import ExecutionGovernorClient
from .config import ClientConfig, GovernorConfig
from .exceptions import (
    AuthorizationError,
    DeferredError,
    DenyError,
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
    GovernorAuthError,
    GovernorConnectionError,
    GovernorError,
    GovernorTimeoutError,
)
from .govern import govern, governed_tool
from .models import Action, Event, GateDecision, ReplayResult

__all__ = [
    "__version__",
    # configuration
    "configure",
    "get_config",
    "get_client",
    "set_client",
    "ClientConfig",
    "GovernorConfig",
    # functions
    "submit_action",
    "submit_actions",
    "submit_actions_bulk",
    "submit_and_wait",
    "block_until_approved",
    "get_action",
    "get_events",
    "list_actions",
    "approve_action",
    "deny_action",
    "allow",
    "deny",
    "start_action",
    "report_result",
    "replay_action",
    "wait_for_completion",
    "gate_decide",
    "gate_decide_dict",
    "replay_decision",
    "execute_if_allowed",
    "apply",
    "tail_events",
    "stream_events",
    # governance
    "govern",
    "governed_tool",
    # class API
    "ExecutionGovernorClient",
    # types
    "Action",
    "Event",
    "GateDecision",
    "ReplayResult",
    # exceptions
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
