"""A small Server-Sent Events parser (the WHATWG event-stream format)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, List, Optional


@dataclass
class SSEMessage:
    """One dispatched message, or a comment line (``comment`` set, everything else empty)."""

    data: Optional[str] = None
    event: Optional[str] = None
    id: Optional[str] = None
    retry: Optional[int] = None
    comment: Optional[str] = None


def parse_sse(lines: Iterable[str]) -> Iterator[SSEMessage]:
    """Turn the lines of an event stream into messages.

    A message is dispatched at each blank line. A message without ``data`` but with an ``id``
    is still yielded (``data`` None) so the caller can track the last event id. Comment lines
    (``: ping``) are yielded as ``SSEMessage(comment=...)`` so a reader can notice liveness.
    """
    data: List[str] = []
    event: Optional[str] = None
    event_id: Optional[str] = None
    retry: Optional[int] = None
    for raw in lines:
        line = raw.rstrip("\r\n")
        if line == "":
            if data or event_id is not None or retry is not None:
                yield SSEMessage(
                    data="\n".join(data) if data else None,
                    event=event,
                    id=event_id,
                    retry=retry,
                )
            data, event, event_id, retry = [], None, None, None
            continue
        if line.startswith(":"):
            yield SSEMessage(comment=line[1:].lstrip(" "))
            continue
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id":
            if "\0" not in value:
                event_id = value
        elif name == "retry":
            if value.isdigit():
                retry = int(value)
    # An unterminated final message is dropped, as the format requires.
