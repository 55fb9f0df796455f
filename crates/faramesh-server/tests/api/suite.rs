// The API tests for both backends (see server.rs for the harness).

#[tokio::test]
async fn approval_flow_from_submission_to_result() {
    // The agent reports the result itself here, so no built-in executor may race it.
    let Some(s) = start_custom(&[], None, |c| c.executors = "none".into()).await else { return };
    let action = s.submit("shell", "run", json!({"cmd": "echo hi"})).await;
    assert_eq!(action["status"], "pending_approval");
    assert_eq!(action["decision"], "require_approval");
    assert_eq!(action["outcome"], "ABSTAIN");
    assert_eq!(action["reason_code"], "POLICY_REQUIRE_APPROVAL");
    assert_eq!(action["reason_details"]["risk_level"], "medium");
    assert_eq!(
        action["reason_details"]["decided_by"],
        json!({"kind": "policy_rule", "number": 2, "line": 49, "name": null})
    );
    assert_eq!(action["request_hash"].as_str().map(str::len), Some(64));
    assert!(action["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(action["python_example"]
        .as_str()
        .unwrap()
        .contains(&id(&action)));
    let token = action["approval_token"]
        .as_str()
        .expect("token while pending")
        .to_owned();
    assert_eq!(token.len(), 32);
    let path = format!("/v1/actions/{}", id(&action));

    let (status, body) = s
        .post(
            &format!("{path}/approval"),
            json!({"token": "wrong", "approve": true}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = s.post(&format!("{path}/start"), json!({})).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "nothing starts before approval"
    );

    let (status, approved) = s
        .post(
            &format!("{path}/approval"),
            json!({"token": token, "approve": true, "reason": "Looks safe"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (approved["status"].as_str(), approved["decision"].as_str()),
        (Some("approved"), Some("allow"))
    );
    assert_eq!(approved["approval_token"], Value::Null);

    let (status, started) = s.post(&format!("{path}/start"), json!({})).await;
    assert_eq!(
        (status, started["status"].as_str()),
        (StatusCode::OK, Some("executing"))
    );
    let (status, done) = s
        .post(
            &format!("{path}/result"),
            json!({"success": true, "output": {"stdout": "hi\n"}}),
        )
        .await;
    assert_eq!(
        (status, done["status"].as_str()),
        (StatusCode::OK, Some("succeeded"))
    );
    assert_eq!(done["result"], json!({"stdout": "hi\n"}));

    let (_, events) = s.get(&format!("{path}/events")).await;
    let types: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "created",
            "decision_made",
            "approved",
            "started",
            "succeeded"
        ]
    );
    assert_eq!(events[1]["meta"]["request_hash"], action["request_hash"]);
    assert_eq!(events[2]["meta"]["reason"], "Looks safe");
    assert_chain_intact(&events);
}

#[tokio::test]
async fn a_human_denial_is_final() {
    let Some(s) = start().await else { return };
    let action = s
        .submit("shell", "run", json!({"cmd": "rm -rf /tmp/x"}))
        .await;
    let path = format!("/v1/actions/{}", id(&action));
    let (status, denied) = s
        .post(
            &format!("{path}/approval"),
            json!({"token": action["approval_token"], "approve": false, "reason": "No"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            denied["status"].as_str(),
            denied["decision"].as_str(),
            denied["reason"].as_str()
        ),
        (Some("denied"), Some("deny"), Some("No"))
    );
    let (status, body) = s.post(&format!("{path}/start"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["status"], "denied");
    assert!(body["detail"].as_str().unwrap().contains("denied"));
}

#[tokio::test]
async fn a_pending_action_can_be_withdrawn_by_its_agent_and_nothing_else_can() {
    let Some(s) = start().await else { return };
    let action = s
        .submit("shell", "run", json!({"cmd": "rm -rf /tmp/x"}))
        .await;
    assert_eq!(action["status"], "pending_approval");
    let path = format!("/v1/actions/{}/withdraw", id(&action));
    let (status, withdrawn) = s
        .post(&path, json!({"reason": "the client cancelled the call"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{withdrawn}");
    assert_eq!(
        (
            withdrawn["status"].as_str(),
            withdrawn["decision"].as_str(),
            withdrawn["reason"].as_str()
        ),
        (
            Some("denied"),
            Some("deny"),
            Some("Withdrawn by anonymous: the client cancelled the call")
        )
    );
    assert_eq!(withdrawn["approval_token"], Value::Null);
    // Withdrawn is final, and only a pending action can be withdrawn.
    let (status, body) = s.post(&path, json!({})).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::CONFLICT, Some("denied")));
    let allowed = s
        .submit("http", "get", json!({"url": "https://example.com"}))
        .await;
    let (status, body) = s
        .post(&format!("/v1/actions/{}/withdraw", id(&allowed)), json!({}))
        .await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::CONFLICT, Some("allowed")));
    let (status, body) = s.post(&path, json!({"why": "typo"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("{reason?}"), "{body}");
}

#[tokio::test]
async fn an_allowed_action_can_be_stored_already_started_in_one_write() {
    let policy = "rules:\n  - match: {tool: files, op: read}\n    allow: true\n  - match: {tool: files, op: write}\n    require_approval: true\n  - match: {tool: shell, op: run}\n    allow: true\n";
    let Some(s) = start_with(&[], Some(policy)).await else { return };
    let body = |tool: &str, op: &str| json!({"agent_id": "a", "tool": tool, "operation": op, "params": {}});
    let (status, started) = s.post("/v1/actions?start=true", body("files", "read")).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    assert_eq!(
        (started["status"].as_str(), started["decision"].as_str()),
        (Some("executing"), Some("allow"))
    );
    let id = id(&started).to_owned();
    let (_, events) = s.get(&format!("/v1/actions/{id}/events")).await;
    let types: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["created", "decision_made", "started"]);
    let (status, done) = s
        .post(&format!("/v1/actions/{id}/result"), json!({"success": true}))
        .await;
    assert_eq!((status, done["status"].as_str()), (StatusCode::OK, Some("succeeded")));
    let (_, chain) = s.get(&format!("/v1/actions/{id}/chain")).await;
    assert_eq!(chain["verified"], true, "{chain}");
    // One that waits for a human is stored as it is.
    let (_, pending) = s.post("/v1/actions?start=true", body("files", "write")).await;
    assert_eq!(pending["status"], "pending_approval");
    // A built-in executor runs an action when it is started: its tool's actions are not
    // started here.
    let (_, allowed) = s.post("/v1/actions?start=true", body("shell", "run")).await;
    assert_eq!(allowed["status"], "allowed", "{allowed}");
    let (status, refused) = s.post("/v1/actions?start=yes", body("files", "read")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(refused["detail"].as_str().unwrap().contains("start=\"yes\""), "{refused}");
}

#[tokio::test]
async fn gate_denied_names_only_operations_denied_whatever_their_params() {
    let Some(s) = start().await else { return };
    let (status, body) = s
        .post(
            "/v1/gate/denied",
            json!({"agent_id": "a", "tool": "http", "operations": ["get", "teleport"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // No rule names `teleport`: denied by default, for every call.
    assert_eq!(body, json!({"denied": ["teleport"]}));
    let (status, body) = s
        .post("/v1/gate/denied", json!({"agent_id": "a", "tool": "http"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let many: Vec<String> = (0..10_001).map(|i| format!("op{i}")).collect();
    let (status, body) = s
        .post(
            "/v1/gate/denied",
            json!({"agent_id": "a", "tool": "http", "operations": many}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("at most 10000"), "{body}");
}

#[tokio::test]
async fn a_policy_denial_is_stored_and_answered_with_200() {
    let Some(s) = start().await else { return };
    let action = s.submit("unknown_tool", "do", json!({})).await;
    assert_eq!(
        (action["status"].as_str(), action["reason"].as_str()),
        (Some("denied"), Some("Default deny rule"))
    );
    assert_eq!(action["approval_token"], Value::Null);
    let allowed = s
        .submit("http", "get", json!({"url": "https://example.com"}))
        .await;
    assert_eq!(allowed["status"], "allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_decisions_have_exactly_one_winner() {
    let Some(s) = start().await else { return };
    let action = s.submit("shell", "run", json!({"cmd": "ls"})).await;
    let url = format!("{}/v1/actions/{}/approval", s.base, id(&action));
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (client, url, token) = (
            s.client.clone(),
            url.clone(),
            action["approval_token"].clone(),
        );
        tasks.push(tokio::spawn(async move {
            client
                .post(&url)
                .json(&json!({"token": token, "approve": i % 3 != 0}))
                .send()
                .await
                .map(|r| r.status())
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap().unwrap());
    }
    assert_eq!(
        codes.iter().filter(|c| **c == StatusCode::OK).count(),
        1,
        "{codes:?}"
    );
    assert!(
        codes.iter().all(|c| *c == StatusCode::OK
            || *c == StatusCode::CONFLICT
            || *c == StatusCode::UNAUTHORIZED),
        "{codes:?}"
    );
    let (_, events) = s.get(&format!("/v1/actions/{}/events", id(&action))).await;
    assert_eq!(events.as_array().unwrap().len(), 3);
    let (_, stored) = s.get(&format!("/v1/actions/{}", id(&action))).await;
    let expected = if events[2]["event_type"] == "approved" {
        "approved"
    } else {
        "denied"
    };
    assert_eq!(
        stored["status"], expected,
        "the final status and the ledger agree"
    );
    assert_chain_intact(&events);
}

#[tokio::test]
async fn idempotency_key_returns_the_original_or_409() {
    let Some(s) = start().await else { return };
    let body = json!({"agent_id": "a", "tool": "http", "operation": "get", "params": {"url": "https://x"}});
    let send = |body: Value, key: &'static str| {
        let (client, url) = (s.client.clone(), format!("{}/v1/actions", s.base));
        async move {
            let r = client
                .post(url)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let (s1, first) = send(body.clone(), "k-1").await;
    let (s2, again) = send(body.clone(), "k-1").await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(first["id"], again["id"]);
    let mut other = body;
    other["params"]["url"] = json!("https://y");
    let (s3, conflict) = send(other, "k-1").await;
    assert_eq!(s3, StatusCode::CONFLICT);
    assert_eq!(conflict["action_id"], first["id"]);
    let (_, list) = s.get("/v1/actions").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn every_validation_error_is_a_422_naming_the_field() {
    let Some(s) = start().await else { return };
    let base = json!({"agent_id": "a", "tool": "t", "operation": "o", "params": {}});
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"tool": "t", "operation": "o", "params": {}}),
            "agent_id",
        ),
        (
            json!({"agent_id": "a", "tool": "", "operation": "o", "params": {}}),
            "tool",
        ),
        (
            json!({"agent_id": "a", "tool": "t", "operation": 3, "params": {}}),
            "operation",
        ),
        (
            json!({"agent_id": "a", "tool": "t", "operation": "o", "params": "x"}),
            "params",
        ),
        (
            json!({"agent_id": "a", "tool": "t", "operation": "o", "params": {}, "context": []}),
            "context",
        ),
        (
            json!({"agent_id": "a", "tool": "t", "operation": "o", "params": {}, "nope": 1}),
            "nope",
        ),
        (
            json!({"agent_id": "a".repeat(10_001), "tool": "t", "operation": "o", "params": {}}),
            "agent_id",
        ),
        (
            json!({"agent_id": "a", "tool": "t", "operation": "o", "params": {"big": "x".repeat(99_990), "more": "y".repeat(20)}}),
            "params",
        ),
        (json!([1, 2]), "object"),
    ];
    for (body, field) in cases {
        for path in ["/v1/actions", "/v1/gate/decide"] {
            let (status, answer) = s.post(path, body.clone()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path} {body}");
            assert!(
                answer["detail"].as_str().unwrap().contains(field),
                "{path}: {answer} should name {field}"
            );
        }
    }
    let raw = s
        .client
        .post(format!("{}/v1/actions", s.base))
        .header("content-type", "application/json")
        .body("{\"agent_id\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(raw.json::<Value>().await.unwrap()["detail"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));
    let huge = json!({"agent_id": "a", "tool": "t", "operation": "o", "params": {"x": "y".repeat(1_100_000)}});
    let (status, answer) = s.post("/v1/actions", huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert!(answer["detail"].is_string());
    let (status, _) = s.post("/v1/actions", base).await;
    assert_eq!(status, StatusCode::OK);
}

/// Sends `body` exactly as written; the answer's text, unparsed, so a test sees each number
/// as the server wrote it.
async fn exchange(s: &Server, path: &str, body: Option<&str>) -> (StatusCode, String) {
    let url = format!("{}{path}", s.base);
    let request = match body {
        Some(body) => s
            .client
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_owned()),
        None => s.client.get(url),
    };
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn params_and_context_keep_their_number_text_as_sent() {
    let Some(s) = start().await else { return };
    let params = r#"{"a":1E2,"b":{"c":[1E+2,-0,1.50],"d":2E-3},"e":123456789012345678901234567890,"f":[{"g":1E2}]}"#;
    let context = r#"{"n":1E2,"s":"\u0041"}"#;
    let body = |params: &str| {
        format!(r#"{{"agent_id": "a", "tool": "t", "operation": "o", "params": {params}, "context": {context}}}"#)
    };
    // Whitespace between tokens is dropped; every token is kept as written.
    let spaced = params.replace(',', " ,\n ").replace(':', ": ");
    let (status, submitted) = exchange(&s, "/v1/actions", Some(&body(&spaced))).await;
    assert_eq!(status, StatusCode::OK, "{submitted}");
    let as_sent = format!(r#""params":{params},"context":{context},"#);
    assert!(submitted.contains(&as_sent), "{submitted}");
    let action: Value = serde_json::from_str(&submitted).unwrap();
    let path = format!("/v1/actions/{}", id(&action));
    for read in [path.clone(), "/v1/actions?agent_id=a".to_owned()] {
        let (status, text) = exchange(&s, &read, None).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert!(text.contains(&as_sent), "{read}: {text}");
    }

    // Decisions and hashes read the parsed values: `1E2` and `100` are the same number, and the
    // request hash is the one this request always had.
    let plain = r#"{"a":100,"b":{"c":[100,0,1.5],"d":0.002},"e":123456789012345678901234567890,"f":[{"g":100}]}"#;
    let (status, decided) = exchange(&s, "/v1/gate/decide", Some(&body(plain))).await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    let decided: Value = serde_json::from_str(&decided).unwrap();
    assert_eq!(decided["request_hash"], action["request_hash"]);
    assert_eq!(
        action["request_hash"],
        "e7e290213f528962c932644791b52b581ee53f3b53fff4c3611dc187193b3328"
    );
    let (_, chain) = s.get(&format!("{path}/chain")).await;
    assert_eq!(chain["verified"], true, "{chain}");
}

#[tokio::test]
async fn a_key_given_twice_is_refused_with_its_path() {
    let Some(s) = start().await else { return };
    let cases = [
        (r#""params": {"x": {"y": 1, "y": 2}}"#, "`params.x.y`"),
        (r#""params": {"l": [0, {"k": 1, "\u006b": 1}]}"#, "`params.l[1].k`"),
        (r#""params": {}, "context": {"c": 1, "c": 1}"#, "`context.c`"),
    ];
    for (fields, at) in cases {
        let body = format!(r#"{{"agent_id": "a", "tool": "t", "operation": "o", {fields}}}"#);
        for path in ["/v1/actions", "/v1/gate/decide"] {
            let (status, answer) = exchange(&s, path, Some(&body)).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path} {body}");
            let answer: Value = serde_json::from_str(&answer).unwrap();
            assert_eq!(answer["code"], "validation_error", "{answer}");
            let detail = answer["detail"].as_str().unwrap();
            assert!(
                detail.contains("appears more than once") && detail.contains(at),
                "{path}: {detail} should name {at}"
            );
        }
    }
    let (_, listed) = s.get("/v1/actions").await;
    assert_eq!(listed, json!([]), "nothing was stored");
}

#[tokio::test]
async fn unknown_ids_are_404_and_bad_filters_422() {
    let Some(s) = start().await else { return };
    for path in [
        "/v1/actions/00000000-0000-0000-0000-000000000000",
        "/v1/actions/nope/events",
    ] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(body["detail"].is_string());
    }
    for path in ["start", "result"] {
        let body = if path == "result" {
            json!({"success": true})
        } else {
            json!({})
        };
        let (status, _) = s.post(&format!("/v1/actions/nope/{path}"), body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    for query in ["status=weird", "limit=ten", "offset=-1"] {
        let (status, body) = s.get(&format!("/v1/actions?{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
    }
}

#[tokio::test]
async fn listing_filters_newest_first() {
    let Some(s) = start().await else { return };
    let first = s.submit("http", "get", json!({})).await;
    let second = s.submit("shell", "run", json!({"cmd": "ls"})).await;
    let (_, all) = s.get("/v1/actions").await;
    let ids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            second["id"].as_str().unwrap(),
            first["id"].as_str().unwrap()
        ]
    );
    let (_, pending) = s
        .get("/v1/actions?status=pending_approval&limit=5000")
        .await;
    assert_eq!(pending.as_array().unwrap().len(), 1);
    let (_, by_tool) = s.get("/v1/actions?tool=http").await;
    assert_eq!(by_tool[0]["id"], first["id"]);
}

#[tokio::test]
async fn gate_decide_answers_without_storing() {
    let Some(s) = start().await else { return };
    let (status, d) = s
        .post(
            "/v1/gate/decide",
            json!({"agent_id": "a", "tool": "http", "operation": "get", "params": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            d["outcome"].as_str(),
            d["reason_code"].as_str(),
            d["risk_level"].as_str()
        ),
        (Some("EXECUTE"), Some("POLICY_ALLOW"), Some("low"))
    );
    for field in [
        "request_hash",
        "policy_hash",
        "policy_version",
        "runtime_version",
        "provenance_id",
    ] {
        assert!(d[field].is_string(), "{field}");
    }
    let (_, list) = s.get("/v1/actions").await;
    assert!(list.as_array().unwrap().is_empty());
}

#[tokio::test]
async fn auth_requires_a_bearer_token_except_on_public_paths() {
    let Some(s) = start_with(&["secret-1", "secret-2"], None).await else { return };
    let url = format!("{}/v1/actions", s.base);
    assert_eq!(
        s.client.get(&url).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let wrong = s.client.get(&url).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.json::<Value>().await.unwrap()["detail"].is_string());
    assert_eq!(
        s.client
            .get(&url)
            .bearer_auth("secret-2")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    for public in ["/health", "/ready"] {
        assert_eq!(
            s.client
                .get(format!("{}{public}", s.base))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK,
            "{public}"
        );
    }
}

#[tokio::test]
async fn a_broken_policy_reload_keeps_the_old_policy() {
    let Some(s) = start_with(
        &[],
        Some("rules:\n  - match: {tool: http}\n    allow: true\n"),
    )
    .await else { return };
    let policy = s.dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "rules:\n  - match: {tool: http, patern: x}\n    deny: true\n",
    )
    .unwrap();
    let (status, body) = s.post("/v1/policy/reload", json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["code"], "unknown-key");
    let action = s.submit("http", "get", json!({})).await;
    assert_eq!(
        action["status"], "allowed",
        "the last good policy still decides"
    );

    std::fs::write(&policy, "rules:\n  - match: {tool: http}\n    deny: true\n").unwrap();
    let (status, info) = s.post("/v1/policy/reload", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["rules"].as_array().unwrap().len(), 1);
    let action = s.submit("http", "get", json!({})).await;
    assert_eq!(action["status"], "denied");
    let (_, info) = s.get("/v1/policy/info").await;
    assert_eq!(
        (info["policy_file"].as_str(), info["exists"].as_bool()),
        (Some("policy.yaml"), Some(true))
    );
}

#[tokio::test]
async fn expired_approvals_become_timeout_with_an_event() {
    let Some(s) = start().await else { return };
    let pending = s.submit("shell", "run", json!({"cmd": "ls"})).await;
    let allowed = s.submit("http", "get", json!({})).await;
    let n = faramesh_server::expiry::expire_approvals(&s.state, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let (_, expired) = s.get(&format!("/v1/actions/{}", id(&pending))).await;
    assert_eq!(expired["status"], "timeout");
    assert_eq!(expired["approval_token"], Value::Null);
    let (_, events) = s.get(&format!("/v1/actions/{}/events", id(&pending))).await;
    assert_eq!(events[2]["event_type"], "timeout");
    assert_chain_intact(&events);
    let (_, untouched) = s.get(&format!("/v1/actions/{}", id(&allowed))).await;
    assert_eq!(untouched["status"], "allowed");
    // A long TTL expires nothing.
    let later = s.submit("shell", "run", json!({"cmd": "ls"})).await;
    assert_eq!(
        faramesh_server::expiry::expire_approvals(
            &s.state,
            std::time::Duration::from_secs(3600)
        )
        .await
        .unwrap(),
        0
    );
    let (_, still) = s.get(&format!("/v1/actions/{}", id(&later))).await;
    assert_eq!(still["status"], "pending_approval");
}

#[tokio::test]
async fn demo_seeding_fills_only_an_empty_database() {
    let Some(s) = start().await else { return };
    assert_eq!(
        faramesh_server::demo::seed_demo(&s.state)
            .await
            .unwrap(),
        4
    );
    let (_, list) = s.get("/v1/actions").await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 4);
    assert!(list
        .iter()
        .all(|a| a["demo"] == true && a["context"]["demo"] == true));
    assert_eq!(
        faramesh_server::demo::seed_demo(&s.state)
            .await
            .unwrap(),
        0
    );
}

/// Reads SSE frames from `response` until `count` `data:` messages arrived.
async fn read_messages(response: &mut reqwest::Response, count: usize) -> Vec<(u64, Value)> {
    let mut text = String::new();
    let mut messages = Vec::new();
    while messages.len() < count {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), response.chunk())
            .await
            .expect("a message arrives")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            let id = frame
                .lines()
                .find_map(|l| l.strip_prefix("id: "))
                .and_then(|v| v.parse().ok());
            let data = frame
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .and_then(|v| serde_json::from_str(v).ok());
            if let (Some(id), Some(data)) = (id, data) {
                messages.push((id, data));
            }
        }
    }
    messages
}

#[tokio::test]
async fn state_changes_stream_live_and_resume_after_last_event_id() {
    let Some(s) = start().await else { return };
    let mut stream = s
        .client
        .get(format!("{}/v1/events", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));

    let action = s.submit("shell", "run", json!({"cmd": "ls"})).await;
    let path = format!("/v1/actions/{}", id(&action));
    s.post(
        &format!("{path}/approval"),
        json!({"token": action["approval_token"], "approve": true}),
    )
    .await;
    let messages = read_messages(&mut stream, 2).await;
    assert_eq!(messages[0].1["type"], "action.created");
    assert_eq!(messages[0].1["data"]["status"], "pending_approval");
    assert_eq!(messages[1].1["type"], "action.updated");
    assert_eq!(messages[1].1["data"]["status"], "approved");
    assert_eq!(messages[1].1["data"]["id"], action["id"]);
    assert!(messages[1].0 > messages[0].0);

    let mut resumed = s
        .client
        .get(format!("{}/v1/events", s.base))
        .header("Last-Event-ID", messages[0].0.to_string())
        .send()
        .await
        .unwrap();
    let replay = read_messages(&mut resumed, 1).await;
    assert_eq!(
        replay[0].0, messages[1].0,
        "resume continues after the last seen id"
    );
}

#[tokio::test]
async fn the_stream_needs_a_token_when_auth_is_on() {
    let Some(s) = start_with(&["secret"], None).await else { return };
    let url = format!("{}/v1/events", s.base);
    assert_eq!(
        s.client.get(&url).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.client
            .get(&url)
            .bearer_auth("secret")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

const ALLOW_SHELL: &str = "rules:\n  - match: {tool: shell}\n    allow: true\n";

/// Waits on the live stream until action `id` reaches a final status; returns that status.
async fn final_status(s: &Server, id: &str) -> String {
    let mut stream = s
        .client
        .get(format!("{}/v1/events?action_id={id}", s.base))
        .send()
        .await
        .unwrap();
    loop {
        for (_, message) in read_messages(&mut stream, 1).await {
            let status = message["data"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if ["succeeded", "failed", "timeout"].contains(&status.as_str()) {
                return status;
            }
        }
    }
}

#[tokio::test]
async fn the_shell_executor_runs_an_allowed_action_and_records_its_output() {
    let Some(s) = start_with(&[], Some(ALLOW_SHELL)).await else { return };
    let action = s
        .submit("shell", "run", json!({"cmd": "echo governed"}))
        .await;
    assert_eq!(action["status"], "allowed");
    let path = format!("/v1/actions/{}", id(&action));
    let (status, started) = s.post(&format!("{path}/start"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(["executing", "succeeded"].contains(&started["status"].as_str().unwrap()));
    assert_eq!(final_status(&s, &id(&action)).await, "succeeded");
    let (_, done) = s.get(&path).await;
    assert_eq!(done["result"]["exit_code"], 0);
    assert_eq!(done["result"]["stdout"], "governed\n");
    let (_, events) = s.get(&format!("{path}/events")).await;
    let last = &events.as_array().unwrap()[3];
    assert_eq!(
        (
            last["event_type"].as_str(),
            last["meta"]["output"]["stdout"].as_str()
        ),
        (Some("succeeded"), Some("governed\n"))
    );
    assert_chain_intact(&events);
}

#[tokio::test]
async fn a_failing_command_and_a_timeout_are_recorded() {
    let Some(s) = start_with(&[], Some(ALLOW_SHELL)).await else { return };
    let failing = s
        .submit("shell", "run", json!({"cmd": "echo oops >&2; exit 3"}))
        .await;
    s.post(&format!("/v1/actions/{}/start", id(&failing)), json!({}))
        .await;
    assert_eq!(final_status(&s, &id(&failing)).await, "failed");
    let (_, failed) = s.get(&format!("/v1/actions/{}", id(&failing))).await;
    assert_eq!(
        (
            failed["reason"].as_str(),
            failed["result"]["stderr"].as_str()
        ),
        (Some("exit code 3"), Some("oops\n"))
    );

    let request = json!({"agent_id": "a", "tool": "shell", "operation": "run", "params": {"cmd": "sleep 30"}, "context": {"timeout": 0.3}});
    let (_, slow) = s.post("/v1/actions", request).await;
    s.post(&format!("/v1/actions/{}/start", id(&slow)), json!({}))
        .await;
    assert_eq!(final_status(&s, &id(&slow)).await, "timeout");
}

#[tokio::test]
async fn without_an_executor_the_agent_reports_the_result() {
    let Some(s) = start_custom(&[], Some(ALLOW_SHELL), |c| c.executors = "none".into()).await else { return };
    let action = s.submit("shell", "run", json!({"cmd": "echo hi"})).await;
    let path = format!("/v1/actions/{}", id(&action));
    let (_, started) = s.post(&format!("{path}/start"), json!({})).await;
    assert_eq!(started["status"], "executing");
    let (status, done) = s
        .post(
            &format!("{path}/result"),
            json!({"success": false, "error": "x".repeat(2000)}),
        )
        .await;
    assert_eq!(
        (status, done["status"].as_str()),
        (StatusCode::OK, Some("failed"))
    );
    assert_eq!(
        done["reason"].as_str().map(|r| r.chars().count()),
        Some(1000),
        "error text is cut at 1,000 characters"
    );
    let (status, _) = s
        .post(&format!("{path}/result"), json!({"success": true}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_keep_labels_bounded() {
    let Some(s) = start().await else { return };
    s.submit("shell", "run", json!({"cmd": "ls"})).await;
    s.submit("invented-tool-1234", "x", json!({})).await;
    s.get("/v1/actions/00000000-0000-0000-0000-000000000000")
        .await;
    let text = s.metrics_text().await;
    assert!(
        text.contains(
            r#"faramesh_requests_total{endpoint="/v1/actions",method="POST",status="200"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"faramesh_requests_total{endpoint="/v1/actions/{id}",method="GET",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"faramesh_actions_total{status="pending_approval",tool="shell"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"faramesh_actions_total{status="denied",tool="other"} 1"#),
        "{text}"
    );
    assert!(
        !text.contains("invented-tool-1234"),
        "agent-chosen names never become labels"
    );
    assert!(
        text.contains(
            r#"faramesh_decisions_total{outcome="ABSTAIN",reason_code="POLICY_REQUIRE_APPROVAL"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains("faramesh_pending_approvals 1"), "{text}");
    assert!(text.contains("faramesh_sse_clients 0"), "{text}");
}

#[tokio::test]
async fn an_unknown_executor_name_stops_start_up() {
    let dir = TempDir::new().unwrap();
    let mut config = ServerConfig::from_lookup(|_| None).unwrap();
    config.policy_file = repo("policies/default.yaml");
    config.backend = Backend::Sqlite(dir.path().join("db"));
    config.executors = "shell,python".into();
    let err = faramesh_server::build_state(config)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("python"), "{err}");
}

#[tokio::test]
async fn hot_reload_applies_good_edits_and_ignores_broken_ones() {
    use faramesh_server::hot_reload::{reload_if_changed, FileFingerprint, ReloadCheck};
    let Some(s) = start_with(
        &[],
        Some("rules:\n  - match: {tool: http}\n    allow: true\n"),
    )
    .await else { return };
    let mut seen = FileFingerprint::read(&s.state.config);
    assert_eq!(
        reload_if_changed(&s.state, &mut seen),
        ReloadCheck::Unchanged
    );

    let policy = s.dir.path().join("policy.yaml");
    std::fs::write(&policy, "rules:\n  - match: {tool: http}\n    deny: true\n").unwrap();
    assert_eq!(
        reload_if_changed(&s.state, &mut seen),
        ReloadCheck::Reloaded
    );
    assert_eq!(s.submit("http", "get", json!({})).await["status"], "denied");

    std::fs::write(&policy, "rules:\n  - match: {tool: http\n").unwrap();
    assert!(
        matches!(reload_if_changed(&s.state, &mut seen), ReloadCheck::Rejected(why) if why.contains("YAML"))
    );
    assert_eq!(
        s.submit("http", "get", json!({})).await["status"],
        "denied",
        "the last good policy stays active"
    );
    assert_eq!(
        reload_if_changed(&s.state, &mut seen),
        ReloadCheck::Unchanged,
        "a broken file is reported once"
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint() {
    let Some(s) = start_with(&["secret"], None).await else { return };
    let response = s
        .client
        .get(format!("{}/openapi.json", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "public even with auth on"
    );
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/actions", "post"),
        ("/v1/actions", "get"),
        ("/v1/actions/{id}", "get"),
        ("/v1/actions/{id}/events", "get"),
        ("/v1/actions/{id}/chain", "get"),
        ("/v1/actions/{id}/approval", "post"),
        ("/v1/actions/{id}/start", "post"),
        ("/v1/actions/{id}/result", "post"),
        ("/v1/actions/{id}/withdraw", "post"),
        ("/v1/gate/decide", "post"),
        ("/v1/gate/denied", "post"),
        ("/v1/mcp/servers", "get"),
        ("/v1/policy/info", "get"),
        ("/v1/policy/reload", "post"),
        ("/health", "get"),
        ("/ready", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is described"
        );
    }
    let submission = &doc["components"]["schemas"]["ActionSubmission"];
    let required: Vec<&str> = submission["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(required, ["agent_id", "tool", "operation", "params"]);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_with_detail() {
    let Some(s) = start().await else { return };
    let (status, body) = s.get("/v1/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("/v1/nothing-here"));
    let response = s
        .client
        .delete(format!("{}/v1/actions", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(response.json::<Value>().await.unwrap()["detail"]
        .as_str()
        .unwrap()
        .contains("DELETE"));
}

#[tokio::test]
async fn without_a_policy_the_server_is_not_ready_and_denies_everything() {
    let Some(s) = start_custom(&[], None, |c| {
        c.policy_file = PathBuf::from("/nonexistent/policy.yaml");
        c.allow_missing_policy = true;
    })
    .await
    else {
        return;
    };
    let (status, body) = s.get("/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body["detail"].as_str().unwrap().contains("No policy"));
    let action = s.submit("http", "get", json!({})).await;
    assert_eq!(
        (action["status"].as_str(), action["reason_code"].as_str()),
        (Some("denied"), Some("MISSING_POLICY"))
    );
    let (_, info) = s.get("/v1/policy/info").await;
    assert_eq!(info["exists"], false);
}

#[tokio::test]
async fn a_missing_policy_stops_start_up_unless_allowed() {
    let mut config = ServerConfig::from_lookup(|_| None).unwrap();
    let dir = TempDir::new().unwrap();
    config.policy_file = dir.path().join("missing.yaml");
    config.backend = Backend::Sqlite(dir.path().join("db"));
    let err = faramesh_server::build_state(config)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("missing.yaml"), "{err}");
}

#[tokio::test]
async fn actions_can_be_found_by_id_prefix() {
    let Some(s) = start().await else { return };
    let action = s.submit("http", "get", json!({})).await;
    let prefix = &id(&action)[..8];
    let (status, found) = s.get(&format!("/v1/actions?id_prefix={prefix}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found.as_array().map(Vec::len), Some(1));
    assert_eq!(found[0]["id"], action["id"]);
    let other_first = if prefix.starts_with('a') { 'b' } else { 'a' };
    let (_, none) = s
        .get(&format!(
            "/v1/actions?id_prefix={other_first}{}",
            &prefix[1..]
        ))
        .await;
    assert_eq!(
        none.as_array().map(Vec::len),
        Some(0),
        "the only action does not match"
    );
    let (status, _) = s.get("/v1/actions?id_prefix=%25").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_chain_endpoint_recomputes_an_actions_hash_chain() {
    let Some(s) = start().await else { return };
    let action = s
        .submit("shell", "run", json!({"cmd": "rm -rf /tmp/x"}))
        .await;
    let (status, chain) = s.get(&format!("/v1/actions/{}/chain", id(&action))).await;
    assert_eq!(status, StatusCode::OK, "{chain}");
    assert_eq!(chain["verified"], true);
    assert_eq!(chain["events"], 2, "created + decision_made");
    assert_eq!(chain["broken_link"], Value::Null);

    let (status, body) = s.get("/v1/actions/no-such-action/chain").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["detail"].as_str().unwrap().contains("no-such-action"),
        "{body}"
    );
}

impl Server {
    /// A request with a bearer token (or none); the status and the JSON body.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn create_token(&self, admin: Option<&str>, name: &str, role: &str) -> String {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/v1/tokens",
                admin,
                Some(json!({"name": name, "role": role})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().expect("secret").to_owned()
    }
}

#[tokio::test]
async fn roles_decide_who_may_approve_reload_and_manage_tokens() {
    use reqwest::Method;
    let Some(s) = start_custom(&["root"], None, |c| c.executors = "none".into()).await else { return };
    let agent = s.create_token(Some("root"), "ci-agent", "agent").await;
    let approver = s.create_token(Some("root"), "alice", "approver").await;
    assert!(agent.starts_with("fm_") && agent != approver);

    // An agent submits and reads, but never sees the approval token and may not approve.
    let submission =
        json!({"agent_id": "a", "tool": "shell", "operation": "run", "params": {"cmd": "echo hi"}});
    let (status, action) = s
        .call(
            Method::POST,
            "/v1/actions",
            Some(&agent),
            Some(submission.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{action}");
    assert_eq!(action["status"], "pending_approval");
    assert_eq!(action["approval_token"], Value::Null, "hidden from agents");
    let path = format!("/v1/actions/{}", id(&action));
    let (_, seen) = s.call(Method::GET, &path, Some(&agent), None).await;
    assert_eq!(seen["approval_token"], Value::Null);
    let (_, listed) = s.call(Method::GET, "/v1/actions", Some(&agent), None).await;
    assert_eq!(listed[0]["approval_token"], Value::Null);

    let (_, as_approver) = s.call(Method::GET, &path, Some(&approver), None).await;
    let approval_token = as_approver["approval_token"]
        .as_str()
        .expect("shown to approvers");
    let approve = json!({"token": approval_token, "approve": true, "reason": "fine"});
    let (status, refused) = s
        .call(
            Method::POST,
            &format!("{path}/approval"),
            Some(&agent),
            Some(approve.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(
        refused["detail"].as_str().unwrap().contains("agent role"),
        "{refused}"
    );
    for (method, forbidden) in [
        (Method::POST, "/v1/policy/reload"),
        (Method::GET, "/v1/tokens"),
        (Method::POST, "/v1/tokens"),
    ] {
        let body = (method == Method::POST).then(|| json!({"name": "x", "role": "admin"}));
        let (status, _) = s.call(method, forbidden, Some(&agent), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "agent {forbidden}");
    }

    // An approver approves (recorded by name) but may not submit, execute or reload.
    let (status, submitted) = s
        .call(
            Method::POST,
            "/v1/actions",
            Some(&approver),
            Some(submission),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{submitted}");
    let (status, _) = s
        .call(Method::POST, "/v1/policy/reload", Some(&approver), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .call(Method::DELETE, "/v1/tokens/ci-agent", Some(&approver), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, approved) = s
        .call(
            Method::POST,
            &format!("{path}/approval"),
            Some(&approver),
            Some(approve),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["status"], "approved");
    let (status, _) = s
        .call(
            Method::POST,
            &format!("{path}/start"),
            Some(&approver),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .call(Method::POST, &format!("{path}/start"), Some(&agent), None)
        .await;
    assert_eq!(status, StatusCode::OK, "agents start approved actions");
    let (_, events) = s
        .call(Method::GET, &format!("{path}/events"), Some(&agent), None)
        .await;
    let approval = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "approved")
        .expect("approved event");
    assert_eq!(approval["meta"]["by"], "alice");
    assert_eq!(approval["meta"]["reason"], "fine");

    // The admin lists tokens without secrets and revokes one; the revoked secret stops working.
    let (_, tokens) = s.call(Method::GET, "/v1/tokens", Some("root"), None).await;
    let names: Vec<&str> = tokens
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ci-agent", "alice"]);
    assert!(tokens
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t.get("token").is_none() && t["role"].is_string()));
    let (status, revoked) = s
        .call(Method::DELETE, "/v1/tokens/ci-agent", Some("root"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    let (status, _) = s.call(Method::GET, "/v1/actions", Some(&agent), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = s
        .call(Method::DELETE, "/v1/tokens/ci-agent", Some("root"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn token_requests_are_validated() {
    use reqwest::Method;
    let Some(s) = start_with(&["root"], None).await else { return };
    s.create_token(Some("root"), "bot", "agent").await;
    for (body, status, needle) in [
        (
            json!({"name": "bot", "role": "agent"}),
            StatusCode::CONFLICT,
            "already exists",
        ),
        (
            json!({"name": "x", "role": "superuser"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "role",
        ),
        (
            json!({"name": "has space", "role": "agent"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
        (
            json!({"name": "", "role": "agent"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
        (
            json!({"name": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "role",
        ),
    ] {
        let (got, answer) = s
            .call(Method::POST, "/v1/tokens", Some("root"), Some(body.clone()))
            .await;
        assert_eq!(got, status, "{body} → {answer}");
        assert!(
            answer["detail"].as_str().unwrap().contains(needle),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn the_first_api_token_must_be_admin_and_turns_authentication_on() {
    use reqwest::Method;
    let Some(s) = start().await else { return };
    let (status, body) = s
        .call(
            Method::POST,
            "/v1/tokens",
            None,
            Some(json!({"name": "bot", "role": "agent"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "first_token_must_be_admin");
    let admin = s.create_token(None, "owner", "admin").await;
    let (status, _) = s.call(Method::GET, "/v1/actions", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "authentication is on now");
    let (status, _) = s.call(Method::GET, "/v1/actions", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);

    // A restarted server on the same database still requires the token.
    let config = (*s.state.config).clone();
    let state = faramesh_server::build_state(config).await.unwrap();
    assert!(state.tokens.enabled());
}

/// The value of the first sample of metric `name` whose labels include every one of `labels`.
fn metric_sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (series, value) = rest.rsplit_once(' ')?;
        if !series.starts_with('{') || !labels.iter().all(|l| series.contains(l)) {
            return None;
        }
        value.parse().ok()
    })
}

/// Scrapes `/metrics` until `metric` with `labels` reaches `at_least`, for at most 10 s; the
/// last text scraped. With a shared database the change feed may announce a change a moment
/// before the replica that made it has counted it.
async fn metrics_when(s: &Server, metric: &str, labels: &[&str], at_least: f64) -> String {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = s.metrics_text().await;
        let reached = metric_sample(&text, metric, labels).is_some_and(|v| v >= at_least);
        if reached || tokio::time::Instant::now() >= deadline {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_expired_approval_reaches_the_live_stream_and_the_metrics() {
    let ttl = std::time::Duration::from_millis(50);
    let Some(s) = start_custom(&[], None, |c| c.approval_ttl = Some(ttl)).await else { return };
    let mut stream = s
        .client
        .get(format!("{}/v1/events", s.base))
        .send()
        .await
        .unwrap();
    let action = s.submit("shell", "run", json!({"cmd": "ls"})).await;
    assert_eq!(action["status"], "pending_approval");
    // The expiry runs because the server started with a TTL, as `faramesh serve` does.
    let expired = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            for (_, message) in read_messages(&mut stream, 1).await {
                if message["data"]["id"] == action["id"] && message["data"]["status"] == "timeout"
                {
                    return message;
                }
            }
        }
    })
    .await
    .expect("the expiry is announced on the live stream");
    assert_eq!(expired["type"], "action.updated");

    let text = metrics_when(
        &s,
        "faramesh_actions_total",
        &[r#"status="timeout""#, r#"tool="shell""#],
        1.0,
    )
    .await;
    assert!(
        text.contains(r#"faramesh_actions_total{status="timeout",tool="shell"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"faramesh_approval_wait_seconds_count{result="expired",tool="shell"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn execution_time_leaves_out_the_wait_for_approval() {
    // The agent reports the result itself here, so no built-in executor may race it.
    let Some(s) = start_custom(&[], None, |c| c.executors = "none".into()).await else { return };
    let action = s.submit("shell", "run", json!({"cmd": "echo hi"})).await;
    let path = format!("/v1/actions/{}", id(&action));
    // The human takes a while to decide: this wait is what the approval histogram measures.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (status, approved) = s
        .post(
            &format!("{path}/approval"),
            json!({"token": action["approval_token"], "approve": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    let (status, started) = s.post(&format!("{path}/start"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let (status, done) = s
        .post(&format!("{path}/result"), json!({"success": true}))
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");

    let text = metrics_when(
        &s,
        "faramesh_action_duration_seconds_count",
        &[r#"tool="shell""#],
        1.0,
    )
    .await;
    let shell = [r#"tool="shell""#];
    let approved = [r#"tool="shell""#, r#"result="approved""#];
    let sample = |name: &str, labels: &[&str]| {
        metric_sample(&text, name, labels).unwrap_or_else(|| panic!("{name} missing:\n{text}"))
    };
    assert_eq!(sample("faramesh_action_duration_seconds_count", &shell), 1.0);
    assert_eq!(sample("faramesh_approval_wait_seconds_count", &approved), 1.0);
    let waited = sample("faramesh_approval_wait_seconds_sum", &approved);
    let ran = sample("faramesh_action_duration_seconds_sum", &shell);
    assert!(waited >= 0.3, "the approval wait is measured: {waited}");
    assert!(
        ran < waited,
        "the execution time ({ran} s) leaves the approval wait ({waited} s) out"
    );
}

/// Reads `text` as the wire type `T` and writes it again: the result must be the same JSON,
/// field for field and in the same order, or the server and `faramesh_api` disagree.
fn is_exactly<T: serde::de::DeserializeOwned + serde::Serialize>(what: &str, text: &str) {
    let typed: T = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("{what} is not a {}: {e}\n{text}", std::any::type_name::<T>()));
    // The server writes compact JSON, so the same fields in the same order are the same text.
    assert_eq!(
        serde_json::to_string(&typed).unwrap(),
        text,
        "{what} holds other fields than {}",
        std::any::type_name::<T>()
    );
}

#[tokio::test]
async fn every_answer_is_exactly_its_wire_type() {
    let Some(s) = start().await else { return };
    let raw = |method: reqwest::Method, path: &str, body: Option<&str>| {
        let mut request = s.client.request(method, format!("{}{path}", s.base));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let submission = r#"{"agent_id":"a","tool":"shell","operation":"run","params":{"cmd":"ls","n":1E2},"context":{"k":-0}}"#;
    let created = raw(reqwest::Method::POST, "/v1/actions", Some(submission)).await;
    is_exactly::<faramesh_api::Action>("a created action", &created);
    let id = serde_json::from_str::<Value>(&created).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/actions/{id}");
    let got = raw(reqwest::Method::GET, &path, None).await;
    is_exactly::<faramesh_api::Action>("an action", &got);
    let list = raw(reqwest::Method::GET, "/v1/actions", None).await;
    is_exactly::<Vec<faramesh_api::Action>>("the action list", &list);
    let events = raw(reqwest::Method::GET, &format!("{path}/events"), None).await;
    is_exactly::<Vec<faramesh_api::LedgerEvent>>("the events", &events);
    let chain = raw(reqwest::Method::GET, &format!("{path}/chain"), None).await;
    assert!(chain.contains("\"verified\":true"), "{chain}");
    let decided = raw(reqwest::Method::POST, "/v1/gate/decide", Some(submission)).await;
    is_exactly::<faramesh_api::GateDecision>("a gate decision", &decided);
    let info = raw(reqwest::Method::GET, "/v1/policy/info", None).await;
    is_exactly::<faramesh_api::PolicyInfo>("the policy info", &info);
    let servers = raw(reqwest::Method::GET, "/v1/mcp/servers", None).await;
    is_exactly::<faramesh_api::McpServers>("the MCP servers", &servers);
    let denied = raw(
        reqwest::Method::POST,
        "/v1/gate/denied",
        Some(r#"{"agent_id":"a","tool":"t","operations":["x"]}"#),
    )
    .await;
    is_exactly::<faramesh_api::DeniedOperations>("the denied operations", &denied);
    let health = raw(reqwest::Method::GET, "/health", None).await;
    is_exactly::<faramesh_api::StatusBody>("the health answer", &health);
    let missing = raw(reqwest::Method::GET, "/v1/actions/no-such-action", None).await;
    is_exactly::<faramesh_api::ErrorBody>("a 404", &missing);
    let start_pending = raw(reqwest::Method::POST, &format!("{path}/start"), Some("{}")).await;
    is_exactly::<faramesh_api::ErrorBody>("a 409", &start_pending);
    assert!(start_pending.contains("\"action_id\""), "{start_pending}");
    let token = raw(
        reqwest::Method::POST,
        "/v1/tokens",
        Some(r#"{"name":"admin","role":"admin"}"#),
    )
    .await;
    is_exactly::<faramesh_api::NewToken>("a new token", &token);
}
