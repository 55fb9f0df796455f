//! The HTTP gateway of `faramesh serve` end to end: the official MCP clients (Python `mcp`,
//! TypeScript `@modelcontextprotocol/sdk`) reach `/mcp/{name}` over Streamable HTTP; behind it
//! run the toy server (a child per session, or a remote server over Streamable HTTP) and
//! `server-everything`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test stops at the first setup step or expectation that fails"
)]

mod common;
mod mcp_support;

use mcp_support::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

fn toy_servers(dir: &Path) -> Option<String> {
    Some(format!("servers:\n{}", Faramesh::toy_entry(dir, "toy")))
}

fn way(faramesh: &Faramesh, name: &str) -> Way {
    Way::Http {
        url: format!("{}/mcp/{name}", faramesh.url),
        headers: Vec::new(),
    }
}

fn with_token(faramesh: &Faramesh, name: &str, token: &str, extra: &[&str]) -> Way {
    let mut headers = vec![format!("Authorization: Bearer {token}")];
    headers.extend(extra.iter().map(|h| (*h).to_owned()));
    Way::Http {
        url: format!("{}/mcp/{name}", faramesh.url),
        headers,
    }
}

/// The toy server's calls through the gateway (its log is named by the servers file).
fn toy_calls(faramesh: &Faramesh) -> Vec<Value> {
    faramesh.calls("toy")
}

#[test]
fn allowed_denied_and_hidden_calls_through_the_http_gateway() {
    let faramesh = Faramesh::start_with(toy_servers, &[]);
    for sdk in BOTH {
        let scenario = json!([
            {"op": "initialize_info"},
            {"op": "list_tools"},
            {"op": "call_tool", "name": "echo", "arguments": {"text": format!("{sdk:?}")}},
            {"op": "call_tool", "name": "write_file", "arguments": {"path": "/etc/passwd", "content": "x"}},
            {"op": "call_tool", "name": "delete_repository", "arguments": {"name": "prod"}},
            {"op": "call_tool", "name": "ask_model", "arguments": {"question": "why?"}},
            {"op": "list_resources"},
        ]);
        let results = run(sdk, scenario, way(&faramesh, "toy"), Path::new("/dev/null"));
        assert_eq!(results[0]["result"]["serverInfo"]["name"], "toy", "{sdk:?}");
        let names = results[1]["result"]["names"].as_array().unwrap();
        assert!(names.contains(&json!("echo")), "{sdk:?}");
        assert!(
            !names.contains(&json!("delete_repository")),
            "{sdk:?}: {names:?}"
        );
        assert_eq!(text_of(&results[2]), format!("echo: {sdk:?}"));
        for step in [3, 4] {
            assert_eq!(results[step]["result"]["isError"], true, "{sdk:?}");
            assert!(
                text_of(&results[step]).starts_with("Faramesh denied this call: "),
                "{sdk:?}: {}",
                results[step]
            );
        }
        // Sampling: a request from the server to the client crosses the gateway.
        assert_eq!(text_of(&results[5]), "model says: why?", "{sdk:?}");
        assert_eq!(results[6]["ok"], true, "{sdk:?}");
    }
    let received: Vec<Value> = toy_calls(&faramesh)
        .iter()
        .map(|c| c["tool"].clone())
        .collect();
    assert_eq!(
        received,
        [
            json!("echo"),
            json!("ask_model"),
            json!("echo"),
            json!("ask_model")
        ]
    );
    for action in faramesh.actions() {
        assert_eq!(action["context"]["mcp"]["transport"], "http");
        assert_eq!(
            action["agent_id"], "mcp:toy",
            "an open server names the agent after the server"
        );
        let expected: &[&str] = match action["operation"].as_str().unwrap() {
            "echo" | "ask_model" => &["created", "decision_made", "started", "succeeded"],
            _ => &["created", "decision_made"],
        };
        assert_eq!(faramesh.events(action["id"].as_str().unwrap()), expected);
    }
}

