"""Scenario driver on the official MCP Python client SDK (mcp 2.x); same interface as ts_client.mjs.

    py_client.py [options] --stdio -- COMMAND [ARGS...]
    py_client.py [options] --url URL [--header 'Name: value' ...]

Options:
    --scenario FILE_OR_JSON   a JSON array of steps (inline, or the name of a file holding it)
    --client-name NAME        clientInfo.name (default py-test-client)
    --protocol-version V      auto | legacy | a handshake-era version | 2026-07-28 (see below)
    --connect-timeout S       seconds allowed for the handshake (default 30), then exit status 1

Each step prints one JSON line on stdout: {"step": i, "op": ..., "ok": true, "result": ...} or
{"step": i, "op": ..., "ok": false, "error": {"code": <JSON-RPC code or null>, "message": ...}}.
Ops: initialize_info, list_tools, call_tool, list_resources, list_resource_templates,
read_resource, list_prompts, get_prompt, ping, sleep, wait_for_file (until the test creates
the file at "path", at most "timeout" seconds, default 60), parallel (sub-steps numbered "i.j").
Sampling requests are answered with "model says: <last user message text>".
Exit status: 0 when the scenario ran (even with failed steps), 2 on bad usage, 1 when the
connection could not be made or broke down the session (the reason goes to stderr).

Protocol versions (mcp 2.3.0): the SDK knows 2024-11-05, 2025-03-26, 2025-06-18 and 2025-11-25
(reached through the `initialize` handshake) and 2026-07-28 (the per-request envelope, found
through `server/discover`, no handshake). Its default, and this driver's without
--protocol-version (or with `auto`), first probes `server/discover` at 2026-07-28 and falls back
to `initialize` offering 2025-11-25 when the server answers with any JSON-RPC error.
`legacy` skips the probe and offers 2025-11-25. An older handshake version is offered by
rewriting the outgoing initialize request (the SDK always offers its latest).
`2026-07-28` adopts that version without probing (the SDK's mode pin), so initialize_info then
shows what the SDK synthesises, not what the server says.

The spawned command inherits this process's whole environment (the SDK alone would pass only a
few variables such as PATH and HOME), and its stderr goes to ours.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import mcp.types as types
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.message import SessionMessage
from mcp.types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

# The driver uses features 2026-07-28 deprecates (sampling, ping) on purpose.
warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

OPS = {
    "initialize_info", "list_tools", "call_tool", "list_resources", "list_resource_templates",
    "read_resource", "list_prompts", "get_prompt", "ping", "sleep", "wait_for_file", "parallel",
}  # fmt: skip


class Usage(Exception):
    """Bad command line or scenario: exit status 2."""


class Cancelled(Exception):
    """A call_tool step the scenario cancelled (`cancel_after`) before it answered."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    command: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, command = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(prog="py_client.py", description="MCP scenario driver (Python SDK)")
    transport = parser.add_mutually_exclusive_group(required=True)
    transport.add_argument("--stdio", action="store_true", help="spawn the command after -- and talk stdio")
    transport.add_argument("--url", help="Streamable HTTP endpoint")
    parser.add_argument("--header", action="append", default=[], help="'Name: value', sent with every HTTP request")
    parser.add_argument("--scenario", required=True, help="JSON array of steps, or a file holding one")
    parser.add_argument("--client-name", default="py-test-client")
    parser.add_argument("--protocol-version", default="auto")
    parser.add_argument("--connect-timeout", type=float, default=30, help="seconds allowed for the handshake")
    args = parser.parse_args(argv)  # exits with status 2 on bad usage
    args.command = command
    if args.stdio and not command:
        parser.error("--stdio needs a command after --")
    if args.url and command:
        parser.error("a command after -- goes with --stdio only")
    if args.header and not args.url:
        parser.error("--header goes with --url only")
    args.headers = {}
    for header in args.header:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            parser.error(f"--header {header!r} is not 'Name: value'")
        args.headers[name.strip()] = value.strip()
    known = ("auto", "legacy", *HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS)
    if args.protocol_version not in known:
        parser.error(f"--protocol-version must be one of {', '.join(known)}")
    try:
        args.steps = load_scenario(args.scenario)
    except Usage as exc:
        parser.error(str(exc))
    return args


