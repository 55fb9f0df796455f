//! The promises of the `Store` trait, as tests every backend runs (see `contract_tests!`).
#![allow(dead_code, reason = "each test file uses a different subset")]

use faramesh_core::json::ReceivedObject;
use faramesh_core::ledger::{verify_chain, ChainedEvent};
use faramesh_core::policy::Effect;
use faramesh_core::{ActionStatus, EventType, Outcome, RiskLevel, Transition};
use faramesh_storage::{
    ActionFilter, ActionRecord, ApprovalVote, Attempt, Escalation, EventRecord, Name, NameColumn,
    NewAction, NewEvent, NewNotification, NotificationFilter, NotificationState, Store, StoreError,
    TransitionUpdate,
};
use serde_json::{json, Map};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Opens a store on the test's database; every call opens another handle on the same data, as
/// a restarted server or a second replica would.
pub struct Backend {
    pub open: Box<dyn Fn() -> Opening + Send + Sync>,
}

/// A store being opened.
pub type Opening = Pin<Box<dyn Future<Output = Arc<dyn Store>> + Send>>;

impl Backend {
    pub async fn open(&self) -> Arc<dyn Store> {
        (self.open)().await
    }
}

/// One `#[tokio::test]` per contract test, each on a fresh database from `$backend`.
#[macro_export]
macro_rules! contract_tests {
    ($backend:expr) => {
        $crate::contract_tests!(@each $backend;
            an_action_and_its_events_are_written_together_and_survive_reopening,
            transitions_are_conditional_and_extend_the_chain,
            racing_approvals_and_denials_have_exactly_one_winner,
            concurrent_submissions_are_all_stored_with_their_events,
            an_idempotency_key_returns_the_original_or_refuses_another_body,
            listing_is_newest_first_with_filters_and_paging,
            api_tokens_are_stored_by_hash_named_uniquely_and_revocable,
            transitions_of_one_action_committed_together_chain_in_order,
            every_combination_of_listing_filters_lists_the_matching_actions_newest_first,
            a_search_finds_names_by_any_piece_and_lists_their_actions_newest_first,
            the_ledger_gives_back_the_changes_the_stream_announced,
            a_quorum_needs_distinct_approvers_and_each_approval_is_in_the_ledger,
            racing_approvals_under_a_quorum_count_each_identity_once,
            a_deadline_comes_due_escalates_once_and_is_forgotten_once_decided,
            the_outbox_is_written_with_its_event_and_each_notification_taken_once,
            shadow_disagreements_are_written_with_their_action_and_summarized,
            racing_charges_let_exactly_max_calls_through,
            racing_budget_charges_never_exceed_the_budget,
            a_window_slides_with_the_clock_and_modes_count_as_they_say,
            the_log_holds_every_event_once_and_proves_it,
            checkpoints_are_kept_once_per_size_and_the_largest_is_the_latest,
        );
    };
    (@each $backend:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                if let Some(backend) = $backend.await {
                    common::$name(&backend).await;
                }
            }
        )*
    };
}

