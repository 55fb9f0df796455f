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

/// Runs `policy validate` on `text` and returns (exit code, stdout).
fn validate(text: &str) -> (i32, String) {
    let dir = TempDir::new().unwrap();
    let file = write(&dir, "policy.yaml", text);
    let out = faramesh()
        .arg("policy")
        .arg("validate")
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout)
        .unwrap()
        .replace(&file.display().to_string(), "policy.yaml");
    (out.status.code().unwrap_or(-1), stdout)
}

#[test]
fn misspelt_key_is_located_with_a_suggestion() {
    let (code, out) = validate(
        "rules:\n  - match:\n      tool: shell\n      patern: \"rm -rf\"\n    deny: true\n",
    );
    assert_eq!(code, 1);
    assert!(out.contains("policy.yaml:4:7: error: unknown condition `patern` in `match` (rule 1); hint: did you mean `pattern`?"), "{out}");
}

#[test]
fn misspelt_rule_key_is_reported_too() {
    let (code, out) =
        validate("rules:\n  - match: {tool: shell}\n    deny: true\n    descripton: x\n");
    assert_eq!(code, 1);
    assert!(out.contains("policy.yaml:4:5: error: unknown key `descripton` in a rule (rule 1); hint: did you mean `description`?"), "{out}");
}

#[test]
fn missing_effect_is_located() {
    let (code, out) = validate("rules:\n  - match: {tool: http}\n    allow: true\n  - match: {tool: shell}\n    description: nothing\n");
    assert_eq!(code, 1);
    assert!(
        out.contains("policy.yaml:4:5: error: the rule has no effect (rule 2)"),
        "{out}"
    );
}

#[test]
fn several_effects_are_refused() {
    let (code, out) =
        validate("rules:\n  - match: {tool: http}\n    allow: true\n    deny: true\n");
    assert_eq!(code, 1);
    assert!(
        out.contains("the rule has several effects: allow, deny (rule 1)"),
        "{out}"
    );
}

#[test]
fn bad_regex_is_located() {
    let (code, out) =
        validate("rules:\n  - match: {tool: shell, pattern: \"(rm\"}\n    deny: true\n");
    assert_eq!(code, 1);
    assert!(out.contains("policy.yaml:2:35: error: `pattern` is not a usable regular expression: unclosed group (rule 1)"), "{out}");
}

#[test]
fn oversized_regex_is_refused_with_the_limit() {
    let (code, out) = validate("rules:\n  - match: {tool: shell, pattern: \"\\\\w{1000}\\\\w{1000}\\\\w{1000}\"}\n    deny: true\n");
    assert_eq!(code, 1);
    assert!(out.contains("compiles to more than"), "{out}");
}

#[test]
fn non_numeric_amount_is_located() {
    let (code, out) =
        validate("rules:\n  - match: {tool: stripe, amount_gt: \"1000\"}\n    deny: true\n");
    assert_eq!(code, 1);
    assert!(out.contains("policy.yaml:2:38: error: `amount_gt` must be a number, found the text \"1000\" (rule 1); hint: write the number without quotes: amount_gt: 1000"), "{out}");
}

#[test]
fn non_mapping_file_is_refused() {
    let (code, out) = validate("- just\n- a list\n");
    assert_eq!(code, 1);
    assert!(
        out.contains(
            "policy.yaml:1:1: error: a policy must be a mapping with a `rules:` list, found a list"
        ),
        "{out}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let (code, out) = validate(
        "rules:\n  - match: {tool: a, patern: x}\n    allow: true\n  - match: {tool: b}\n  - match: {tool: c, pattern: \"[\"}\n    deny: true\n    risk: extreme\nrisk:\n  rules:\n    - name: r\n",
    );
    assert_eq!(code, 1);
    for expected in [
        "policy.yaml:2:22: error: unknown condition `patern` in `match` (rule 1)",
        "policy.yaml:4:5: error: the rule has no effect (rule 2)",
        "policy.yaml:5:31: error: `pattern` is not a usable regular expression: unclosed character class (rule 3)",
        "no `when` (risk rule 1)",
        "no `risk_level` (risk rule 1)",
        "6 errors",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }
    assert!(
        out.contains("`risk` must be low, medium or high, found \"extreme\" (rule 3)"),
        "{out}"
    );
}

#[test]
fn yaml_syntax_errors_are_located() {
    let (code, out) = validate("rules:\n  - match: {tool: shell\n    deny: true\n");
    assert_eq!(code, 1);
    assert!(out.contains("error: not valid YAML"), "{out}");
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
