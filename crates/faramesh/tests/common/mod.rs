//! Starting the real `faramesh serve` for process-level tests.
#![allow(dead_code, reason = "each test file uses a different subset")]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A `faramesh serve` in its own directory, stopped when dropped.
pub struct Server {
    pub url: String,
    pub child: Child,
    pub dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `faramesh serve` in `dir` with extra environment and flags.
pub fn server_in(dir: tempfile::TempDir, env: &[(&str, &str)], flags: &[&str]) -> Server {
    let (child, url) = serve_with(dir.path(), env, flags);
    Server { url, child, dir }
}

/// Starts `faramesh serve` on a free port and returns it with its base URL, once it listens.
pub fn serve(dir: &Path) -> (Child, String) {
    serve_with(dir, &[], &[])
}

/// `serve` with extra environment variables and flags.
pub fn serve_with(dir: &Path, env: &[(&str, &str)], flags: &[&str]) -> (Child, String) {
    serve_limited(dir, env, flags, None)
}

/// `serve_with`, the server limited to `open_files` file descriptors when given.
pub fn serve_limited(
    dir: &Path,
    env: &[(&str, &str)],
    flags: &[&str],
    open_files: Option<u64>,
) -> (Child, String) {
    let (child, url, _) = serve_logged(dir, env, flags, open_files);
    (child, url)
}

/// `serve_limited`, also returning what the server logged before it listened.
pub fn serve_logged(
    dir: &Path,
    env: &[(&str, &str)],
    flags: &[&str],
    open_files: Option<u64>,
) -> (Child, String, Vec<String>) {
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/default.yaml");
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("faramesh"));
    command
        .arg("serve")
        .args(if flags.contains(&"--port") {
            &[][..]
        } else {
            &["--port", "0"][..]
        })
        // A PostgreSQL server (FARA_DB_BACKEND in `env`) must not be pointed at a SQLite file.
        .args(if env.iter().any(|(k, _)| *k == "FARA_DB_BACKEND") {
            vec![]
        } else {
            vec![
                std::ffi::OsString::from("--db"),
                dir.join("actions.db").into_os_string(),
            ]
        })
        .args(if flags.contains(&"--policy") {
            vec![]
        } else {
            vec![
                std::ffi::OsString::from("--policy"),
                policy.clone().into_os_string(),
            ]
        })
        .args(if flags.contains(&"--no-profile") {
            vec![]
        } else {
            vec![
                std::ffi::OsString::from("--profile"),
                dir.join("no-profile.yaml").into_os_string(),
            ]
        })
        .args(flags)
        .env("RUST_LOG", "info")
        .env_remove("FARAMESH_TOKEN")
        .env_remove("FARAMESH_DEMO")
        .envs(env.iter().copied())
        .current_dir(dir)
        .stderr(Stdio::piped())
        .stdout(Stdio::null());
    if let Some(limit) = open_files {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit is async-signal-safe and touches only the child.
        #[allow(
            unsafe_code,
            reason = "pre_exec is unsafe by contract; see the SAFETY note"
        )]
        unsafe {
            command.pre_exec(move || {
                nix::sys::resource::setrlimit(
                    nix::sys::resource::Resource::RLIMIT_NOFILE,
                    limit,
                    limit,
                )
                .map_err(std::io::Error::from)
            });
        }
    }
    let mut child = command.spawn().expect("faramesh serve starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    // Reads stderr to its end, so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut logged = Vec::new();
    loop {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server reports where it listens; it logged {logged:#?}");
        };
        if let Some(url) = line.split("listening on ").nth(1) {
            return (child, url.trim().to_owned(), logged);
        }
        logged.push(line);
    }
}

pub async fn get_json(client: &reqwest::Client, url: String) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}
