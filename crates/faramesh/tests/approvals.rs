//! Approval rules and the notifications that reach people, against the real binary and real
//! receivers on loopback: a quorum of distinct approvers, roles, separation of duties,
//! timeouts that deny or escalate, webhooks checked by the receivers' own signature code,
//! Slack's buttons through a signed callback, email over STARTTLS, and delivery that survives
//! a receiver that is down, a crash of the server, and two replicas sharing the outbox.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test stops at the first setup step or expectation that fails"
)]

mod notify_support;

use notify_support::{
    free_port, now, slack_press, smtp_server, wait_for, webhook_receiver, FakeSlack, Faramesh,
    Language, ADMIN,
};
use predicates::prelude::*;
use serde_json::{json, Value};

const POLICY: &str = r#"rules:
  - match: {tool: stripe, op: refund}
    require_approval: {approvers: 2}
    description: Refunds need two people
  - match: {tool: stripe, op: payout}
    require_approval: {roles: ["token:alice"]}
    description: Only alice approves payouts
  - match: {tool: shell, op: run}
    require_approval: true
  - match: {tool: "*", op: "*"}
    allow: true
"#;

fn event_types(server: &Faramesh, id: &str) -> Vec<String> {
    server
        .events(id)
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_owned())
        .collect()
}

fn approvers(action: &Value) -> Vec<&str> {
    action["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["by"].as_str().unwrap())
        .collect()
}

#[test]
fn a_quorum_needs_distinct_approvers_never_the_submitter_and_a_denial_denies() {
    let server = Faramesh::start(POLICY, None, &[]);
    let alice = server.token("alice", "approver");
    let bob = server.token("bob", "approver");
    let bot = server.token("bot", "agent");

    let refund = server.submit(&bot, "stripe", "refund", json!({"amount": 12000}));
    let id = refund["id"].as_str().unwrap();
    assert_eq!(refund["status"], "pending_approval");
    assert_eq!(refund["approvals_required"], 2);
    assert_eq!(refund["approvals"], json!([]));

    let (status, first) = server.decide(id, &alice, true);
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["status"], "pending_approval", "one approval of two");
    assert_eq!(approvers(&first), ["alice"]);
    server
        .cli(&alice)
        .args(["get", id])
        .assert()
        .success()
        .stdout(predicate::str::contains("1 of 2 approvals: alice"));
    server
        .cli(&alice)
        .args(["list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("pending_approval 1/2"));

    // The same identity twice does not count.
    let (status, again) = server.decide(id, &alice, true);
    assert_eq!(status, 409, "{again}");
    assert!(
        again["detail"]
            .as_str()
            .unwrap()
            .contains("alice already approved"),
        "{again}"
    );
    // An agent may never approve.
    let (status, refused) = server.decide(id, &bot, true);
    assert_eq!(status, 403, "{refused}");

    let (status, second) = server.decide(id, &bob, true);
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["status"], "approved");
    assert_eq!(approvers(&second), ["alice", "bob"]);
    assert_eq!(
        event_types(&server, id),
        ["created", "decision_made", "approval_recorded", "approved"]
    );
    let events = server.events(id);
    assert_eq!(
        (
            events[2]["meta"]["by"].as_str(),
            events[3]["meta"]["by"].as_str()
        ),
        (Some("alice"), Some("bob"))
    );
    server
        .cli(ADMIN)
        .args(["verify-log", id])
        .assert()
        .success();

    // Whoever submitted can never count, even with a role that approves.
    let own = server.submit(ADMIN, "stripe", "refund", json!({"amount": 15000}));
    let own_id = own["id"].as_str().unwrap();
    let (status, refused) = server.decide(own_id, ADMIN, true);
    assert_eq!(status, 403, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("submitted action"),
        "{refused}"
    );
    assert_eq!(server.action(own_id)["approvals"], json!([]));

    // A denial after one approval denies at once.
    let third = server.submit(&bot, "stripe", "refund", json!({"amount": 20000}));
    let third_id = third["id"].as_str().unwrap();
    assert_eq!(server.decide(third_id, &alice, true).0, 200);
    let (status, denied) = server.decide(third_id, &bob, false);
    assert_eq!(status, 200, "{denied}");
    assert_eq!(denied["status"], "denied");

    // `roles` names who may decide: bob may not, alice may.
    let payout = server.submit(&bot, "stripe", "payout", json!({"amount": 10}));
    let payout_id = payout["id"].as_str().unwrap();
    let (status, refused) = server.decide(payout_id, &bob, true);
    assert_eq!(status, 403, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("admits only token \"alice\""),
        "{refused}"
    );
    let (status, approved) = server.decide(payout_id, &alice, true);
    assert_eq!(
        (status, approved["status"].as_str()),
        (200, Some("approved"))
    );
}

/// The policy with rules whose timeouts deny or escalate, telling the route `hooks`.
const TIMEOUT_POLICY: &str = r#"rules:
  - match: {tool: deploy, op: prod}
    require_approval: {timeout: 1s, on_timeout: deny, notify: [hooks]}
  - match: {tool: deploy, op: db}
    require_approval: {timeout: 1s, on_timeout: escalate, notify: [hooks]}
  - match: {tool: shell, op: run}
    require_approval: true
"#;

fn routes_with_hooks(hooks: &str, oncall: &str) -> String {
    format!(
        r#"public_url: http://faramesh.test
escalation: [oncall]
routes:
  hooks:
    webhook: {{url: "{hooks}/hooks", secret: "${{HOOKS_SECRET}}"}}
  oncall:
    match: {{tool: nothing-matches-this}}
    webhook: {{url: "{oncall}/oncall", secret: "${{ONCALL_SECRET}}"}}
"#
    )
}

#[test]
fn timeouts_deny_or_escalate_and_each_event_reaches_its_receiver_signed() {
    notify_support::setup();
    let hooks = webhook_receiver(Language::Python, "hooks-secret-3f9a", 0, 0);
    let oncall = webhook_receiver(Language::Node, "oncall-secret-77c1", 0, 0);
    let server = Faramesh::start(
        TIMEOUT_POLICY,
        Some(&routes_with_hooks(&hooks.address, &oncall.address)),
        &[
            ("HOOKS_SECRET", "hooks-secret-3f9a"),
            ("ONCALL_SECRET", "oncall-secret-77c1"),
        ],
    );
    let bot = server.token("bot", "agent");

    // on_timeout: deny.
    let prod = server.submit(&bot, "deploy", "prod", json!({"ref": "v1.2.3"}));
    let prod_id = prod["id"].as_str().unwrap().to_owned();
    let denied = server.wait_status(&prod_id, "denied");
    assert!(
        denied["reason"]
            .as_str()
            .unwrap()
            .contains("No decision within 1 s; denied"),
        "{denied}"
    );
    let requested = hooks.wait_record("approval.requested of deploy/prod", |r| {
        r["event"] == "approval.requested" && r["body"]["action"]["id"] == prod_id.as_str()
    });
    assert_eq!(
        requested["status"], 200,
        "the Python receiver verified the signature: {requested}"
    );
    assert_eq!(
        requested["body"]["links"]["action"],
        format!("http://faramesh.test/#/action/{prod_id}")
    );
    assert_eq!(
        requested["body"]["action"]["params"],
        json!({"ref": "v1.2.3"})
    );
    let expired = hooks.wait_record("approval.expired of deploy/prod", |r| {
        r["event"] == "approval.expired" && r["body"]["action"]["id"] == prod_id.as_str()
    });
    assert_eq!(expired["status"], 200);
    assert_eq!(expired["body"]["action"]["status"], "denied");

    // on_timeout: escalate → the escalation route is told, then one timeout later: denied.
    let db = server.submit(&bot, "deploy", "db", json!({"migration": "0042"}));
    let db_id = db["id"].as_str().unwrap().to_owned();
    let escalated = oncall.wait_record("approval.escalated to oncall", |r| {
        r["event"] == "approval.escalated" && r["body"]["action"]["id"] == db_id.as_str()
    });
    assert_eq!(
        escalated["status"], 200,
        "the Node receiver verified the signature: {escalated}"
    );
    let denied = server.wait_status(&db_id, "denied");
    assert!(
        denied["reason"]
            .as_str()
            .unwrap()
            .contains("after escalating"),
        "{denied}"
    );
    assert_eq!(
        event_types(&server, &db_id),
        ["created", "decision_made", "escalated", "denied"]
    );
    // The escalation route was told only of the escalation.
    let to_oncall: Vec<Value> = oncall.records();
    assert!(
        to_oncall.iter().all(|r| r["event"] == "approval.escalated"),
        "{to_oncall:?}"
    );
    // Every delivery is recorded as delivered, once.
    let delivered = wait_for("every notification delivered", || {
        let all = server.notifications("limit=100");
        all.iter().all(|n| n["state"] == "delivered").then_some(all)
    });
    assert_eq!(delivered.len(), 5, "{delivered:?}");
    server.assert_keeps_secrets(&["hooks-secret-3f9a", "oncall-secret-77c1"]);
}

#[test]
fn delivery_survives_a_receiver_that_is_down_and_a_crash_of_the_server() {
    notify_support::setup();
    let port = free_port();
    let address = format!("http://127.0.0.1:{port}");
    let mut server = Faramesh::start(
        POLICY,
        Some(&routes_with_hooks(&address, &address)),
        &[
            ("HOOKS_SECRET", "hooks-secret-3f9a"),
            ("ONCALL_SECRET", "x"),
        ],
    );
    // A decision never waits for a receiver.
    let action = server.submit(ADMIN, "shell", "run", json!({"cmd": "ls"}));
    let id = action["id"].as_str().unwrap().to_owned();
    assert_eq!(action["status"], "pending_approval");
    let failed = wait_for("a failed attempt", || {
        server
            .notifications(&format!("action_id={id}"))
            .into_iter()
            .find(|n| n["last_error"].is_string())
    });
    assert_eq!(failed["state"], "pending");
    assert!(
        failed["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot reach"),
        "{failed}"
    );
    server
        .cli(ADMIN)
        .args(["notify", "list", "--action", &id])
        .assert()
        .success()
        .stdout(predicate::str::contains("retry at"));

    // The server dies before it delivered; the receiver comes up, failing once more.
    server.kill();
    let hooks = webhook_receiver(Language::Python, "hooks-secret-3f9a", port, 1);
    server.restart();
    let received = hooks.wait_record("the delivery after the restart", |r| r["status"] == 200);
    assert_eq!(received["body"]["action"]["id"], id.as_str());
    assert_eq!(received["event"], "approval.requested");
    let delivered = wait_for("the outbox to say delivered", || {
        server
            .notifications(&format!("action_id={id}"))
            .into_iter()
            .find(|n| n["state"] == "delivered")
    });
    assert!(delivered["attempts"].as_u64().unwrap() >= 3, "{delivered}");
    // Every attempt the receiver saw was the same notification.
    let records = hooks.records();
    assert!(
        records.iter().all(|r| r["delivery"] == delivered["id"]),
        "{records:?}"
    );
}

#[test]
fn two_postgres_replicas_deliver_each_notification_once() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some((dsn, database)) = runtime.block_on(faramesh_testkit::fresh_postgres_database())
    else {
        return;
    };
    notify_support::setup();
    let hooks = webhook_receiver(Language::Node, "hooks-secret-3f9a", 0, 0);
    let routes = routes_with_hooks(&hooks.address, &hooks.address);
    let env = [
        ("FARA_DB_BACKEND", "postgres"),
        ("FARA_POSTGRES_DSN", dsn.as_str()),
        ("HOOKS_SECRET", "hooks-secret-3f9a"),
        ("ONCALL_SECRET", "x"),
    ];
    let replicas = [
        Faramesh::start(POLICY, Some(&routes), &env),
        Faramesh::start(POLICY, Some(&routes), &env),
    ];
    let ids: Vec<String> = (0..30)
        .map(|i| {
            let action =
                replicas[i % 2].submit(ADMIN, "shell", "run", json!({"cmd": format!("echo {i}")}));
            action["id"].as_str().unwrap().to_owned()
        })
        .collect();
    let delivered = wait_for("30 notifications delivered", || {
        let all = replicas[0].notifications("limit=100&state=delivered");
        (all.len() == 30).then_some(all)
    });
    // Each was taken once: one attempt each, and the receiver saw each once.
    assert!(
        delivered.iter().all(|n| n["attempts"] == 1),
        "{delivered:?}"
    );
    let received = hooks.records();
    assert_eq!(received.len(), 30);
    let mut seen: Vec<&str> = received
        .iter()
        .map(|r| r["body"]["action"]["id"].as_str().unwrap())
        .collect();
    seen.sort_unstable();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(seen, expected);
    drop(replicas);
    drop(database);
}