#[test]
fn a_call_waits_for_approval_and_a_repeat_attaches_over_http() {
    let faramesh = Faramesh::start_with(toy_servers, &[("FARAMESH_MCP_APPROVAL_WAIT", "1")]);
    for sdk in BOTH {
        let path = format!("/home/{sdk:?}/later.txt");
        let call = json!({"op": "call_tool", "name": "write_file", "progress": true,
                          "arguments": {"path": path, "content": "later"}});
        let approved = faramesh.dir.path().join(format!("{sdk:?}.approved"));
        let scenario = json!([
            call,
            {"op": "wait_for_file", "path": approved.display().to_string()},
            call,
        ]);
        let driver = Driver::start(sdk, &scenario, way(&faramesh, "toy"), &[]);
        let still_pending = driver.next();
        let action = faramesh.pending("write_file");
        assert!(
            text_of(&still_pending).contains("Make the same call again once it is approved"),
            "{sdk:?}: {still_pending}"
        );
        assert!(
            !still_pending["progress"].as_array().unwrap().is_empty(),
            "{sdk:?}: progress while waiting"
        );
        faramesh.decide(&action, true, "fine");
        std::fs::write(&approved, "").unwrap();
        let results = driver.results();
        assert_eq!(
            text_of(&results[1]),
            format!("wrote 5 bytes to {path}"),
            "{sdk:?}"
        );
        let mine: Vec<Value> = faramesh
            .actions()
            .into_iter()
            .filter(|a| a["params"]["path"] == path.as_str())
            .collect();
        assert_eq!(mine.len(), 1, "{sdk:?}: one action");
        assert_eq!(mine[0]["status"], "succeeded");
    }
    assert_eq!(toy_calls(&faramesh).len(), 2);
}

