"""Result types: actions are plain dicts; gate decisions and replay comparisons are dataclasses."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Mapping, Optional

__all__ = [
    "Action",
    "Event",
    "TERMINAL_STATUSES",
    "PERMITTED_STATUSES",
    "GateDecision",
    "ReplayResult",
]

#: An action as the server returns it: ``id``, ``status``, ``decision``, ``reason``,
#: ``risk_level``, ``approval_token``, ``params``, ``context``, ``result``, hashes...
Action = Dict[str, Any]

#: One message of the live stream: ``type`` (``action.created`` / ``action.updated``), ``data``
#: (``id``, ``status``, ``decision``, ``agent_id``, ``tool``, ``operation``, ``reason``,
#: ``risk_level``), ``timestamp``, ``action_id`` and ``event_id`` (the SSE ``id:``).
Event = Dict[str, Any]

#: Statuses after which nothing changes any more.
TERMINAL_STATUSES = frozenset({"denied", "succeeded", "failed", "timeout"})

#: Statuses in which the call may be executed.
PERMITTED_STATUSES = frozenset({"allowed", "approved"})


@dataclass
class GateDecision:
    """What ``POST /v1/gate/decide`` answered: the decision, without storing an action.

    ``outcome`` is ``EXECUTE`` (allow), ``HALT`` (deny) or ``ABSTAIN`` (needs approval).
    ``fail_open`` is True for the synthetic ``EXECUTE`` returned when the server could not be
    reached and the client is configured to fail open.
    """

    outcome: str
    reason_code: str
    reason: Optional[str] = None
    request_hash: str = ""
    policy_version: Optional[str] = None
    policy_hash: Optional[str] = None
    profile_id: Optional[str] = None
    profile_version: Optional[str] = None
    profile_hash: Optional[str] = None
    runtime_version: Optional[str] = None
    provenance_id: Optional[str] = None
    risk_level: Optional[str] = None
    decision: Optional[str] = None
    fail_open: bool = False
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "GateDecision":
        return cls(
            outcome=str(data.get("outcome") or ""),
            reason_code=str(data.get("reason_code") or ""),
            reason=data.get("reason"),
            request_hash=str(data.get("request_hash") or ""),
            policy_version=data.get("policy_version"),
            policy_hash=data.get("policy_hash"),
            profile_id=data.get("profile_id"),
            profile_version=data.get("profile_version"),
            profile_hash=data.get("profile_hash"),
            runtime_version=data.get("runtime_version"),
            provenance_id=data.get("provenance_id"),
            risk_level=data.get("risk_level"),
            decision=data.get("decision"),
            fail_open=bool(data.get("fail_open", False)),
            raw=dict(data),
        )

    def to_dict(self) -> Dict[str, Any]:
        out = asdict(self)
        out.pop("raw", None)
        return out

    @property
    def allowed(self) -> bool:
        """True when the call may run now (``EXECUTE``)."""
        return self.outcome.upper() == "EXECUTE"

    @property
    def denied(self) -> bool:
        return self.outcome.upper() == "HALT"

    @property
    def needs_approval(self) -> bool:
        return self.outcome.upper() == "ABSTAIN"

    def __getitem__(self, key: str) -> Any:
        """Dict-style access (``decision["outcome"]``)."""
        return self.to_dict()[key]


@dataclass
class ReplayResult:
    """Comparison of a stored action's decision with a fresh gate decision."""

    success: bool
    original_outcome: str
    replayed_outcome: str
    original_reason_code: str
    replayed_reason_code: str
    request_hash_match: bool
    policy_hash_match: bool
    profile_hash_match: bool
    runtime_version_match: bool
    mismatches: List[str]

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)
