//! `faramesh log keygen` and `faramesh log key`: the log's signing key, private from its
//! first byte, never replaced by accident, refused when others may read it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

use assert_cmd::Command;
use faramesh_tlog::{Checkpoint, Signer, Verifier};
use predicates::prelude::*;
use std::os::unix::fs::PermissionsExt;

fn faramesh(dir: &std::path::Path) -> Command {
    let mut cmd = Command::cargo_bin("faramesh").unwrap();
    cmd.current_dir(dir).env("NO_COLOR", "1");
    cmd
}

#[test]
fn keygen_writes_a_private_key_and_prints_its_verifier_key() {
    let dir = tempfile::TempDir::new().unwrap();
    let out = faramesh(dir.path())
        .args(["log", "keygen", "--name", "example.com/faramesh"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let key_file = dir.path().join("data/log.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let signer = Signer::parse(&std::fs::read_to_string(&key_file).unwrap()).unwrap();
    assert_eq!(signer.name(), "example.com/faramesh");
    let verifier = Verifier::parse(printed.trim()).unwrap();
    assert_eq!(verifier, signer.verifier());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("data/log.pub")).unwrap(),
        printed
    );

    // A checkpoint signed with the file's key opens with the printed verifier key.
    let checkpoint = Checkpoint {
        origin: "example.com/faramesh".into(),
        size: 3,
        root: [1; 32],
    };
    let note = signer.sign(&checkpoint.text()).unwrap();
    assert_eq!(
        Checkpoint::parse(verifier.open(&note).unwrap()).unwrap(),
        checkpoint
    );

    // `log key` prints the same verifier key.
    faramesh(dir.path())
        .args(["log", "key"])
        .assert()
        .success()
        .stdout(printed.clone());

    // The key is never replaced by accident.
    faramesh(dir.path())
        .args(["log", "keygen"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already exists; pass --force"));
    assert_eq!(
        Signer::parse(&std::fs::read_to_string(&key_file).unwrap())
            .unwrap()
            .verifier(),
        verifier
    );
    let replaced = faramesh(dir.path())
        .args(["log", "keygen", "--force", "--name", "example.com/faramesh"])
        .output()
        .unwrap();
    assert_eq!(replaced.status.code(), Some(0));
    assert_ne!(
        String::from_utf8(replaced.stdout).unwrap(),
        printed,
        "a new key"
    );
}

#[test]
fn a_key_others_may_read_or_a_bad_name_is_refused() {
    let dir = tempfile::TempDir::new().unwrap();
    faramesh(dir.path())
        .args(["log", "keygen", "--key-file", "keys/signing.key"])
        .assert()
        .success();
    let key_file = dir.path().join("keys/signing.key");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    faramesh(dir.path())
        .args(["log", "key", "--key-file", "keys/signing.key"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("readable by other users (mode 644)")
                .and(predicate::str::contains("chmod 600")),
        );
    faramesh(dir.path())
        .args([
            "log",
            "keygen",
            "--name",
            "two words",
            "--key-file",
            "other.key",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "not valid: it must be non-empty, without spaces or '+'",
        ));
    assert!(!dir.path().join("other.key").exists());
    faramesh(dir.path())
        .args(["log", "key", "--key-file", "missing.key"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read missing.key"));
}

/// A checkpoint signed with a key from `log keygen` verifies with pyca/cryptography's Ed25519,
/// read from the signed-note format by a script that knows only the specifications
/// (tests/tlog/verify_note.py); the same note altered does not.
#[test]
fn a_signed_checkpoint_verifies_with_an_independent_ed25519_implementation() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let setup = std::process::Command::new(repo.join("tests/tlog/setup"))
        .output()
        .unwrap();
    assert!(
        setup.status.success(),
        "{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let dir = tempfile::TempDir::new().unwrap();
    let out = faramesh(dir.path())
        .args(["log", "keygen", "--name", "log.example/faramesh"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let verifier = String::from_utf8(out.stdout).unwrap();
    let signer =
        Signer::parse(&std::fs::read_to_string(dir.path().join("data/log.key")).unwrap()).unwrap();
    let checkpoint = Checkpoint {
        origin: "log.example/faramesh".into(),
        size: 4242,
        root: [0xab; 32],
    };
    let note = signer.sign(&checkpoint.text()).unwrap();
    let check = |note: &str| {
        let file = dir.path().join("checkpoint");
        std::fs::write(&file, note).unwrap();
        std::process::Command::new(repo.join("target/tlog-python-venv/bin/python"))
            .arg(repo.join("tests/tlog/verify_note.py"))
            .arg(verifier.trim())
            .arg(&file)
            .output()
            .unwrap()
    };
    let good = check(&note);
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&good.stdout).unwrap();
    assert_eq!(
        read,
        serde_json::json!({"origin": "log.example/faramesh", "size": 4242, "root": "ab".repeat(32)})
    );
    let bad = check(&note.replacen("4242", "4243", 1));
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("does not verify"));
}

#[test]
fn serve_refuses_to_start_with_a_signing_key_others_may_read() {
    let dir = tempfile::TempDir::new().unwrap();
    let policy =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/default.yaml");
    let serve = |dir: &std::path::Path| {
        let mut cmd = faramesh(dir);
        cmd.args(["serve", "--port", "0", "--no-profile", "--policy"])
            .arg(&policy)
            .env_remove("FARAMESH_TOKEN")
            .timeout(std::time::Duration::from_secs(30));
        cmd
    };
    faramesh(dir.path())
        .args(["log", "keygen", "--name", "example.com/faramesh"])
        .assert()
        .success();
    let key = dir.path().join("data/log.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    serve(dir.path()).assert().code(2).stderr(
        predicate::str::contains("readable by other users")
            .and(predicate::str::contains("chmod 600")),
    );
    // Refused before anything was written: no database, and the key file as it was.
    assert!(!dir.path().join("data/actions.db").exists());
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
}
