//! Every value of the reference vectors (`testdata/vectors/`), reproduced byte for byte.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

use faramesh_core::hash::{
    canonical_sha256, event_record_hash, provenance_id, request_canonical, request_hash,
};
use faramesh_core::json::canonical_string;
use faramesh_core::{ActionRequest, Engine, Policy, Profile, ProfileState};
use serde_json::Value;
use std::path::PathBuf;

fn vectors(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/vectors")
        .join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("vector file is JSON")
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {key} is text: {v}"))
}

fn action(v: &Value) -> ActionRequest {
    serde_json::from_value(v.clone()).expect("vector action")
}

#[test]
fn canonical_json_and_sha256() {
    let all = vectors("canonical.json");
    let cases = all["canonical"].as_array().expect("list");
    assert!(cases.len() >= 40);
    for case in cases {
        let input: Value = serde_json::from_str(s(case, "input")).expect("input is JSON");
        let canonical = canonical_string(&input).expect("canonicalizes");
        assert_eq!(
            canonical,
            s(case, "canonical"),
            "input {}",
            s(case, "input")
        );
        assert_eq!(
            canonical_sha256(&input).unwrap(),
            s(case, "sha256"),
            "input {}",
            s(case, "input")
        );
    }
}

#[test]
fn canonical_json_refuses_nan_and_infinities() {
    let all = vectors("canonical.json");
    for case in all["canonical_errors"].as_array().expect("list") {
        let input = s(case, "input");
        let refused = match serde_json::from_str::<Value>(input) {
            Err(_) => true,
            Ok(v) => canonical_string(&v).is_err(),
        };
        assert!(refused, "{input} must be refused");
    }
}

#[test]
fn request_hashes() {
    let all = vectors("canonical.json");
    for case in all["request_hash"].as_array().expect("list") {
        let a = action(&case["request"]);
        let text =
            request_canonical(&a.agent_id, &a.tool, &a.operation, &a.params, &a.context).unwrap();
        assert_eq!(text, s(case, "canonical"));
        let hash = request_hash(&a.agent_id, &a.tool, &a.operation, &a.params, &a.context).unwrap();
        assert_eq!(hash, s(case, "request_hash"));
    }
}

#[test]
fn provenance_ids() {
    let all = vectors("canonical.json");
    for case in all["provenance_id"].as_array().expect("list") {
        let id = provenance_id(
            case["request_hash"].as_str(),
            case["policy_hash"].as_str(),
            case["profile_hash"].as_str(),
            s(case, "runtime_version"),
        );
        assert_eq!(id, s(case, "provenance_id"));
    }
}

#[test]
fn event_chain() {
    let all = vectors("canonical.json");
    let mut prev: Option<String> = None;
    for case in all["event_chain"].as_array().expect("list") {
        let e = &case["event"];
        assert_eq!(
            case["prev_hash"].as_str(),
            prev.as_deref(),
            "chain links to the previous record"
        );
        let hash = event_record_hash(
            s(e, "id"),
            s(e, "action_id"),
            s(e, "event_type"),
            s(e, "created_at"),
            &e["meta"],
            prev.as_deref(),
        )
        .unwrap();
        assert_eq!(hash, s(case, "record_hash"));
        prev = Some(hash);
    }
}

fn policy_engine(name: &str, text: &str) -> Engine {
    let policy = Policy::parse(&format!("{name}.yaml"), text)
        .unwrap_or_else(|r| panic!("policy {name} is valid:\n{r}"));
    Engine::new(Some(policy), "0.3.0")
}

#[test]
fn decisions_of_the_reference() {
    let all = vectors("decisions.json");
    let policies = all["policies"].as_object().expect("policies");
    let cases = all["cases"].as_array().expect("cases");
    assert!(cases.len() >= 30);
    for case in cases {
        let name = s(case, "policy");
        let engine = policy_engine(name, policies[name].as_str().expect("policy text"));
        let d = engine.decide(&action(&case["action"]));
        let what = format!("policy {name}, action {}", case["action"]);
        assert_eq!(d.decision(), s(case, "decision"), "{what}");
        assert_eq!(d.outcome.as_str(), s(case, "outcome"), "{what}");
        assert_eq!(&*d.reason_code, s(case, "reason_code"), "{what}");
        assert_eq!(&*d.reason, s(case, "reason"), "{what}");
        assert_eq!(d.risk_level.as_str(), s(case, "risk_level"), "{what}");
    }
}

