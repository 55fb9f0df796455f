//! The shipped policies (`policies/default.yaml`, `policies/examples/*.yaml`) parse without
//! warnings and pass their own `<name>.cases.yaml`; the shipped profile parses.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

use faramesh_core::{cases, Engine, Policy, Profile};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The example packs that must be present, by name.
const REQUIRED_PACKS: &[&str] = &[
    "destructive-shell",
    "large-payments",
    "http-egress",
    "git-push-main",
];

/// Each example pack must have at least this many cases.
const MIN_EXAMPLE_CASES: usize = 6;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn policies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn parse_policy(path: &Path) -> Policy {
    let shown = path.display().to_string();
    let policy = Policy::parse(&shown, &read(path))
        .unwrap_or_else(|report| panic!("{shown} does not parse:\n{report}"));
    assert!(
        policy.warnings().is_empty(),
        "{shown} has warnings:\n{:#?}",
        policy.warnings()
    );
    policy
}

/// `<dir>/<name>.yaml` → `<dir>/<name>.cases.yaml`.
fn cases_path(policy: &Path) -> PathBuf {
    let stem = policy
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("policy file name is UTF-8");
    policy.with_file_name(format!("{stem}.cases.yaml"))
}

/// Runs the policy's sibling cases file; returns how many cases it holds.
fn check_pack(policy_path: &Path) -> usize {
    let policy = parse_policy(policy_path);
    let cases_file = cases_path(policy_path);
    let shown = cases_file.display().to_string();
    let suite = cases::parse(&shown, &read(&cases_file))
        .unwrap_or_else(|report| panic!("{shown} does not parse:\n{report}"));
    assert!(!suite.is_empty(), "{shown} holds no cases");
    let engine = Engine::new(Some(policy), "test");
    let results = cases::run(&engine, &suite);
    let failures: Vec<String> = results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| {
            let mismatches: Vec<String> = r
                .mismatches
                .iter()
                .map(|m| format!("{}: expected {}, got {}", m.field, m.expected, m.actual))
                .collect();
            format!(
                "  {}:{}: {}\n    {}\n    decision: {} {} ({}), risk {}",
                shown,
                r.case.line,
                r.case.name,
                mismatches.join("; "),
                r.decision.decision(),
                r.decision.reason_code,
                r.decision.reason,
                r.decision.risk_level,
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed for {}:\n{}",
        failures.len(),
        results.len(),
        policy_path.display(),
        failures.join("\n")
    );
    suite.len()
}

/// Every `*.yaml` under `policies/examples/` that is not itself a cases file.
fn example_policies() -> Vec<PathBuf> {
    let dir = policies_dir().join("examples");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| {
            p.is_file()
                && p.extension().is_some_and(|e| e == "yaml")
                && !p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(".cases.yaml"))
        })
        .collect();
    found.sort();
    found
}

#[test]
fn default_policy_passes_its_cases() {
    check_pack(&policies_dir().join("default.yaml"));
}

/// The shipped default keeps the reference default's rules exactly (same `policy_hash`);
/// only comments differ.
#[test]
fn default_policy_matches_the_reference_default() {
    let vectors = read(&repo_root().join("testdata/vectors/decisions.json"));
    let vectors: Value = serde_json::from_str(&vectors).expect("decisions.json is JSON");
    let reference_text = vectors["policies"]["default"]
        .as_str()
        .expect("policies.default is text");
    let reference = Policy::parse("reference-default.yaml", reference_text).expect("parses");
    let ours = parse_policy(&policies_dir().join("default.yaml"));
    assert_eq!(ours.rules_json(), reference.rules_json());
    assert_eq!(ours.risk_rules_json(), reference.risk_rules_json());
    assert_eq!(ours.hash(), reference.hash());
}

#[test]
fn example_packs_pass_their_cases() {
    let packs = example_policies();
    let names: Vec<String> = packs
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for required in REQUIRED_PACKS {
        assert!(
            names.iter().any(|n| n == required),
            "policies/examples/{required}.yaml is missing (found {names:?})"
        );
    }
    for pack in &packs {
        let count = check_pack(pack);
        assert!(
            count >= MIN_EXAMPLE_CASES,
            "{} has {count} cases; every example pack needs at least {MIN_EXAMPLE_CASES}",
            cases_path(pack).display()
        );
    }
}

#[test]
fn default_profile_parses() {
    let path = repo_root().join("profiles/default.yaml");
    let shown = path.display().to_string();
    let profile = Profile::parse(&shown, &read(&path))
        .unwrap_or_else(|report| panic!("{shown} does not parse:\n{report}"));
    assert!(
        profile.warnings().is_empty(),
        "{shown} has warnings:\n{:#?}",
        profile.warnings()
    );
    // Same content as the reference profile: the hash covers the parsed content, not the
    // comments.
    let vector = read(&repo_root().join("testdata/vectors/profile.json"));
    let vector: Value = serde_json::from_str(&vector).expect("profile.json is JSON");
    assert_eq!(profile.hashed_form(), &vector["hashed_form"]);
    assert_eq!(
        &**profile.hash(),
        vector["profile_hash"]
            .as_str()
            .expect("profile_hash is text")
    );
}
