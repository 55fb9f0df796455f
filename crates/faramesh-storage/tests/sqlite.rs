//! The SQLite store keeps the promises of the `Store` trait.

use faramesh_core::ledger::{verify_chain, ChainedEvent};
use faramesh_core::{ActionStatus, EventType, Transition};
use faramesh_storage::{
    ActionFilter, ActionRecord, EventRecord, NewAction, NewEvent, SqliteStore, Store, StoreError,
    TransitionUpdate,
};
use serde_json::{json, Map};
use std::sync::Arc;
use tempfile::TempDir;

fn open(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("data/actions.db")).expect("store opens")
}

fn action(status: ActionStatus, tool: &str) -> ActionRecord {
    let mut params = Map::new();
    params.insert("cmd".into(), json!("echo hi"));
    ActionRecord {
        id: uuid::Uuid::new_v4().to_string(),
        agent_id: "agent-1".into(),
        tool: tool.into(),
        operation: "run".into(),
        params,
        context: Map::new(),
        status,
        decision: Some("require_approval".into()),
        reason: Some("Shell commands require approval".into()),
        risk_level: Some("medium".into()),
        approval_token: (status == ActionStatus::PendingApproval).then(|| "token-123".into()),
        policy_version: Some("default.yaml@d7aecfa2a57c".into()),
        outcome: Some("ABSTAIN".into()),
        reason_code: Some("POLICY_REQUIRE_APPROVAL".into()),
        reason_details: Some(json!({"risk_level": "medium"})),
        request_hash: Some("r".repeat(64)),
        policy_hash: Some("p".repeat(64)),
        profile_id: None,
        profile_version: None,
        profile_hash: None,
        runtime_version: Some("test".into()),
        provenance_id: Some("v".repeat(64)),
        result: None,
        demo: false,
        created_at: String::new(),
        updated_at: String::new(),
    }
}

fn submission(record: ActionRecord) -> NewAction {
    NewAction {
        events: vec![
            NewEvent {
                event_type: EventType::Created,
                meta: json!({"decision": record.decision, "risk_level": record.risk_level}),
            },
            NewEvent {
                event_type: EventType::DecisionMade,
                meta: json!({"decision": record.decision, "outcome": record.outcome}),
            },
        ],
        action: record,
        idempotency: None,
    }
}

fn assert_chain(events: &[EventRecord]) {
    let chained: Vec<ChainedEvent<'_>> = events
        .iter()
        .map(|e| ChainedEvent {
            id: &e.id,
            action_id: &e.action_id,
            event_type: e.event_type.as_str(),
            created_at: &e.created_at,
            meta: &e.meta,
            prev_hash: e.prev_hash.as_deref(),
            record_hash: &e.record_hash,
        })
        .collect();
    assert_eq!(verify_chain(&chained), Ok(()));
}

#[tokio::test]
async fn an_action_and_its_events_are_written_together_and_survive_reopening() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let created = store
        .create_action(submission(action(ActionStatus::PendingApproval, "shell")))
        .await
        .unwrap();
    assert!(!created.replayed);
    assert_eq!(created.events.len(), 2);
    assert!(
        created.action.created_at.ends_with('Z') && created.action.created_at.len() == 27,
        "{}",
        created.action.created_at
    );
    let id = created.action.id.clone();
    drop(store);

    let store = open(&dir);
    let stored = store
        .get_action(&id)
        .await
        .unwrap()
        .expect("action persisted");
    assert_eq!(stored, created.action);
    let events = store.events(&id).await.unwrap();
    assert_eq!(events, created.events);
    assert_eq!(events[0].prev_hash, None);
    assert_chain(&events);
}

