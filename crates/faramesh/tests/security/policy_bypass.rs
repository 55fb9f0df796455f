//! The shipped example policies hold against the bypasses that once got through them: a decoy
//! key that satisfied a host allow-list written as a search over the whole params text, the
//! cloud metadata address spelled as an IPv4-mapped IPv6 literal, and `date -s` passing as a
//! read-only command.

use crate::harness::{repo, Serve, Server};
use serde_json::{json, Value};

fn start(dir: &std::path::Path, policy: &str) -> Server {
    Serve {
        env: vec![("FARAMESH_EXECUTORS", "none")],
        policy: Some(repo().join(policy)),
        ..Default::default()
    }
    .start(dir)
}

fn http_get(params: Value) -> Value {
    json!({"agent_id": "agent", "tool": "http", "operation": "get", "params": params})
}

#[tokio::test]
async fn a_decoy_key_does_not_satisfy_the_egress_allow_list() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "policies/examples/http-egress.yaml");

    let (code, action) = server
        .submit(http_get(json!({
            "method": "GET",
            "url": "http://10.0.0.5:8080/admin",
            "note": {"url": "https://api.github.com/"},
        })))
        .await;
    assert_eq!(code, 200, "{action}");
    assert_ne!(action["status"], "allowed", "{action}");
    assert_eq!(action["decision"], "deny", "{action}");

    // The host that is allow-listed still gets through when it is the one requested.
    let (code, action) = server
        .submit(http_get(json!({
            "method": "GET",
            "url": "https://api.github.com/repos/rust-lang/rust",
        })))
        .await;
    assert_eq!(code, 200, "{action}");
    assert_eq!(action["status"], "allowed", "{action}");
}

#[tokio::test]
async fn the_metadata_address_as_an_ipv4_mapped_literal_is_denied() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "policies/examples/http-egress.yaml");

    for params in [
        json!({"method": "GET", "url": "http://[::ffff:a9fe:a9fe]/latest/meta-data/iam/security-credentials/"}),
        json!({"method": "GET", "url": "http://2852039166/latest/meta-data/"}),
    ] {
        let (code, action) = server.submit(http_get(params.clone())).await;
        assert_eq!(code, 200, "{action}");
        assert_ne!(action["status"], "allowed", "{params}: {action}");
        assert_eq!(
            action["reason"], "Requests to the cloud metadata service are blocked",
            "{params}: {action}"
        );
    }

    // With a decoy beside it as well.
    let (code, action) = server
        .submit(http_get(json!({
            "method": "GET",
            "url": "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
            "note": {"url": "https://api.github.com/"},
        })))
        .await;
    assert_eq!(code, 200, "{action}");
    assert_ne!(action["status"], "allowed", "{action}");
}

#[tokio::test]
async fn setting_the_clock_is_not_a_read_only_command() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "policies/examples/destructive-shell.yaml");
    let shell = |cmd: &str| json!({"agent_id": "agent", "tool": "shell", "operation": "run", "params": {"cmd": cmd}});

    for cmd in [
        "date -s 2030-01-01",
        "date --set=2030-01-01",
        "date 010100002030",
    ] {
        let (code, action) = server.submit(shell(cmd)).await;
        assert_eq!(code, 200, "{action}");
        assert_ne!(action["status"], "allowed", "{cmd}: {action}");
    }
    let (code, action) = server.submit(shell("date")).await;
    assert_eq!(code, 200, "{action}");
    assert_eq!(action["status"], "allowed", "{action}");
}
