//! `Engine::denies_every_call`: what may be hidden from an agent's list of tools. It must never
//! say "denied" for a call some arguments would let through or send for approval.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

use faramesh_core::{ActionRequest, Engine, Outcome, Policy, Profile, ProfileState};
use serde_json::{json, Value};

const POLICY: &str = r#"rules:
  - match: {tool: files, op: read_file}
    allow: true
  - match: {tool: files, op: write_file, path_starts_with: /etc}
    deny: true
  - match: {tool: files, op: write_file}
    require_approval: true
  - match: {tool: files, op: delete_file, path_starts_with: /tmp}
    allow: true
  - match: {tool: files, op: delete_file}
    deny: true
  - match: {tool: github, op: delete_repository}
    deny: true
  - match: {tool: github, op: "*", agent_id: release-bot}
    allow: true
  - match: {tool: github, op: "*", contains: "secret"}
    deny: true
  - match: {tool: github, op: get_issue}
    allow: true
"#;

fn engine(profile: Option<&str>) -> Engine {
    let policy = Policy::parse("p.yaml", POLICY).unwrap_or_else(|r| panic!("{r}"));
    let profile = profile.map_or(ProfileState::None, |text| {
        ProfileState::Loaded(Box::new(
            Profile::parse("profile.yaml", text).unwrap_or_else(|r| panic!("{r}")),
        ))
    });
    Engine::new(Some(policy), "1").with_profile(profile)
}

/// Arguments that between them meet or miss every condition of the policy above.
fn argument_sets() -> Vec<Value> {
    vec![
        json!({}),
        json!({"path": "/etc/passwd"}),
        json!({"path": "/tmp/x"}),
        json!({"path": "/home/a"}),
        json!({"name": "secret"}),
        json!({"name": "open"}),
    ]
}

fn decide(engine: &Engine, agent: &str, tool: &str, op: &str, params: &Value) -> Outcome {
    let action: ActionRequest = serde_json::from_value(
        json!({"agent_id": agent, "tool": tool, "operation": op, "params": params}),
    )
    .unwrap();
    engine.decide(&action).outcome
}

#[test]
fn only_calls_denied_for_every_argument_are_reported() {
    let engine = engine(None);
    let table = [
        ("agent", "files", "read_file", false),
        // Denied under /etc, sent for approval elsewhere.
        ("agent", "files", "write_file", false),
        // Allowed under /tmp.
        ("agent", "files", "delete_file", false),
        ("agent", "github", "delete_repository", true),
        // Denied only when it mentions a secret; otherwise no rule: denied by default.
        ("agent", "github", "create_issue", true),
        // The release bot is allowed everything else on github.
        ("release-bot", "github", "create_issue", false),
        ("release-bot", "github", "delete_repository", true),
        // Allowed unless it mentions a secret.
        ("agent", "github", "get_issue", false),
        // No rule names it.
        ("agent", "slack", "post", true),
    ];
    for (agent, tool, op, denied) in table {
        assert_eq!(
            engine.denies_every_call(agent, tool, op),
            denied,
            "{agent} calling {tool}/{op}"
        );
    }
}

#[test]
fn what_is_reported_denied_is_denied_for_every_argument_tried() {
    let profiles = [
        None,
        Some("id: p\nversion: \"1\"\nallowed_tools: [files]\n"),
        Some("id: p\nversion: \"1\"\nallowed_tools: [files, github]\nrules:\n  - name: no_writes\n    when: {tool: files, op: write_file}\n    outcome: HALT\n    reason_code: NO_WRITES\n  - name: careful_deletes\n    when: {tool: github}\n    pattern: \"prod\"\n    outcome: HALT\n    reason_code: NO_PROD\n  - name: issues_need_a_human\n    when: {tool: github, op: create_issue}\n    outcome: ABSTAIN\n    reason_code: ASK\n"),
        Some("id: p\nversion: \"1\"\nallowed_tools: [files, github]\nrequired_controls:\n  approval_token: true\n"),
    ];
    let calls = [
        ("agent", "files", "read_file"),
        ("agent", "files", "write_file"),
        ("agent", "files", "delete_file"),
        ("agent", "github", "delete_repository"),
        ("agent", "github", "create_issue"),
        ("agent", "github", "get_issue"),
        ("release-bot", "github", "create_issue"),
        ("agent", "slack", "post"),
    ];
    for profile in profiles {
        let engine = engine(profile);
        for (agent, tool, op) in calls {
            let outcomes: Vec<Outcome> = argument_sets()
                .iter()
                .map(|params| decide(&engine, agent, tool, op, params))
                .collect();
            if engine.denies_every_call(agent, tool, op) {
                assert!(
                    outcomes.iter().all(|o| *o == Outcome::Halt),
                    "{agent} {tool}/{op} reported denied but decided {outcomes:?} (profile {profile:?})"
                );
            }
        }
    }
}

#[test]
fn a_profile_decides_before_the_policy() {
    let only_files = engine(Some("id: p\nversion: \"1\"\nallowed_tools: [files]\n"));
    assert!(only_files.denies_every_call("agent", "github", "get_issue"));
    assert!(!only_files.denies_every_call("agent", "files", "read_file"));

    let halts_writes = engine(Some("id: p\nversion: \"1\"\nallowed_tools: [files]\nrules:\n  - name: no_writes\n    when: {tool: files, op: write_file}\n    outcome: HALT\n    reason_code: NO_WRITES\n  - name: reads_run\n    when: {tool: files, op: delete_file}\n    outcome: EXECUTE\n    reason_code: OK\n"));
    assert!(halts_writes.denies_every_call("agent", "files", "write_file"));
    // The profile runs it whatever the policy says.
    assert!(!halts_writes.denies_every_call("agent", "files", "delete_file"));
}

#[test]
fn without_a_policy_or_with_a_broken_profile_everything_is_denied() {
    assert!(Engine::new(None, "1").denies_every_call("a", "files", "read_file"));
    let broken = engine(None).with_profile(ProfileState::Failed("bad".into()));
    assert!(broken.denies_every_call("a", "files", "read_file"));
}
