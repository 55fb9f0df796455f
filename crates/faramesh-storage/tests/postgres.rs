//! The PostgreSQL store keeps the promises of the `Store` trait, also across replicas.
//!
//! Needs `FARAMESH_TEST_POSTGRES_URL` (set by `.ci/run`); without it every test prints a notice
//! and passes without running. Each test gets a database of its own, dropped afterwards.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

mod common;

use common::{action, submission, Backend};
use faramesh_core::{ActionStatus, Transition};
use faramesh_storage::{
    Change, FeedItem, NewToken, PostgresStore, Role, Store, StoreError, TransitionUpdate,
};
use std::sync::Arc;

use faramesh_testkit::{fresh_postgres_database, Database};

async fn postgres() -> Option<Backend> {
    let (url, database) = fresh_postgres_database().await?;
    let database: Arc<Database> = Arc::new(database);
    Some(Backend {
        open: Box::new(move || {
            let (url, database) = (url.clone(), database.clone());
            Box::pin(async move {
                let _keep = database;
                Arc::new(PostgresStore::connect(&url).await.expect("store connects"))
                    as Arc<dyn Store>
            })
        }),
    })
}

contract_tests!(postgres());

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_starting_together_migrate_once() {
    let Some((url, _db)) = fresh_postgres_database().await else {
        return;
    };
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PostgresStore::connect(&url).await.map(|_| ()) })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().expect("every replica starts");
    }
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let applied: Vec<i64> = client
        .query(
            "SELECT version FROM faramesh_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        applied,
        [1, 2, 3, 4, 5, 6, 7, 8, 9],
        "each migration applied exactly once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn decisions_racing_on_three_replicas_have_exactly_one_winner() {
    let Some(backend) = postgres().await else {
        return;
    };
    let replicas = [
        backend.open().await,
        backend.open().await,
        backend.open().await,
    ];
    common::race_decisions(&replicas).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approvals_racing_on_three_replicas_count_each_approver_once() {
    let Some(backend) = postgres().await else {
        return;
    };
    let replicas = [
        backend.open().await,
        backend.open().await,
        backend.open().await,
    ];
    common::race_quorum(&replicas).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limit_charges_racing_on_three_replicas_let_exactly_max_through() {
    let Some(backend) = postgres().await else {
        return;
    };
    let replicas = [
        backend.open().await,
        backend.open().await,
        backend.open().await,
    ];
    common::race_charges(&replicas).await;
    common::race_budget(&replicas).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_on_three_replicas_take_each_notification_once() {
    let Some(backend) = postgres().await else {
        return;
    };
    let replicas = [
        backend.open().await,
        backend.open().await,
        backend.open().await,
    ];
    common::claim_from_every_store(&replicas).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_idempotency_key_on_three_replicas_creates_one_action() {
    let Some(backend) = postgres().await else {
        return;
    };
    let replicas = [
        backend.open().await,
        backend.open().await,
        backend.open().await,
    ];
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let store = replicas[i % 3].clone();
            let mut new = submission(action(ActionStatus::Allowed, "http"));
            new.idempotency = Some(("retry-key-1".into(), "body-hash".into()));
            tokio::spawn(async move { store.create_action(new).await })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(
            task.await
                .unwrap()
                .expect("every retry is answered")
                .action
                .id,
        );
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every retry got the same action");
    let all = replicas[2]
        .list_actions(&faramesh_storage::ActionFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
}

#[tokio::test]
async fn the_database_refuses_to_change_or_delete_events() {
    let Some((url, _db)) = fresh_postgres_database().await else {
        return;
    };
    let store = PostgresStore::connect(&url).await.unwrap();
    let id = store
        .create_action(submission(action(ActionStatus::Allowed, "http")))
        .await
        .unwrap()
        .action
        .id;
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    for sql in [
        "UPDATE events SET meta = '{}' WHERE action_id = $1",
        "DELETE FROM events WHERE action_id = $1",
    ] {
        let err = client.execute(sql, &[&id]).await.unwrap_err();
        assert!(
            err.to_string().contains("append-only") || format!("{err:?}").contains("append-only"),
            "{err:?}"
        );
    }
    assert_eq!(store.events(&id).await.unwrap().len(), 2);
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable_not_a_crash() {
    // Nothing listens on port 1.
    let err = PostgresStore::connect("postgres://postgres@127.0.0.1:1/none")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    let err = PostgresStore::connect("not a dsn ::").await.unwrap_err();
    assert!(err.to_string().contains("FARA_POSTGRES_DSN"), "{err}");
}

#[tokio::test]
async fn a_change_feed_started_late_replays_each_change_as_it_was() {
    let Some((url, _db)) = fresh_postgres_database().await else {
        return;
    };
    let store = PostgresStore::connect(&url).await.unwrap();
    let id = store
        .create_action(submission(action(ActionStatus::PendingApproval, "shell")))
        .await
        .unwrap()
        .action
        .id;
    store
        .transition(&id, Transition::Approve, TransitionUpdate::default())
        .await
        .unwrap();
    // Both changes committed before anyone listened: the feed catches up from the ledger, and
    // the first change still says what the action was then, not what it is now.
    let mut feed = store.change_feed(0).expect("PostgreSQL shares its changes");
    let limit = std::time::Duration::from_secs(20);
    let mut next = async || -> Change {
        match tokio::time::timeout(limit, feed.recv()).await {
            Ok(Some(FeedItem::Action(change))) => change,
            other => panic!("expected a change of an action, got {other:?}"),
        }
    };
    let created = next().await;
    let approved = next().await;
    assert!(created.created && !approved.created);
    assert_eq!(
        created.action.status,
        faramesh_core::ActionStatus::PendingApproval
    );
    assert_eq!(
        approved.action.status,
        faramesh_core::ActionStatus::Approved
    );
    assert!(approved.seq > created.seq);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_committed_out_of_order_while_the_feed_reconnects_is_not_skipped() {
    let Some((url, _db)) = fresh_postgres_database().await else {
        return;
    };
    let store = PostgresStore::connect(&url).await.unwrap();
    let limit = std::time::Duration::from_secs(20);
    let model = store
        .create_action(submission(action(ActionStatus::PendingApproval, "shell")))
        .await
        .unwrap()
        .action
        .id;
    let mut feed = store.change_feed(0).expect("PostgreSQL shares its changes");
    let mut next_change = async || -> Change {
        loop {
            match tokio::time::timeout(limit, feed.recv()).await {
                Ok(Some(FeedItem::Action(change))) => return change,
                Ok(Some(FeedItem::Token(_))) => continue,
                other => panic!("expected a change of an action, got {other:?}"),
            }
        }
    };
    let first = next_change().await;
    assert_eq!(first.action.id, model);

    // A transaction takes its sequence numbers first and commits last: a copy of the first
    // action with its two events, held open.
    let (slow, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    slow.batch_execute(&format!(
        "BEGIN; \
         INSERT INTO actions (id, agent_id, tool, operation, params, context, status, decision, created_at, updated_at) \
           SELECT 'late', agent_id, tool, operation, params, context, status, decision, created_at, updated_at FROM actions WHERE id = '{model}'; \
         INSERT INTO events (id, action_id, event_type, meta, created_at, prev_hash, record_hash) \
           SELECT id || '-late', 'late', event_type, meta, created_at, prev_hash, record_hash FROM events WHERE action_id = '{model}' ORDER BY seq;"
    ))
    .await
    .unwrap();
    // Meanwhile a later transaction commits and is announced.
    let later = store
        .create_action(submission(action(ActionStatus::PendingApproval, "shell")))
        .await
        .unwrap()
        .action
        .id;
    let announced = next_change().await;
    assert_eq!(announced.action.id, later);

    // The feed's connection is cut; the held transaction commits while nobody listens.
    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let terminated = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'faramesh change feed'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(terminated.len(), 1, "the feed's connection was found");
    slow.batch_execute("COMMIT").await.unwrap();

    // After reconnecting, the feed delivers the late change, even though its sequence numbers
    // are below one it had already delivered, and delivers nothing twice.
    let late = next_change().await;
    assert_eq!(late.action.id, "late");
    assert!(late.seq < announced.seq);
    let next = store
        .create_action(submission(action(ActionStatus::PendingApproval, "shell")))
        .await
        .unwrap()
        .action
        .id;
    let after = next_change().await;
    assert_eq!(after.action.id, next, "nothing delivered twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_changes_raise_the_token_version_and_reach_every_replica_in_order() {
    let Some((url, _db)) = fresh_postgres_database().await else {
        return;
    };
    let a = PostgresStore::connect(&url).await.unwrap();
    let b = PostgresStore::connect(&url).await.unwrap();
    let mut feed = b.change_feed(0).expect("PostgreSQL shares its changes");
    // The feed listens once it has caught up; an action change shows when that is.
    let id = a
        .create_action(submission(action(ActionStatus::PendingApproval, "shell")))
        .await
        .unwrap()
        .action
        .id;
    let limit = std::time::Duration::from_secs(20);
    let mut next = async || match tokio::time::timeout(limit, feed.recv()).await {
        Ok(Some(item)) => item,
        other => panic!("the feed ended: {other:?}"),
    };
    assert!(matches!(next().await, FeedItem::Action(c) if c.action.id == id));

    assert_eq!(b.token_version().await.unwrap(), 0);
    let new = |name: &str, hash: &str| NewToken {
        name: name.into(),
        role: Role::Agent,
        secret_hash: hash.into(),
    };
    let bot = a.create_token(new("bot", "h1")).await.unwrap();
    a.create_token(new("ci", "h2")).await.unwrap();
    // A refused creation and a revocation of nothing change no version.
    assert!(a.create_token(new("bot", "h3")).await.is_err());
    assert_eq!(a.revoke_token("nobody").await.unwrap(), None);
    a.revoke_token("bot").await.unwrap().unwrap();
    assert_eq!(b.token_version().await.unwrap(), 3);

    let lookup = b.token_by_hash("h1").await.unwrap();
    assert_eq!((lookup.version, lookup.value), (3, None), "revoked");
    let lookup = b.token_by_hash("h2").await.unwrap();
    assert_eq!(lookup.version, 3);
    assert_eq!(lookup.value.map(|t| t.name).as_deref(), Some("ci"));
    let snapshot = b.token_snapshot().await.unwrap();
    assert_eq!(snapshot.version, 3);
    assert_eq!(snapshot.value.len(), 2);

    let mut seen = Vec::new();
    for _ in 0..3 {
        match next().await {
            FeedItem::Token(change) => seen.push((
                change.version,
                change.token.name,
                change.token.revoked_at.is_some(),
                change.token.secret_hash,
            )),
            other => panic!("expected a token change, got {other:?}"),
        }
    }
    assert_eq!(
        seen,
        [
            (1, "bot".to_owned(), false, bot.secret_hash.clone()),
            (2, "ci".to_owned(), false, "h2".to_owned()),
            (3, "bot".to_owned(), true, bot.secret_hash),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_writing_at_once_keep_one_log_with_every_event_once() {
    let Some(backend) = postgres().await else {
        return;
    };
    let replicas = [
        backend.open().await,
        backend.open().await,
        backend.open().await,
    ];
    let writes: Vec<_> = replicas
        .iter()
        .map(|store| {
            let store = store.clone();
            tokio::spawn(async move { common::write_every_kind_of_event(&store).await })
        })
        .collect();
    let mut ids = Vec::new();
    for write in writes {
        ids.extend(write.await.unwrap());
    }
    for store in &replicas {
        common::assert_log_holds(store, &ids).await;
    }
}
