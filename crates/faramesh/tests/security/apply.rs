//! `faramesh apply` once dropped the keys it did not know: a file with `paramz:` submitted the
//! action with no params at all, decided as something else than what was written. A key the
//! API would refuse is refused, before anything is submitted.

use crate::harness::{faramesh, Serve};
use serde_json::Value;

#[tokio::test]
async fn a_misspelt_key_is_refused_and_nothing_is_submitted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve {
        env: vec![("FARAMESH_EXECUTORS", "none")],
        ..Default::default()
    }
    .start(dir.path());
    let file = dir.path().join("action.yaml");
    std::fs::write(
        &file,
        "agent_id: ops\ntool: shell\noperation: run\nparamz:\n  cmd: rm -rf /\n",
    )
    .unwrap();
    let out = faramesh(dir.path())
        .args(["--url", &server.url, "apply"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unknown key `paramz`"), "{stderr}");
    assert!(stderr.contains("action.yaml:4:1"), "{stderr}");
    assert!(stderr.contains("did you mean `params`?"), "{stderr}");
    let (status, actions) = server.get("/v1/actions").await;
    assert_eq!(status, 200);
    assert_eq!(
        actions,
        Value::Array(Vec::new()),
        "the server received an action"
    );
}
