"""A small MCP server for the gateway's integration tests, on the official Python SDK (mcp 2.x).

    toy_server.py                 serve MCP over stdio
    toy_server.py --http PORT     serve Streamable HTTP at http://127.0.0.1:PORT/mcp; with PORT 0 a
                                  free port is chosen. The first stdout line is always
                                  `listening on http://127.0.0.1:NNNN/mcp`, printed once the socket
                                  accepts connections, so a test may connect as soon as it reads it.

Every tool invocation first appends `{"tool", "arguments", "pid"}` as one JSON line to the file
named by $TOY_CALL_LOG (when set), so a test can prove an upstream was, or was never, called.

mcp 2.x names used here: `MCPServer` (v1's FastMCP) and its `tool`, `resource` and `prompt`
decorators, `Context.report_progress`, `MCPServer.run_stdio_async`,
`MCPServer.streamable_http_app`, and the resolver markers `Resolve` + `Sample` for `ask_model`.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from typing import Annotated, Any

import anyio
import uvicorn
from mcp.server.mcpserver import Context, MCPServer, Resolve, Sample
from mcp.types import CallToolResult, CreateMessageResult, SamplingMessage, TextContent, ToolAnnotations

# While it serves, the stdio transport of mcp 2.x points fd 1 at stderr (so stray prints miss
# the wire) and writes the protocol through a private duplicate of the original stdout. `garbage`
# must reach the real wire, so keep our own duplicate, taken before the transport starts.
WIRE_FD = os.dup(1)

mcp = MCPServer(name="toy", version="1.0.0", instructions="toy instructions", log_level="WARNING")


def log_call(tool: str, **arguments: Any) -> None:
    """Record one invocation in $TOY_CALL_LOG, written and closed before the tool goes on."""
    path = os.environ.get("TOY_CALL_LOG")
    if path:
        line = json.dumps({"tool": tool, "arguments": arguments, "pid": os.getpid()})
        with open(path, "a", encoding="utf-8") as log:
            log.write(line + "\n")


def reply(message: str, is_error: bool = False) -> CallToolResult:
    """A text-only result. Returning a CallToolResult keeps the SDK from adding a
    `structuredContent` copy of the text (it does so for a tool annotated `-> str`)."""
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=is_error)


@mcp.tool(description="Echo the text back.", annotations=ToolAnnotations(read_only_hint=True))
def echo(text: str) -> CallToolResult:
    log_call("echo", text=text)
    return reply(f"echo: {text}")


@mcp.tool(description="Pretend to write a file (nothing is written).", annotations=ToolAnnotations(destructive_hint=True))
def write_file(path: str, content: str) -> CallToolResult:
    log_call("write_file", path=path, content=content)
    return reply(f"wrote {len(content.encode())} bytes to {path}")


@mcp.tool(description="Pretend to delete a repository.", annotations=ToolAnnotations(destructive_hint=True))
def delete_repository(name: str) -> CallToolResult:
    log_call("delete_repository", name=name)
    return reply(f"deleted {name}")


@mcp.tool(description="Return a tool error (isError: true) carrying the message.")
def fail(message: str) -> CallToolResult:
    log_call("fail", message=message)
    return reply(message, is_error=True)


@mcp.tool(description="Sleep, sending progress every 0.1 s when the request carries a progress token.")
async def slow(seconds: float, ctx: Context) -> CallToolResult:
    log_call("slow", seconds=seconds)
    # Progress k of N goes out at the start of each 0.1 s tick, so the last one leaves a tick
    # before the response: the TypeScript client drops a progress notification that arrives
    # right before the response to its request. report_progress is a no-op without a token.
    ticks = max(1, round(seconds / 0.1))
    for tick in range(ticks):
        await ctx.report_progress(tick, ticks, f"tick {tick + 1} of {ticks}")
        await anyio.sleep(seconds / ticks)
    return reply(f"slept {seconds:g}")


@mcp.tool(description="Never return.")
async def hang() -> CallToolResult:
    log_call("hang")
    await anyio.sleep_forever()
    raise AssertionError("unreachable")


@mcp.tool(description="Exit the server process at once with status 3, without answering (over HTTP too).")
def crash() -> CallToolResult:
    log_call("crash")
    os._exit(3)


@mcp.tool(description="Write a line of non-JSON garbage to the stdio wire, then answer normally.")
def garbage() -> CallToolResult:
    log_call("garbage")
    # One write() of a short line, so it cannot tear a frame the transport writes concurrently.
    os.write(WIRE_FD, b"this line is not JSON-RPC {{{\n")
    return reply("wrote garbage")


def ask_question(question: str) -> Sample:
    """Resolver of ask_model: it runs before the tool body, on each tools/call the server gets.

    On handshake-era protocol versions (<= 2025-11-25) the SDK sends the sampling request as a
    server-to-client `sampling/createMessage` on the open call. On 2026-07-28 it answers the first
    tools/call with an InputRequiredResult carrying the request and the client calls again with
    the answer, so ask_model is then invoked (and logged) twice.
    """
    log_call("ask_model", question=question)
    message = SamplingMessage(role="user", content=TextContent(type="text", text=question))
    return Sample([message], max_tokens=100)


@mcp.tool(description="Ask the client's model (a sampling request back to the client).")
def ask_model(question: str, answer: Annotated[CreateMessageResult, Resolve(ask_question)]) -> CallToolResult:
    content = answer.content
    return reply(content.text if isinstance(content, TextContent) else json.dumps(content.model_dump(mode="json")))


@mcp.resource("toy://readme", name="readme", description="The toy server's readme.", mime_type="text/plain")
def readme() -> str:
    return "hello from the toy server"


@mcp.resource("toy://items/{item_id}", name="item", description="One toy item.", mime_type="text/plain")
def item(item_id: str) -> str:
    return f"item {item_id}"


@mcp.prompt(description="Greet someone.")
def greet(name: str) -> str:
    return f"Hello, {name}!"


async def serve_http(port: int) -> None:
    # Bind and listen before announcing the URL, so the announced port already accepts
    # connections (they queue until uvicorn starts accepting).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}/mcp", flush=True)
    app = mcp.streamable_http_app(host="127.0.0.1")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    await server.serve(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--http", type=int, metavar="PORT", help="serve Streamable HTTP on 127.0.0.1:PORT (0: any)")
    args = parser.parse_args()
    if args.http is None:
        anyio.run(mcp.run_stdio_async)
    else:
        anyio.run(serve_http, args.http)


if __name__ == "__main__":
    sys.exit(main())
