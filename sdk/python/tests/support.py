"""Test helpers: a real `faramesh serve` process, running the examples, a stub HTTP server, a
fault-injecting proxy."""

from __future__ import annotations

import collections
import http.client
import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

import httpx

from faramesh import ExecutionGovernorClient

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent
POLICY = HERE / "policy.yaml"
EXAMPLES = REPO / "examples"

# Upper bounds for things that normally take milliseconds; they only keep a broken server from
# hanging the suite, no assertion depends on them.
STARTUP_TIMEOUT_S = 60.0
WAIT_S = 60.0

ANSI = re.compile(r"\x1b\[[0-9;]*m")
APPROVE = re.compile(r"faramesh approve ([0-9a-f-]{36})")


def faramesh_bin() -> str:
    configured = os.environ.get("FARAMESH_BIN")
    if configured:
        return configured
    for candidate in (REPO / "target" / "release" / "faramesh", REPO / "target" / "debug" / "faramesh"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("faramesh")
    if found:
        return found
    raise RuntimeError("set FARAMESH_BIN to a faramesh binary (sdk/python/run-tests does)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment without any FARAMESH_/FARA_ variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FARAMESH_", "FARA_"))}
    env.update(extra or {})
    return env


def wait_until(
    predicate: Callable[[], Any], what: str, timeout: float = WAIT_S, interval: float = 0.02
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


class Server:
    """One `faramesh serve` on 127.0.0.1:<port> in its own directory."""

    def __init__(
        self,
        workdir: Path,
        *,
        policy: Path = POLICY,
        port: Optional[int] = None,
        env: Optional[Dict[str, str]] = None,
    ) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.policy = policy
        self.port = port or free_port()
        self.extra_env = dict(env or {})
        self.token = self.extra_env.get("FARAMESH_TOKEN")
        self.proc: Optional[subprocess.Popen[str]] = None
        self.log: Deque[str] = collections.deque(maxlen=300)
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db(self) -> Path:
        return self.workdir / "actions.db"

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        self.proc = subprocess.Popen(
            [
                faramesh_bin(),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--policy",
                str(self.policy),
                "--db",
                str(self.db),
                "--profile",
                str(self.workdir / "none.yaml"),
            ],
            cwd=self.workdir,
            env=clean_env({"RUST_LOG": "info", "NO_COLOR": "1", **self.extra_env}),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        proc = self.proc
        threading.Thread(target=self._drain, args=(proc,), daemon=True).start()
        self._wait_ready(proc)

    def _drain(self, proc: "subprocess.Popen[str]") -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.log.append(ANSI.sub("", line.rstrip("\n")))

    def _wait_ready(self, proc: "subprocess.Popen[str]") -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        with httpx.Client(timeout=2.0) as http:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"faramesh serve exited with {proc.returncode}:\n" + "\n".join(self.log)
                    )
                try:
                    if http.get(self.url + "/ready").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() >= deadline:
                    self.stop()
                    raise RuntimeError("faramesh serve did not become ready:\n" + "\n".join(self.log))
                time.sleep(0.02)

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)

    def restart(self) -> None:
        self.stop()
        self.start()

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a `faramesh` client command against this server."""
        command = [faramesh_bin(), *args, "--port", str(self.port), "--no-color"]
        if self.token:
            command += ["--token", self.token]
        done = subprocess.run(
            command,
            cwd=self.workdir,
            env=clean_env({"NO_COLOR": "1"}),
            capture_output=True,
            text=True,
            timeout=WAIT_S,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done


# --------------------------------------------------------------------------- examples


def run_example(script: Path, srv: Server, workdir: Path) -> List[str]:
    """Run an example with this interpreter; when it prints the approve command, run that
    command with the CLI. Returns the lines it printed."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "visible-to-ls.txt").write_text("hello\n")
    proc = subprocess.Popen(
        [sys.executable, "-u", str(script)],
        cwd=workdir,
        env=clean_env({"FARAMESH_BASE_URL": srv.url}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: "queue.Queue[str | None]" = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    output: List[str] = []
    approved = False
    try:
        while True:
            line = lines.get(timeout=WAIT_S)
            if line is None:
                break
            output.append(line)
            match = APPROVE.search(line)
            if match and not approved:
                srv.cli("approve", match.group(1), "--reason", "approved by the example test")
                approved = True
        assert proc.wait(timeout=WAIT_S) == 0, "\n".join(output)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert approved, "the example never printed a `faramesh approve <id>` command:\n" + "\n".join(output)
    return output


def check_example(script: Path, agent: str, denial: str, srv: Server, workdir: Path) -> None:
    """Run an example against ``srv`` (started with examples/policy.yaml) and check its three
    calls: the health check ran, the destructive command was refused with ``denial`` in the
    output, and ``ls -la`` ran once approved; and that the server recorded exactly that."""
    output = "\n".join(run_example(script, srv, workdir))

    assert 'HTTP 200 {"status":"healthy"}' in output
    assert denial in output
    assert "visible-to-ls.txt" in output  # `ls -la` ran after the approval

    with ExecutionGovernorClient(srv.url, timeout=15.0) as c:
        actions = list(reversed(c.list_actions(agent_id=agent)))
    summary = [(a["tool"], a["status"]) for a in actions]
    assert summary == [("http", "succeeded"), ("shell", "denied"), ("shell", "succeeded")], output
    assert actions[2]["params"] == {"cmd": "ls -la"}
    assert actions[2]["reason"] == "approved by the example test"


# --------------------------------------------------------------------------- stub HTTP server


Reply = Tuple[int, Any]


class StubServer:
    """A local HTTP server answering every request with ``respond(method, path, n)``
    (``n`` counts requests from 1). ``respond`` may return None to never answer."""

    def __init__(self, respond: Callable[[str, str, int], Optional[Reply]]) -> None:
        self.requests: List[Tuple[str, str, Dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with stub._lock:
                    stub.requests.append((self.command, self.path, dict(self.headers), body))
                    n = len(stub.requests)
                reply = respond(self.command, self.path, n)
                if reply is None:
                    stub._release.wait(WAIT_S)
                    self.close_connection = True
                    return
                status, payload = reply
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


# --------------------------------------------------------------------------- fault-injecting proxy


class DroppingProxy:
    """An HTTP proxy in front of ``upstream`` that forwards every request, but for the first
    ``drops`` requests matching ``should_drop(method, path)`` closes the client connection
    after the upstream answered, without passing the answer on (a response lost on the way
    back, after the server acted)."""

    def __init__(self, upstream: str, should_drop: Callable[[str, str], bool], drops: int = 1) -> None:
        self.upstream = httpx.URL(upstream)
        self.should_drop = should_drop
        self.drops_left = drops
        self.seen: List[Tuple[str, str, Dict[str, str], bytes]] = []
        self.dropped: List[Tuple[str, str, int, bytes]] = []
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_request(reader: Any) -> Optional[Tuple[str, str, Dict[str, str], bytes]]:
        line = reader.readline()
        if not line:
            return None
        method, path, _ = line.decode("latin-1").split(" ", 2)
        headers: Dict[str, str] = {}
        while True:
            h = reader.readline().decode("latin-1")
            if h in ("\r\n", "\n", ""):
                break
            name, _, value = h.partition(":")
            headers[name.strip()] = value.strip()
        length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0"))
        body = reader.read(length) if length else b""
        return method, path, headers, body

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        upstream = http.client.HTTPConnection(self.upstream.host, self.upstream.port, timeout=WAIT_S)
        try:
            while True:
                request = self._read_request(reader)
                if request is None:
                    return
                method, path, headers, body = request
                with self._lock:
                    self.seen.append(request)
                forward = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection")}
                upstream.request(method, path, body=body or None, headers=forward)
                response = upstream.getresponse()
                payload = response.read()
                with self._lock:
                    drop = self.drops_left > 0 and self.should_drop(method, path)
                    if drop:
                        self.drops_left -= 1
                        self.dropped.append((method, path, response.status, payload))
                if drop:
                    return
                head = [f"HTTP/1.1 {response.status} {response.reason}"]
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "content-length", "connection"):
                        head.append(f"{name}: {value}")
                head.append(f"Content-Length: {len(payload)}")
                conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
        except OSError:
            return
        finally:
            upstream.close()
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def close(self) -> None:
        self._closed = True
        self._sock.close()


def unique(prefix: str = "sdk") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