#[tokio::test]
async fn transitions_are_conditional_and_extend_the_chain() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let id = store
        .create_action(submission(action(ActionStatus::PendingApproval, "shell")))
        .await
        .unwrap()
        .action
        .id;

    let start_early = store
        .transition(&id, Transition::Start, TransitionUpdate::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            start_early,
            StoreError::Conflict {
                status: ActionStatus::PendingApproval,
                ..
            }
        ),
        "{start_early}"
    );

    let update = TransitionUpdate {
        decision: Some("allow".into()),
        reason: Some("Looks safe".into()),
        meta: json!({"reason": "Looks safe", "by": "admin"}),
        ..Default::default()
    };
    let (approved, event) = store
        .transition(&id, Transition::Approve, update)
        .await
        .unwrap();
    assert_eq!(
        (
            approved.status,
            approved.decision.as_deref(),
            approved.approval_token.as_deref()
        ),
        (ActionStatus::Approved, Some("allow"), None)
    );
    assert_eq!(event.event_type, EventType::Approved);

    let again = store
        .transition(&id, Transition::Deny, TransitionUpdate::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            again,
            StoreError::Conflict {
                status: ActionStatus::Approved,
                ..
            }
        ),
        "{again}"
    );

    store
        .transition(&id, Transition::Start, TransitionUpdate::default())
        .await
        .unwrap();
    let result = TransitionUpdate {
        result: Some(json!({"exit_code": 0, "stdout": "hi\n"})),
        meta: json!({"output": "hi\n"}),
        ..Default::default()
    };
    let (done, _) = store
        .transition(&id, Transition::Succeed, result)
        .await
        .unwrap();
    assert_eq!(done.status, ActionStatus::Succeeded);
    assert_eq!(done.result, Some(json!({"exit_code": 0, "stdout": "hi\n"})));

    let events = store.events(&id).await.unwrap();
    let types: Vec<EventType> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [
            EventType::Created,
            EventType::DecisionMade,
            EventType::Approved,
            EventType::Started,
            EventType::Succeeded
        ]
    );
    assert_chain(&events);

    let missing = store
        .transition(
            "00000000-0000-0000-0000-000000000000",
            Transition::Approve,
            TransitionUpdate::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(missing, StoreError::NotFound(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_approvals_and_denials_have_exactly_one_winner() {
    let dir = TempDir::new().unwrap();
    let store = Arc::new(open(&dir));
    let id = store
        .create_action(submission(action(ActionStatus::PendingApproval, "shell")))
        .await
        .unwrap()
        .action
        .id;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (store, id) = (store.clone(), id.clone());
        let transition = if i % 2 == 0 {
            Transition::Approve
        } else {
            Transition::Deny
        };
        tasks.push(tokio::spawn(async move {
            (
                transition,
                store
                    .transition(&id, transition, TransitionUpdate::default())
                    .await,
            )
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (t, Ok(_)) => winners.push(t),
            (_, Err(StoreError::Conflict { .. })) => {}
            (_, Err(other)) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one transition wins");
    let action = store.get_action(&id).await.unwrap().unwrap();
    assert_eq!(action.status, winners[0].to());
    let events = store.events(&id).await.unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[2].event_type, winners[0].event());
    assert_chain(&events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_submissions_are_all_stored_with_their_events() {
    let dir = TempDir::new().unwrap();
    let store = Arc::new(open(&dir));
    let mut tasks = Vec::new();
    for _ in 0..300 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_action(submission(action(ActionStatus::Allowed, "http")))
                .await
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().expect("stored").action.id);
    }
    for id in &ids {
        let events = store.events(id).await.unwrap();
        assert_eq!(events.len(), 2, "action {id} has both events");
        assert_chain(&events);
    }
    let all = store
        .list_actions(&ActionFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 300);
}

#[tokio::test]
async fn an_idempotency_key_returns_the_original_or_refuses_another_body() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let mut first = submission(action(ActionStatus::Allowed, "http"));
    first.idempotency = Some(("key-1".into(), "body-a".into()));
    let original = store.create_action(first).await.unwrap();

    let mut retry = submission(action(ActionStatus::Allowed, "http"));
    retry.idempotency = Some(("key-1".into(), "body-a".into()));
    let replayed = store.create_action(retry).await.unwrap();
    assert!(replayed.replayed);
    assert_eq!(replayed.action.id, original.action.id);

    let mut other = submission(action(ActionStatus::Allowed, "http"));
    other.idempotency = Some(("key-1".into(), "body-b".into()));
    let err = store.create_action(other).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::IdempotencyMismatch { action_id, .. } if *action_id == original.action.id),
        "{err}"
    );

    let all = store
        .list_actions(&ActionFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
}

#[tokio::test]
async fn the_database_refuses_to_change_or_delete_events() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let id = store
        .create_action(submission(action(ActionStatus::Allowed, "http")))
        .await
        .unwrap()
        .action
        .id;
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let update = conn
        .execute("UPDATE events SET meta = '{}' WHERE action_id = ?1", [&id])
        .unwrap_err();
    assert!(update.to_string().contains("append-only"), "{update}");
    let delete = conn
        .execute("DELETE FROM events WHERE action_id = ?1", [&id])
        .unwrap_err();
    assert!(delete.to_string().contains("append-only"), "{delete}");
}

fn pick(ids: &[String], order: &[usize]) -> Vec<String> {
    order.iter().map(|&i| ids[i].clone()).collect()
}

#[tokio::test]
async fn listing_is_newest_first_with_filters_and_paging() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let mut ids = Vec::new();
    for (i, tool) in ["http", "shell", "http", "stripe"].iter().enumerate() {
        let status = if i == 1 {
            ActionStatus::PendingApproval
        } else {
            ActionStatus::Allowed
        };
        ids.push(
            store
                .create_action(submission(action(status, tool)))
                .await
                .unwrap()
                .action
                .id,
        );
    }
    let list = |filter: ActionFilter| {
        let store = &store;
        async move {
            store
                .list_actions(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|a| a.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(ActionFilter {
            limit: 10,
            ..Default::default()
        })
        .await,
        pick(&ids, &[3, 2, 1, 0])
    );
    assert_eq!(
        list(ActionFilter {
            limit: 10,
            tool: Some("http".into()),
            ..Default::default()
        })
        .await,
        pick(&ids, &[2, 0])
    );
    assert_eq!(
        list(ActionFilter {
            limit: 10,
            status: Some(ActionStatus::PendingApproval),
            ..Default::default()
        })
        .await,
        pick(&ids, &[1])
    );
    assert_eq!(
        list(ActionFilter {
            limit: 2,
            offset: 1,
            ..Default::default()
        })
        .await,
        pick(&ids, &[2, 1])
    );
    assert!(list(ActionFilter {
        limit: 10,
        agent_id: Some("nobody".into()),
        ..Default::default()
    })
    .await
    .is_empty());

    assert_eq!(
        store
            .count_with_status(ActionStatus::PendingApproval)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .count_with_status(ActionStatus::Allowed)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store.count_with_status(ActionStatus::Denied).await.unwrap(),
        0
    );
    let prefix = &ids[0][..8];
    assert_eq!(
        store.ids_with_prefix(prefix, 10).await.unwrap(),
        [ids[0].clone()]
    );
    assert!(store.ids_with_prefix("%", 10).await.unwrap().is_empty());
    store.ping().await.unwrap();
}

#[tokio::test]
async fn api_tokens_are_stored_by_hash_named_uniquely_and_revocable() {
    use faramesh_storage::{NewToken, Role};
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let new = |name: &str, role, hash: &str| NewToken {
        name: name.into(),
        role,
        secret_hash: hash.into(),
    };
    let agent = store
        .create_token(new("ci-agent", Role::Agent, "h1"))
        .await
        .unwrap();
    assert_eq!(agent.role, Role::Agent);
    assert!(matches!(
        store.create_token(new("ci-agent", Role::Admin, "h2")).await,
        Err(StoreError::TokenNameTaken(name)) if name == "ci-agent"
    ));
    store
        .create_token(new("alice", Role::Approver, "h3"))
        .await
        .unwrap();
    assert_eq!(
        store.token_by_hash("h1").await.unwrap().map(|t| t.name),
        Some("ci-agent".to_owned())
    );

    let revoked = store.revoke_token("ci-agent").await.unwrap().unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(store.token_by_hash("h1").await.unwrap(), None, "revoked");
    assert_eq!(
        store.revoke_token("ci-agent").await.unwrap(),
        None,
        "already revoked"
    );
    // The name is free again once revoked; the list keeps the revoked token for the record.
    store
        .create_token(new("ci-agent", Role::Agent, "h4"))
        .await
        .unwrap();
    drop(store);
    let store = open(&dir);
    let names: Vec<(String, bool)> = store
        .list_tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.revoked_at.is_some()))
        .collect();
    assert_eq!(
        names,
        [
            ("ci-agent".to_owned(), true),
            ("alice".to_owned(), false),
            ("ci-agent".to_owned(), false)
        ]
    );
    // Revoking by id works too.
    let alice = store.token_by_hash("h3").await.unwrap().unwrap();
    assert!(store.revoke_token(&alice.id).await.unwrap().is_some());
}

#[tokio::test]
async fn a_ledger_file_opens_read_only_and_shows_a_tampered_event() {
    use faramesh_storage::LedgerFile;
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("data/actions.db");
    let store = open(&dir);
    let first = store
        .create_action(submission(action(ActionStatus::PendingApproval, "shell")))
        .await
        .unwrap()
        .action;
    store
        .create_action(submission(action(ActionStatus::Allowed, "http")))
        .await
        .unwrap();
    drop(store);

    let ledger = LedgerFile::open(&path).unwrap();
    let ids = ledger.action_ids().unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(
        ledger.ids_with_prefix(&first.id[..8], 5).unwrap(),
        vec![first.id.clone()]
    );
    for id in &ids {
        let chain = ledger.chain(id).unwrap();
        let chained: Vec<_> = chain.iter().map(|e| e.chained()).collect();
        assert_eq!(verify_chain(&chained), Ok(()));
    }
    drop(ledger);

    // Someone edits an event behind the server's back (dropping the append-only trigger first).
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("DROP TRIGGER events_no_update").unwrap();
    conn.execute(
        "UPDATE events SET meta = '{\"decision\":\"allow\"}' WHERE action_id = ?1 AND event_type = 'created'",
        [&first.id],
    )
    .unwrap();
    drop(conn);
    let ledger = LedgerFile::open(&path).unwrap();
    let chain = ledger.chain(&first.id).unwrap();
    let chained: Vec<_> = chain.iter().map(|e| e.chained()).collect();
    let broken = verify_chain(&chained).unwrap_err();
    assert_eq!((broken.position, broken.what), (1, "record_hash"));

    assert!(LedgerFile::open(&dir.path().join("missing.db")).is_err());
    std::fs::write(dir.path().join("not.db"), "hello").unwrap();
    assert!(LedgerFile::open(&dir.path().join("not.db")).is_err());
}
