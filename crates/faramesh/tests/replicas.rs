//! Several `faramesh serve` processes on one PostgreSQL database behave as one service.
//!
//! Needs `FARAMESH_TEST_POSTGRES_URL` (`.ci/run` sets it); without it each test returns at once.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

mod common;

use faramesh_client::{Client, StreamFilter, StreamMessage, Submission, Subscription};
use faramesh_testkit::{fresh_postgres_database, Database};
use serde_json::{json, Value};
use std::process::Child;
use std::time::Duration;

struct Replica {
    child: Child,
    url: String,
    client: Client,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Cluster {
    replicas: Vec<Replica>,
    dsn: String,
    /// FARAMESH_TOKEN of every replica, if any.
    admin: Option<&'static str>,
    dir: tempfile::TempDir,
    _database: Database,
}

impl Cluster {
    /// `n` replicas on a fresh database, or `None` without PostgreSQL.
    async fn start(n: usize) -> Option<Cluster> {
        Cluster::start_with(n, None).await
    }

    async fn start_with(n: usize, admin: Option<&'static str>) -> Option<Cluster> {
        let (dsn, database) = fresh_postgres_database().await?;
        let dir = tempfile::TempDir::new().unwrap();
        let mut cluster = Cluster {
            replicas: Vec::new(),
            dsn,
            admin,
            dir,
            _database: database,
        };
        for _ in 0..n {
            cluster.add();
        }
        Some(cluster)
    }

    fn add(&mut self) {
        self.add_at(&self.dsn.clone());
    }

    /// Adds a replica that reaches the database at `dsn`.
    fn add_at(&mut self, dsn: &str) {
        let mut env = vec![
            ("FARA_DB_BACKEND", "postgres"),
            ("FARA_POSTGRES_DSN", dsn),
            ("FARAMESH_EXECUTORS", "none"),
            // Checkpoints five times a second, so a test waits little for one.
            ("FARAMESH_CHECKPOINT_EVERY", "0.2"),
        ];
        if let Some(admin) = self.admin {
            env.push(("FARAMESH_TOKEN", admin));
        }
        let (child, url) = common::serve_with(self.dir.path(), &env, &[]);
        let client = Client::new(&url, self.admin.map(str::to_owned));
        self.replicas.push(Replica { child, url, client });
    }