const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

#[test]
fn a_pending_action_is_approved_from_slacks_button_through_a_verified_callback() {
    let slack = FakeSlack::start();
    let routes = format!(
        r#"public_url: http://faramesh.test
routes:
  approvers:
    slack:
      webhook_url: "{}/webhook?token=${{SLACK_HOOK_TOKEN}}"
      signing_secret: "${{SLACK_SIGNING_SECRET}}"
      users: {{U0ALICE: alice, U0GHOST: ghost}}
"#,
        slack.url
    );
    let server = Faramesh::start(
        POLICY,
        Some(&routes),
        &[
            ("SLACK_SIGNING_SECRET", SLACK_SECRET),
            ("SLACK_HOOK_TOKEN", "xoxb-hook-secret-1"),
        ],
    );
    server.token("alice", "approver");
    let action = server.submit(
        ADMIN,
        "shell",
        "run",
        json!({"cmd": "kubectl rollout restart deploy/api"}),
    );
    let id = action["id"].as_str().unwrap().to_owned();

    // The message: the command, and Approve/Deny buttons carrying the action id.
    let message = slack.wait_for("webhook", "the Slack message", |m| {
        m.to_string().contains(&id)
    });
    let text = message.to_string();
    assert!(
        text.contains("kubectl rollout restart deploy/api"),
        "{text}"
    );
    let buttons = &message["blocks"].as_array().unwrap().last().unwrap()["elements"];
    assert_eq!(
        (
            buttons[0]["action_id"].as_str(),
            buttons[0]["value"].as_str()
        ),
        (Some("approve"), Some(id.as_str()))
    );
    assert_eq!(buttons[1]["action_id"], "deny");
    let respond = format!("{}/respond", slack.url);

    // Forged, stale and unbound presses are refused and change nothing.
    let forged = slack_press(
        &server,
        "not-the-secret",
        now(),
        "U0ALICE",
        &id,
        "approve",
        &respond,
    );
    assert_eq!(forged.0, 401, "{forged:?}");
    let stale = slack_press(
        &server,
        SLACK_SECRET,
        now() - 400,
        "U0ALICE",
        &id,
        "approve",
        &respond,
    );
    assert_eq!(stale.0, 401, "{stale:?}");
    assert!(
        stale.1["detail"]
            .as_str()
            .unwrap()
            .contains("more than five minutes"),
        "{stale:?}"
    );
    let stranger = slack_press(
        &server,
        SLACK_SECRET,
        now(),
        "U0STRANGER",
        &id,
        "approve",
        &respond,
    );
    assert_eq!(stranger.0, 403, "{stranger:?}");
    slack.wait_for("respond", "the reply to the stranger", |m| {
        m["response_type"] == "ephemeral" && m["text"].as_str().unwrap_or("").contains("not bound")
    });
    // Bound to a token that does not exist: refused too.
    let ghost = slack_press(
        &server,
        SLACK_SECRET,
        now(),
        "U0GHOST",
        &id,
        "approve",
        &respond,
    );
    assert_eq!(ghost.0, 403, "{ghost:?}");
    assert_eq!(server.action(&id)["status"], "pending_approval");

    // Alice's press approves, as alice, and the message is replaced with the outcome.
    let pressed = slack_press(
        &server,
        SLACK_SECRET,
        now(),
        "U0ALICE",
        &id,
        "approve",
        &respond,
    );
    assert_eq!(pressed.0, 200, "{pressed:?}");
    let approved = server.action(&id);
    assert_eq!(approved["status"], "approved");
    let events = server.events(&id);
    assert_eq!(events.last().unwrap()["meta"]["by"], "alice");
    let update = slack.wait_for("respond", "the updated message", |m| {
        m["replace_original"] == true
    });
    assert!(
        update["text"]
            .as_str()
            .unwrap()
            .starts_with("Approved by alice"),
        "{update}"
    );
    // The channel hears of the decision too.
    slack.wait_for("webhook", "the decision message", |m| {
        m["text"]
            .as_str()
            .unwrap_or("")
            .starts_with("Approved by alice")
    });
    server.assert_keeps_secrets(&[SLACK_SECRET, "xoxb-hook-secret-1"]);
}

