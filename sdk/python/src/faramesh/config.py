"""Client configuration: keyword arguments, environment variables, defaults."""

from __future__ import annotations

import copy
import os
import warnings
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Dict, Optional
from urllib.parse import urlparse

__all__ = ["ClientConfig", "GovernorConfig", "DEFAULT_BASE_URL"]

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
_DEFAULT_AGENT_ID = "default-agent"
_DEFAULT_TIMEOUT = 30.0
_DEFAULT_RETRIES = 3
_DEFAULT_BACKOFF = 0.5
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

RequestStartHook = Callable[[str, str], None]
RequestEndHook = Callable[[str, str, int, float], None]
ErrorHook = Callable[[Exception], None]


def _env(*names: str) -> Optional[str]:
    for name in names:
        value = os.environ.get(name)
        if value is not None and value.strip() != "":
            return value.strip()
    return None


def _env_bool(*names: str) -> Optional[bool]:
    value = _env(*names)
    if value is None:
        return None
    return value.lower() in ("1", "true", "yes", "on")


def _env_number(kind: Callable[[str], Any], *names: str) -> Any:
    value = _env(*names)
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        warnings.warn(f"ignoring {names[0]}={value!r}: not a number", stacklevel=3)
        return None


def normalize_base_url(url: str) -> str:
    """Strip trailing slashes and add ``http://`` when no scheme is given."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url


@dataclass
class ClientConfig:
    """Settings of one client.

    A field left at its default is taken from the environment when the variable is set:

    ========================  =============================================  =======================
    field                     environment variable                           default
    ========================  =============================================  =======================
    ``base_url``              ``FARAMESH_BASE_URL``, ``FARAMESH_URL``,       ``http://127.0.0.1:8000``
                              ``FARA_API_BASE``
    ``token``                 ``FARAMESH_TOKEN``, ``FARA_AUTH_TOKEN``        none
    ``agent_id``              ``FARAMESH_AGENT_ID``                          ``default-agent``
    ``timeout``               ``FARAMESH_TIMEOUT``                           30 s per request
    ``max_retries``           ``FARAMESH_RETRIES``                           3
    ``retry_backoff_factor``  ``FARAMESH_RETRY_BACKOFF``                     0.5 s (doubles per retry)
    ``fail_open``             ``FARAMESH_FAIL_OPEN`` (``1``/``true``)        ``False`` (fail closed)
    ========================  =============================================  =======================
    """

    base_url: str = DEFAULT_BASE_URL
    agent_id: str = _DEFAULT_AGENT_ID
    token: Optional[str] = None
    timeout: float = _DEFAULT_TIMEOUT
    max_retries: int = _DEFAULT_RETRIES
    retry_backoff_factor: float = _DEFAULT_BACKOFF
    #: Longest wait between two retries, in seconds.
    max_backoff: float = 10.0
    #: When the server cannot be reached, ``submit_action`` returns a synthetic ``allowed``
    #: action marked ``fail_open: True`` (and ``gate_decide`` an ``EXECUTE``) instead of raising.
    fail_open: bool = False
    #: ``submit_action`` raises :class:`~faramesh.FarameshPolicyError` for a ``denied`` action
    #: instead of returning it (the behaviour of SDK releases before 0.4).
    raise_on_deny: bool = False
    #: Seconds between two polls while waiting for approval or completion.
    poll_interval: float = 1.0
    on_request_start: Optional[RequestStartHook] = None
    on_request_end: Optional[RequestEndHook] = None
    on_error: Optional[ErrorHook] = None
    #: Extra headers sent with every request.
    headers: Dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.token:
            self.token = _env("FARAMESH_TOKEN", "FARA_AUTH_TOKEN")
        if self.base_url == DEFAULT_BASE_URL:
            self.base_url = _env("FARAMESH_BASE_URL", "FARAMESH_URL", "FARA_API_BASE") or self.base_url
        if self.agent_id == _DEFAULT_AGENT_ID:
            self.agent_id = _env("FARAMESH_AGENT_ID") or self.agent_id
        if self.timeout == _DEFAULT_TIMEOUT:
            self.timeout = _env_number(float, "FARAMESH_TIMEOUT") or self.timeout
        if self.max_retries == _DEFAULT_RETRIES:
            retries = _env_number(int, "FARAMESH_RETRIES")
            if retries is not None:
                self.max_retries = retries
        if self.retry_backoff_factor == _DEFAULT_BACKOFF:
            backoff = _env_number(float, "FARAMESH_RETRY_BACKOFF")
            if backoff is not None:
                self.retry_backoff_factor = backoff
        if not self.fail_open:
            self.fail_open = bool(_env_bool("FARAMESH_FAIL_OPEN"))
        self._validate()

    def _validate(self) -> None:
        self.base_url = normalize_base_url(self.base_url)
        if self.max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
        parsed = urlparse(self.base_url)
        if parsed.scheme not in ("http", "https"):
            raise ValueError(f"base_url must be an http:// or https:// URL, not {self.base_url!r}")
        if parsed.scheme == "http" and parsed.hostname not in _LOCAL_HOSTS:
            warnings.warn(
                f"Faramesh base_url uses plain HTTP with a non-local host ({parsed.hostname}); "
                "use https:// to protect decisions and tokens in transit.",
                stacklevel=3,
            )

    def replace(self, **changes: Any) -> "ClientConfig":
        """A copy with the given fields changed (``None`` values are ignored)."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise TypeError(f"unknown configuration option(s): {', '.join(sorted(unknown))}")
        new = copy.copy(self)
        new.headers = dict(self.headers)
        for name, value in changes.items():
            if value is not None:
                setattr(new, name, value)
        new._validate()
        return new


#: Name used by earlier SDK releases.
GovernorConfig = ClientConfig