    fn client(&self, i: usize) -> &Client {
        &self.replicas[i].client
    }
}

fn shell(cmd: &str) -> Submission {
    serde_json::from_value(json!({
        "agent_id": "agent-1", "tool": "shell", "operation": "run", "params": {"cmd": cmd}
    }))
    .unwrap()
}

/// Upper bound on any wait; reached only if the behaviour under test is broken.
const LIMIT: Duration = Duration::from_secs(20);

/// Reads stream messages until `count` arrived.
async fn read(subscription: &mut Subscription, count: usize) -> Vec<StreamMessage> {
    let mut messages = Vec::new();
    tokio::time::timeout(LIMIT, async {
        while messages.len() < count {
            let message = subscription
                .next()
                .await
                .expect("the stream stays open")
                .unwrap();
            messages.push(message);
        }
    })
    .await
    .expect("messages arrive");
    messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_on_one_replica_approve_on_another_start_on_a_third() {
    let Some(cluster) = Cluster::start(3).await else {
        return;
    };
    let submitted = cluster.client(0).submit(&shell("echo hi")).await.unwrap();
    assert_eq!(submitted.status.as_str(), "pending_approval");
    let approved = cluster
        .client(1)
        .decide_approval(&submitted.id, true, Some("fine"))
        .await
        .unwrap();
    assert_eq!(approved.status.as_str(), "approved");
    let started = cluster.client(2).start(&submitted.id).await.unwrap();
    assert_eq!(started.status.as_str(), "executing");
    // The loser of a second decision, on yet another replica, gets 409.
    let again = cluster
        .client(0)
        .decide_approval(&submitted.id, false, None)
        .await;
    assert!(
        matches!(again, Err(faramesh_client::ClientError::Conflict { .. })),
        "{again:?}"
    );
    let events = cluster.client(2).events(&submitted.id).await.unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["created", "decision_made", "approved", "started"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_decisions_over_three_replicas_have_one_winner() {
    let Some(cluster) = Cluster::start(3).await else {
        return;
    };
    let action = cluster.client(0).submit(&shell("ls")).await.unwrap();
    let token = action.approval_token.clone().expect("shown to admins");
    let http = reqwest::Client::new();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let url = format!(
                "{}/v1/actions/{}/approval",
                cluster.replicas[i % 3].url,
                action.id
            );
            let body = json!({"token": token, "approve": i % 2 == 0});
            let http = http.clone();
            tokio::spawn(async move {
                http.post(url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    assert_eq!(cluster.client(1).events(&action.id).await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_streams_every_change_and_resumes_anywhere() {
    let Some(cluster) = Cluster::start(3).await else {
        return;
    };
    let mut on_b = cluster
        .client(1)
        .subscribe(&StreamFilter::default())
        .await
        .unwrap();
    let first = cluster.client(0).submit(&shell("ls")).await.unwrap();
    let seen = read(&mut on_b, 1).await;
    assert_eq!(seen[0].kind, "action.created");
    assert_eq!(seen[0].data["id"], Value::from(first.id.clone()));
    let resume_from = seen[0].id;

    // Changes made on A and C while the client is away are replayed by C from that id.
    drop(on_b);
    cluster
        .client(0)
        .decide_approval(&first.id, true, None)
        .await
        .unwrap();
    let second = cluster.client(2).submit(&shell("pwd")).await.unwrap();
    let mut on_c = cluster
        .client(2)
        .subscribe(&StreamFilter {
            after: Some(resume_from),
            ..Default::default()
        })
        .await
        .unwrap();
    let resumed = read(&mut on_c, 2).await;
    assert_eq!(resumed[0].data["id"], Value::from(first.id.clone()));
    assert_eq!(resumed[0].data["status"], "approved");
    assert_eq!(resumed[1].data["id"], Value::from(second.id.clone()));
    // Ids are the ledger's, so they are the same on every replica.
    let events = cluster.client(0).events(&first.id).await.unwrap();
    assert_eq!(events.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_mid_load_loses_no_acknowledged_action() {
    let Some(cluster) = Cluster::start(2).await else {
        return;
    };
    let http = reqwest::Client::new();
    let url = format!("{}/v1/actions", cluster.replicas[0].url);
    let (acked_tx, mut acked) = tokio::sync::mpsc::unbounded_channel::<String>();
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (http, url, acked_tx) = (http.clone(), url.clone(), acked_tx.clone());
            tokio::spawn(async move {
                let body = json!({"agent_id": "load", "tool": "http", "operation": "get", "params": {"url": "https://a"}});
                while let Ok(response) = http.post(&url).json(&body).send().await {
                    if response.status() != 200 {
                        break;
                    }
                    let Ok(action) = response.json::<Value>().await else { break };
                    let _ = acked_tx.send(action["id"].as_str().unwrap_or_default().to_owned());
                }
            })
        })
        .collect();
    drop(acked_tx);
    // Let some submissions through, then kill replica A without warning.
    let mut ids = Vec::new();
    while ids.len() < 50 {
        ids.push(
            tokio::time::timeout(LIMIT, acked.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let pid = nix::unistd::Pid::from_raw(cluster.replicas[0].child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    for task in load {
        task.await.unwrap();
    }
    while let Some(id) = acked.recv().await {
        ids.push(id);
    }
    // Every action acknowledged by A is there, with its events, when read through B.
    for id in &ids {
        let action = cluster.client(1).get(id).await.unwrap();
        assert_eq!(action.status.as_str(), "allowed");
        assert_eq!(cluster.client(1).events(id).await.unwrap().len(), 2, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_database_connections_are_recovered() {
    let Some(cluster) = Cluster::start(1).await else {
        return;
    };
    let client = cluster.client(0);
    let mut stream = client.subscribe(&StreamFilter::default()).await.unwrap();
    let before = client.submit(&shell("ls")).await.unwrap();
    read(&mut stream, 1).await;

    // Terminate every connection to the database: the pool's and the change feed's.
    let database = cluster
        .dsn
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let admin = std::env::var("FARAMESH_TEST_POSTGRES_URL").unwrap();
    let (pg, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let terminated = pg
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&database],
        )
        .await
        .unwrap();
    assert!(!terminated.is_empty(), "the server had connections");

    // Requests work again (a pooled connection is checked before use), nothing was allowed by
    // accident, and the change feed reconnected: the stream carries the new change.
    let after = tokio::time::timeout(LIMIT, async {
        loop {
            match client.submit(&shell("pwd")).await {
                Ok(action) => return action,
                Err(faramesh_client::ClientError::Server { status: 503, .. }) => {
                    tokio::task::yield_now().await
                }
                Err(other) => panic!("unexpected: {other}"),
            }
        }
    })
    .await
    .expect("the server recovers");
    assert_eq!(after.status.as_str(), "pending_approval");
    let messages = read(&mut stream, 1).await;
    assert_eq!(
        messages.last().unwrap().data["id"],
        Value::from(after.id.clone())
    );
    assert_eq!(
        client.get(&before.id).await.unwrap().status.as_str(),
        "pending_approval"
    );
    let ready = reqwest::get(format!("{}/ready", cluster.replicas[0].url))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_made_on_one_replica_work_on_the_others_at_once() {
    let Some(cluster) = Cluster::start_with(2, Some("root")).await else {
        return;
    };
    let created = cluster
        .client(0)
        .create_token("bot", "agent")
        .await
        .unwrap();
    let on_b = Client::new(&cluster.replicas[1].url, Some(created.token.clone()));
    let submitted = on_b
        .submit(&shell("ls"))
        .await
        .expect("usable on B at once");
    assert_eq!(
        submitted.approval_token, None,
        "an agent on B never sees approval tokens"
    );
    assert!(matches!(
        on_b.decide_approval(&submitted.id, true, None).await,
        Err(faramesh_client::ClientError::Forbidden { .. })
    ));

    // And the other way round, for a token with another role.
    let made_on_b = cluster
        .client(1)
        .create_token("reviewer", "approver")
        .await
        .unwrap();
    let on_a = Client::new(&cluster.replicas[0].url, Some(made_on_b.token));
    on_a.decide_approval(&submitted.id, true, None)
        .await
        .expect("an approver made on B approves on A at once");
}

/// A request sent with a token, and how it ended.
struct Attempt {
    sent: std::time::Instant,
    replica: usize,
    accepted: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_on_one_replica_is_refused_by_every_replica_once_the_revocation_returns() {
    let Some(cluster) = Cluster::start_with(2, Some("root")).await else {
        return;
    };
    let created = cluster
        .client(0)
        .create_token("bot", "agent")
        .await
        .unwrap();
    let clients: Vec<Client> = cluster
        .replicas
        .iter()
        .map(|r| Client::new(&r.url, Some(created.token.clone())))
        .collect();
    for client in &clients {
        client
            .list(&Default::default())
            .await
            .expect("the token works on both replicas");
    }

    // Requests with the token hammer both replicas, mostly B, before, during and after the
    // revocation on A; each records when it was sent.
    let revoked: std::sync::Arc<std::sync::OnceLock<std::time::Instant>> = Default::default();
    const AFTER: Duration = Duration::from_millis(400);
    let mut hammers = Vec::new();
    for (worker, replica) in [1, 1, 1, 0, 1, 0].into_iter().enumerate() {
        let client = clients[replica].clone();
        let revoked = revoked.clone();
        hammers.push(tokio::spawn(async move {
            let mut attempts = Vec::new();
            loop {
                if revoked.get().is_some_and(|at| at.elapsed() > AFTER) {
                    return attempts;
                }
                let sent = std::time::Instant::now();
                let accepted = match client.list(&Default::default()).await {
                    Ok(_) => true,
                    Err(faramesh_client::ClientError::Unauthorized { .. }) => false,
                    Err(other) => panic!("worker {worker}: unexpected {other}"),
                };
                attempts.push(Attempt {
                    sent,
                    replica,
                    accepted,
                });
            }
        }));
    }
    // Let the hammers run first, so the token is in use on both replicas when it is revoked.
    tokio::time::sleep(Duration::from_millis(100)).await;
    cluster.client(0).revoke_token("bot").await.unwrap();
    let revoked_at = std::time::Instant::now();
    revoked.set(revoked_at).unwrap();

    let mut after = [0usize; 2];
    let mut accepted_after = Vec::new();
    let mut accepted_before = 0;
    for hammer in hammers {
        for attempt in hammer.await.unwrap() {
            if attempt.sent >= revoked_at {
                after[attempt.replica] += 1;
                if attempt.accepted {
                    accepted_after.push((attempt.replica, attempt.sent - revoked_at));
                }
            } else if attempt.accepted {
                accepted_before += 1;
            }
        }
    }
    assert!(
        accepted_before > 0,
        "the token was in use before the revocation"
    );
    assert!(
        after[0] > 0 && after[1] > 100,
        "both replicas were asked after the revocation: {after:?}"
    );
    assert!(
        accepted_after.is_empty(),
        "{} of {} requests sent after the revocation returned were accepted (replica, sent after): {:?}",
        accepted_after.len(),
        after[0] + after[1],
        &accepted_after[..accepted_after.len().min(10)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_holds_on_a_replica_that_hears_of_it_late() {
    let Some(mut cluster) = Cluster::start_with(1, Some("root")).await else {
        return;
    };
    // Replica B hears everything from the database, notifications included, 150 ms late: a
    // token revoked on A must not work on B during those 150 ms either.
    let relay = Relay::start_late("127.0.0.1:5432".into(), Duration::from_millis(150)).await;
    cluster.add_at(&relayed(&cluster.dsn, relay.port));
    let created = cluster
        .client(0)
        .create_token("bot", "agent")
        .await
        .unwrap();
    let on_b = Client::new(&cluster.replicas[1].url, Some(created.token.clone()));
    for _ in 0..2 {
        on_b.list(&Default::default())
            .await
            .expect("the token works on B");
    }

    cluster.client(0).revoke_token("bot").await.unwrap();
    let attempts: Vec<_> = (0..4)
        .map(|_| {
            let on_b = on_b.clone();
            tokio::spawn(async move { on_b.list(&Default::default()).await })
        })
        .collect();
    for attempt in attempts {
        let attempt = attempt.await.unwrap();
        assert!(
            matches!(
                attempt,
                Err(faramesh_client::ClientError::Unauthorized { .. })
            ),
            "B refuses the revoked token before it hears of the revocation: {attempt:?}"
        );
    }
}

/// A TCP relay to PostgreSQL that can be cut (every connection dropped, new ones refused) and
/// restored, to take the database away from a running server.
struct Relay {
    port: u16,
    open: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
}

/// `dsn` with its host and port replaced by the relay's.
fn relayed(dsn: &str, port: u16) -> String {
    let (host_part, rest) = dsn.split_once("@").unwrap();
    let path = rest.split_once('/').unwrap().1;
    format!("{host_part}@127.0.0.1:{port}/{path}")
}

/// Copies `from` to `to`, each byte `delay` after it was read.
async fn copy_late(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let read = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buffer).await {
            let due = tokio::time::Instant::now() + delay;
            if tx.send((due, buffer[..n].to_vec())).is_err() {
                return;
            }
        }
    };
    let write = async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
    };
    tokio::join!(read, write);
}

impl Relay {
    async fn start(upstream: String) -> Relay {
        Relay::start_late(upstream, Duration::ZERO).await
    }

    /// A relay that passes on what the database sends `delay` late: query results and
    /// notifications alike.
    async fn start_late(upstream: String, delay: Duration) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (open, _) = tokio::sync::watch::channel(true);
        let open = std::sync::Arc::new(open);
        let state = open.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !*state.borrow() {
                    continue; // dropped: refused
                }
                let mut watch = state.subscribe();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    if delay.is_zero() {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = watch.wait_for(|open| !*open) => {}
                        }
                        return;
                    }
                    let (from_client, to_client) = client.into_split();
                    let (from_server, mut to_server) = server.into_split();
                    let mut from_client = from_client;
                    tokio::select! {
                        _ = tokio::io::copy(&mut from_client, &mut to_server) => {}
                        _ = copy_late(from_server, to_client, delay) => {}
                        _ = watch.wait_for(|open| !*open) => {}
                    }
                });
            }
        });
        Relay { port, open }
    }

    fn cut(&self) {
        self.open.send_replace(false);
    }

    fn restore(&self) {
        self.open.send_replace(true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_database_a_server_answers_503_and_recovers_by_itself() {
    let Some((dsn, _database)) = fresh_postgres_database().await else {
        return;
    };
    // The same database, reached through the relay.
    let relay = Relay::start("127.0.0.1:5432".into()).await;
    let relayed = relayed(&dsn, relay.port);
    let dir = tempfile::TempDir::new().unwrap();
    let (child, url) = common::serve_with(
        dir.path(),
        &[
            ("FARA_DB_BACKEND", "postgres"),
            ("FARA_POSTGRES_DSN", &relayed),
            ("FARAMESH_EXECUTORS", "none"),
        ],
        &[],
    );
    let replica = Replica {
        child,
        url: url.clone(),
        client: Client::new(&url, None),
    };
    let pending = replica.client.submit(&shell("ls")).await.unwrap();

    relay.cut();
    let ready = reqwest::get(format!("{url}/ready")).await.unwrap();
    assert_eq!(ready.status(), 503, "not ready without the database");
    let body: Value = ready.json().await.unwrap();
    assert!(body["detail"].is_string(), "{body}");
    for attempt in [
        replica.client.submit(&shell("pwd")).await.map(|a| a.status),
        replica
            .client
            .decide_approval(&pending.id, true, None)
            .await
            .map(|a| a.status),
    ] {
        match attempt {
            Err(faramesh_client::ClientError::Server {
                status: 503,
                detail,
            }) => {
                assert!(detail.contains("database"), "{detail}")
            }
            other => panic!("expected 503, got {other:?}"),
        }
    }

    relay.restore();
    let approved = tokio::time::timeout(LIMIT, async {
        loop {
            match replica
                .client
                .decide_approval(&pending.id, true, None)
                .await
            {
                Ok(action) => return action,
                Err(faramesh_client::ClientError::Server { status: 503, .. }) => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(other) => panic!("unexpected: {other}"),
            }
        }
    })
    .await
    .expect("the server reconnects by itself");
    assert_eq!(approved.status.as_str(), "approved");
    let ready = reqwest::get(format!("{url}/ready")).await.unwrap();
    assert_eq!(ready.status(), 200);
}

/// The latest checkpoint of the replica at `url` once it covers `size` leaves.
async fn checkpoint_covering(url: &str, size: u64) -> String {
    tokio::time::timeout(LIMIT, async {
        loop {
            let note = reqwest::get(format!("{url}/v1/log/checkpoint"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let signed: u64 = note
                .lines()
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if signed >= size {
                return note;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("a checkpoint covering the log")
}

/// `faramesh log <args>` against `url`: its exit code and what it printed.
fn log_command(url: &str, args: &[&str]) -> (Option<i32>, String) {
    let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("faramesh"))
        .arg("log")
        .args(args)
        .env("FARAMESH_URL", url)
        .env("NO_COLOR", "1")
        .env_remove("FARAMESH_TOKEN")
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), printed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_writing_at_once_sign_one_log_that_a_witness_follows_from_either() {
    let Some(cluster) = Cluster::start(2).await else {
        return;
    };
    // Both replicas found one key: the first made it, the second read it.
    let keys: Vec<String> = keys_of(&cluster).await;
    assert_eq!(keys[0], keys[1], "one verifier key for the cluster");
    let key = cluster.dir.path().join("data/log.pub");
    let key = key.to_str().unwrap();
    let witness = tempfile::TempDir::new().unwrap();
    let state = witness.path().join("state");
    let state = state.to_str().unwrap();
    let mut events = 0;
    for round in 0..3 {
        let writes: Vec<_> = (0..20)
            .map(|i| {
                let client = cluster.client(i % 2).clone();
                tokio::spawn(async move {
                    client
                        .submit(&shell(&format!("echo {round}-{i}")))
                        .await
                        .unwrap()
                })
            })
            .collect();
        for write in writes {
            write.await.unwrap();
        }
        // Each action is two events.
        events += 40;
        // Every replica's checkpoint extends the one the witness saw last, whichever replica
        // it came from.
        for replica in &cluster.replicas {
            checkpoint_covering(&replica.url, events).await;
            let (code, printed) = log_command(
                &replica.url,
                &["watch", "--key", key, "--state", state, "--once"],
            );
            assert_eq!(code, Some(0), "{printed}");
        }
    }
    for replica in &cluster.replicas {
        let (code, printed) = log_command(&replica.url, &["verify", "--key", key]);
        assert_eq!(code, Some(0), "{printed}");
        assert!(printed.contains("120 events read"), "{printed}");
    }
}

async fn keys_of(cluster: &Cluster) -> Vec<String> {
    let mut keys = Vec::new();
    for replica in &cluster.replicas {
        keys.push(
            reqwest::get(format!("{}/v1/log/key", replica.url))
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_at_the_same_moment_without_a_key_share_the_one_made_first() {
    let Some((dsn, _database)) = fresh_postgres_database().await else {
        return;
    };
    let dir = tempfile::TempDir::new().unwrap();
    let env = [
        ("FARA_DB_BACKEND", "postgres"),
        ("FARA_POSTGRES_DSN", dsn.as_str()),
        ("FARAMESH_EXECUTORS", "none"),
    ];
    let started: Vec<(Child, String)> = std::thread::scope(|scope| {
        let starts: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| common::serve_with(dir.path(), &env, &[])))
            .collect();
        starts.into_iter().map(|s| s.join().unwrap()).collect()
    });
    let mut keys = Vec::new();
    for (_, url) in &started {
        keys.push(
            reqwest::get(format!("{url}/v1/log/key"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    for (mut child, _) in started {
        let _ = child.kill();
        let _ = child.wait();
    }
    let on_disk = std::fs::read_to_string(dir.path().join("data/log.pub")).unwrap();
    assert_eq!(
        keys,
        [on_disk.clone(), on_disk],
        "both serve the key on disk"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("key-new"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