#[test]
fn a_pending_action_reaches_an_email_receiver_over_starttls() {
    let smtp = smtp_server("faramesh-mailer", "smtp-password-5e1b");
    let routes = format!(
        r#"public_url: http://faramesh.test
routes:
  security:
    email:
      to: [sec@example.com, oncall@example.com]
      from: faramesh@example.com
      smtp: "smtp://127.0.0.1:{}"
      username: "${{SMTP_USER}}"
      password: "${{SMTP_PASSWORD}}"
      ca_file: "{}"
"#,
        smtp.port,
        smtp.ca.display()
    );
    let server = Faramesh::start(
        POLICY,
        Some(&routes),
        &[
            ("SMTP_USER", "faramesh-mailer"),
            ("SMTP_PASSWORD", "smtp-password-5e1b"),
        ],
    );
    let action = server.submit(ADMIN, "shell", "run", json!({"cmd": "rm -rf /srv/cache"}));
    let id = action["id"].as_str().unwrap().to_owned();
    let mail = smtp.fixture.wait_record("the mail", |m| {
        m["data"].as_str().unwrap_or("").contains("Approval needed")
    });
    assert_eq!(mail["tls"], true, "sent over STARTTLS");
    assert_eq!(mail["auth_user"], "faramesh-mailer");
    assert_eq!(
        mail["rcpt_tos"],
        json!(["sec@example.com", "oncall@example.com"])
    );
    let data = mail["data"].as_str().unwrap();
    assert!(
        data.contains("Subject: [Faramesh] Approval needed: shell/run by agent-7"),
        "{data}"
    );
    assert!(
        data.contains("text/plain") && data.contains("text/html"),
        "{data}"
    );
    assert!(data.contains("rm -rf /srv/cache"), "{data}");
    assert!(
        data.contains(&format!("http://faramesh.test/#/action/{id}")),
        "{data}"
    );

    // `faramesh notify test` sends one and waits for its delivery.
    server
        .cli(ADMIN)
        .args(["notify", "test", "security"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "delivered a test message through route security",
        ));
    smtp.fixture.wait_record("the test mail", |m| {
        m["data"]
            .as_str()
            .unwrap_or("")
            .contains("[Faramesh] Test message")
    });
    server
        .cli(ADMIN)
        .args(["notify", "test", "nowhere"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "No route \"nowhere\"; the routes are security",
        ));
    server.assert_keeps_secrets(&["smtp-password-5e1b"]);
}

