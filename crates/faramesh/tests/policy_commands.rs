//! `faramesh policy ...` as a user runs it: messages, JSON output and exit codes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

fn faramesh() -> Command {
    let mut cmd = Command::cargo_bin("faramesh").expect("binary is built");
    cmd.env_remove("FARAMESH_POLICY_VERSION")
        .env("NO_COLOR", "1");
    cmd
}

fn write(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

#[test]
fn unreadable_file_exits_2_naming_the_file() {
    faramesh()
        .args(["policy", "validate", "/nonexistent/policy.yaml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "cannot read policy file /nonexistent/policy.yaml",
        ));
}

#[test]
fn valid_policy_exits_0_and_json_reports_the_hash() {
    let out = faramesh()
        .args(["policy", "validate", "--json"])
        .arg(repo("policies/default.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(report["valid"], true);
    assert_eq!(report["errors"], 0);
    assert_eq!(report["summary"]["rules"], 3);
    assert_eq!(
        report["summary"]["policy_hash"].as_str().map(str::len),
        Some(64)
    );
}

#[test]
fn json_report_lists_every_diagnostic_with_position() {
    let dir = TempDir::new().unwrap();
    let file = write(
        &dir,
        "p.yaml",
        "rules:\n  - match: {tool: shell, patern: x}\n    deny: true\n",
    );
    let out = faramesh()
        .args(["--json", "policy", "validate"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &report["diagnostics"][0];
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(2), Some(26))
    );
    assert_eq!(d["code"], "unknown-key");
    assert_eq!(d["section"], "rule");
    assert_eq!(d["number"], 1);
    assert_eq!(d["hint"], "did you mean `pattern`?");
}

#[test]
fn decide_one_action_prints_every_field() {
    faramesh()
        .args(["policy", "test"])
        .arg(repo("policies/default.yaml"))
        .args(["--tool", "shell", "--op", "run", "--param", "cmd=ls -la"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("require_approval (ABSTAIN)"))
        .stdout(predicate::str::contains("POLICY_REQUIRE_APPROVAL"))
        .stdout(predicate::str::contains("policy rule 2"))
        .stdout(predicate::str::contains("provenance_id"));
}

#[test]
fn decide_one_action_as_json_with_a_profile() {
    let out = faramesh()
        .args(["--json", "policy", "test"])
        .arg(repo("policies/default.yaml"))
        .arg("--profile")
        .arg(repo("profiles/default.yaml"))
        .args(["--tool", "github", "--op", "create_issue"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["decision"], "deny");
    assert_eq!(d["outcome"], "HALT");
    assert_eq!(d["reason_code"], "PROFILE_DISALLOWS_TOOL");
    assert_eq!(d["profile_id"], "default");
    assert_eq!(d["runtime_version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn decide_without_tool_or_cases_says_what_to_give() {
    faramesh()
        .args(["policy", "test"])
        .arg(repo("policies/default.yaml"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "give a cases file, or the action with --tool and --op",
        ));
}

const CASES: &str = "cases:\n  - name: get allowed\n    tool: http\n    op: get\n    expect: allow\n  - name: big refund\n    tool: stripe\n    op: refund\n    params: {amount: 5000}\n    expect: {decision: deny, reason_code: POLICY_DENY, risk: high}\n";

#[test]
fn cases_that_pass_exit_0() {
    let dir = TempDir::new().unwrap();
    let cases = write(&dir, "cases.yaml", CASES);
    faramesh()
        .args(["policy", "test"])
        .arg(repo("policies/default.yaml"))
        .arg(&cases)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("PASS  get allowed"))
        .stdout(predicate::str::contains("2 passed, 0 failed"));
}

#[test]
fn a_failing_case_exits_1_and_shows_expected_and_actual() {
    let dir = TempDir::new().unwrap();
    let cases = write(
        &dir,
        "cases.yaml",
        &CASES.replace("risk: high", "risk: low"),
    );
    faramesh()
        .args(["policy", "test"])
        .arg(repo("policies/default.yaml"))
        .arg(&cases)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("FAIL  big refund"))
        .stdout(predicate::str::contains("risk: expected low, got high"))
        .stdout(predicate::str::contains("1 passed, 1 failed"));
}

#[test]
fn an_invalid_cases_file_exits_2_with_its_problems() {
    let dir = TempDir::new().unwrap();
    let cases = write(
        &dir,
        "cases.yaml",
        "cases:\n  - name: x\n    tool: http\n    expect: maybe\n",
    );
    faramesh()
        .args(["policy", "test"])
        .arg(repo("policies/default.yaml"))
        .arg(&cases)
        .assert()
        .code(2)
        .stdout(predicate::str::contains("case 1: no `op`"))
        .stdout(predicate::str::contains(
            "unknown expected decision \"maybe\"",
        ));
}

#[test]
fn diff_names_changed_rules_and_changed_decisions() {
    let dir = TempDir::new().unwrap();
    let old = repo("policies/default.yaml");
    let text = std::fs::read_to_string(&old)
        .unwrap()
        .replace("require_approval: true", "allow: true");
    let new = write(&dir, "new.yaml", &text);
    let cases = write(&dir, "cases.yaml", "cases:\n  - name: shell\n    tool: shell\n    op: run\n    params: {cmd: ls}\n    expect: require_approval\n");
    faramesh()
        .args(["policy", "diff"])
        .arg(&old)
        .arg(&new)
        .arg(&cases)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("~ rule 2 changed:"))
        .stdout(predicate::str::contains(
            "require_approval: true → (absent)",
        ))
        .stdout(predicate::str::contains("shell (line 2): require_approval"))
        .stdout(predicate::str::contains("→ allow"));
}

#[test]
fn diff_of_a_reformatted_copy_is_empty() {
    let dir = TempDir::new().unwrap();
    let old = repo("policies/default.yaml");
    let text = format!(
        "# a new comment\n{}",
        std::fs::read_to_string(&old).unwrap()
    );
    let new = write(&dir, "copy.yaml", &text);
    faramesh()
        .args(["policy", "diff"])
        .arg(&old)
        .arg(&new)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("no rule changes"));
}

#[test]
fn new_writes_a_valid_policy_and_never_overwrites() {
    let dir = TempDir::new().unwrap();
    faramesh()
        .current_dir(dir.path())
        .args(["policy", "new", "payments"])
        .assert()
        .code(0);
    let path = dir.path().join("policies/payments.yaml");
    faramesh()
        .args(["policy", "validate"])
        .arg(&path)
        .assert()
        .code(0);
    faramesh()
        .current_dir(dir.path())
        .args(["policy", "new", "payments"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already exists"));
}

/// Every file in `testdata/policies/invalid/` is validated and its whole report compared with
/// the `.snap` file beside it: the text report, the exit code, and the code of each problem.
#[test]
fn invalid_policies_are_reported_as_their_golden_files_say() {
    let root = repo("");
    insta::glob!("../../../testdata/policies/invalid", "*.yaml", |path| {
        let relative = path
            .strip_prefix(root.canonicalize().unwrap())
            .unwrap()
            .to_path_buf();
        let run = |json: bool| {
            let mut command = faramesh();
            command.current_dir(&root).args(["policy", "validate"]);
            if json {
                command.arg("--json");
            }
            command.arg(&relative).output().unwrap()
        };
        let text = run(false);
        let report: serde_json::Value = serde_json::from_slice(&run(true).stdout).unwrap();
        let codes: Vec<&str> = report["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["code"].as_str().unwrap())
            .collect();
        let golden = format!(
            "exit code {}\ncodes: {}\n\n{}",
            text.status.code().unwrap_or(-1),
            codes.join(", "),
            String::from_utf8(text.stdout).unwrap()
        );
        insta::with_settings!({
            snapshot_path => root.join("testdata/policies/invalid"),
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!("report", golden);
        });
    });
}
