//! The field-bound conditions (`url_host`, `url_scheme`, `url_port`, `fields`) in whole
//! policies: decisions, risk rules, diagnostics and the policy hash.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

use faramesh_core::hash::canonical_sha256;
use faramesh_core::{ActionRequest, Engine, Outcome, Policy, Report, RiskLevel};
use serde_json::{json, Value};

fn policy(text: &str) -> Policy {
    Policy::parse("p.yaml", text).unwrap_or_else(|r| panic!("{r}"))
}

fn report(text: &str) -> Report {
    match Policy::parse("p.yaml", text) {
        Ok(_) => panic!("the policy was accepted:\n{text}"),
        Err(report) => report,
    }
}

fn act(tool: &str, op: &str, params: Value, context: Value) -> ActionRequest {
    serde_json::from_value(json!({
        "agent_id": "a", "tool": tool, "operation": op, "params": params, "context": context,
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

fn decide(engine: &Engine, params: Value) -> Outcome {
    engine
        .decide(&act("http", "get", params, json!({})))
        .outcome
}

const EGRESS: &str = r#"
rules:
  - match:
      tool: http
      op: get
      url_host: [api.github.com, "*.githubusercontent.com"]
      url_scheme: [https]
      url_port: 443
      fields:
        params.path: {starts_with: /repos/}
    allow: true
"#;

#[test]
fn url_conditions_decide_on_the_parsed_host_only() {
    let engine = Engine::new(Some(policy(EGRESS)), "1");
    let allowed =
        |url: &str| decide(&engine, json!({"url": url, "path": "/repos/x"})) == Outcome::Execute;
    assert!(allowed("https://api.github.com/repos/x"));
    assert!(allowed("https://API.GITHUB.COM./repos/x"));
    assert!(allowed("https://api.github.com:443/"));
    assert!(allowed("https://raw.githubusercontent.com/a/b"));
    assert!(
        !allowed("https://githubusercontent.com/"),
        "the wildcard is for subdomains only"
    );
    assert!(!allowed("http://api.github.com/"), "scheme");
    assert!(!allowed("https://api.github.com:8443/"), "port");
    assert!(!allowed("https://api.github.com.evil.com/"));
    assert!(!allowed("https://api.github.com@evil.com/"));
    assert!(!allowed("https://evil.com/api.github.com"));
    assert!(!allowed("not a url"));
    // A decoy key holding an allowed URL does not stand for params.url.
    assert_eq!(
        decide(
            &engine,
            json!({"url": "http://10.0.0.5:8080/admin", "path": "/repos/x", "note": {"url": "https://api.github.com/"}})
        ),
        Outcome::Halt
    );
    // params.url only: not context, not a missing or non-text value.
    let from_context = engine.decide(&act(
        "http",
        "get",
        json!({"path": "/repos/x"}),
        json!({"url": "https://api.github.com/"}),
    ));
    assert_eq!(from_context.outcome, Outcome::Halt);
    assert_eq!(
        decide(
            &engine,
            json!({"url": ["https://api.github.com/"], "path": "/repos/x"})
        ),
        Outcome::Halt
    );
    // The `fields` test binds to params.path, not to any "path" in the text.
    assert_eq!(
        decide(
            &engine,
            json!({"url": "https://api.github.com/", "path": "/admin", "x": {"path": "/repos/x"}})
        ),
        Outcome::Halt
    );
}

#[test]
fn metadata_addresses_are_denied_in_every_spelling() {
    let engine = Engine::new(
        Some(policy(
            "rules:\n  - match: {tool: http, url_host: [169.254.169.254, metadata.google.internal]}\n    deny: true\n  - match: {tool: http}\n    allow: true\n",
        )),
        "1",
    );
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[::ffff:169.254.169.254]/",
        "http://2852039166/",
        "http://0251.0376.0251.0376/",
        "http://0xa9fea9fe/",
        "http://169.254.169.254./",
        "http://Metadata.Google.Internal./computeMetadata/v1/",
    ] {
        assert_eq!(decide(&engine, json!({"url": url})), Outcome::Halt, "{url}");
    }
    assert_eq!(
        decide(&engine, json!({"url": "https://example.com/"})),
        Outcome::Execute
    );
}

#[test]
fn fields_operators_in_a_rule() {
    let engine = Engine::new(
        Some(policy(
            r#"
rules:
  - match:
      tool: pay
      fields:
        params.amount: {gte: 0, lte: 1000}
        context.env: {in: [staging, dev]}
        params.memo: {matches: "^[a-z0-9 ]+$"}
        params.override: {exists: false}
    allow: true
"#,
        )),
        "1",
    );
    let outcome =
        |params: Value, context: Value| engine.decide(&act("pay", "send", params, context)).outcome;
    let ok = json!({"amount": 10, "memo": "rent 2030"});
    assert_eq!(outcome(ok.clone(), json!({"env": "dev"})), Outcome::Execute);
    assert_eq!(
        outcome(json!({"amount": "10", "memo": "x"}), json!({"env": "dev"})),
        Outcome::Execute
    );
    assert_eq!(outcome(ok.clone(), json!({"env": "prod"})), Outcome::Halt);
    assert_eq!(outcome(ok.clone(), json!({})), Outcome::Halt);
    assert_eq!(
        outcome(json!({"amount": 1001, "memo": "x"}), json!({"env": "dev"})),
        Outcome::Halt
    );
    assert_eq!(
        outcome(json!({"amount": -1, "memo": "x"}), json!({"env": "dev"})),
        Outcome::Halt
    );
    assert_eq!(
        outcome(json!({"amount": "5e4", "memo": "x"}), json!({"env": "dev"})),
        Outcome::Halt
    );
    assert_eq!(
        outcome(json!({"memo": "x"}), json!({"env": "dev", "amount": 5})),
        Outcome::Halt
    );
    assert_eq!(
        outcome(json!({"amount": 5, "memo": "x; rm"}), json!({"env": "dev"})),
        Outcome::Halt
    );
    assert_eq!(
        outcome(
            json!({"amount": 5, "memo": "x", "override": true}),
            json!({"env": "dev"})
        ),
        Outcome::Halt
    );
    assert_eq!(
        outcome(
            json!({"amount": 5, "memo": "x", "override": null}),
            json!({"env": "dev"})
        ),
        Outcome::Execute,
        "a null field counts as absent"
    );
}

#[test]
fn the_conditions_work_in_risk_rules() {
    let engine = Engine::new(
        Some(policy(
            r#"
rules:
  - match: {tool: http}
    allow: true
risk:
  rules:
    - name: internal
      when: {tool: http, url_host: "*.internal.example.com", url_port: [8443]}
      risk_level: high
    - name: big
      when: {fields: {params.size: {gt: 100}}}
      risk_level: medium
"#,
        )),
        "1",
    );
    let d = engine.decide(&act(
        "http",
        "get",
        json!({"url": "https://db.internal.example.com:8443/"}),
        json!({}),
    ));
    assert_eq!(
        (d.outcome, d.risk_rule.as_deref()),
        (Outcome::Abstain, Some("internal"))
    );
    let d = engine.decide(&act("http", "get", json!({"size": 101}), json!({})));
    assert_eq!(
        (d.risk_level, d.risk_rule.as_deref()),
        (RiskLevel::Medium, Some("big"))
    );
    let d = engine.decide(&act("http", "get", json!({"x": {"size": 101}}), json!({})));
    assert_eq!(d.risk_level, RiskLevel::Low);
}

#[test]
fn a_rule_with_only_new_conditions_is_not_a_catch_all() {
    let p = policy("rules:\n  - match: {tool: http, url_scheme: https}\n    allow: true\n  - match: {tool: http}\n    deny: true\n  - match: {tool: x, fields: {params.a: {exists: true}}}\n    allow: true\n  - match: {tool: x}\n    deny: true\n");
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
}

#[test]
fn new_keys_are_part_of_the_policy_hash() {
    let plain = policy("rules:\n  - match: {tool: http}\n    allow: true\n");
    let hosts = policy("rules:\n  - match: {tool: http, url_host: a.example}\n    allow: true\n");
    let other = policy("rules:\n  - match: {tool: http, url_host: b.example}\n    allow: true\n");
    let fields = policy(
        "rules:\n  - match: {tool: http, fields: {params.a: {equals: 1}}}\n    allow: true\n",
    );
    let hashes = [plain.hash(), hosts.hash(), other.hash(), fields.hash()];
    for (i, a) in hashes.iter().enumerate() {
        for b in &hashes[i + 1..] {
            assert_ne!(a, b);
        }
    }
    // The hash is over the rules as written.
    let expected = canonical_sha256(&json!({
        "rules": [{"match": {"tool": "http", "url_host": "a.example"}, "allow": true}],
        "risk_rules": [],
    }))
    .unwrap_or_default();
    assert_eq!(hosts.hash(), expected);
}

/// `file:line:col: ... (rule N); hint: ...` lines of a report.
fn lines(report: &Report) -> String {
    report.to_string()
}

#[test]
fn url_condition_problems_are_located_with_hints() {
    let text = "rules:\n  - match:\n      tool: http\n      url_host: [\"https://api.github.com\", \"api.*.com\", \"api.github.com:443\", \"*.10.0.0.1\", 7]\n      url_scheme: \"https://\"\n      url_port: [\"443\", 70000]\n    allow: true\n";
    let r = report(text);
    let out = lines(&r);
    let codes: Vec<&str> = r.diagnostics.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "bad-host",
            "bad-host",
            "bad-host",
            "bad-host",
            "not-text",
            "bad-scheme",
            "bad-port",
            "bad-port"
        ],
        "{out}"
    );
    assert!(out.contains("p.yaml:4:18: error: `url_host` entry \"https://api.github.com\" cannot be used: this is a URL, not a host (rule 1); hint: write only the host"), "{out}");
    assert!(
        out.contains("hint: write the host alone and the port in `url_port`"),
        "{out}"
    );
    assert!(
        out.contains("a wildcard applies to domain names, not to IP addresses"),
        "{out}"
    );
    assert!(
        out.contains("hint: write the scheme alone, without `:` or `://`: https"),
        "{out}"
    );
    assert!(
        out.contains("hint: write the number without quotes: url_port: 443"),
        "{out}"
    );
    assert!(out.contains("found the number 70000"), "{out}");
    let r = report("rules:\n  - match: {tool: http, url_host: []}\n    allow: true\n");
    assert_eq!(r.diagnostics[0].code, "empty-list");
    let r = report("rules:\n  - match: {tool: http, url_hots: a.example}\n    allow: true\n");
    assert!(lines(&r).contains("hint: did you mean `url_host`?"), "{r}");
    let r = report("rules:\n  - match: {tool: http, zzz: 1}\n    allow: true\n");
    assert!(
        lines(&r).contains("url_host, url_scheme, url_port, fields"),
        "{r}"
    );
}

#[test]
fn fields_problems_are_located_with_hints() {
    let text = r#"rules:
  - match:
      tool: pay
      fields:
        amount: {lte: 1000}
        param.amount: {lte: 1000}
        params.a: {lte: "1000", equls: 1, in: [], exists: yes}
        params.b: prod
        params.c: {}
        params.d: {matches: "(", starts_with: 5}
        params.e: {exists: false, equals: 1}
        params.f: {equals: null}
        context: {exists: true}
    allow: true
risk:
  rules:
    - name: r
      when: {fields: [params.a]}
      risk_level: high
"#;
    let r = report(text);
    let out = lines(&r);
    let codes: Vec<&str> = r.diagnostics.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "bad-field-path",
            "bad-field-path",
            "not-number",
            "unknown-operator",
            "empty-list",
            "not-boolean",
            "bad-field-tests",
            "empty-field-tests",
            "bad-regex",
            "not-text",
            "contradictory-tests",
            "null-value",
            "bad-field-path",
            "bad-fields",
        ],
        "{out}"
    );
    assert!(out.contains("p.yaml:5:9: error: in `fields`: `amount` does not say where the field is: a path starts with `params.` or `context.` (rule 1); hint: did you mean `params.amount`?"), "{out}");
    assert!(
        out.contains(
            "p.yaml:6:9: error: in `fields`: `param.amount` does not say where the field is"
        ),
        "{out}"
    );
    assert!(
        out.contains("hint: write the number without quotes: lte: 1000"),
        "{out}"
    );
    assert!(
        out.contains(
            "unknown operator `equls` for `params.a` (rule 1); hint: did you mean `equals`?"
        ),
        "{out}"
    );
    assert!(
        out.contains("hint: write for example `params.b: {equals: \"prod\"}`"),
        "{out}"
    );
    assert!(out.contains("(risk rule 1)"), "{out}");
}

#[test]
fn validation_accepts_every_operator() {
    let p = policy(
        r#"
rules:
  - match:
      tool: t
      url_host: api.github.com
      url_scheme: [https, HTTP]
      url_port: [443, 80]
      fields:
        params.a: {equals: {k: [1, 2]}}
        params.b: {in: [1, "1", true]}
        params.c: {matches: "^x", starts_with: x, ends_with: y, contains: z}
        params.d: {gt: 1, gte: 1.5, lt: 1e3, lte: -0}
        params.e: {exists: true}
        context.f.g.0: {exists: false}
    allow: true
"#,
    );
    let c = &p.rules()[0].conditions;
    assert_eq!(c.url_schemes, ["https", "http"]);
    assert_eq!(c.url_ports, [443, 80]);
    assert_eq!(c.fields.len(), 6);
}
