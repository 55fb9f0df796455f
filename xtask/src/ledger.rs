//! The large-ledger benchmark: a generated SQLite ledger of millions of events (cached under
//! `target/bench-ledger/`), listing latency over HTTP against it, and the throughput of
//! `faramesh verify-log --all --db` on it.
//!
//! The ledger is written the way the server would have written it, only in bulk: the schema
//! comes from the product's own store (its migrations), every action carries a real
//! `request_hash` and `provenance_id`, every event a real `record_hash` chained to the one
//! before, and later events of an action (approval, start, result) arrive interleaved with
//! other actions' submissions, as they would on a busy server.

use crate::http::{Row, Server};
use anyhow::{bail, Context};
use faramesh_core::decision::reason_code;
use faramesh_core::hash;
use faramesh_core::{ActionStatus, DecidedBy, EventType};
use rusqlite::{params, Connection};
use serde_json::{json, Map, Value};
use std::collections::{BinaryHeap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Bump when the generated data changes, so older cached files are not reused.
const GENERATOR_VERSION: u32 = 4;

const FULL_EVENTS: u64 = 10_000_000;
const QUICK_EVENTS: u64 = 200_000;

const LISTING_TARGET_MS: f64 = 50.0;
const VERIFY_TARGET: f64 = 500_000.0;
const PROOF_TARGET_MS: f64 = 5.0;
const LOG_VERIFY_TARGET: f64 = 1_000_000.0;

pub fn run(root: &Path, binary: &Path, quick: bool) -> anyhow::Result<Vec<Row>> {
    let events = if quick { QUICK_EVENTS } else { FULL_EVENTS };
    let db = ensure_ledger(&target_dir(root), events)?;
    let runs = if quick { 1 } else { 3 };

    let (listing, proofs) = api_latency(root, binary, &db, events, if quick { 5 } else { 21 })?;
    let (worst_query, worst_ms) = listing
        .iter()
        .map(|(q, ms)| (q.as_str(), *ms))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .context("no listing query was measured")?;
    for (query, ms) in &listing {
        eprintln!("  GET /v1/actions{query}: median {ms:.2} ms");
    }

    for (query, ms) in &proofs {
        eprintln!("  GET /v1/log/{query}: median {ms:.2} ms");
    }
    let (worst_proof, worst_proof_ms) = proofs
        .iter()
        .map(|(q, ms)| (q.as_str(), *ms))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .context("no proof was measured")?;

    let verify = verify_rate(binary, &db, runs)?;
    eprintln!(
        "  verify-log --all --db: {} events in {:.2} s (median of {runs})",
        verify.events, verify.seconds
    );
    let rate = verify.events as f64 / verify.seconds;
    let log = log_verify_rate(binary, &db, runs)?;
    eprintln!(
        "  log verify --db: {} leaves in {:.2} s (median of {runs})",
        log.events, log.seconds
    );
    let log_rate = log.events as f64 / log.seconds;

    let (listing_what, verify_what, proof_what, log_what) = if quick {
        (
            "large ledger (quick: 200,000 events): listing/filtering actions",
            "large ledger (quick: 200,000 events): verify-log --all",
            "large ledger (quick: 200,000 events): inclusion and consistency proofs",
            "large ledger (quick: 200,000 events): log verify",
        )
    } else {
        (
            "large ledger (10 million events): listing/filtering actions",
            "large ledger: verify-log --all",
            "large ledger (10 million events): inclusion and consistency proofs",
            "large ledger: log verify (every leaf recomputed against a checkpoint)",
        )
    };
    Ok(vec![
        Row {
            what: listing_what,
            measured: format!(
                "worst median {worst_ms:.1} ms ({worst_query}, {} queries)",
                listing.len()
            ),
            target: "≤ 50 ms",
            met: worst_ms <= LISTING_TARGET_MS,
        },
        Row {
            what: verify_what,
            measured: format!(
                "{rate:.0} events/s ({} events in {:.2} s, --db)",
                verify.events, verify.seconds
            ),
            target: "≥ 500,000 events/s",
            met: rate >= VERIFY_TARGET,
        },
        Row {
            what: proof_what,
            measured: format!(
                "worst median {worst_proof_ms:.2} ms ({worst_proof}, {} proofs)",
                proofs.len()
            ),
            target: "≤ 5 ms",
            met: worst_proof_ms <= PROOF_TARGET_MS,
        },
        Row {
            what: log_what,
            measured: format!(
                "{log_rate:.0} leaves/s ({} leaves in {:.2} s, --db)",
                log.events, log.seconds
            ),
            target: "≥ 1,000,000 leaves/s",
            met: log_rate >= LOG_VERIFY_TARGET,
        },
    ])
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

// ---------------------------------------------------------------------------------------------
// Measurements

/// The listing queries: the default page, each filter alone, combinations, searches and deep
/// pages.
/// Values come from the generator's own agents and tools, so each query has a known shape:
/// common and rare values, a combination that never occurs (the whole range must be searched)
/// and offsets far from the newest action.
const LISTING_QUERIES: &[&str] = &[
    "",
    "?limit=100",
    "?status=pending_approval",
    "?status=failed",
    "?agent_id=support-bot",
    "?agent_id=agent-017",
    "?tool=stripe",
    "?tool=github",
    "?agent_id=billing-agent&tool=stripe",
    "?agent_id=support-bot&tool=shell",
    "?status=failed&tool=http",
    "?status=timeout&agent_id=deploy-bot",
    "?status=succeeded&agent_id=agent-017&tool=sql",
    "?offset=10000",
    "?offset=100000",
    "?agent_id=research-agent&offset=10000",
    "?status=succeeded&offset=100000",
    // Searches: names in one column and in several, a handful of rare agents, a search
    // combined with filters, one that matches nothing, and a deep page.
    "?q=bot",
    "?q=REF",
    "?q=s",
    "?q=agent-01",
    "?q=agent-05&status=failed",
    "?q=http&agent_id=support-bot",
    "?q=nothing-is-called-this",
    "?q=bot&offset=10000",
];

/// Each query with its median latency in milliseconds.
type Medians = Vec<(String, f64)>;

/// The proofs asked of a log of `size` leaves: leaves at its start, middle and end, and
/// consistency from a quarter, a half and all but one leaf.
fn proof_queries(size: u64) -> Vec<String> {
    let mut queries: Vec<String> = [0, size / 3, size / 2, size - 1]
        .iter()
        .map(|i| format!("proof/inclusion?index={i}&size={size}"))
        .collect();
    queries.extend(
        [size / 4, size / 2, size - 1]
            .iter()
            .map(|from| format!("proof/consistency?from={from}&to={size}")),
    );
    queries
}

/// The median latency of each listing query and of each proof (see [`proof_queries`])
/// against a release server on `db`, whose log holds `size` leaves.
fn api_latency(
    root: &Path,
    binary: &Path,
    db: &Path,
    size: u64,
    samples: usize,
) -> anyhow::Result<(Medians, Medians)> {
    let work = std::env::temp_dir().join(format!("faramesh-ledger-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let server = Server::start(
        binary,
        root,
        &work,
        &[
            ("FARA_SQLITE_PATH", &db.display().to_string()),
            // No background expiry: the cached ledger must stay as generated.
            ("FARAMESH_APPROVAL_TTL", ""),
        ],
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let measured = runtime.block_on(async {
        let http = reqwest::Client::new();
        let listing = LISTING_QUERIES
            .iter()
            .map(|q| (q.to_string(), format!("{}/v1/actions{q}", server.url)));
        let proofs = proof_queries(size)
            .into_iter()
            .map(|q| (q.clone(), format!("{}/v1/log/{q}", server.url)));
        let mut measured = Vec::new();
        for (query, url) in listing.chain(proofs) {
            let mut times = Vec::with_capacity(samples);
            // The first requests warm the server's connections and the page cache.
            for i in 0..samples + 2 {
                let started = Instant::now();
                let response = http.get(&url).send().await?;
                let status = response.status();
                let body = response.bytes().await?;
                let elapsed = started.elapsed();
                if !status.is_success() {
                    bail!(
                        "GET {url} answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
                if i >= 2 {
                    times.push(elapsed.as_secs_f64() * 1000.0);
                }
            }
            times.sort_by(f64::total_cmp);
            measured.push((query, times[times.len() / 2]));
        }
        Ok::<_, anyhow::Error>(measured)
    });
    drop(server);
    let _ = std::fs::remove_dir_all(&work);
    let mut listing = measured?;
    let proofs = listing.split_off(LISTING_QUERIES.len());
    Ok((listing, proofs))
}

struct Verified {
    events: u64,
    seconds: f64,
}

/// `faramesh verify-log --all --db`, `runs` times: the median wall time.
fn verify_rate(binary: &Path, db: &Path, runs: usize) -> anyhow::Result<Verified> {
    let mut times = Vec::new();
    let mut events = 0;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let output = Command::new(binary)
            .args(["verify-log", "--all", "--json", "--db"])
            .arg(db)
            .env_remove("FARAMESH_TOKEN")
            .output()
            .context("cannot run faramesh verify-log")?;
        let seconds = started.elapsed().as_secs_f64();
        let text = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "verify-log failed on the generated ledger ({}):\n{text}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let report: Value = serde_json::from_str(&text)
            .with_context(|| format!("verify-log --json printed {text:?}"))?;
        events = report["events"]
            .as_u64()
            .with_context(|| format!("no event count in {text}"))?;
        times.push(seconds);
    }
    times.sort_by(f64::total_cmp);
    Ok(Verified {
        events,
        seconds: times[times.len() / 2],
    })
}

/// `faramesh log verify --db` against the checkpoint the server signed when it opened the
/// ledger, with the verifier key it wrote beside it, `runs` times: the median wall time.
fn log_verify_rate(binary: &Path, db: &Path, runs: usize) -> anyhow::Result<Verified> {
    let key = db.with_file_name("log.pub");
    let mut times = Vec::new();
    let mut leaves = 0;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let output = Command::new(binary)
            .args(["log", "verify", "--json", "--key"])
            .arg(&key)
            .arg("--db")
            .arg(db)
            .env_remove("FARAMESH_TOKEN")
            .output()
            .context("cannot run faramesh log verify")?;
        let seconds = started.elapsed().as_secs_f64();
        let text = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "log verify failed on the generated ledger ({}):\n{text}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let report: Value = serde_json::from_str(&text)
            .with_context(|| format!("log verify --json printed {text:?}"))?;
        leaves = report["leaves"]
            .as_u64()
            .with_context(|| format!("no leaf count in {text}"))?;
        times.push(seconds);
    }
    times.sort_by(f64::total_cmp);
    Ok(Verified {
        events: leaves,
        seconds: times[times.len() / 2],
    })
}

// ---------------------------------------------------------------------------------------------
// Generation

/// The cached ledger of `events` events, generated first if it is not there yet.
pub fn ensure_ledger(target: &Path, events: u64) -> anyhow::Result<PathBuf> {
    let dir = target.join("bench-ledger");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // The schema version is what the product's migrations bring a new file to.
    let probe = dir.join(format!("schema-probe-{}.db", std::process::id()));
    let schema = schema_version(&probe)?;
    let db = dir.join(format!("v{schema}-g{GENERATOR_VERSION}-{events}.db"));
    if db.is_file() {
        eprintln!("large ledger: reusing {}", db.display());
        return Ok(db);
    }
    // Ledgers of the same size for an older schema or generator are of no more use.
    let suffix = format!("-{events}.db");
    for entry in std::fs::read_dir(&dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('v') && name.ends_with(&suffix) {
            eprintln!("large ledger: removing the outdated {name}");
            remove_db(&entry.path());
        }
    }
    // A file is renamed to its final name only once complete.
    let partial = db.with_extension("db.partial");
    remove_db(&partial);
    check_disk(&dir, events)?;
    eprintln!(
        "large ledger: generating {events} events into {} (cached for later runs)",
        db.display()
    );
    let started = Instant::now();
    generate(&partial, events)?;
    std::fs::rename(&partial, &db)?;
    let size = std::fs::metadata(&db)?.len();
    eprintln!(
        "large ledger: {events} events in {:.1} s, {:.2} GB",
        started.elapsed().as_secs_f64(),
        size as f64 / 1e9
    );
    Ok(db)
}

/// The `user_version` a new database gets from the product's own migrations.
fn schema_version(probe: &Path) -> anyhow::Result<i64> {
    remove_db(probe);
    let store = faramesh_storage::SqliteStore::open(probe)
        .map_err(|e| anyhow::anyhow!("cannot create a ledger with the product's store: {e}"))?;
    drop(store);
    let version = Connection::open(probe)?.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    remove_db(probe);
    Ok(version)
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

/// Refuses to start when the disk cannot hold the ledger (about 1 KB per event, with room).
fn check_disk(dir: &Path, events: u64) -> anyhow::Result<()> {
    let output = Command::new("df").arg("-Pk").arg(dir).output();
    let Ok(output) = output else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let available_kb: Option<u64> = text
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok());
    let needed_kb = events; // ~1 KB per event
    if let Some(available) = available_kb {
        if available < needed_kb {
            bail!(
                "the large ledger needs about {:.1} GB under {}; only {:.1} GB are free",
                needed_kb as f64 / 1e6,
                dir.display(),
                available as f64 / 1e6
            );
        }
    }
    Ok(())
}

/// SplitMix64: fast, seeded, so every run generates the same ledger.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        // Version 4, variant 10, like the server's ids.
        let a = (a & 0xffff_ffff_ffff_0fff) | 0x4000;
        let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }

    fn hex128(&mut self) -> String {
        format!("{:016x}{:016x}", self.next(), self.next())
    }
}

/// A tool call kind an agent makes, with what the policy decides for it.
struct Kind {
    tool: &'static str,
    operation: &'static str,
    decision: Decided,
    /// Policy rule number (1-based) and its line.
    rule: (usize, usize),
    reason: &'static str,
    risk: &'static str,
}

#[derive(Clone, Copy, PartialEq)]
enum Decided {
    Allow,
    Approval,
    Deny,
}

const KINDS: &[Kind] = &[
    Kind {
        tool: "http",
        operation: "get",
        decision: Decided::Allow,
        rule: (1, 32),
        reason: "Allow HTTP GET requests",
        risk: "low",
    },
    Kind {
        tool: "http",
        operation: "post",
        decision: Decided::Approval,
        rule: (2, 40),
        reason: "HTTP writes require approval",
        risk: "medium",
    },
    Kind {
        tool: "shell",
        operation: "run",
        decision: Decided::Approval,
        rule: (3, 48),
        reason: "Shell commands require approval",
        risk: "medium",
    },
    Kind {
        tool: "stripe",
        operation: "refund",
        decision: Decided::Approval,
        rule: (4, 56),
        reason: "Refunds require approval",
        risk: "high",
    },
    Kind {
        tool: "stripe",
        operation: "charge",
        decision: Decided::Deny,
        rule: (5, 63),
        reason: "Agents may not charge cards",
        risk: "high",
    },
    Kind {
        tool: "github",
        operation: "push",
        decision: Decided::Approval,
        rule: (6, 70),
        reason: "Pushes require approval",
        risk: "medium",
    },
    Kind {
        tool: "email",
        operation: "send",
        decision: Decided::Allow,
        rule: (7, 77),
        reason: "Allow outgoing email",
        risk: "low",
    },
    Kind {
        tool: "sql",
        operation: "query",
        decision: Decided::Allow,
        rule: (8, 84),
        reason: "Allow read-only SQL",
        risk: "low",
    },
    Kind {
        tool: "file",
        operation: "read",
        decision: Decided::Allow,
        rule: (9, 91),
        reason: "Allow reading files",
        risk: "low",
    },
    Kind {
        tool: "file",
        operation: "write",
        decision: Decided::Deny,
        rule: (10, 98),
        reason: "Default deny rule",
        risk: "high",
    },
];

/// Named agents (weight, the kinds they use); then many small ones.
const AGENTS: &[(&str, u64, &[usize])] = &[
    ("support-bot", 300, &[0, 6, 7]),
    ("research-agent", 200, &[0, 8]),
    ("billing-agent", 150, &[3, 4, 0, 6]),
    ("data-pipeline", 120, &[7, 9, 2, 8]),
    ("deploy-bot", 100, &[2, 5, 0]),
    ("ops-agent", 60, &[2, 0, 1]),
];
const SMALL_AGENTS: u64 = 60;
const SMALL_AGENT_WEIGHT: u64 = 1;

struct Agent {
    name: String,
    weight: u64,
    kinds: Vec<usize>,
}

fn agents() -> Vec<Agent> {
    let mut rng = Rng(7);
    let mut agents: Vec<Agent> = AGENTS
        .iter()
        .map(|(name, weight, kinds)| Agent {
            name: (*name).to_owned(),
            weight: *weight,
            kinds: kinds.to_vec(),
        })
        .collect();
    for i in 0..SMALL_AGENTS {
        let mut kinds = Vec::new();
        while kinds.len() < 3 {
            let k = rng.below(KINDS.len() as u64) as usize;
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        agents.push(Agent {
            name: format!("agent-{i:03}"),
            weight: SMALL_AGENT_WEIGHT,
            kinds,
        });
    }
    // agent-017 must use sql, which one of the listing queries asks for.
    if let Some(a) = agents.iter_mut().find(|a| a.name == "agent-017") {
        if !a.kinds.contains(&7) {
            a.kinds[0] = 7;
        }
    }
    agents
}

fn params_for(kind: &Kind, rng: &mut Rng) -> Value {
    let n = rng.below(1_000_000);
    match (kind.tool, kind.operation) {
        ("http", "get") => json!({
            "url": format!("https://api.example.com/v1/items/{n}"),
            "headers": {"accept": "application/json"},
        }),
        ("http", _) => json!({
            "url": "https://api.example.com/v1/orders",
            "body": {"item": format!("sku-{}", n % 5000), "quantity": n % 7 + 1},
        }),
        ("shell", _) => {
            let commands = [
                "ls -la /var/log",
                "df -h",
                "systemctl restart worker",
                "tar czf /tmp/backup.tgz /srv/data",
                "rm -rf /tmp/build-cache",
            ];
            json!({"cmd": commands[(n % commands.len() as u64) as usize], "cwd": "/srv/app"})
        }
        ("stripe", "refund") => json!({
            "amount": n % 50_000 + 100,
            "currency": "usd",
            "charge": format!("ch_{n:010}"),
        }),
        ("stripe", _) => json!({
            "amount": n % 90_000 + 500,
            "currency": "usd",
            "customer": format!("cus_{n:08}"),
        }),
        ("github", _) => json!({
            "repo": format!("acme/service-{}", n % 40),
            "branch": match n % 3 {
                0 => "main".to_owned(),
                _ => format!("feature-{}", n % 900),
            },
        }),
        ("email", _) => json!({
            "to": format!("customer{n}@example.com"),
            "subject": format!("Re: ticket #{}", n % 100_000),
        }),
        ("sql", _) => json!({
            "query": "SELECT id, status, total FROM orders WHERE customer_id = $1",
            "args": [n],
        }),
        _ => json!({"path": format!("/data/reports/{}.csv", n % 10_000)}),
    }
}

/// What happens to an action after its submission: each step a later event.
#[derive(Clone, Copy, PartialEq)]
enum Step {
    Approve,
    DenyByHuman,
    Expire,
    Start,
    Succeed,
    Fail,
}

impl Step {
    fn event(self) -> EventType {
        match self {
            Step::Approve => EventType::Approved,
            Step::DenyByHuman => EventType::Denied,
            Step::Expire => EventType::Timeout,
            Step::Start => EventType::Started,
            Step::Succeed => EventType::Succeeded,
            Step::Fail => EventType::Failed,
        }
    }
}

/// Microseconds.
const MS: u64 = 1_000;
const SECOND: u64 = 1_000_000;

/// The steps of an action's life and the delay before each.
fn fate(decided: Decided, rng: &mut Rng) -> Vec<(Step, u64)> {
    let mut steps = Vec::new();
    let run = |steps: &mut Vec<(Step, u64)>, rng: &mut Rng, start_p: f64| {
        if rng.chance(start_p) {
            steps.push((Step::Start, rng.between(5 * MS, 800 * MS)));
            if rng.chance(0.98) {
                let step = if rng.chance(0.9) {
                    Step::Succeed
                } else {
                    Step::Fail
                };
                steps.push((step, rng.between(50 * MS, 8 * SECOND)));
            }
        }
    };
    match decided {
        Decided::Allow => run(&mut steps, rng, 0.85),
        Decided::Approval => {
            let human = rng.between(10 * SECOND, 1800 * SECOND);
            let roll = rng.below(100);
            if roll < 75 {
                steps.push((Step::Approve, human));
                run(&mut steps, rng, 0.92);
            } else if roll < 90 {
                steps.push((Step::DenyByHuman, human));
            } else {
                steps.push((Step::Expire, 3600 * SECOND));
            }
        }
        Decided::Deny => {}
    }
    steps
}

const APPROVERS: &[&str] = &["admin", "alice", "bob", "oncall"];
const POLICY_HASH: &str = "5b1f4e0c9a7d3e2b8c6a4f1e0d9c8b7a6f5e4d3c2b1a09f8e7d6c5b4a3928170";
const POLICY_VERSION: &str = "default.yaml@5b1f4e0c9a7d";
const RUNTIME_VERSION: &str = "0.1.0";

/// The columns that change as an action moves through its steps.
#[derive(Clone)]
struct Mutable {
    status: ActionStatus,
    decision: &'static str,
    reason: String,
    approval_token: Option<String>,
    result: Option<String>,
    updated_at: String,
}

/// An action still waiting for later steps.
struct Open {
    pos: i64,
    id: String,
    prev: String,
    steps: Vec<(Step, u64)>,
    next: usize,
    state: Mutable,
    /// The action's own draws for its steps, the same as when its final columns were computed.
    rng: Rng,
}

/// One step applied: the event meta, and the action's columns after it.
fn apply(step: Step, state: &mut Mutable, rng: &mut Rng, at: &str) -> Value {
    state.updated_at = at.to_owned();
    match step {
        Step::Approve | Step::DenyByHuman => {
            let reason = rng.chance(0.3).then(|| {
                if step == Step::Approve {
                    "looks fine"
                } else {
                    "not during the freeze"
                }
            });
            state.approval_token = None;
            if let Some(r) = reason {
                state.reason = r.to_owned();
            }
            let by = APPROVERS[rng.below(APPROVERS.len() as u64) as usize];
            if step == Step::Approve {
                state.status = ActionStatus::Approved;
                state.decision = "allow";
            } else {
                state.status = ActionStatus::Denied;
                state.decision = "deny";
            }
            json!({"reason": reason, "by": by})
        }
        Step::Expire => {
            let reason = "Approval expired after 3600 s without a decision".to_owned();
            state.status = ActionStatus::Timeout;
            state.approval_token = None;
            state.reason.clone_from(&reason);
            json!({"reason": reason})
        }
        Step::Start => {
            state.status = ActionStatus::Executing;
            json!({})
        }
        Step::Succeed => {
            state.status = ActionStatus::Succeeded;
            let output =
                json!({"status": 200, "bytes": rng.below(20_000), "elapsed_ms": rng.below(900)});
            state.result = Some(output.to_string());
            json!({"reason": null, "error": null, "output": output})
        }
        Step::Fail => {
            state.status = ActionStatus::Failed;
            let error = "upstream answered 503 Service Unavailable".to_owned();
            state.reason.clone_from(&error);
            json!({"reason": error, "error": error, "output": null})
        }
    }
}

fn timestamp(micros: u64) -> String {
    faramesh_core::timestamp::format(
        chrono::DateTime::<chrono::Utc>::from_timestamp_micros(micros as i64).unwrap_or_default(),
    )
}

/// Writes events through prepared statements, chaining each to the one before.
struct Writer<'c> {
    action: rusqlite::CachedStatement<'c>,
    event: rusqlite::CachedStatement<'c>,
    /// Each event's leaf of the Merkle log, as the server appends it.
    leaf: rusqlite::CachedStatement<'c>,
    log: faramesh_tlog::Frontier,
    events: u64,
}

impl Writer<'_> {
    fn event(
        &mut self,
        rng: &mut Rng,
        (pos, action_id): (i64, &str),
        event_type: EventType,
        meta: &Value,
        at: &str,
        prev: Option<&str>,
    ) -> anyhow::Result<String> {
        let id = rng.uuid();
        let record_hash =
            hash::event_record_hash(&id, action_id, event_type.as_str(), at, meta, prev)?;
        let seq = self.event.insert(params![
            id,
            action_id,
            pos,
            event_type.as_str(),
            meta.to_string(),
            at,
            prev,
            record_hash
        ])?;
        let mut data = [0u8; 32];
        hex::decode_to_slice(&record_hash, &mut data)?;
        let mut stored = Vec::with_capacity(64);
        let index = self
            .log
            .append(faramesh_tlog::tree::leaf_hash(&data), &mut stored);
        self.leaf
            .execute(params![index as i64, seq, &stored[32..]])?;
        self.events += 1;
        Ok(record_hash)
    }
}

/// Writes a ledger of `target_events` events at `path`.
fn generate(path: &Path, target_events: u64) -> anyhow::Result<()> {
    // The product's store creates the file and its schema.
    drop(
        faramesh_storage::SqliteStore::open(path)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?,
    );
    let conn = Connection::open(path)?;
    // Bulk loading: no journal (an interrupted run leaves only the .partial file), no syncs,
    // a page cache large enough for the random ids' index. The store's writer thread may still
    // hold the file for a moment after the drop; leaving WAL mode needs it gone.
    conn.busy_timeout(Duration::from_secs(10))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mode = conn.query_row("PRAGMA journal_mode = OFF", [], |r| r.get::<_, String>(0));
        if matches!(mode.as_deref(), Ok("off")) {
            break;
        }
        if Instant::now() > deadline {
            bail!("cannot take {} for bulk loading ({mode:?})", path.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA cache_size = -1000000;")?;

    let agents = agents();
    let total_weight: u64 = agents.iter().map(|a| a.weight).sum();
    let mut rng = Rng(20_250_601);
    // 2025-06-01T00:00:00Z
    let mut now: u64 = 1_748_736_000 * SECOND;
    let mut arrival = now;
    let mut open: HashMap<u64, Open> = HashMap::new();
    let mut due: BinaryHeap<std::cmp::Reverse<(u64, u64)>> = BinaryHeap::new();
    let mut next_open = 0u64;
    let started = Instant::now();
    let mut reported = 0;

    let mut writer = Writer {
        action: conn.prepare_cached(
            "INSERT INTO actions (id, agent_id, tool, operation, params, context, status, decision, reason, \
             risk_level, approval_token, policy_version, outcome, reason_code, reason_details, request_hash, \
             policy_hash, profile_id, profile_version, profile_hash, runtime_version, provenance_id, result, \
             demo, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, \
             ?14, ?15, ?16, ?17, NULL, NULL, NULL, ?18, ?19, ?20, 0, ?21, ?22)",
        )?,
        event: conn.prepare_cached(
            "INSERT INTO events (id, action_id, action_pos, event_type, meta, created_at, prev_hash, record_hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?,
        leaf: conn.prepare_cached(
            "INSERT INTO log_leaves (log_index, event_seq, nodes) VALUES (?1, ?2, ?3)",
        )?,
        log: faramesh_tlog::Frontier::empty(),
        events: 0,
    };
    let mut in_transaction = 0u64;
    conn.execute_batch("BEGIN")?;
    loop {
        if writer.events >= target_events {
            break;
        }
        if in_transaction >= 200_000 {
            conn.execute_batch("COMMIT; BEGIN")?;
            in_transaction = 0;
        }
        if writer.events >= reported + target_events.div_ceil(20).max(100_000) {
            reported = writer.events;
            eprintln!(
                "large ledger: {} / {target_events} events ({:.0} s)",
                writer.events,
                started.elapsed().as_secs_f64()
            );
        }
        // A later step that is due, or the last events when a new action would not fit.
        let pending = due.peek().map(|r| r.0);
        let room = target_events - writer.events;
        if let Some((at, key)) = pending.filter(|(at, _)| *at <= arrival || room < 2) {
            due.pop();
            let mut action = open.remove(&key).context("a due step without its action")?;
            let stamp = timestamp(at);
            let (step, _) = action.steps[action.next];
            let meta = apply(step, &mut action.state, &mut action.rng, &stamp);
            action.prev = writer.event(
                &mut rng,
                (action.pos, &action.id),
                step.event(),
                &meta,
                &stamp,
                Some(&action.prev),
            )?;
            in_transaction += 1;
            action.next += 1;
            if let Some((_, delay)) = action.steps.get(action.next) {
                due.push(std::cmp::Reverse((at + delay, key)));
                open.insert(key, action);
            }
            continue;
        }
        if room < 2 {
            break;
        }
        now = arrival;
        arrival += rng.between(0, 40 * MS);
        let mut pick = rng.below(total_weight);
        let agent = agents
            .iter()
            .find(|a| {
                if pick < a.weight {
                    true
                } else {
                    pick -= a.weight;
                    false
                }
            })
            .context("no agent")?;
        let kind = &KINDS[agent.kinds[rng.below(agent.kinds.len() as u64) as usize]];
        let Value::Object(params) = params_for(kind, &mut rng) else {
            bail!("params must be an object");
        };
        let mut context = Map::new();
        context.insert(
            "session".into(),
            Value::String(format!("sess-{:08x}", rng.below(1 << 32))),
        );
        if rng.chance(0.5) {
            context.insert("trace_id".into(), Value::String(rng.hex128()));
        }
        let request_hash =
            hash::request_hash(&agent.name, kind.tool, kind.operation, &params, &context)?;
        let provenance = hash::provenance_id(
            Some(&request_hash),
            Some(POLICY_HASH),
            None,
            RUNTIME_VERSION,
        );
        let (decision, outcome, code, status) = match kind.decision {
            Decided::Allow => (
                "allow",
                "EXECUTE",
                reason_code::POLICY_ALLOW,
                ActionStatus::Allowed,
            ),
            Decided::Approval => (
                "require_approval",
                "ABSTAIN",
                reason_code::POLICY_REQUIRE_APPROVAL,
                ActionStatus::PendingApproval,
            ),
            Decided::Deny => (
                "deny",
                "HALT",
                reason_code::POLICY_DENY,
                ActionStatus::Denied,
            ),
        };
        let decided_by = DecidedBy::PolicyRule {
            number: kind.rule.0,
            line: kind.rule.1,
            name: None,
        };
        let reason_details = json!({
            "risk_level": kind.risk,
            "decided_by": decided_by,
            "risk_rule": null,
        });
        let stamp = timestamp(now);
        let mut state = Mutable {
            status,
            decision,
            reason: kind.reason.to_owned(),
            approval_token: (status == ActionStatus::PendingApproval).then(|| rng.hex128()),
            result: None,
            updated_at: stamp.clone(),
        };
        // The row is written with the state after all its steps; actions whose later steps
        // fall after the end of the ledger are set back afterwards.
        let steps = fate(kind.decision, &mut rng);
        let seed = rng.next();
        let mut last = state.clone();
        {
            let mut at = now;
            let mut own = Rng(seed);
            for (step, delay) in &steps {
                at += delay;
                apply(*step, &mut last, &mut own, &timestamp(at));
            }
        }
        let id = rng.uuid();
        writer.action.execute(params![
            id,
            agent.name,
            kind.tool,
            kind.operation,
            Value::Object(params).to_string(),
            Value::Object(context).to_string(),
            last.status.as_str(),
            last.decision,
            last.reason,
            kind.risk,
            last.approval_token,
            POLICY_VERSION,
            outcome,
            code,
            reason_details.to_string(),
            request_hash,
            POLICY_HASH,
            RUNTIME_VERSION,
            provenance,
            last.result,
            stamp,
            last.updated_at,
        ])?;
        let pos = conn.last_insert_rowid();
        let created = json!({"decision": decision, "risk_level": kind.risk});
        let decided = json!({
            "decision": decision,
            "outcome": outcome,
            "reason_code": code,
            "reason": kind.reason,
            "risk_level": kind.risk,
            "request_hash": request_hash,
        });
        let first = writer.event(
            &mut rng,
            (pos, &id),
            EventType::Created,
            &created,
            &stamp,
            None,
        )?;
        let prev = writer.event(
            &mut rng,
            (pos, &id),
            EventType::DecisionMade,
            &decided,
            &stamp,
            Some(&first),
        )?;
        in_transaction += 3;
        if let Some((_, delay)) = steps.first() {
            let key = next_open;
            next_open += 1;
            due.push(std::cmp::Reverse((now + delay, key)));
            // Steps are replayed with the same draws as above, so meta and columns agree.
            state.updated_at = stamp;
            open.insert(
                key,
                Open {
                    pos,
                    id,
                    prev,
                    steps,
                    next: 0,
                    state,
                    rng: Rng(seed),
                },
            );
        }
    }
    // Actions with steps still to come keep the columns of the steps they had.
    {
        let mut update = conn.prepare_cached(
            "UPDATE actions SET status = ?1, decision = ?2, reason = ?3, approval_token = ?4, \
             result = ?5, updated_at = ?6 WHERE rowid = ?7",
        )?;
        for action in open.values() {
            let s = &action.state;
            update.execute(params![
                s.status.as_str(),
                s.decision,
                s.reason,
                s.approval_token,
                s.result,
                s.updated_at,
                action.pos
            ])?;
        }
    }
    let events = writer.events;
    drop(writer);
    conn.execute_batch("COMMIT")?;
    eprintln!(
        "large ledger: {events} events written ({:.0} s); finishing the file",
        started.elapsed().as_secs_f64()
    );
    // As the server leaves it.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if mode != "wal" {
        bail!("could not put {} back in WAL mode", path.display());
    }
    drop(conn);
    Ok(())
}