pub fn action(status: ActionStatus, tool: &str) -> ActionRecord {
    let mut params = Map::new();
    params.insert("cmd".into(), json!("echo hi"));
    ActionRecord {
        id: uuid::Uuid::new_v4().to_string(),
        agent_id: "agent-1".into(),
        tool: tool.into(),
        operation: "run".into(),
        params: ReceivedObject::from_map(params).unwrap(),
        context: ReceivedObject::from_map(Map::new()).unwrap(),
        status,
        decision: Some(Effect::RequireApproval),
        reason: Some("Shell commands require approval".into()),
        risk_level: Some(RiskLevel::Medium),
        approval_token: (status == ActionStatus::PendingApproval).then(|| "token-123".into()),
        policy_version: Some("default.yaml@d7aecfa2a57c".into()),
        outcome: Some(Outcome::Abstain),
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

pub fn submission(record: ActionRecord) -> NewAction {
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
        approval_deadline: None,
        notifications: Vec::new(),
        shadow: None,
    }
}

pub fn assert_chain(events: &[EventRecord]) {
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

pub async fn an_action_and_its_events_are_written_together_and_survive_reopening(
    backend: &Backend,
) {
    let store = backend.open().await;
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

    let store = backend.open().await;
    let stored = store
        .get_action(&id)
        .await
        .unwrap()
        .expect("action persisted");
    assert_eq!(stored, created.action);
    let mut events = store.events(&id).await.unwrap();
    // Read back, each event also has its place in the Merkle log.
    let indexes: Vec<Option<u64>> = events.iter_mut().map(|e| e.log_index.take()).collect();
    assert_eq!(indexes, [Some(0), Some(1)]);
    assert_eq!(events, created.events);
    assert_eq!(events[0].prev_hash, None);
    assert_chain(&events);
}

pub async fn transitions_are_conditional_and_extend_the_chain(backend: &Backend) {
    let store = backend.open().await;
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
        decision: Some(Effect::Allow),
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
            approved.decision,
            approved.approval_token.as_deref()
        ),
        (ActionStatus::Approved, Some(Effect::Allow), None)
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

pub async fn racing_approvals_and_denials_have_exactly_one_winner(backend: &Backend) {
    race_decisions(&[backend.open().await]).await;
}

/// 100 approvals and denials of one pending action, spread over `stores` (handles on one
/// database, as replicas are): exactly one wins, and the status and the ledger agree.
pub async fn race_decisions(stores: &[Arc<dyn Store>]) {
    let id = stores[0]
        .create_action(submission(action(ActionStatus::PendingApproval, "shell")))
        .await
        .unwrap()
        .action
        .id;
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let (store, id) = (stores[i % stores.len()].clone(), id.clone());
            let transition = if i % 2 == 0 {
                Transition::Approve
            } else {
                Transition::Deny
            };
            tokio::spawn(async move {
                let result = store
                    .transition(&id, transition, TransitionUpdate::default())
                    .await;
                (transition, result)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (t, Ok(_)) => winners.push(t),
            (_, Err(StoreError::Conflict { .. })) => {}
            (_, Err(other)) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one transition wins");
    let reader = &stores[stores.len() - 1];
    let action = reader.get_action(&id).await.unwrap().unwrap();
    assert_eq!(action.status, winners[0].to());
    let events = reader.events(&id).await.unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[2].event_type, winners[0].event());
    assert_chain(&events);
}

pub async fn concurrent_submissions_are_all_stored_with_their_events(backend: &Backend) {
    let store = backend.open().await;
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

pub async fn an_idempotency_key_returns_the_original_or_refuses_another_body(backend: &Backend) {
    let store = backend.open().await;
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

pub async fn listing_is_newest_first_with_filters_and_paging(backend: &Backend) {
    let store = backend.open().await;
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

pub async fn api_tokens_are_stored_by_hash_named_uniquely_and_revocable(backend: &Backend) {
    use faramesh_storage::{NewToken, Role};
    let store = backend.open().await;
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
        store
            .token_by_hash("h1")
            .await
            .unwrap()
            .value
            .map(|t| t.name),
        Some("ci-agent".to_owned())
    );

    let revoked = store.revoke_token("ci-agent").await.unwrap().unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(
        store.token_by_hash("h1").await.unwrap().value,
        None,
        "revoked"
    );
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
    let store = backend.open().await;
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
    let alice = store.token_by_hash("h3").await.unwrap().value.unwrap();
    assert!(store.revoke_token(&alice.id).await.unwrap().is_some());
}

pub fn pick(ids: &[String], order: &[usize]) -> Vec<String> {
    order.iter().map(|&i| ids[i].clone()).collect()
}

pub async fn transitions_of_one_action_committed_together_chain_in_order(backend: &Backend) {
    let store = backend.open().await;
    for _ in 0..20 {
        let id = store
            .create_action(submission(action(ActionStatus::PendingApproval, "shell")))
            .await
            .unwrap()
            .action
            .id;
        // Sent together, so the writer usually commits both in one transaction; the second
        // sees the first's status and chains to its event either way.
        let (approved, started) = tokio::join!(
            store.transition(&id, Transition::Approve, TransitionUpdate::default()),
            store.transition(&id, Transition::Start, TransitionUpdate::default()),
        );
        approved.expect("approve applies");
        started.expect("start applies after the approval");
        let events = store.events(&id).await.unwrap();
        let kinds: Vec<EventType> = events.iter().map(|e| e.event_type).collect();
        assert_eq!(
            kinds,
            [
                EventType::Created,
                EventType::DecisionMade,
                EventType::Approved,
                EventType::Started
            ]
        );
        assert_chain(&events);
    }
}

/// Every combination of filters, with an offset: the matching actions, newest first, across
/// several statuses (which the listing merges when no status is asked for).
pub async fn every_combination_of_listing_filters_lists_the_matching_actions_newest_first(
    backend: &Backend,
) {
    let store = backend.open().await;
    let statuses = [
        ActionStatus::Allowed,
        ActionStatus::PendingApproval,
        ActionStatus::Denied,
    ];
    let mut stored = Vec::new();
    for i in 0..36usize {
        let mut record = action(statuses[i % 3], ["http", "shell"][i / 3 % 2]);
        record.agent_id = ["agent-a", "agent-b", "agent-c"][i / 6 % 3].into();
        let (agent, tool, status) = (record.agent_id.clone(), record.tool.clone(), record.status);
        let id = store
            .create_action(submission(record))
            .await
            .unwrap()
            .action
            .id;
        stored.push((id, agent, tool, status));
    }
    let choices = [
        (None, None, None),
        (Some("agent-b"), None, None),
        (None, Some("shell"), None),
        (None, None, Some(ActionStatus::Denied)),
        (Some("agent-a"), Some("http"), None),
        (Some("agent-c"), None, Some(ActionStatus::PendingApproval)),
        (None, Some("shell"), Some(ActionStatus::Allowed)),
        (
            Some("agent-c"),
            Some("shell"),
            Some(ActionStatus::PendingApproval),
        ),
        (Some("agent-b"), Some("shell"), Some(ActionStatus::Denied)),
        // Each value is common, the combination never occurs.
        (Some("agent-a"), Some("http"), Some(ActionStatus::Failed)),
    ];
    for (agent, tool, status) in choices {
        let filter = ActionFilter {
            limit: 4,
            offset: 1,
            agent_id: agent.map(str::to_owned),
            tool: tool.map(str::to_owned),
            status,
            names: None,
        };
        let listed: Vec<String> = store
            .list_actions(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        let expected: Vec<String> = stored
            .iter()
            .rev()
            .filter(|(_, a, t, s)| {
                agent.is_none_or(|x| x == a)
                    && tool.is_none_or(|x| x == t)
                    && status.is_none_or(|x| x == *s)
            })
            .skip(1)
            .take(4)
            .map(|(id, ..)| id.clone())
            .collect();
        assert_eq!(listed, expected, "{filter:?}");
    }
    // Offsets past any ledger are an empty page, not an error.
    for offset in [36, usize::MAX] {
        let filter = ActionFilter {
            limit: 1000,
            offset,
            agent_id: None,
            tool: None,
            status: None,
            names: None,
        };
        assert_eq!(store.list_actions(&filter).await.unwrap(), Vec::new());
    }
}

/// A search reads the distinct names of agents, tools and operations that contain a piece of
/// text, ignoring case; listing by those names gives every action with any of them once,
/// newest first, with the exact filters and paging applied as well.
pub async fn a_search_finds_names_by_any_piece_and_lists_their_actions_newest_first(
    backend: &Backend,
) {
    let store = backend.open().await;
    assert_eq!(
        store
            .names_containing(NameColumn::Agent, "a")
            .await
            .unwrap(),
        Vec::<String>::new(),
        "an empty ledger has no names"
    );
    let agents = ["Support-Bot", "billing-agent", "deploy-bot"];
    let tools = ["shell", "stripe", "http"];
    let operations = ["run", "refund", "get", "support"];
    let statuses = [
        ActionStatus::Allowed,
        ActionStatus::PendingApproval,
        ActionStatus::Denied,
    ];
    let mut stored = Vec::new();
    for i in 0..48usize {
        let mut record = action(statuses[i % 3], tools[i / 3 % 3]);
        record.agent_id = agents[i / 2 % 3].into();
        record.operation = operations[i / 5 % 4].into();
        let id = store
            .create_action(submission(record.clone()))
            .await
            .unwrap()
            .action
            .id;
        stored.push((id, record));
    }
    let names = |column, text: &'static str| {
        let store = &store;
        async move { store.names_containing(column, text).await.unwrap() }
    };
    assert_eq!(
        names(NameColumn::Agent, "BOT").await,
        ["Support-Bot", "deploy-bot"]
    );
    assert_eq!(names(NameColumn::Tool, "s").await, ["shell", "stripe"]);
    assert_eq!(names(NameColumn::Operation, "un").await, ["refund", "run"]);
    assert_eq!(
        names(NameColumn::Tool, "").await,
        ["http", "shell", "stripe"]
    );
    assert!(
        names(NameColumn::Agent, "%").await.is_empty(),
        "no wildcards"
    );

    // "support" is an agent and an operation; an action with both is listed once.
    let found: Vec<Name> = [
        Name {
            column: NameColumn::Agent,
            value: "Support-Bot".into(),
        },
        Name {
            column: NameColumn::Operation,
            value: "support".into(),
        },
    ]
    .into();
    let has = |name: &Name, record: &ActionRecord| match name.column {
        NameColumn::Agent => record.agent_id == name.value,
        NameColumn::Tool => record.tool == name.value,
        NameColumn::Operation => record.operation == name.value,
    };
    // (exact agent, exact tool, status, offset)
    type Choice = (
        Option<&'static str>,
        Option<&'static str>,
        Option<ActionStatus>,
        usize,
    );
    let choices: [Choice; 5] = [
        (None, None, None, 0),
        (None, None, None, 3),
        (None, Some("stripe"), None, 0),
        (None, None, Some(ActionStatus::PendingApproval), 1),
        // The exact agent leaves only the operation's name.
        (Some("deploy-bot"), None, None, 0),
    ];
    for (agent, tool, status, offset) in choices {
        let filter = ActionFilter {
            limit: 5,
            offset,
            agent_id: agent.map(str::to_owned),
            tool: tool.map(str::to_owned),
            status,
            names: Some(found.clone()),
        };
        let listed: Vec<String> = store
            .list_actions(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        let expected: Vec<String> = stored
            .iter()
            .rev()
            .filter(|(_, r)| {
                found.iter().any(|name| has(name, r))
                    && agent.is_none_or(|x| x == r.agent_id)
                    && tool.is_none_or(|x| x == r.tool)
                    && status.is_none_or(|x| x == r.status)
            })
            .skip(offset)
            .take(5)
            .map(|(id, _)| id.clone())
            .collect();
        assert!(!expected.is_empty(), "{filter:?} has actions to list");
        assert_eq!(listed, expected, "{filter:?}");
    }
    // A search that found nothing, or only names the exact filters exclude, lists nothing.
    for (names, agent) in [
        (Vec::new(), None),
        (found[..1].to_vec(), Some("deploy-bot".to_owned())),
    ] {
        let filter = ActionFilter {
            limit: 10,
            agent_id: agent,
            names: Some(names),
            ..Default::default()
        };
        assert_eq!(store.list_actions(&filter).await.unwrap(), Vec::new());
    }
}

/// What a resuming stream reads from the ledger: each change as it was announced, by range or
/// by sequence numbers, never a `created` event on its own.
pub async fn the_ledger_gives_back_the_changes_the_stream_announced(backend: &Backend) {
    let store = backend.open().await;
    let first = store
        .create_action(submission(action(ActionStatus::PendingApproval, "shell")))
        .await
        .unwrap();
    let (_, approved) = store
        .transition(
            &first.action.id,
            Transition::Approve,
            TransitionUpdate::default(),
        )
        .await
        .unwrap();
    let second = store
        .create_action(submission(action(ActionStatus::PendingApproval, "http")))
        .await
        .unwrap();
    let decided = |created: &faramesh_storage::Created| {
        u64::try_from(created.events.iter().map(|e| e.seq).max().unwrap()).unwrap()
    };
    let approved_seq = u64::try_from(approved.seq).unwrap();
    let all = store.changes_between(0, u64::MAX, 100).await.unwrap();
    let seqs: Vec<u64> = all.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, [decided(&first), approved_seq, decided(&second)]);
    assert!(all[0].created && !all[1].created && all[2].created);
    assert_eq!(
        all[0].action.status,
        ActionStatus::PendingApproval,
        "as it was then"
    );
    assert_eq!(all[1].action.status, ActionStatus::Approved);
    assert_eq!(
        store.changes_between(0, u64::MAX, 2).await.unwrap().len(),
        2,
        "a page"
    );
    let picked = store
        .changes_with_seqs(&[decided(&second), approved_seq, 1_000_000])
        .await
        .unwrap();
    let picked: Vec<u64> = picked.iter().map(|c| c.seq).collect();
    assert_eq!(picked, [approved_seq, decided(&second)]);
    // A `created` event is announced with its decision, not alone.
    let created_seq = u64::try_from(first.events[0].seq).unwrap();
    assert!(store
        .changes_with_seqs(&[created_seq])
        .await
        .unwrap()
        .is_empty());
}

fn vote(by: &str, quorum: u32) -> ApprovalVote {
    ApprovalVote {
        by: by.to_owned(),
        reason: Some(format!("looks fine to {by}")),
        quorum,
        notifications: vec![notification("approval.decided")],
    }
}

fn notification(kind: &str) -> NewNotification {
    NewNotification {
        route: "oncall".into(),
        kind: kind.into(),
        payload: json!({"event": kind}),
    }
}

async fn pending(store: &Arc<dyn Store>) -> String {
    store
        .create_action(submission(action(ActionStatus::PendingApproval, "stripe")))
        .await
        .unwrap()
        .action
        .id
}

pub async fn a_quorum_needs_distinct_approvers_and_each_approval_is_in_the_ledger(
    backend: &Backend,
) {
    let store = backend.open().await;
    let id = pending(&store).await;
    let (first, event) = store.approve(&id, vote("alice", 2)).await.unwrap();
    assert_eq!(first.status, ActionStatus::PendingApproval);
    assert_eq!(event.event_type, EventType::ApprovalRecorded);
    assert_eq!(event.meta["by"], "alice");
    assert_eq!(event.meta["approvals"], 1);
    assert_eq!(event.meta["required"], 2);
    let again = store.approve(&id, vote("alice", 2)).await.unwrap_err();
    assert!(
        matches!(&again, StoreError::AlreadyApproved { by, .. } if by == "alice"),
        "{again}"
    );
    let (second, event) = store.approve(&id, vote("bob", 2)).await.unwrap();
    assert_eq!(second.status, ActionStatus::Approved);
    assert_eq!(second.decision, Some(Effect::Allow));
    assert_eq!(event.event_type, EventType::Approved);
    assert_eq!(event.meta["approvals"], 2);
    let late = store.approve(&id, vote("carol", 2)).await.unwrap_err();
    assert!(matches!(late, StoreError::Conflict { .. }), "{late}");
    let approvals = store.approvals_of(std::slice::from_ref(&id)).await.unwrap();
    let names: Vec<&str> = approvals[&id].iter().map(|a| a.by.as_str()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"alice") && names.contains(&"bob"));
    let events = store.events(&id).await.unwrap();
    let types: Vec<EventType> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [
            EventType::Created,
            EventType::DecisionMade,
            EventType::ApprovalRecorded,
            EventType::Approved
        ]
    );
    assert_chain(&events);
    // Only the approval that completed the quorum wrote its notifications.
    let filter = NotificationFilter {
        limit: 10,
        action_id: Some(id.clone()),
        ..NotificationFilter::default()
    };
    assert_eq!(store.list_notifications(&filter).await.unwrap().len(), 1);
    // A denial after one approval denies at once.
    let other = pending(&store).await;
    store.approve(&other, vote("alice", 2)).await.unwrap();
    let (denied, _) = store
        .transition(&other, Transition::Deny, TransitionUpdate::default())
        .await
        .unwrap();
    assert_eq!(denied.status, ActionStatus::Denied);
    let missing = store.approve("nope", vote("alice", 2)).await.unwrap_err();
    assert!(matches!(missing, StoreError::NotFound(_)));
}

pub async fn racing_approvals_under_a_quorum_count_each_identity_once(backend: &Backend) {
    race_quorum(&[backend.open().await]).await;
}

/// Three approvers each approving ten times at once, spread over `stores`, of an action that
/// needs three: each counts once, and exactly one approval completes the quorum.
pub async fn race_quorum(stores: &[Arc<dyn Store>]) {
    let id = pending(&stores[0]).await;
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let (store, id) = (stores[i % stores.len()].clone(), id.clone());
            let by = ["alice", "bob", "carol"][i % 3];
            tokio::spawn(async move { store.approve(&id, vote(by, 3)).await })
        })
        .collect();
    let mut recorded = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok((_, event)) => recorded.push(event.event_type),
            Err(StoreError::AlreadyApproved { .. } | StoreError::Conflict { .. }) => {}
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    recorded.sort_by_key(|t| t.as_str());
    assert_eq!(
        recorded,
        [
            EventType::ApprovalRecorded,
            EventType::ApprovalRecorded,
            EventType::Approved
        ]
    );
    let reader = &stores[stores.len() - 1];
    assert_eq!(
        reader.get_action(&id).await.unwrap().unwrap().status,
        ActionStatus::Approved
    );
    let events = reader.events(&id).await.unwrap();
    assert_eq!(events.len(), 5);
    assert_eq!(events[4].event_type, EventType::Approved);
    assert_chain(&events);
}

pub async fn a_deadline_comes_due_escalates_once_and_is_forgotten_once_decided(backend: &Backend) {
    let store = backend.open().await;
    let mut new = submission(action(ActionStatus::PendingApproval, "stripe"));
    new.approval_deadline = Some("2000-01-01T00:00:00.000000Z".into());
    let id = store.create_action(new).await.unwrap().action.id;
    let later = store.create_action({
        let mut new = submission(action(ActionStatus::PendingApproval, "stripe"));
        new.approval_deadline = Some("2999-01-01T00:00:00.000000Z".into());
        new
    });
    let later = later.await.unwrap().action.id;
    let now = faramesh_storage::now_timestamp();
    let due = store.approvals_due(&now, 10).await.unwrap();
    assert_eq!(due.len(), 1, "only the past deadline is due");
    assert_eq!((due[0].id.as_str(), due[0].escalated), (id.as_str(), false));
    let escalation = || Escalation {
        deadline: "2000-01-02T00:00:00.000000Z".into(),
        meta: json!({"routes": ["security"]}),
        notifications: vec![notification("approval.escalated")],
    };
    let (action, event) = store.escalate(&id, escalation()).await.unwrap();
    assert_eq!(action.status, ActionStatus::PendingApproval);
    assert_eq!(event.event_type, EventType::Escalated);
    let twice = store.escalate(&id, escalation()).await.unwrap_err();
    assert!(matches!(twice, StoreError::Conflict { .. }), "{twice}");
    let due = store.approvals_due(&now, 10).await.unwrap();
    assert_eq!((due[0].id.as_str(), due[0].escalated), (id.as_str(), true));
    store
        .transition(&id, Transition::Deny, TransitionUpdate::default())
        .await
        .unwrap();
    assert!(store.approvals_due(&now, 10).await.unwrap().is_empty());
    let not_pending = store.escalate(&id, escalation()).await.unwrap_err();
    assert!(matches!(not_pending, StoreError::Conflict { .. }));
    assert_chain(&store.events(&id).await.unwrap());
    assert!(store.get_action(&later).await.unwrap().is_some());
}

pub async fn the_outbox_is_written_with_its_event_and_each_notification_taken_once(
    backend: &Backend,
) {
    let store = backend.open().await;
    let mut new = submission(action(ActionStatus::PendingApproval, "stripe"));
    new.notifications = vec![notification("approval.requested")];
    let id = store.create_action(new).await.unwrap().action.id;
    let update = TransitionUpdate {
        notifications: vec![notification("approval.decided")],
        ..TransitionUpdate::default()
    };
    // A transition that does not apply writes no notification.
    let refused = store
        .transition(&id, Transition::Succeed, update.clone())
        .await;
    assert!(refused.is_err());
    store
        .transition(&id, Transition::Deny, update)
        .await
        .unwrap();
    let filter = NotificationFilter {
        limit: 10,
        action_id: Some(id.clone()),
        ..NotificationFilter::default()
    };
    let listed = store.list_notifications(&filter).await.unwrap();
    let kinds: Vec<&str> = listed.iter().map(|n| n.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["approval.decided", "approval.requested"],
        "newest first"
    );
    assert!(listed.iter().all(|n| n.state == NotificationState::Pending));

    let now = faramesh_storage::now_timestamp();
    let lease = "2999-01-01T00:00:00.000000Z";
    let claimed = store.claim_notifications(&now, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(claimed.iter().all(|n| n.attempts == 1));
    assert!(
        store
            .claim_notifications(&now, lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "a leased notification is not taken again"
    );
    let (first, second) = (&claimed[0], &claimed[1]);
    store
        .finish_notification(
            &first.id,
            Attempt::Retry {
                at: "2000-01-01T00:00:00.000000Z".into(),
                error: "connection refused".into(),
            },
        )
        .await
        .unwrap();
    store
        .finish_notification(&second.id, Attempt::Delivered)
        .await
        .unwrap();
    let retried = store.claim_notifications(&now, lease, 10).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(
        (retried[0].id.as_str(), retried[0].attempts),
        (first.id.as_str(), 2)
    );
    assert_eq!(retried[0].last_error.as_deref(), Some("connection refused"));
    store
        .finish_notification(
            &first.id,
            Attempt::GiveUp {
                error: "gave up".into(),
            },
        )
        .await
        .unwrap();
    let failed = store
        .list_notifications(&NotificationFilter {
            limit: 10,
            state: Some(NotificationState::Failed),
            ..NotificationFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, first.id);
    let test_ids = store
        .enqueue_notifications(vec![notification("test")])
        .await
        .unwrap();
    let now = faramesh_storage::now_timestamp();
    let taken = store.claim_notifications(&now, lease, 10).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(
        (taken[0].id.as_str(), taken[0].action_id.as_deref()),
        (test_ids[0].as_str(), None)
    );
}

/// 60 notifications taken by workers of every store in `stores` at once, a few at a time:
/// each is taken exactly once.
pub async fn claim_from_every_store(stores: &[Arc<dyn Store>]) {
    let notifications: Vec<NewNotification> = (0..60)
        .map(|_| notification("approval.requested"))
        .collect();
    stores[0]
        .enqueue_notifications(notifications)
        .await
        .unwrap();
    let now = faramesh_storage::now_timestamp();
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let store = stores[i % stores.len()].clone();
            let now = now.clone();
            tokio::spawn(async move {
                let mut taken = Vec::new();
                loop {
                    let batch = store
                        .claim_notifications(&now, "2999-01-01T00:00:00.000000Z", 3)
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        return taken;
                    }
                    taken.extend(batch.into_iter().map(|n| n.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let distinct: std::collections::HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 60, "every notification is taken");
    assert_eq!(distinct.len(), 60, "none is taken twice");
}

pub async fn shadow_disagreements_are_written_with_their_action_and_summarized(backend: &Backend) {
    let store = backend.open().await;
    let disagreement = |shadow: Outcome| faramesh_storage::ShadowDisagreement {
        policy_hash: "candidate-hash".into(),
        active_outcome: Outcome::Execute,
        shadow_outcome: shadow,
        shadow_reason_code: "POLICY_DENY".into(),
        shadow_reason: "Denied by the candidate".into(),
    };
    let mut ids = Vec::new();
    for shadow in [Outcome::Halt, Outcome::Halt, Outcome::Abstain] {
        let mut new = submission(action(ActionStatus::Allowed, "http"));
        new.shadow = Some(disagreement(shadow));
        ids.push(store.create_action(new).await.unwrap().action.id);
    }
    // An agreeing action writes nothing.
    store
        .create_action(submission(action(ActionStatus::Allowed, "http")))
        .await
        .unwrap();
    let summary = store.shadow_summary("candidate-hash", 2).await.unwrap();
    let pairs: Vec<(Outcome, Outcome, u64)> = summary
        .pairs
        .iter()
        .map(|p| (p.active, p.shadow, p.count))
        .collect();
    assert_eq!(
        pairs,
        [
            (Outcome::Execute, Outcome::Halt, 2),
            (Outcome::Execute, Outcome::Abstain, 1)
        ]
    );
    assert_eq!(summary.latest.len(), 2);
    assert!(ids.contains(&summary.latest[0].action_id));
    assert_eq!(summary.latest[0].tool, "http");
    assert!(store
        .shadow_summary("another-hash", 10)
        .await
        .unwrap()
        .pairs
        .is_empty());
}

fn charge(
    limit: &str,
    key: &str,
    amount: f64,
    max: f64,
) -> faramesh_core::policy::limits::LimitCharge {
    faramesh_core::policy::limits::LimitCharge {
        limit: limit.into(),
        key: key.into(),
        amount,
        max,
        window_seconds: 3600,
        on_exceed: faramesh_core::policy::limits::OnExceed::Deny,
        unreadable: None,
    }
}

pub async fn racing_charges_let_exactly_max_calls_through(backend: &Backend) {
    race_charges(&[backend.open().await]).await;
}

/// 100 charges of one call each against `max_calls: 10`, at once, spread over `stores`:
/// exactly 10 fit and are counted.
pub async fn race_charges(stores: &[Arc<dyn Store>]) {
    let now = chrono::Utc::now();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let store = stores[i % stores.len()].clone();
            tokio::spawn(async move {
                store
                    .charge_limits(
                        &format!("action-{i}"),
                        vec![charge("burst", "agent:bot", 1.0, 10.0)],
                        now,
                        faramesh_storage::ChargeMode::CheckAndCount,
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut fitted = 0;
    for task in tasks {
        match task.await.unwrap() {
            None => fitted += 1,
            Some(exceeded) => assert_eq!((exceeded.used, exceeded.max), (10.0, 10.0)),
        }
    }
    assert_eq!(fitted, 10, "exactly max_calls charges fit");
    let usage = stores[0]
        .limit_usage(&[("burst".into(), 3600)], now, 10)
        .await
        .unwrap();
    assert_eq!(usage.len(), 1);
    assert_eq!((usage[0].used, usage[0].calls), (10.0, 10));
}

pub async fn racing_budget_charges_never_exceed_the_budget(backend: &Backend) {
    race_budget(&[backend.open().await]).await;
}

/// 60 charges of assorted amounts against a budget of 5000, at once: what fits never sums
/// over 5000, and the usage is exactly what fitted.
pub async fn race_budget(stores: &[Arc<dyn Store>]) {
    let now = chrono::Utc::now();
    let amounts: Vec<f64> = (0..60u32).map(|i| f64::from((i * 379) % 997 + 1)).collect();
    let tasks: Vec<_> = amounts
        .iter()
        .enumerate()
        .map(|(i, amount)| {
            let store = stores[i % stores.len()].clone();
            let amount = *amount;
            tokio::spawn(async move {
                let exceeded = store
                    .charge_limits(
                        &format!("refund-{i}"),
                        vec![charge("refunds-daily", "agent:bot", amount, 5000.0)],
                        now,
                        faramesh_storage::ChargeMode::CheckAndCount,
                    )
                    .await
                    .unwrap();
                (amount, exceeded.is_none())
            })
        })
        .collect();
    let mut allowed = 0.0;
    for task in tasks {
        let (amount, fitted) = task.await.unwrap();
        if fitted {
            allowed += amount;
        }
    }
    assert!(
        allowed <= 5000.0,
        "{allowed} allowed against a budget of 5000"
    );
    assert!(allowed > 0.0);
    let usage = stores[0]
        .limit_usage(&[("refunds-daily".into(), 3600)], now, 10)
        .await
        .unwrap();
    assert_eq!(usage[0].used, allowed);
}

pub async fn a_window_slides_with_the_clock_and_modes_count_as_they_say(backend: &Backend) {
    use faramesh_storage::ChargeMode::{CheckAndCount, CheckOnly, CountAnyway};
    let store = backend.open().await;
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let at = |seconds: i64| t0 + chrono::TimeDelta::seconds(seconds);
    let two = || vec![charge("hourly", "global", 1.0, 2.0)];
    assert!(store
        .charge_limits("a1", two(), at(0), CheckAndCount)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .charge_limits("a2", two(), at(600), CheckAndCount)
        .await
        .unwrap()
        .is_none());
    let third = store
        .charge_limits("a3", two(), at(1200), CheckAndCount)
        .await
        .unwrap();
    assert_eq!(third.unwrap().used, 2.0, "full within the hour");
    // A check alone counts nothing; a human's approval counts even over the limit.
    assert!(store
        .charge_limits("a4", two(), at(1300), CheckOnly)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .charge_limits("a5", two(), at(1400), CountAnyway)
        .await
        .unwrap()
        .is_some());
    let usage = store
        .limit_usage(&[("hourly".into(), 3600)], at(1500), 10)
        .await
        .unwrap();
    assert_eq!(usage[0].calls, 3);
    // An hour after the first, it has left the window; the approved one is still in it.
    let later = store
        .charge_limits("a6", two(), at(3601), CheckAndCount)
        .await
        .unwrap();
    assert_eq!(later.unwrap().used, 2.0, "a2 and a5 remain");
    assert!(store
        .charge_limits("a7", two(), at(4201), CheckAndCount)
        .await
        .unwrap()
        .is_none());
    // A submission that was not stored gives its count back.
    store.release_limits("a7").await.unwrap();
    let usage = store
        .limit_usage(&[("hourly".into(), 3600)], at(4202), 10)
        .await
        .unwrap();
    assert_eq!(usage[0].calls, 1, "only a5 remains: {usage:?}");
}

/// RFC 9162 §2.1.1's MTH, written out from its definition: independent of the stored hashes
/// and of the tree code under test.
pub fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = 1 << (usize::BITS - (n - 1).leading_zeros() - 1);
            let mut h = Sha256::new();
            h.update([1u8]);
            h.update(mth(&leaves[..k]));
            h.update(mth(&leaves[k..]));
            h.finalize().into()
        }
    }
}

/// SHA-256(0x00 ‖ the 32 bytes of `record_hash`).
pub fn leaf_of(record_hash: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(hex::decode(record_hash).unwrap());
    h.finalize().into()
}

/// Checks the store's Merkle log against the events of the actions `ids`, which must be every
/// action written: one leaf per event, log indexes 0..n without gaps, each leaf the event's
/// record hash, the root that of an independent computation, and every inclusion proof and
/// every consistency proof from an earlier size verifying.
pub async fn assert_log_holds(store: &Arc<dyn Store>, ids: &[String]) {
    use faramesh_tlog::tree;
    let mut by_index = std::collections::BTreeMap::new();
    for id in ids {
        for e in store.events(id).await.unwrap() {
            let index = e.log_index.expect("every stored event is in the log");
            assert!(
                by_index.insert(index, e.record_hash).is_none(),
                "log index {index} is given to two events"
            );
        }
    }
    let n = store.log_size().await.unwrap();
    assert_eq!(
        by_index.keys().copied().collect::<Vec<_>>(),
        (0..n).collect::<Vec<_>>(),
        "the log's indexes are 0..size, one per event"
    );
    let mut leaves = Vec::new();
    while (leaves.len() as u64) < n {
        let page = store.log_leaves(leaves.len() as u64, n).await.unwrap();
        assert!(!page.is_empty() && page.len() as u64 <= faramesh_storage::MAX_LEAVES);
        leaves.extend(page);
    }
    for (i, leaf) in leaves.iter().enumerate() {
        assert_eq!(leaf.log_index, i as u64);
        assert_eq!(leaf.record_hash, by_index[&leaf.log_index]);
    }
    let hashes: Vec<[u8; 32]> = leaves.iter().map(|l| leaf_of(&l.record_hash)).collect();
    let root = mth(&hashes);
    let stored = store.log_hashes(tree::tree_hash_indexes(n)).await.unwrap();
    assert_eq!(
        tree::tree_hash(n, &stored).unwrap(),
        root,
        "root of {n} leaves"
    );
    for (i, leaf) in hashes.iter().enumerate() {
        let i = i as u64;
        let needed = tree::inclusion_proof_indexes(n, i).unwrap();
        let proof = tree::inclusion_proof(n, i, &store.log_hashes(needed).await.unwrap()).unwrap();
        tree::check_inclusion(&proof, n, &root, i, leaf).unwrap();
    }
    for m in 1..n {
        let needed = tree::consistency_proof_indexes(m, n).unwrap();
        let proof =
            tree::consistency_proof(m, n, &store.log_hashes(needed).await.unwrap()).unwrap();
        tree::check_consistency(&proof, m, &mth(&hashes[..m as usize]), n, &root).unwrap();
    }
}

/// Actions written every way events are written, many at once so they share batches: new
/// actions, transitions, approvals under a quorum and an escalation.
pub async fn write_every_kind_of_event(store: &Arc<dyn Store>) -> Vec<String> {
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let status = if i % 2 == 0 {
                    ActionStatus::PendingApproval
                } else {
                    ActionStatus::Allowed
                };
                let id = store
                    .create_action(submission(action(status, "shell")))
                    .await
                    .unwrap()
                    .action
                    .id;
                if i % 4 == 0 {
                    store
                        .transition(&id, Transition::Approve, TransitionUpdate::default())
                        .await
                        .unwrap();
                } else if i % 4 == 1 {
                    store
                        .transition(&id, Transition::Start, TransitionUpdate::default())
                        .await
                        .unwrap();
                }
                id
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    let quorum = pending(store).await;
    store.approve(&quorum, vote("alice", 2)).await.unwrap();
    store.approve(&quorum, vote("bob", 2)).await.unwrap();
    let mut due = submission(action(ActionStatus::PendingApproval, "stripe"));
    due.approval_deadline = Some("2000-01-01T00:00:00.000000Z".into());
    let escalated = store.create_action(due).await.unwrap().action.id;
    let escalation = Escalation {
        deadline: "2999-01-02T00:00:00.000000Z".into(),
        meta: json!({"routes": ["security"]}),
        notifications: vec![notification("approval.escalated")],
    };
    store.escalate(&escalated, escalation).await.unwrap();
    ids.extend([quorum, escalated]);
    ids
}

pub async fn the_log_holds_every_event_once_and_proves_it(backend: &Backend) {
    let store = backend.open().await;
    assert_eq!(store.log_size().await.unwrap(), 0);
    let mut ids = write_every_kind_of_event(&store).await;
    assert_log_holds(&store, &ids).await;
    drop(store);
    // A restarted server appends after what is there.
    let store = backend.open().await;
    ids.extend(write_every_kind_of_event(&store).await);
    assert_log_holds(&store, &ids).await;
}

pub async fn checkpoints_are_kept_once_per_size_and_the_largest_is_the_latest(backend: &Backend) {
    use faramesh_storage::StoredCheckpoint;
    let store = backend.open().await;
    assert_eq!(store.latest_checkpoint().await.unwrap(), None);
    let kept = |size: u64, note: &str| StoredCheckpoint {
        size,
        root: format!("{size:064x}"),
        note: note.to_owned(),
        created_at: faramesh_storage::now_timestamp(),
    };
    store.add_checkpoint(kept(3, "three")).await.unwrap();
    store.add_checkpoint(kept(7, "seven")).await.unwrap();
    store.add_checkpoint(kept(5, "five")).await.unwrap();
    store
        .add_checkpoint(kept(7, "another seven"))
        .await
        .unwrap();
    let latest = store.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!((latest.size, latest.note.as_str()), (7, "seven"));
}