def load_scenario(text: str) -> list[dict[str, Any]]:
    try:
        if not text.lstrip().startswith("["):
            with open(text, encoding="utf-8") as file:
                text = file.read()
        steps = json.loads(text)
    except (OSError, ValueError) as exc:
        raise Usage(f"--scenario: {exc}") from exc
    check_steps(steps)
    return steps


def check_steps(steps: Any) -> None:
    if not isinstance(steps, list):
        raise Usage("--scenario: not a JSON array")
    for step in steps:
        if not isinstance(step, dict) or step.get("op") not in OPS:
            raise Usage(f"--scenario: bad step {json.dumps(step)}")
        if step["op"] == "parallel":
            check_steps(step.get("steps"))


@asynccontextmanager
async def http_transport(url: str, headers: dict[str, str]) -> AsyncIterator[Any]:
    # trust_env=False: never route the loopback test traffic through a proxy from the environment.
    timeout = httpx2.Timeout(30, read=300)
    async with httpx2.AsyncClient(headers=headers, timeout=timeout, trust_env=False) as http:
        async with streamable_http_client(url, http_client=http) as streams:
            yield streams


@asynccontextmanager
async def offering_version(transport: Any, version: str) -> AsyncIterator[Any]:
    """Wrap a transport so the initialize request offers `version` instead of the SDK's latest."""
    async with transport as (read_stream, write_stream):
        send, receive = anyio.create_memory_object_stream[SessionMessage](0)

        async def forward() -> None:
            async with receive, write_stream:
                async for item in receive:
                    message = item.message
                    if isinstance(message, types.JSONRPCRequest) and message.method == "initialize":
                        params = {**(message.params or {}), "protocolVersion": version}
                        item = SessionMessage(message.model_copy(update={"params": params}), item.metadata)
                    await write_stream.send(item)

        async with anyio.create_task_group() as tg:
            tg.start_soon(forward)
            async with send:
                yield read_stream, send


def last_user_text(params: types.CreateMessageRequestParams) -> str:
    for message in reversed(params.messages):
        if message.role == "user":
            blocks = message.content if isinstance(message.content, list) else [message.content]
            return "".join(block.text for block in blocks if isinstance(block, types.TextContent))
    return ""


async def answer_sampling(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text=f"model says: {last_user_text(params)}"),
        model="test-model",
        stop_reason="endTurn",
    )


def wire(model: Any) -> Any:
    """A result as plain JSON, the way the wire carried it: exclude_unset leaves out the defaults
    the SDK's models fill in (e.g. `resultType` on a 2025-11-25 connection, which has none)."""
    return model.model_dump(mode="json", by_alias=True, exclude_unset=True)


