//! Storage trouble under a running server: a full disk and a read-only file system, injected
//! into SQLite's own system calls. Each gets 503 with a detail naming the cause, stores and
//! allows nothing, makes `/ready` 503, and clears by itself once writes work again.
//!
//! SQLite's unix VFS lets a process replace the system calls it makes. The replacements here
//! fail the writes of files inside one test's directory while that test has armed a fault, and
//! pass everything else through, so nothing else in the process is affected.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]
#![allow(
    dead_code,
    reason = "the shared API harness (api/server.rs) has helpers these tests do not use"
)]
#![allow(
    unsafe_code,
    reason = "the faults are injected by replacing SQLite's system calls through its C interface"
)]

use nix::libc;

mod fault {
    use rusqlite::ffi;
    use std::ffi::{c_char, c_int, c_void, CStr};
    use std::mem::transmute;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, OnceLock, PoisonError};

    type Write = unsafe extern "C" fn(c_int, *const c_void, usize) -> isize;
    type Pwrite = unsafe extern "C" fn(c_int, *const c_void, usize, i64) -> isize;
    /// How SQLite stores a system call: any function pointer, cast back by the caller.
    type Syscall = unsafe extern "C" fn();

    /// SQLite's own functions, called while no fault applies; `None` where this build of
    /// SQLite does not use that call.
    struct Originals {
        write: Option<Write>,
        pwrite: Option<Pwrite>,
        pwrite64: Option<Pwrite>,
    }

    static ORIGINALS: OnceLock<Originals> = OnceLock::new();

    struct Armed {
        dir: PathBuf,
        errno: c_int,
        failed: Arc<AtomicUsize>,
    }

    static ARMED: Mutex<Vec<Armed>> = Mutex::new(Vec::new());

    /// The error a write to `fd` fails with now, if any: only files inside an armed directory.
    fn injected(fd: c_int) -> Option<c_int> {
        let armed = ARMED.lock().unwrap_or_else(PoisonError::into_inner);
        if armed.is_empty() {
            return None;
        }
        let file = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
        let hit = armed.iter().find(|a| file.starts_with(&a.dir))?;
        hit.failed.fetch_add(1, Ordering::Relaxed);
        Some(hit.errno)
    }

    unsafe extern "C" fn write(fd: c_int, buf: *const c_void, count: usize) -> isize {
        if let Some(errno) = injected(fd) {
            nix::errno::Errno::set_raw(errno);
            return -1;
        }
        let original = ORIGINALS.get().and_then(|o| o.write).expect("installed");
        // SAFETY: SQLite's own write, with SQLite's arguments.
        unsafe { original(fd, buf, count) }
    }

    unsafe extern "C" fn pwrite(fd: c_int, buf: *const c_void, count: usize, at: i64) -> isize {
        if let Some(errno) = injected(fd) {
            nix::errno::Errno::set_raw(errno);
            return -1;
        }
        let original = ORIGINALS.get().and_then(|o| o.pwrite).expect("installed");
        // SAFETY: SQLite's own pwrite, with SQLite's arguments.
        unsafe { original(fd, buf, count, at) }
    }

    unsafe extern "C" fn pwrite64(fd: c_int, buf: *const c_void, count: usize, at: i64) -> isize {
        if let Some(errno) = injected(fd) {
            nix::errno::Errno::set_raw(errno);
            return -1;
        }
        let original = ORIGINALS.get().and_then(|o| o.pwrite64).expect("installed");
        // SAFETY: SQLite's own pwrite64, with SQLite's arguments.
        unsafe { original(fd, buf, count, at) }
    }

    /// Replaces SQLite's write calls, once per process, before any database is opened. Returns
    /// the names of the calls this build of SQLite uses, as replaced.
    pub fn install() -> Vec<&'static str> {
        ORIGINALS.get_or_init(|| {
            // SAFETY: the default VFS lives as long as the process; the calls are replaced
            // before this process opens any database, and each replacement has the signature
            // of the call it replaces (on 64-bit Linux `off_t` is `i64`).
            unsafe {
                let vfs = ffi::sqlite3_vfs_find(std::ptr::null());
                assert!(!vfs.is_null(), "SQLite has a default VFS");
                let get = (*vfs)
                    .xGetSystemCall
                    .expect("the unix VFS can return system calls");
                let set = (*vfs)
                    .xSetSystemCall
                    .expect("the unix VFS can replace system calls");
                let replace = |name: &CStr, by: Syscall| {
                    let original = get(vfs, name.as_ptr() as *const c_char)?;
                    let rc = set(vfs, name.as_ptr() as *const c_char, Some(by));
                    assert_eq!(rc, ffi::SQLITE_OK, "replacing {name:?}");
                    Some(original)
                };
                Originals {
                    write: replace(c"write", transmute::<Write, Syscall>(write))
                        .map(|f| transmute::<Syscall, Write>(f)),
                    pwrite: replace(c"pwrite", transmute::<Pwrite, Syscall>(pwrite))
                        .map(|f| transmute::<Syscall, Pwrite>(f)),
                    pwrite64: replace(c"pwrite64", transmute::<Pwrite, Syscall>(pwrite64))
                        .map(|f| transmute::<Syscall, Pwrite>(f)),
                }
            }
        });
        let o = ORIGINALS.get().expect("installed");
        [
            ("write", o.write.is_some()),
            ("pwrite", o.pwrite.is_some()),
            ("pwrite64", o.pwrite64.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, used)| used.then_some(name))
        .collect()
    }

    /// While alive, every write SQLite makes to a file in `dir` fails with `errno`.
    pub struct Fault {
        dir: PathBuf,
        failed: Arc<AtomicUsize>,
    }

    impl Fault {
        pub fn arm(dir: &Path, errno: c_int) -> Fault {
            assert!(
                !install().is_empty(),
                "SQLite writes through a replaceable call"
            );
            let dir = dir.canonicalize().unwrap();
            let failed = Arc::new(AtomicUsize::new(0));
            ARMED
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Armed {
                    dir: dir.clone(),
                    errno,
                    failed: Arc::clone(&failed),
                });
            Fault { dir, failed }
        }

        /// Writes failed so far.
        pub fn failed_writes(&self) -> usize {
            self.failed.load(Ordering::Relaxed)
        }
    }

    impl Drop for Fault {
        fn drop(&mut self) {
            ARMED
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|a| a.dir != self.dir);
        }
    }
}

