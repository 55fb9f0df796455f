//! `faramesh mcp wrap` end to end: the official MCP clients (Python `mcp`, TypeScript
//! `@modelcontextprotocol/sdk`) talk through the real binary to real MCP servers (a toy server
//! on the official Python SDK, and `server-everything`), governed by a real Faramesh server.
//! The toy server logs every call it receives, so a test can prove a call never reached it.

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

#[test]
fn allowed_calls_pass_unchanged_denied_ones_never_reach_the_server() {
    let faramesh = Faramesh::start();
    for sdk in BOTH {
        let name = format!("{sdk:?}");
        let calls = faramesh.calls_log(&name);
        let scenario = json!([
            {"op": "list_tools"},
            {"op": "call_tool", "name": "echo", "arguments": {"text": "hi"}},
            {"op": "call_tool", "name": "write_file", "arguments": {"path": "/etc/passwd", "content": "x"}},
            {"op": "call_tool", "name": "delete_repository", "arguments": {"name": "prod"}},
            {"op": "call_tool", "name": "fail", "arguments": {"message": "boom"}},
        ]);
        let through = run(sdk, scenario.clone(), &faramesh.wrapped_toy(&[]), &calls);
        let direct_command = vec![
            python().display().to_string(),
            repo()
                .join("tests/mcp/servers/toy_server.py")
                .display()
                .to_string(),
        ];
        let direct_log = faramesh.calls_log(&format!("{name}-direct"));
        let direct = run(sdk, scenario, &direct_command, &direct_log);

        // tools/list: the tool denied for every call is gone, the rest as the server sent them.
        let listed = |r: &Value| r["result"]["names"].as_array().unwrap().clone();
        let mut expected = listed(&direct[0]);
        expected.retain(|n| n != "delete_repository");
        assert_eq!(listed(&through[0]), expected, "{sdk:?}");
        assert_eq!(
            through[0]["result"]["tools"][0], direct[0]["result"]["tools"][0],
            "{sdk:?}: a listed tool is passed on whole"
        );
        // Allowed: the server's answer, unchanged.
        assert_eq!(through[1]["result"], direct[1]["result"], "{sdk:?}");
        // Denied: a tool error naming the reason and the action; the server never saw it.
        for (step, reason) in [
            (2, "Nothing is written under /etc"),
            (3, "Denied by policy rule"),
        ] {
            assert_eq!(through[step]["result"]["isError"], true, "{sdk:?}");
            let text = text_of(&through[step]);
            assert!(
                text.starts_with(&format!("Faramesh denied this call: {reason} (action ")),
                "{sdk:?}: {text}"
            );
        }
        // The tool's own error passes through as it is.
        assert_eq!(through[4]["result"], direct[4]["result"], "{sdk:?}");
        let received: Vec<String> = faramesh
            .calls(&name)
            .iter()
            .map(|c| c["tool"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(received, ["echo", "fail"], "{sdk:?}");
    }

    // Each call is an action with the events a REST client would expect.
    let actions = faramesh.actions();
    let client_names: Vec<&str> = actions
        .iter()
        .map(|a| a["context"]["mcp"]["client"]["name"].as_str().unwrap())
        .collect();
    assert!(client_names.contains(&"py-test-client") && client_names.contains(&"ts-test-client"));
    for action in &actions {
        assert_eq!(action["tool"], "toy");
        assert_eq!(action["agent_id"], "mcp:toy");
        assert_eq!(action["context"]["mcp"]["transport"], "stdio");
        let events = faramesh.events(action["id"].as_str().unwrap());
        let expected: &[&str] = match action["operation"].as_str().unwrap() {
            "echo" => &["created", "decision_made", "started", "succeeded"],
            "fail" => &["created", "decision_made", "started", "failed"],
            _ => &["created", "decision_made"],
        };
        assert_eq!(events, expected, "{action}");
    }
    let echo = actions.iter().find(|a| a["operation"] == "echo").unwrap();
    assert_eq!(echo["status"], "succeeded");
    assert_eq!(echo["params"], json!({"text": "hi"}));
    assert_eq!(echo["result"]["content"][0]["text"], "echo: hi");
    let failed = actions.iter().find(|a| a["operation"] == "fail").unwrap();
    assert_eq!(failed["status"], "failed");
}

#[test]
fn a_call_waits_for_a_human_who_approves_or_denies_it() {
    let faramesh = Faramesh::start();
    for sdk in BOTH {
        let name = format!("{sdk:?}");
        let calls = faramesh.calls_log(&name);
        let approved_path = format!("/home/{name}/approved.txt");
        let denied_path = format!("/home/{name}/denied.txt");
        let scenario = json!([
            {"op": "call_tool", "name": "write_file", "progress": true,
             "arguments": {"path": approved_path, "content": "yes"}},
            {"op": "call_tool", "name": "write_file", "progress": true,
             "arguments": {"path": denied_path, "content": "no"}},
        ]);
        let driver = Driver::start(
            sdk,
            &scenario,
            &faramesh.wrapped_toy(&[]),
            &[("TOY_CALL_LOG", &calls)],
        );
        let first = faramesh.pending("write_file");
        assert_eq!(first["params"]["path"], approved_path.as_str());
        faramesh.decide(&first, true, "looks fine");
        let second = faramesh.pending("write_file");
        assert_eq!(second["params"]["path"], denied_path.as_str());
        faramesh.decide(&second, false, "not that file");
        let results = driver.results();

        assert_eq!(
            results[0]["result"]["isError"], false,
            "{sdk:?}: {}",
            results[0]
        );
        assert_eq!(
            text_of(&results[0]),
            format!("wrote 3 bytes to {approved_path}")
        );
        let progress = results[0]["progress"].as_array().unwrap();
        assert!(!progress.is_empty(), "{sdk:?}: progress while waiting");
        let values: Vec<f64> = progress
            .iter()
            .map(|p| p["progress"].as_f64().unwrap())
            .collect();
        assert!(
            values.windows(2).all(|w| w[0] < w[1]),
            "{sdk:?}: {values:?}"
        );

        assert_eq!(results[1]["result"]["isError"], true, "{sdk:?}");
        assert_eq!(
            text_of(&results[1]),
            format!(
                "Faramesh denied this call: not that file (action {})",
                second["id"].as_str().unwrap()
            )
        );
        let written: Vec<Value> = faramesh
            .calls(&name)
            .into_iter()
            .map(|c| c["arguments"]["path"].clone())
            .collect();
        assert_eq!(written, [json!(approved_path)], "{sdk:?}");
        assert_eq!(
            faramesh.events(first["id"].as_str().unwrap()),
            [
                "created",
                "decision_made",
                "approved",
                "started",
                "succeeded"
            ]
        );
        assert_eq!(
            faramesh.events(second["id"].as_str().unwrap()),
            ["created", "decision_made", "denied"]
        );
    }
}

#[test]
fn a_call_still_pending_when_the_wait_ends_runs_once_when_repeated_after_approval() {
    let faramesh = Faramesh::start();
    for sdk in BOTH {
        let name = format!("{sdk:?}");
        let calls = faramesh.calls_log(&name);
        let path = format!("/home/{name}/later.txt");
        let call = json!({"op": "call_tool", "name": "write_file",
                          "arguments": {"path": path, "content": "later"}});
        let approved = faramesh.dir.path().join(format!("{name}.approved"));
        let scenario = json!([
            call,
            {"op": "wait_for_file", "path": approved.display().to_string()},
            call,
        ]);
        let driver = Driver::start(
            sdk,
            &scenario,
            &faramesh.wrapped_toy(&["--approval-wait", "1"]),
            &[("TOY_CALL_LOG", &calls)],
        );
        let still_pending = driver.next();
        let action = faramesh.pending("write_file");
        let id = action["id"].as_str().unwrap();
        assert_eq!(still_pending["result"]["isError"], true, "{sdk:?}");
        let text = text_of(&still_pending);
        assert!(
            text.contains(&format!(
                "waiting for a human's approval in Faramesh (action {id})"
            )) && text.contains("Make the same call again once it is approved"),
            "{sdk:?}: {text}"
        );
        assert!(
            faramesh.calls(&name).is_empty(),
            "{sdk:?}: not run while pending"
        );
        faramesh.decide(&action, true, "ok now");
        std::fs::write(&approved, "").unwrap();
        let results = driver.results();
        assert_eq!(
            results[1]["result"]["isError"], false,
            "{sdk:?}: {}",
            results[1]
        );
        assert_eq!(text_of(&results[1]), format!("wrote 5 bytes to {path}"));
        // One action, run once.
        let mine: Vec<Value> = faramesh
            .actions()
            .into_iter()
            .filter(|a| a["params"]["path"] == path.as_str())
            .collect();
        assert_eq!(
            mine.len(),
            1,
            "{sdk:?}: the repeat attached to the first action"
        );
        assert_eq!(mine[0]["status"], "succeeded");
        assert_eq!(faramesh.calls(&name).len(), 1, "{sdk:?}");
    }
}

#[test]
fn a_call_cancelled_while_it_waits_never_reaches_the_server() {
    let faramesh = Faramesh::start();
    for sdk in BOTH {
        let name = format!("{sdk:?}");
        let calls = faramesh.calls_log(&name);
        let scenario = json!([
            {"op": "call_tool", "name": "write_file", "cancel_after": 1,
             "arguments": {"path": format!("/home/{name}/cancelled.txt"), "content": "x"}},
            {"op": "call_tool", "name": "echo", "arguments": {"text": "still here"}},
        ]);
        let results = run(sdk, scenario, &faramesh.wrapped_toy(&[]), &calls);
        assert_eq!(results[0]["cancelled"], true, "{sdk:?}: {}", results[0]);
        // The session goes on.
        assert_eq!(text_of(&results[1]), "echo: still here", "{sdk:?}");
        let received: Vec<Value> = faramesh
            .calls(&name)
            .into_iter()
            .map(|c| c["tool"].clone())
            .collect();
        assert_eq!(received, [json!("echo")], "{sdk:?}");
    }
    // The cancelled calls were taken back: nobody is left to approve them.
    let withdrawn: Vec<Value> = faramesh
        .actions()
        .into_iter()
        .filter(|a| a["operation"] == "write_file")
        .collect();
    assert_eq!(withdrawn.len(), 2);
    for action in withdrawn {
        assert_eq!(action["status"], "denied", "{action}");
        assert_eq!(
            action["reason"],
            "Withdrawn by anonymous: the MCP client cancelled the call"
        );
        assert_eq!(
            faramesh.events(action["id"].as_str().unwrap()),
            ["created", "decision_made", "denied"]
        );
    }
}

#[test]
fn a_server_that_crashes_hangs_or_writes_garbage_fails_only_its_call() {
    let faramesh = Faramesh::start();
    for sdk in BOTH {
        let name = format!("{sdk:?}");
        let calls = faramesh.calls_log(&name);
        let scenario = json!([
            {"op": "call_tool", "name": "garbage", "arguments": {}},
            {"op": "call_tool", "name": "hang", "arguments": {}},
            {"op": "call_tool", "name": "echo", "arguments": {"text": "after the hang"}},
            {"op": "call_tool", "name": "crash", "arguments": {}},
        ]);
        let results = run(
            sdk,
            scenario,
            &faramesh.wrapped_toy(&["--call-timeout", "2"]),
            &calls,
        );
        assert_eq!(text_of(&results[0]), "wrote garbage", "{sdk:?}");
        assert_eq!(
            results[1]["result"]["isError"], true,
            "{sdk:?}: {}",
            results[1]
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
        let crashed = text_of(&results[3]);
        assert!(
            crashed.contains("stopped before answering (the MCP server toy exited with status 3)"),
            "{sdk:?}: {crashed}"
        );
    }
    let status = |operation: &str| -> Vec<Value> {
        faramesh
            .actions()
            .into_iter()
            .filter(|a| a["operation"] == operation)
            .map(|a| a["status"].clone())
            .collect()
    };
    assert_eq!(status("hang"), [json!("failed"), json!("failed")]);
    assert_eq!(status("crash"), [json!("failed"), json!("failed")]);
    assert_eq!(status("garbage"), [json!("succeeded"), json!("succeeded")]);
}

#[test]
fn without_faramesh_no_call_goes_through() {
    let faramesh = Faramesh::start();
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    for sdk in BOTH {
        let name = format!("{sdk:?}");
        let calls = faramesh.calls_log(&name);
        let mut command = faramesh.wrapped_toy(&[]);
        let at = command.iter().position(|a| *a == faramesh.url).unwrap();
        command[at] = url.clone();
        let scenario = json!([
            {"op": "list_tools"},
            {"op": "call_tool", "name": "echo", "arguments": {"text": "hi"}},
        ]);
        let results = run(sdk, scenario, &command, &calls);
        assert_eq!(results[1]["result"]["isError"], true, "{sdk:?}");
        let text = text_of(&results[1]);
        assert!(
            text.starts_with("Faramesh could not decide this call, so it was not made: cannot reach the Faramesh server"),
            "{sdk:?}: {text}"
        );
        assert!(faramesh.calls(&name).is_empty(), "{sdk:?}");
    }
}

#[test]
fn every_protocol_version_the_official_clients_speak_works_through_the_wrapper() {
    let faramesh = Faramesh::start();
    let cases: &[(Sdk, &str)] = &[
        (Sdk::Python, "auto"),
        (Sdk::Python, "2025-11-25"),
        (Sdk::Python, "2025-06-18"),
        (Sdk::Python, "2025-03-26"),
        (Sdk::Python, "2024-11-05"),
        (Sdk::TypeScript, "2025-11-25"),
        (Sdk::TypeScript, "2025-06-18"),
        (Sdk::TypeScript, "2025-03-26"),
        (Sdk::TypeScript, "2024-11-05"),
    ];
    for (sdk, version) in cases {
        let name = format!("{sdk:?}-{version}");
        let calls = faramesh.calls_log(&name);
        let scenario = json!([
            {"op": "initialize_info"},
            {"op": "call_tool", "name": "echo", "arguments": {"text": version}},
            {"op": "call_tool", "name": "delete_repository", "arguments": {"name": "x"}},
            {"op": "call_tool", "name": "ask_model", "arguments": {"question": "why?"}},
        ]);
        let driver = Driver::start_with(
            *sdk,
            &scenario,
            &faramesh.wrapped_toy(&[]),
            &[("TOY_CALL_LOG", &calls)],
            &["--protocol-version", version],
        );
        let results = driver.results();
        let negotiated = results[0]["result"]["protocolVersion"].as_str().unwrap();
        if *version == "auto" {
            assert_eq!(negotiated, "2026-07-28", "the Python client's default");
        } else {
            assert_eq!(negotiated, *version, "{sdk:?}");
        }
        assert_eq!(
            text_of(&results[1]),
            format!("echo: {version}"),
            "{sdk:?} {version}"
        );
        let denied = &results[2]["result"];
        assert_eq!(denied["isError"], true);
        // Only protocol versions that type their results get `resultType`.
        assert_eq!(
            denied.get("resultType").is_some(),
            negotiated >= "2026-07-28",
            "{sdk:?} {version}: {denied}"
        );
        // A request from the server to the client (sampling) crosses the wrapper both ways.
        assert_eq!(
            text_of(&results[3]),
            "model says: why?",
            "{sdk:?} {version}: {}",
            results[3]
        );
    }
    // At 2026-07-28 the sampling call is two tools/call requests, the second carrying the
    // server's request state: still one action per call.
    let asked: Vec<Value> = faramesh
        .actions()
        .into_iter()
        .filter(|a| a["operation"] == "ask_model")
        .collect();
    assert_eq!(asked.len(), cases.len(), "one action per call");
    assert!(
        asked.iter().all(|a| a["status"] == "succeeded"),
        "{asked:?}"
    );
}

#[test]
fn server_everything_works_through_the_wrapper() {
    let faramesh = Faramesh::start();
    let everything = repo()
        .join("tests/mcp/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    for sdk in BOTH {
        let command = vec![
            assert_cmd::cargo::cargo_bin("faramesh")
                .display()
                .to_string(),
            "mcp".into(),
            "wrap".into(),
            "--name".into(),
            "everything".into(),
            "--url".into(),
            faramesh.url.clone(),
            "--".into(),
            "node".into(),
            everything.display().to_string(),
            "stdio".into(),
        ];
        let scenario = json!([
            {"op": "list_tools"},
            {"op": "call_tool", "name": "echo", "arguments": {"message": "through"}},
            {"op": "list_resources"},
            {"op": "list_prompts"},
        ]);
        let results = run(sdk, scenario, &command, &faramesh.calls_log("everything"));
        let names = results[0]["result"]["names"].as_array().unwrap();
        assert!(names.contains(&json!("echo")), "{sdk:?}: {names:?}");
        assert_eq!(
            results[1]["result"]["isError"], false,
            "{sdk:?}: {}",
            results[1]
        );
        assert!(text_of(&results[1]).contains("through"), "{sdk:?}");
        assert_eq!(results[2]["ok"], true, "{sdk:?}");
        assert_eq!(results[3]["ok"], true, "{sdk:?}");
    }
    let echoes = faramesh
        .actions()
        .into_iter()
        .filter(|a| a["tool"] == "everything" && a["operation"] == "echo")
        .count();
    assert_eq!(echoes, 2);
}

#[test]
fn the_wrapper_refuses_at_once_what_could_never_work() {
    let faramesh = assert_cmd::cargo::cargo_bin("faramesh");
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "mcp",
                "wrap",
                "--name",
                "files",
                "--url",
                "not a url",
                "--",
                "true",
            ],
            "the server URL \"not a url\" cannot be used",
        ),
        (
            &["mcp", "wrap", "--name", "shell", "--", "true"],
            "--name shell is the tool of a built-in executor",
        ),
        (
            &[
                "mcp",
                "wrap",
                "--name",
                "files",
                "--",
                "/no/such/mcp-server",
            ],
            "cannot start the MCP server `/no/such/mcp-server`",
        ),
    ];
    for (args, expected) in cases {
        let output = std::process::Command::new(&faramesh)
            .args(*args)
            .env_remove("FARAMESH_URL")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(
            output.stdout.is_empty(),
            "{args:?}: nothing but MCP on stdout"
        );
    }
}