#[test]
fn deliberate_differences() {
    let all = vectors("decisions.json");
    for case in all["deliberate_differences"].as_array().expect("list") {
        let engine = policy_engine("difference", s(case, "policy_yaml"));
        let d = engine.decide(&action(&case["action"]));
        let what = s(case, "why");
        assert_eq!(d.decision(), s(case, "decision"), "{what}");
        assert_eq!(d.outcome.as_str(), s(case, "outcome"), "{what}");
        assert_eq!(&*d.reason_code, s(case, "reason_code"), "{what}");
    }
}

#[test]
fn profile_hash_and_decisions() {
    let vector = vectors("profile.json");
    let profile = Profile::parse("profiles/default.yaml", s(&vector, "profile_yaml"))
        .expect("profile is valid");
    assert_eq!(profile.hashed_form(), &vector["hashed_form"]);
    assert_eq!(
        canonical_string(profile.hashed_form()).unwrap(),
        s(&vector, "canonical")
    );
    assert_eq!(&**profile.hash(), s(&vector, "profile_hash"));

    let decisions = vectors("decisions.json");
    let policy_name = s(&vector, "policy_yaml_name");
    let text = decisions["policies"][policy_name]
        .as_str()
        .expect("policy text");
    let engine =
        policy_engine(policy_name, text).with_profile(ProfileState::Loaded(Box::new(profile)));
    for case in vector["decisions_with_this_profile"]
        .as_array()
        .expect("list")
    {
        let d = engine.decide(&action(&case["action"]));
        let what = format!("action {}", case["action"]);
        assert_eq!(d.outcome.as_str(), s(case, "outcome"), "{what}");
        assert_eq!(&*d.reason_code, s(case, "reason_code"), "{what}");
        assert_eq!(&*d.reason, s(case, "reason"), "{what}");
        assert_eq!(d.profile_hash.as_deref(), Some(s(&vector, "profile_hash")));
        let expected = provenance_id(
            d.request_hash.as_deref(),
            d.policy_hash.as_deref(),
            Some(s(&vector, "profile_hash")),
            "0.3.0",
        );
        assert_eq!(d.provenance_id, expected, "{what}");
    }
}

#[test]
fn event_chain_verifies_and_names_the_first_broken_link() {
    use faramesh_core::ledger::{verify_chain, ChainedEvent};
    let all = vectors("canonical.json");
    let cases = all["event_chain"].as_array().expect("list");
    let events: Vec<ChainedEvent<'_>> = cases
        .iter()
        .map(|c| ChainedEvent {
            id: s(&c["event"], "id"),
            action_id: s(&c["event"], "action_id"),
            event_type: s(&c["event"], "event_type"),
            created_at: s(&c["event"], "created_at"),
            meta: &c["event"]["meta"],
            prev_hash: c["prev_hash"].as_str(),
            record_hash: s(c, "record_hash"),
        })
        .collect();
    assert_eq!(verify_chain(&events), Ok(()));

    let tampered_meta = serde_json::json!({"reason": "Looks risky"});
    let mut tampered = events.clone();
    tampered[2].meta = &tampered_meta;
    let broken = verify_chain(&tampered).unwrap_err();
    assert_eq!(
        (broken.event_id.as_str(), broken.position, broken.what),
        ("e3", 3, "record_hash")
    );
    assert_eq!(broken.found, s(&cases[2], "record_hash"));

    let mut reordered = events.clone();
    reordered.swap(1, 2);
    let broken = verify_chain(&reordered).unwrap_err();
    assert_eq!((broken.event_id.as_str(), broken.what), ("e3", "prev_hash"));
}
