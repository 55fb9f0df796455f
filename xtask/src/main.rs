//! Project tasks: `cargo xtask bench [--quick]` runs the benchmarks and prints one table of
//! measured medians against the targets of the README's benchmark table.

mod drive;
mod http;
mod ledger;
mod mcp;
mod stream;
mod wire;

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Command;

/// (criterion id, what, target in nanoseconds, target as written)
const CORE_TARGETS: &[(&str, &str, f64, &str)] = &[
    (
        "decide_default_policy",
        "in-process decision, default policy",
        2_000.0,
        "≤ 2 µs",
    ),
    (
        "decide_1000_rules_match_at_end",
        "in-process decision, 1,000-rule policy, match at the end",
        20_000.0,
        "≤ 20 µs",
    ),
    (
        "decide_with_cel_condition",
        "in-process decision, a rule with a CEL `when` condition",
        5_000.0,
        "≤ 5 µs",
    ),
    (
        "canonicalize_hash_1kib",
        "canonicalize + hash a 1 KiB params object",
        5_000.0,
        "≤ 5 µs",
    ),
];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        // For profiling: round-trip load against a running server.
        Some("round-trips") => {
            let url = args.get(1).map_or("http://127.0.0.1:8000", String::as_str);
            let seconds = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
            let workers = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(32);
            let rate = drive::round_trips(url, seconds, workers)?;
            println!("{rate:.0} round trips/s ({workers} workers, {seconds} s)");
            Ok(())
        }
        // For profiling: the live-stream load against a running server.
        Some("stream") => {
            let url = args.get(1).map_or("http://127.0.0.1:8000", String::as_str);
            let number = |at: usize, default: u64| args.get(at).and_then(|s| s.parse().ok()).unwrap_or(default);
            let (subscribers, rate, seconds) = (number(2, 1000), number(3, 1000), number(4, 10));
            let d = stream::measure(url, subscribers as usize, rate, seconds)?;
            println!("{d:?}");
            Ok(())
        }
        // The large-ledger benchmark alone.
        Some("ledger") => {
            let root = workspace_root();
            let binary = http::build_release(&root)?;
            for row in ledger::run(&root, &binary, args.iter().any(|a| a == "--quick"))? {
                println!("| {} | {} | {} | {} |", row.what, row.measured, row.target, row.met);
            }
            Ok(())
        }
        // The minimal MCP server the gateway benchmark calls.
        Some("mcp-echo") => mcp::echo_server(),
        // The MCP gateway's overhead alone.
        Some("mcp") => {
            let root = workspace_root();
            let binary = http::build_release(&root)?;
            let work = std::env::temp_dir().join(format!("faramesh-bench-mcp-{}", std::process::id()));
            std::fs::create_dir_all(&work)?;
            for row in mcp::run(&binary, &work, args.iter().any(|a| a == "--quick"))? {
                println!("| {} | {} | {} | {} |", row.what, row.measured, row.target, row.met);
            }
            Ok(())
        }
        Some("bench") => bench(
            args.iter().any(|a| a == "--quick"),
            args.iter().any(|a| a == "--core"),
        ),
        _ => bail!("usage: cargo xtask bench [--quick] [--core]\n  --quick: a short run that proves the benchmarks work (numbers are rough)\n  --core: only the in-process benchmarks, no server\nfor profiling, against a running server:\n  cargo xtask round-trips <url> [seconds] [workers]\n  cargo xtask stream <url> [subscribers] [events/s] [seconds]\nthe large-ledger part alone: cargo xtask ledger [--quick]\nthe MCP gateway's overhead alone: cargo xtask mcp [--quick]"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn bench(quick: bool, core_only: bool) -> anyhow::Result<()> {
    let root = workspace_root();
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&root)
        .args(["bench", "-p", "faramesh-core", "--bench", "core", "--"]);
    if quick {
        cmd.args([
            "--warm-up-time",
            "0.5",
            "--measurement-time",
            "1",
            "--sample-size",
            "20",
        ]);
    }
    let status = cmd.status().context("cannot run cargo bench")?;
    if !status.success() {
        bail!("cargo bench failed ({status})");
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    println!();
    println!("| what | median | target | met |");
    println!("| --- | --- | --- | --- |");
    let mut missed = 0;
    for (id, what, target_ns, target_text) in CORE_TARGETS {
        let median = median_ns(&target.join("criterion").join(id).join("new/estimates.json"))?;
        let met = median <= *target_ns;
        missed += usize::from(!met);
        println!(
            "| {what} | {} | {target_text} | {} |",
            human(median),
            if met { "yes" } else { "NO" }
        );
    }
    if !core_only {
        let settings = http::Settings {
            runs: if quick { 1 } else { 3 },
            seconds: if quick { 2 } else { 10 },
            postgres: std::env::var("FARAMESH_BENCH_POSTGRES_URL")
                .or_else(|_| std::env::var("FARAMESH_TEST_POSTGRES_URL"))
                .ok(),
        };
        let binary = http::build_release(&root)?;
        let work = std::env::temp_dir().join(format!("faramesh-bench-mcp-{}", std::process::id()));
        std::fs::create_dir_all(&work)?;
        let rows = http::run(&root, &settings)?
            .into_iter()
            .chain(mcp::run(&binary, &work, quick)?)
            .chain(ledger::run(&root, &binary, quick)?);
        for row in rows {
            missed += usize::from(!row.met);
            println!(
                "| {} | {} | {} | {} |",
                row.what,
                row.measured,
                row.target,
                if row.met { "yes" } else { "NO" }
            );
        }
    }
    println!();
    if quick {
        println!("(quick mode: short measurement, numbers are indicative only)");
    } else if missed > 0 {
        println!("{missed} target(s) missed");
    }
    Ok(())
}

fn median_ns(path: &Path) -> anyhow::Result<f64> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("no criterion result at {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).context("criterion estimates are not JSON")?;
    value["median"]["point_estimate"]
        .as_f64()
        .with_context(|| format!("no median in {}", path.display()))
}

fn human(ns: f64) -> String {
    if ns >= 1_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{ns:.0} ns")
    }
}
