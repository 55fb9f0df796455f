"""The scenarios of tests/mcp/selftest and the checks on what the client drivers printed.

    selftest_check.py scenario NAME                      print scenario NAME as JSON
    selftest_check.py check NAME OUTPUT [CALL_LOG]       check a driver's output (and the toy's call log)

NAME is `toy` (the toy server over stdio: every op and tool, `garbage` and `crash` last),
`toy-http` (the same over HTTP, without `garbage` and `crash`, which would end the shared server)
or `everything` (the reference server `server-everything`). A failed check exits 1 naming the step.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any

TOY_TOOLS = ["echo", "write_file", "delete_repository", "fail", "slow", "hang", "crash", "garbage", "ask_model"]


def toy_scenario(over_stdio: bool) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = [
        {"op": "initialize_info"},
        {"op": "list_tools"},
        {"op": "call_tool", "name": "echo", "arguments": {"text": "hello"}},
        {"op": "call_tool", "name": "write_file", "arguments": {"path": "/tmp/x", "content": "12345"}},
        {"op": "call_tool", "name": "delete_repository", "arguments": {"name": "repo1"}},
        {"op": "call_tool", "name": "fail", "arguments": {"message": "boom"}},
        {"op": "call_tool", "name": "slow", "arguments": {"seconds": 0.3}, "progress": True},
        {"op": "call_tool", "name": "slow", "arguments": {"seconds": 0.1}, "progress": False},
        {"op": "call_tool", "name": "ask_model", "arguments": {"question": "why?"}},
        {"op": "call_tool", "name": "hang", "arguments": {}, "timeout": 0.5},
        {"op": "call_tool", "name": "hang", "arguments": {}, "cancel_after": 0.3},
        {"op": "list_resources"},
        {"op": "list_resource_templates"},
        {"op": "read_resource", "uri": "toy://readme"},
        {"op": "read_resource", "uri": "toy://items/7"},
        {"op": "list_prompts"},
        {"op": "get_prompt", "name": "greet", "arguments": {"name": "Bob"}},
        {"op": "ping"},
        {"op": "sleep", "seconds": 0.1},
        {
            "op": "parallel",
            "steps": [
                {"op": "call_tool", "name": "slow", "arguments": {"seconds": 0.5}},
                {"op": "call_tool", "name": "echo", "arguments": {"text": "meanwhile"}},
            ],
        },
    ]
    if over_stdio:
        steps += [
            {"op": "call_tool", "name": "garbage", "arguments": {}},
            {"op": "call_tool", "name": "echo", "arguments": {"text": "after garbage"}},
            {"op": "call_tool", "name": "crash", "arguments": {}},
            {"op": "call_tool", "name": "echo", "arguments": {"text": "after crash"}},
        ]
    return steps


EVERYTHING = [
    {"op": "initialize_info"},
    {"op": "list_tools"},
    {"op": "call_tool", "name": "echo", "arguments": {"message": "hi"}},
    {"op": "call_tool", "name": "trigger-long-running-operation", "arguments": {"duration": 0.6, "steps": 3}, "progress": True},
    {"op": "call_tool", "name": "trigger-sampling-request", "arguments": {"prompt": "why?"}},
    {"op": "list_resources"},
    {"op": "list_resource_templates"},
    {"op": "read_resource", "uri": "demo://resource/static/document/architecture.md"},
    {"op": "list_prompts"},
    {"op": "get_prompt", "name": "args-prompt", "arguments": {"city": "Paris"}},
    {"op": "ping"},
    {"op": "sleep", "seconds": 0.1},
    {
        "op": "parallel",
        "steps": [
            {"op": "call_tool", "name": "echo", "arguments": {"message": "a"}},
            {"op": "call_tool", "name": "echo", "arguments": {"message": "b"}},
        ],
    },
]  # fmt: skip

SCENARIOS = {"toy": toy_scenario(True), "toy-http": toy_scenario(False), "everything": EVERYTHING}


class Checker:
    def __init__(self, lines: list[dict[str, Any]]) -> None:
        self.by_step = {str(line["step"]): line for line in lines}
        self.order = [str(line["step"]) for line in lines]

    def line(self, step: int | str, op: str, ok: bool = True) -> dict[str, Any]:
        line = self.by_step.get(str(step))
        expect(line is not None, step, "no output line")
        assert line is not None
        expect(line["op"] == op, step, f"op {line['op']!r}, expected {op!r}")
        expect(line["ok"] is ok, step, f"ok is {line['ok']}: {json.dumps(line.get('error'))}")
        return line

    def result(self, step: int | str, op: str) -> Any:
        return self.line(step, op)["result"]

    def text(self, step: int | str, is_error: bool = False) -> str:
        result = self.result(step, "call_tool")
        expect(result["isError"] is is_error, step, f"isError is {result['isError']}")
        return "".join(block["text"] for block in result["content"] if block["type"] == "text")


def expect(condition: bool, step: int | str, message: str) -> None:
    if not condition:
        raise SystemExit(f"selftest_check: step {step}: {message}")


def check_toy(c: Checker, over_stdio: bool, calls: list[dict[str, Any]]) -> None:
    info = c.result(0, "initialize_info")
    expect(info["serverInfo"]["name"] == "toy" and info["serverInfo"]["version"] == "1.0.0", 0, "serverInfo")
    expect(info["instructions"] == "toy instructions", 0, "instructions")
    expect("tools" in info["capabilities"], 0, "no tools capability")
    modern = info["protocolVersion"] == "2026-07-28"
    expect(sorted(c.result(1, "list_tools")["names"]) == sorted(TOY_TOOLS), 1, "tool names")
    expect(c.text(2) == "echo: hello", 2, "echo")
    expect(c.text(3) == "wrote 5 bytes to /tmp/x", 3, "write_file")
    expect(c.text(4) == "deleted repo1", 4, "delete_repository")
    expect(c.text(5, is_error=True) == "boom", 5, "fail")
    expect(c.text(6) == "slept 0.3", 6, "slow")
    progress = c.line(6, "call_tool")["progress"]
    expect([p["progress"] for p in progress] == [0, 1, 2] and all(p["total"] == 3 for p in progress), 6, "progress")
    expect(c.text(7) == "slept 0.1" and c.line(7, "call_tool")["progress"] == [], 7, "slow without progress")
    expect(c.text(8) == "model says: why?", 8, "ask_model")
    expect(c.line(9, "call_tool", ok=False)["error"]["code"] == -32001, 9, "timeout is not -32001")
    expect(c.line(10, "call_tool", ok=False).get("cancelled") is True, 10, "not cancelled")
    expect([r["uri"] for r in c.result(11, "list_resources")["resources"]] == ["toy://readme"], 11, "resources")
    templates = c.result(12, "list_resource_templates")["resourceTemplates"]
    expect([t["uriTemplate"] for t in templates] == ["toy://items/{item_id}"], 12, "templates")
    expect(c.result(13, "read_resource")["contents"][0]["text"] == "hello from the toy server", 13, "readme")
    expect(c.result(14, "read_resource")["contents"][0]["text"] == "item 7", 14, "template read")
    expect([p["name"] for p in c.result(15, "list_prompts")["prompts"]] == ["greet"], 15, "prompts")
    expect(c.result(16, "get_prompt")["messages"][0]["content"]["text"] == "Hello, Bob!", 16, "greet")
    if modern:  # 2026-07-28 removed ping
        expect(c.line(17, "ping", ok=False)["error"]["code"] == -32601, 17, "ping on 2026-07-28")
    else:
        c.result(17, "ping")
    c.result(18, "sleep")
    expect(c.text("19.0") == "slept 0.5" and c.text("19.1") == "echo: meanwhile", 19, "parallel")
    expect(c.order.index("19.1") < c.order.index("19.0"), 19, "the parallel steps did not overlap")
    expected_calls = Counter(echo=2, write_file=1, delete_repository=1, fail=1, slow=3, hang=2)
    # On 2026-07-28 ask_model is two tools/call requests: the second carries the sampled answer.
    expected_calls["ask_model"] = 2 if modern else 1
    if over_stdio:
        expect(c.text(20) == "wrote garbage", 20, "garbage")
        expect(c.text(21) == "echo: after garbage", 21, "the session did not survive a garbage line")
        c.line(22, "call_tool", ok=False)
        c.line(23, "call_tool", ok=False)
        expected_calls.update(garbage=1, echo=1, crash=1)
    expect(len(c.order) == len(c.by_step), "-", "a step printed more than once")
    if calls:
        expect(Counter(call["tool"] for call in calls) == expected_calls, "-", f"call log {calls}")
        expect(calls[0] == {"tool": "echo", "arguments": {"text": "hello"}, "pid": calls[0]["pid"]}, "-", "call log line")
        expect(len({call["pid"] for call in calls}) == 1, "-", "calls from several processes")


def check_everything(c: Checker) -> None:
    info = c.result(0, "initialize_info")
    expect(info["serverInfo"]["name"] == "mcp-servers/everything", 0, "serverInfo")
    expect(info["protocolVersion"] == "2025-11-25", 0, "protocolVersion")
    names = c.result(1, "list_tools")["names"]
    # trigger-sampling-request is listed only to clients that declare the sampling capability.
    expect({"echo", "trigger-long-running-operation", "trigger-sampling-request"} <= set(names), 1, "tools")
    expect(c.text(2) == "Echo: hi", 2, "echo")
    progress = c.line(3, "call_tool")["progress"]
    # The TypeScript client may drop the last one, sent right before the response.
    expect([p["progress"] for p in progress] in ([1, 2, 3], [1, 2]), 3, f"progress {progress}")
    expect("model says: Resource trigger-sampling-request context: why?" in c.text(4), 4, "sampling")
    expect(len(c.result(5, "list_resources")["resources"]) > 0, 5, "resources")
    expect(len(c.result(6, "list_resource_templates")["resourceTemplates"]) > 0, 6, "templates")
    expect(c.result(7, "read_resource")["contents"][0]["text"].startswith("# Everything Server"), 7, "read")
    expect("args-prompt" in [p["name"] for p in c.result(8, "list_prompts")["prompts"]], 8, "prompts")
    expect("Paris" in c.result(9, "get_prompt")["messages"][0]["content"]["text"], 9, "get_prompt")
    c.result(10, "ping")
    c.result(11, "sleep")
    expect(c.text("12.0") == "Echo: a" and c.text("12.1") == "Echo: b", 12, "parallel")


def main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] == "scenario" and argv[1] in SCENARIOS:
        print(json.dumps(SCENARIOS[argv[1]]))
        return
    if len(argv) in (3, 4) and argv[0] == "check" and argv[1] in SCENARIOS:
        with open(argv[2], encoding="utf-8") as output:
            checker = Checker([json.loads(line) for line in output])
        calls: list[dict[str, Any]] = []
        if len(argv) == 4:
            with open(argv[3], encoding="utf-8") as log:
                calls = [json.loads(line) for line in log]
        if argv[1] == "everything":
            check_everything(checker)
        else:
            check_toy(checker, argv[1] == "toy", calls)
        return
    raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