#[test]
fn a_routes_file_with_mistakes_stops_the_start_with_each_one_located() {
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
    std::fs::write(
        dir.path().join("notify.yaml"),
        "routes:\n  hooks:\n    webhook: {url: \"https://x.example\", secret: \"${NOT_SET_ANYWHERE}\"}\n  mail:\n    emial: {}\n",
    )
    .unwrap();
    assert_cmd::Command::cargo_bin("faramesh")
        .unwrap()
        .current_dir(dir.path())
        .args([
            "serve",
            "--port",
            "0",
            "--no-profile",
            "--policy",
            "policy.yaml",
            "--db",
            "a.db",
        ])
        .env_remove("FARAMESH_NOTIFY_FILE")
        .assert()
        .code(predicate::ne(0))
        .stderr(predicate::str::contains("notify.yaml:3:"))
        .stderr(predicate::str::contains(
            "the environment has no variable `NOT_SET_ANYWHERE`",
        ))
        .stderr(predicate::str::contains(
            "unknown key `emial` in route \"mail\" (did you mean `email`?)",
        ));
}

/// The signature checks the README shows are, character for character, the ones the webhook
/// receivers of these tests run.
#[test]
fn the_readmes_signature_checks_are_the_ones_the_receivers_run() {
    let repo = notify_support::repo();
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    for (file, start, end, tail) in [
        ("webhook_receiver.py", "def verify_signature(", "\n\n\n", 0),
        (
            "webhook_receiver.mjs",
            "function verifySignature(",
            "\n}\n",
            2,
        ),
    ] {
        let code = std::fs::read_to_string(repo.join("tests/notify").join(file)).unwrap();
        let from = code.find(start).unwrap();
        let to = from + code[from..].find(end).unwrap() + tail;
        let function = &code[from..to];
        assert!(
            readme.contains(function),
            "the README's copy of the check in tests/notify/{file} differs from it"
        );
    }
}