def js_numbers(value: Any) -> Any:
    """Print 1.0 as 1, as ts_client.mjs does (JavaScript has one number type), so the two drivers
    print the same JSON for the same result (the SDK's models turn e.g. progress into floats)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: js_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [js_numbers(item) for item in value]
    return value


def error_of(exc: BaseException) -> dict[str, Any]:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, MCPError):
        return {"code": exc.code, "message": exc.message}
    return {"code": None, "message": f"{type(exc).__name__}: {exc}"}


async def all_pages(fetch: Any, key: str) -> list[Any]:
    items: list[Any] = []
    cursor = None
    while True:
        page = await fetch(cursor=cursor)
        items.extend(getattr(page, key))
        cursor = page.next_cursor
        if not cursor:
            return items


class Runner:
    def __init__(self, client: Client) -> None:
        self.client = client

    async def run(self, step: dict[str, Any], label: int | str) -> None:
        if step["op"] == "parallel":
            async with anyio.create_task_group() as tg:
                for j, sub in enumerate(step["steps"]):
                    tg.start_soon(self.run, sub, f"{label}.{j}")
            return
        extra: dict[str, Any] = {}  # keys an op adds after result/error ("progress" for call_tool)
        line: dict[str, Any] = {"step": label, "op": step["op"]}
        try:
            line |= {"ok": True, "result": await getattr(self, step["op"])(step, extra)}
        except Cancelled as exc:
            line |= {"ok": False, "error": {"code": None, "message": str(exc)}, "cancelled": True}
        except Exception as exc:
            line |= {"ok": False, "error": error_of(exc)}
        print(json.dumps(js_numbers(line | extra)), flush=True)

    # Each op returns its result as plain JSON.

    async def initialize_info(self, step: dict, extra: dict) -> Any:
        client = self.client
        return {
            "serverInfo": wire(client.server_info) if client.server_info else None,
            "protocolVersion": client.protocol_version,
            "capabilities": wire(client.server_capabilities),
            "instructions": client.session.instructions,
        }

    async def list_tools(self, step: dict, extra: dict) -> Any:
        tools = await all_pages(self.client.list_tools, "tools")
        return {"names": [tool.name for tool in tools], "tools": [wire(tool) for tool in tools]}

    async def call_tool(self, step: dict, extra: dict) -> Any:
        progress: list[dict[str, Any]] = []
        # Filled in as notifications arrive, so a failed or cancelled call still reports them.
        extra["progress"] = progress

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append({"progress": value, "total": total, "message": message})

        cancel_after = step.get("cancel_after")
        with anyio.move_on_after(cancel_after if cancel_after is not None else float("inf")) as scope:
            result = await self.client.call_tool(
                step["name"],
                step.get("arguments") or {},
                read_timeout_seconds=step.get("timeout"),
                progress_callback=on_progress if step.get("progress") else None,
            )
        if scope.cancelled_caught:
            # Leaving the scope abandons the request: the SDK sends notifications/cancelled.
            raise Cancelled(f"cancelled by the client after {cancel_after:g} s")
        return {"isError": False, **wire(result)}

    async def list_resources(self, step: dict, extra: dict) -> Any:
        resources = await all_pages(self.client.list_resources, "resources")
        return {"resources": [wire(resource) for resource in resources]}

    async def list_resource_templates(self, step: dict, extra: dict) -> Any:
        templates = await all_pages(self.client.list_resource_templates, "resource_templates")
        return {"resourceTemplates": [wire(template) for template in templates]}

    async def read_resource(self, step: dict, extra: dict) -> Any:
        return wire(await self.client.read_resource(step["uri"]))

    async def list_prompts(self, step: dict, extra: dict) -> Any:
        prompts = await all_pages(self.client.list_prompts, "prompts")
        return {"prompts": [wire(prompt) for prompt in prompts]}

    async def get_prompt(self, step: dict, extra: dict) -> Any:
        return wire(await self.client.get_prompt(step["name"], step.get("arguments") or {}))

    async def ping(self, step: dict, extra: dict) -> Any:
        return wire(await self.client.send_ping())

    async def sleep(self, step: dict, extra: dict) -> Any:
        await anyio.sleep(step["seconds"])
        return {}

    async def wait_for_file(self, step: dict, extra: dict) -> Any:
        # The test's signal that it has done its part (approved an action, say).
        with anyio.fail_after(step.get("timeout", 60)):
            while not os.path.exists(step["path"]):
                await anyio.sleep(0.02)
        return {}


async def main(args: argparse.Namespace) -> int:
    if args.stdio:
        server = StdioServerParameters(command=args.command[0], args=args.command[1:], env=dict(os.environ))
        transport: Any = stdio_client(server, errlog=sys.stderr)
    else:
        transport = http_transport(args.url, args.headers)
    mode = args.protocol_version
    if mode in HANDSHAKE_PROTOCOL_VERSIONS:
        transport, mode = offering_version(transport, mode), "legacy"

    client = Client(
        transport,
        mode=mode,
        client_info=types.Implementation(name=args.client_name, version="1.0.0"),
        sampling_callback=answer_sampling,
        cache=None,  # every request must reach the server (or the gateway under test)
    )
    connected = anyio.Event()
    ran = False

    async def session() -> None:
        nonlocal ran
        async with client:
            connected.set()
            runner = Runner(client)
            for i, step in enumerate(args.steps):
                await runner.run(step, i)
            ran = True

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(session)
            # The SDK puts no time limit on the handshake; a server that never answers it would
            # hang the driver. (A scope around `async with client` would cut the scenario too.)
            with anyio.move_on_after(args.connect_timeout):
                await connected.wait()
            if not connected.is_set():
                tg.cancel_scope.cancel()
                print(f"py_client: connection failed: no handshake within {args.connect_timeout:g} s", file=sys.stderr)
                return 1
    except Exception as exc:
        if not connected.is_set():
            print(f"py_client: connection failed: {error_of(exc)['message']}", file=sys.stderr)
            return 1
        if not ran:
            print(f"py_client: connection lost: {error_of(exc)['message']}", file=sys.stderr)
            return 1
        # The scenario ran; a failure while closing the connection does not change its outcome.
        print(f"py_client: while closing: {error_of(exc)['message']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main, parse_args(sys.argv[1:])))
