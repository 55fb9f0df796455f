//! The client against the real server, and its error mapping.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

use faramesh_client::{Client, ClientError, ListFilter, Submission};
use faramesh_server::{Backend, ServerConfig};
use serde_json::{json, Map, Value};
use tempfile::TempDir;

async fn server(tokens: &[&str]) -> (String, TempDir) {
    let dir = TempDir::new().unwrap();
    let mut config = ServerConfig::from_lookup(|_| None).unwrap();
    config.policy_file = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../policies/default.yaml"
    ));
    config.profile_file = dir.path().join("none.yaml");
    config.backend = Backend::Sqlite(dir.path().join("db"));
    config.executors = "none".into();
    config.tokens = tokens.iter().map(|t| t.to_string()).collect();
    config.port = 0;
    let server = faramesh_server::Server::start(config).await.unwrap();
    let url = format!("http://{}", server.address());
    tokio::spawn(server.serve(std::future::pending()));
    (url, dir)
}

fn submission(tool: &str, operation: &str, params: Value) -> Submission {
    let Value::Object(params) = params else {
        panic!("params must be an object")
    };
    Submission {
        agent_id: "cli-test".into(),
        tool: tool.into(),
        operation: operation.into(),
        params,
        context: Map::new(),
    }
}

#[tokio::test]
async fn submit_approve_start_and_report() {
    let (url, _dir) = server(&[]).await;
    let client = Client::new(&url, None);
    let action = client
        .submit(&submission("shell", "run", json!({"cmd": "ls"})))
        .await
        .unwrap();
    assert_eq!(action.status.as_str(), "pending_approval");
    let id = client.resolve(&action.id[..8]).await.unwrap();
    assert_eq!(id, action.id);
    let approved = client
        .decide_approval(&id, true, Some("fine"))
        .await
        .unwrap();
    assert_eq!(
        (approved.status.as_str(), approved.reason.as_deref()),
        ("approved", Some("fine"))
    );
    let again = client.decide_approval(&id, false, None).await.unwrap_err();
    assert!(matches!(again, ClientError::Conflict { .. }), "{again}");
    assert_eq!(
        client.start(&id).await.unwrap().status.as_str(),
        "executing"
    );
    let done = client
        .report_result(&id, true, None, Some(json!({"ok": 1})))
        .await
        .unwrap();
    assert_eq!(done.status.as_str(), "succeeded");
    let events = client.events(&id).await.unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| e.event_type.as_str())
            .collect::<Vec<_>>(),
        [
            "created",
            "decision_made",
            "approved",
            "started",
            "succeeded"
        ]
    );
    let listed = client
        .list(&ListFilter {
            status: Some("succeeded".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
}

#[tokio::test]
async fn errors_say_what_to_do() {
    let (url, _dir) = server(&["secret"]).await;
    let anonymous = Client::new(&url, None);
    let err = anonymous.list(&ListFilter::default()).await.unwrap_err();
    assert!(matches!(err, ClientError::Unauthorized { .. }));
    assert!(err.to_string().contains("--token"), "{err}");

    let client = Client::new(&url, Some("secret".into()));
    let err = client
        .get("00000000-0000-0000-0000-000000000000")
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::NotFound { .. })
            && err
                .to_string()
                .contains("00000000-0000-0000-0000-000000000000"),
        "{err}"
    );
    assert!(matches!(
        client.resolve("abc").await.unwrap_err(),
        ClientError::PrefixTooShort(_)
    ));
    assert!(matches!(
        client.resolve("abcdef0123").await.unwrap_err(),
        ClientError::NoMatch { .. }
    ));

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let nowhere = Client::new(&format!("http://{closed}"), None);
    let err = nowhere.list(&ListFilter::default()).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&closed.to_string()) && text.contains("faramesh serve"),
        "{text}"
    );
}

#[tokio::test]
async fn an_ambiguous_prefix_lists_the_candidates() {
    let action = |id: &str| json!({"id": id, "agent_id": "a", "tool": "t", "operation": "o", "status": "allowed", "created_at": "x", "updated_at": "x"});
    let both = json!([
        action("abcdef01-1111-4111-8111-111111111111"),
        action("abcdef01-2222-4222-8222-222222222222")
    ]);
    let app = axum::Router::new().route(
        "/v1/actions",
        axum::routing::get(move || async move { axum::Json(both) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let err = Client::new(&url, None)
        .resolve("abcdef01")
        .await
        .unwrap_err();
    match err {
        ClientError::Ambiguous { candidates, .. } => assert_eq!(candidates.len(), 2),
        other => panic!("expected ambiguity, got {other}"),
    }
}

#[tokio::test]
async fn an_id_is_always_one_path_segment() {
    let (url, _dir) = server(&[]).await;
    let client = Client::new(&url, None);
    // Sent as written, `..` would climb to /v1/tokens and the answer would be a token list.
    let escaped = client.get("aaaaaaaa-bbbb/../../tokens").await.unwrap_err();
    assert!(
        matches!(&escaped, ClientError::NotFound { detail } if detail.contains("aaaaaaaa-bbbb/../../tokens")),
        "{escaped:?}"
    );
    let spaced = client.revoke_token("on call?x=1").await.unwrap_err();
    assert!(
        matches!(&spaced, ClientError::NotFound { detail } if detail.contains("on call?x=1")),
        "{spaced:?}"
    );
}

#[tokio::test]
async fn a_server_url_that_cannot_be_used_is_named() {
    let client = Client::new("not a url", None);
    let error = client.list(&ListFilter::default()).await.unwrap_err();
    assert!(
        matches!(&error, ClientError::BadUrl { url, .. } if url == "not a url"),
        "{error:?}"
    );
    assert!(error.to_string().contains("--url"), "{error}");
}