#[test]
fn a_crashing_or_hanging_server_fails_its_call_and_the_next_session_starts_afresh() {
    let faramesh = Faramesh::start_with(toy_servers, &[("FARAMESH_MCP_CALL_TIMEOUT", "2")]);
    for sdk in BOTH {
        let results = run(
            sdk,
            json!([
                {"op": "call_tool", "name": "garbage", "arguments": {}},
                {"op": "call_tool", "name": "hang", "arguments": {}},
                {"op": "call_tool", "name": "echo", "arguments": {"text": "after the hang"}},
                {"op": "call_tool", "name": "crash", "arguments": {}},
            ]),
            way(&faramesh, "toy"),
            Path::new("/dev/null"),
        );
        // Garbage on the child's stdout is dropped; the call is answered.
        assert_eq!(
            text_of(&results[0]),
            "wrote garbage",
            "{sdk:?}: {}",
            results[0]
        );
        assert!(
            text_of(&results[1]).starts_with("The MCP server toy did not answer within 2 s"),
            "{sdk:?}: {}",
            results[1]
        );
        assert_eq!(text_of(&results[2]), "echo: after the hang", "{sdk:?}");
        assert_eq!(
            results[3]["result"]["isError"], true,
            "{sdk:?}: {}",
            results[3]
        );
        assert!(
            text_of(&results[3]).contains("exited with status 3"),
            "{sdk:?}: {}",
            results[3]
        );
        // A new session gets a new server.
        let again = run(
            sdk,
            json!([{"op": "call_tool", "name": "echo", "arguments": {"text": "fresh"}}]),
            way(&faramesh, "toy"),
            Path::new("/dev/null"),
        );
        assert_eq!(text_of(&again[0]), "echo: fresh", "{sdk:?}: {}", again[0]);
    }
    let statuses: Vec<(String, String)> = faramesh
        .actions()
        .into_iter()
        .map(|a| {
            (
                a["operation"].as_str().unwrap().to_owned(),
                a["status"].as_str().unwrap().to_owned(),
            )
        })
        .filter(|(op, _)| op == "hang" || op == "crash")
        .collect();
    assert_eq!(statuses.len(), 4);
    assert!(statuses.iter().all(|(_, s)| s == "failed"), "{statuses:?}");
    let pids: std::collections::HashSet<u64> = toy_calls(&faramesh)
        .iter()
        .map(|c| c["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), 4, "one server per session");
}

/// The toy server over Streamable HTTP, stopped when dropped.
struct RemoteToy {
    child: Child,
    url: String,
}

impl Drop for RemoteToy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn remote_toy(calls: &Path) -> RemoteToy {
    let mut child = Command::new(python())
        .arg(repo().join("tests/mcp/servers/toy_server.py"))
        .args(["--http", "0"])
        .env("TOY_CALL_LOG", calls)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .expect("the toy server says where it listens")
        .to_owned();
    RemoteToy { child, url }
}

#[test]
fn a_remote_server_over_streamable_http_is_governed_with_secret_headers() {
    let scratch = tempfile::tempdir().unwrap();
    let calls = scratch.path().join("remote.calls");
    let remote = remote_toy(&calls);
    let url = remote.url.clone();
    let faramesh = Faramesh::start_with(
        move |_| {
            Some(format!(
                "servers:\n  toy:\n    url: {url}\n    headers: {{X-Api-Key: \"${{TOY_KEY}}\"}}\n"
            ))
        },
        &[("TOY_KEY", "sk-very-secret-value")],
    );
    for sdk in BOTH {
        let results = run(
            sdk,
            json!([
                {"op": "list_tools"},
                {"op": "call_tool", "name": "echo", "arguments": {"text": "remote"}},
                {"op": "call_tool", "name": "delete_repository", "arguments": {"name": "x"}},
                {"op": "call_tool", "name": "ask_model", "arguments": {"question": "far?"}},
            ]),
            way(&faramesh, "toy"),
            Path::new("/dev/null"),
        );
        let names = results[0]["result"]["names"].as_array().unwrap();
        assert!(!names.contains(&json!("delete_repository")), "{sdk:?}");
        assert_eq!(
            text_of(&results[1]),
            "echo: remote",
            "{sdk:?}: {}",
            results[1]
        );
        assert_eq!(results[2]["result"]["isError"], true, "{sdk:?}");
        assert_eq!(
            text_of(&results[3]),
            "model says: far?",
            "{sdk:?}: {}",
            results[3]
        );
    }
    let received: Vec<String> = std::fs::read_to_string(&calls)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["tool"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(received, ["echo", "ask_model", "echo", "ask_model"]);
    // The servers list names the URL, never the header's value.
    let listed = reqwest::blocking::get(format!("{}/v1/mcp/servers", faramesh.url))
        .unwrap()
        .text()
        .unwrap();
    let servers: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(servers["servers"][0]["name"], "toy");
    assert_eq!(servers["servers"][0]["transport"], "http");
    assert_eq!(servers["servers"][0]["target"], remote.url.as_str());
    assert!(!listed.contains("sk-very-secret-value"));
    let cli = Command::new(assert_cmd::cargo::cargo_bin("faramesh"))
        .args(["mcp", "servers", "--url", &faramesh.url])
        .env("NO_COLOR", "1")
        .env_remove("FARAMESH_TOKEN")
        .output()
        .unwrap();
    assert!(cli.status.success());
    let table = String::from_utf8_lossy(&cli.stdout);
    let row = table
        .lines()
        .find(|l| l.starts_with("toy "))
        .expect("a row for toy");
    assert!(
        row.contains("http") && row.contains("/mcp/toy") && row.contains(&remote.url),
        "{table}"
    );
    assert!(!table.contains("sk-very-secret-value"));
}

#[test]
fn server_everything_works_through_the_http_gateway() {
    let everything = repo()
        .join("tests/mcp/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let faramesh = Faramesh::start_with(
        move |_| {
            Some(format!(
                "servers:\n  everything:\n    command: node\n    args: [{}, stdio]\n",
                everything.display()
            ))
        },
        &[],
    );
    for sdk in BOTH {
        let results = run(
            sdk,
            json!([
                {"op": "list_tools"},
                {"op": "call_tool", "name": "echo", "arguments": {"message": "over http"}},
                {"op": "list_prompts"},
            ]),
            way(&faramesh, "everything"),
            Path::new("/dev/null"),
        );
        assert!(results[0]["result"]["names"]
            .as_array()
            .unwrap()
            .contains(&json!("echo")));
        assert!(
            text_of(&results[1]).contains("over http"),
            "{sdk:?}: {}",
            results[1]
        );
        assert_eq!(results[2]["ok"], true, "{sdk:?}");
    }
}

/// A raw POST to an MCP endpoint.
fn post(url: &str, headers: &[(&str, &str)], body: &Value) -> (u16, String, Option<String>) {
    let mut request = reqwest::blocking::Client::new()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().unwrap();
    let session = response
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let status = response.status().as_u16();
    // An SSE answer ends once its response is sent.
    (status, response.text().unwrap(), session)
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}})
}