use fault::Fault;

const POSTGRES: bool = false;
include!("api/server.rs");

/// A server whose database faults can be injected into; nothing runs actions behind the
/// test's back, so allowed actions stay allowed.
async fn start_faultable() -> Server {
    fault::install();
    start_custom(&[], None, |config| config.executors = "none".into())
        .await
        .expect("SQLite needs no service")
}

fn database(s: &Server) -> String {
    s.dir.path().join("data/actions.db").display().to_string()
}

/// The one scenario both faults go through; `cause` checks a 503's detail names the fault.
async fn storage_trouble_gets_503_allows_nothing_and_clears_by_itself(
    errno: i32,
    cause: impl Fn(&str) -> bool,
) {
    let s = start_faultable().await;
    let (status, allowed) = s.try_submit("http", "get", json!({})).await;
    assert_eq!(
        (status, allowed["status"].as_str()),
        (StatusCode::OK, Some("allowed")),
        "{allowed}"
    );
    let (status, pending) = s
        .try_submit("shell", "run", json!({"cmd": "rm -rf /tmp/x"}))
        .await;
    assert_eq!(
        (status, pending["status"].as_str()),
        (StatusCode::OK, Some("pending_approval")),
        "{pending}"
    );
    let token = pending["approval_token"].as_str().unwrap().to_owned();
    let (status, _) = s.get("/ready").await;
    assert_eq!(status, StatusCode::OK);

    let fault = Fault::arm(s.dir.path(), errno);
    let unavailable = |what: &str, status: StatusCode, body: &Value| {
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(cause(detail), "{what} names the cause: {detail}");
        assert!(
            detail.contains(&database(&s)),
            "{what} names the database: {detail}"
        );
    };
    for (tool, operation) in [("http", "get"), ("shell", "run")] {
        let (status, body) = s.try_submit(tool, operation, json!({"cmd": "ls"})).await;
        unavailable("a submission", status, &body);
    }
    let (status, body) = s
        .post(
            &format!("/v1/actions/{}/approval", id(&pending)),
            json!({"token": token, "approve": true}),
        )
        .await;
    unavailable("an approval", status, &body);
    let (status, body) = s.get("/ready").await;
    unavailable("/ready", status, &body);
    let (status, body) = s.get("/ready").await;
    unavailable("/ready, asked again", status, &body);
    assert!(fault.failed_writes() > 0, "the fault was hit");
    let (status, listed) = s.get("/v1/actions").await;
    assert_eq!(status, StatusCode::OK, "reads still work: {listed}");
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");

    drop(fault);
    let (status, body) = s.get("/ready").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "ready again without any request in between: {body}"
    );
    let (status, after) = s.try_submit("http", "get", json!({})).await;
    assert_eq!(
        (status, after["status"].as_str()),
        (StatusCode::OK, Some("allowed")),
        "the next submission works: {after}"
    );

    let (_, listed) = s.get("/v1/actions").await;
    let mut listed: Vec<String> = listed.as_array().unwrap().iter().map(id).collect();
    listed.sort();
    let mut expected = vec![id(&allowed), id(&pending), id(&after)];
    expected.sort();
    assert_eq!(
        listed, expected,
        "nothing of the failed requests was stored"
    );
    for action in &listed {
        let (_, events) = s.get(&format!("/v1/actions/{action}/events")).await;
        let types: Vec<&str> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["created", "decision_made"], "action {action}");
        let (status, chain) = s.get(&format!("/v1/actions/{action}/chain")).await;
        assert_eq!(
            (status, &chain["verified"]),
            (StatusCode::OK, &json!(true)),
            "{chain}"
        );
    }
    let (_, still) = s.get(&format!("/v1/actions/{}", id(&pending))).await;
    assert_eq!(
        still["status"], "pending_approval",
        "the failed approval left no trace"
    );

    let (status, approved) = s
        .post(
            &format!("/v1/actions/{}/approval", id(&pending)),
            json!({"token": token, "approve": true}),
        )
        .await;
    assert_eq!(
        (status, approved["status"].as_str()),
        (StatusCode::OK, Some("approved")),
        "the token still works once: {approved}"
    );
    let (_, chain) = s.get(&format!("/v1/actions/{}/chain", id(&pending))).await;
    assert_eq!(
        (&chain["verified"], &chain["events"]),
        (&json!(true), &json!(3)),
        "{chain}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_gets_503_allows_nothing_and_the_server_recovers_by_itself() {
    storage_trouble_gets_503_allows_nothing_and_clears_by_itself(libc::ENOSPC, |detail| {
        detail.contains("disk holding the database") && detail.contains("is full")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_file_system_gets_503_allows_nothing_and_the_server_recovers_by_itself() {
    storage_trouble_gets_503_allows_nothing_and_clears_by_itself(libc::EROFS, |detail| {
        detail.contains("could not be written") && detail.contains("Read-only file system")
    })
    .await;
}

// The submission waits out the writer's busy timeout (5 s) before it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_keeps_ready_at_503_until_the_lock_is_released() {
    let s = start_faultable().await;
    let other = rusqlite::Connection::open(database(&s)).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let (status, body) = s.try_submit("http", "get", json!({})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (status, body) = s.get("/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&database(&s)) && detail.contains("is locked"),
        "{detail}"
    );

    other.execute_batch("ROLLBACK").unwrap();
    let (status, body) = s.get("/ready").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, action) = s.try_submit("http", "get", json!({})).await;
    assert_eq!(
        (status, action["status"].as_str()),
        (StatusCode::OK, Some("allowed")),
        "{action}"
    );
}