#[test]
fn tokens_roles_sessions_and_origins_are_enforced() {
    let faramesh = Faramesh::start_with(toy_servers, &[("FARAMESH_TOKEN", "admin-secret")]);
    let agent = faramesh.create_token("claude", "agent");
    let other = faramesh.create_token("cursor", "agent");
    let approver = faramesh.create_token("alice", "approver");
    let endpoint = format!("{}/mcp/toy", faramesh.url);

    // The token's name is the agent, unless the client names itself.
    for sdk in BOTH {
        let results = run(
            sdk,
            json!([{"op": "call_tool", "name": "echo", "arguments": {"text": "who"}}]),
            with_token(&faramesh, "toy", &agent, &[]),
            Path::new("/dev/null"),
        );
        assert_eq!(text_of(&results[0]), "echo: who", "{sdk:?}");
        let named = run(
            sdk,
            json!([{"op": "call_tool", "name": "echo", "arguments": {"text": "named"}}]),
            with_token(&faramesh, "toy", &agent, &["X-Faramesh-Agent: release-bot"]),
            Path::new("/dev/null"),
        );
        assert_eq!(text_of(&named[0]), "echo: named", "{sdk:?}");
    }
    let agents: Vec<(String, String)> = faramesh
        .actions()
        .into_iter()
        .map(|a| {
            (
                a["params"]["text"].as_str().unwrap().to_owned(),
                a["agent_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        agents
            .iter()
            .filter(|(t, _)| t == "who")
            .all(|(_, a)| a == "claude"),
        "{agents:?}"
    );
    assert!(
        agents
            .iter()
            .filter(|(t, _)| t == "named")
            .all(|(_, a)| a == "release-bot"),
        "{agents:?}"
    );

    // No token: 401. A role that may not run actions: 403.
    let (status, _, _) = post(&endpoint, &[], &initialize());
    assert_eq!(status, 401);
    let bearer = |t: &str| format!("Bearer {t}");
    let (status, body, _) = post(
        &endpoint,
        &[("authorization", &bearer(&approver))],
        &initialize(),
    );
    assert_eq!(status, 403, "{body}");

    // A session belongs to the token that opened it.
    let (status, _, session) = post(
        &endpoint,
        &[("authorization", &bearer(&agent))],
        &initialize(),
    );
    assert_eq!(status, 200);
    let session = session.expect("initialize gives a session id");
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let (status, body, _) = post(
        &endpoint,
        &[
            ("authorization", &bearer(&other)),
            ("mcp-session-id", &session),
        ],
        &list,
    );
    assert_eq!(status, 404, "another token's session is unknown: {body}");
    let (status, body, _) = post(
        &endpoint,
        &[
            ("authorization", &bearer(&agent)),
            ("mcp-session-id", &session),
        ],
        &list,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"tools\""), "{body}");

    // A page of a foreign origin may not use it; an unknown server and a missing session are
    // refused with a reason.
    let (status, body, _) = post(
        &endpoint,
        &[
            ("authorization", &bearer(&agent)),
            ("origin", "https://evil.example"),
        ],
        &initialize(),
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("Origin"), "{body}");
    let (status, body, _) = post(
        &format!("{}/mcp/nope", faramesh.url),
        &[("authorization", &bearer(&agent))],
        &initialize(),
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("GET /v1/mcp/servers"), "{body}");
    let (status, body, _) = post(&endpoint, &[("authorization", &bearer(&agent))], &list);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Mcp-Session-Id"), "{body}");

    // Ending the session ends its server.
    let deleted = reqwest::blocking::Client::new()
        .delete(&endpoint)
        .bearer_auth(&agent)
        .header("mcp-session-id", &session)
        .send()
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let (status, _, _) = post(
        &endpoint,
        &[
            ("authorization", &bearer(&agent)),
            ("mcp-session-id", &session),
        ],
        &list,
    );
    assert_eq!(status, 404);
}

#[test]
fn an_invalid_servers_file_stops_the_start_with_every_problem_located() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mcp.yaml");
    std::fs::write(
        &file,
        "servers:\n  shell:\n    command: sh\n  remote:\n    url: https://x\n    headers: {A: \"${NOT_SET_ANYWHERE}\"}\n",
    )
    .unwrap();
    let output = Command::new(assert_cmd::cargo::cargo_bin("faramesh"))
        .args(["serve", "--port", "0", "--no-profile", "--mcp-config"])
        .arg(&file)
        .current_dir(dir.path())
        .env_remove("FARAMESH_TOKEN")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let name = file.display().to_string();
    assert!(
        stderr.contains(&format!(
            "{name}:2:3: error: server name `shell` is the tool of a built-in executor"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{name}:6:18: error: the environment has no variable `NOT_SET_ANYWHERE`"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("the MCP servers file is invalid (2 problem(s))"),
        "{stderr}"
    );
}

#[test]
fn every_protocol_version_with_a_handshake_works_through_the_http_gateway() {
    let faramesh = Faramesh::start_with(toy_servers, &[]);
    let cases: &[(Sdk, &str, &str)] = &[
        // The Python client's default first asks for the handshake-free version; the gateway
        // declines, and the client falls back to the newest version with a handshake.
        (Sdk::Python, "auto", "2025-11-25"),
        (Sdk::Python, "2025-11-25", "2025-11-25"),
        (Sdk::Python, "2025-06-18", "2025-06-18"),
        (Sdk::Python, "2025-03-26", "2025-03-26"),
        (Sdk::Python, "2024-11-05", "2024-11-05"),
        (Sdk::TypeScript, "2025-11-25", "2025-11-25"),
        (Sdk::TypeScript, "2025-06-18", "2025-06-18"),
        (Sdk::TypeScript, "2025-03-26", "2025-03-26"),
        (Sdk::TypeScript, "2024-11-05", "2024-11-05"),
    ];
    for (sdk, asked, expected) in cases {
        let scenario = json!([
            {"op": "initialize_info"},
            {"op": "call_tool", "name": "echo", "arguments": {"text": asked}},
            {"op": "call_tool", "name": "delete_repository", "arguments": {"name": "x"}},
            {"op": "call_tool", "name": "ask_model", "arguments": {"question": "versions?"}},
        ]);
        let results = Driver::start_with(
            *sdk,
            &scenario,
            way(&faramesh, "toy"),
            &[],
            &["--protocol-version", asked],
        )
        .results();
        assert_eq!(
            results[0]["result"]["protocolVersion"], *expected,
            "{sdk:?} {asked}: {}",
            results[0]
        );
        assert_eq!(
            text_of(&results[1]),
            format!("echo: {asked}"),
            "{sdk:?} {asked}"
        );
        assert_eq!(results[2]["result"]["isError"], true, "{sdk:?} {asked}");
        assert!(
            results[2]["result"].get("resultType").is_none(),
            "{sdk:?} {asked}"
        );
        assert_eq!(
            text_of(&results[3]),
            "model says: versions?",
            "{sdk:?} {asked}"
        );
    }
}

#[test]
fn a_call_cancelled_while_it_waits_is_withdrawn_and_one_a_human_denies_is_refused_over_http() {
    let faramesh = Faramesh::start_with(toy_servers, &[]);
    for sdk in BOTH {
        let refused = format!("/home/{sdk:?}/refused");
        let driver = Driver::start(
            sdk,
            &json!([
                {"op": "call_tool", "name": "write_file", "cancel_after": 1,
                 "arguments": {"path": format!("/home/{sdk:?}/x"), "content": "x"}},
                {"op": "call_tool", "name": "echo", "arguments": {"text": "still here"}},
                {"op": "call_tool", "name": "write_file",
                 "arguments": {"path": refused, "content": "no"}},
            ]),
            way(&faramesh, "toy"),
            &[],
        );
        let pending = faramesh.pending_where(|a| a["params"]["path"] == refused.as_str());
        faramesh.decide(&pending, false, "not there");
        let results = driver.results();
        assert_eq!(results[0]["cancelled"], true, "{sdk:?}: {}", results[0]);
        assert_eq!(text_of(&results[1]), "echo: still here", "{sdk:?}");
        assert_eq!(
            text_of(&results[2]),
            format!(
                "Faramesh denied this call: not there (action {})",
                pending["id"].as_str().unwrap()
            ),
            "{sdk:?}"
        );
    }
    let writes: Vec<Value> = faramesh
        .actions()
        .into_iter()
        .filter(|a| a["operation"] == "write_file" && a["reason"] != "not there")
        .collect();
    assert_eq!(writes.len(), 2);
    for action in writes {
        assert_eq!(action["status"], "denied", "{action}");
        assert_eq!(
            action["reason"],
            "Withdrawn by anonymous: the MCP client cancelled the call"
        );
    }
    let received: Vec<Value> = toy_calls(&faramesh)
        .iter()
        .map(|c| c["tool"].clone())
        .collect();
    assert_eq!(received, [json!("echo"), json!("echo")]);
}

#[test]
fn sessions_beyond_the_cap_are_refused_until_one_ends() {
    let faramesh = Faramesh::start_with(toy_servers, &[("FARAMESH_MCP_MAX_SESSIONS", "1")]);
    let endpoint = format!("{}/mcp/toy", faramesh.url);
    let (status, _, session) = post(&endpoint, &[], &initialize());
    assert_eq!(status, 200);
    let session = session.unwrap();
    let (status, body, _) = post(&endpoint, &[], &initialize());
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("FARAMESH_MCP_MAX_SESSIONS"), "{body}");
    let deleted = reqwest::blocking::Client::new()
        .delete(&endpoint)
        .header("mcp-session-id", &session)
        .send()
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let (status, body, _) = post(&endpoint, &[], &initialize());
    assert_eq!(status, 200, "{body}");
}
