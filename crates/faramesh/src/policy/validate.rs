//! `faramesh policy validate <file> [--profile <file>]`.

use crate::cli::Global;
use crate::output::{self, paint};
use crate::{render, Status};
use anstream::println;
use faramesh_core::{Policy, Profile, Report};
use serde_json::json;
use std::path::Path;

pub fn run(file: &Path, profile: Option<&Path>, global: &Global) -> anyhow::Result<Status> {
    let mut status = check(file, "policy", global, |name, text| {
        Policy::parse(name, text).map(|p| {
            let summary = format!(
                "{}, {}, policy_hash {}",
                count(p.rules().len(), "rule"),
                count(p.risk_rules().len(), "risk rule"),
                p.hash()
            );
            let details = json!({"rules": p.rules().len(), "risk_rules": p.risk_rules().len(), "policy_hash": p.hash(), "policy_version": p.default_version()});
            (p.warnings().to_vec(), summary, details)
        })
    })?;
    if let Some(profile) = profile {
        let profile_status = check(profile, "profile", global, |name, text| {
            Profile::parse(name, text).map(|p| {
                let summary = format!(
                    "profile {} version {}, {}, profile_hash {}",
                    p.id(),
                    p.version(),
                    count(p.rules().len(), "rule"),
                    p.hash()
                );
                let details = json!({"id": &**p.id(), "version": &**p.version(), "rules": p.rules().len(), "profile_hash": &**p.hash()});
                (p.warnings().to_vec(), summary, details)
            })
        })?;
        if profile_status != Status::Success {
            status = profile_status;
        }
    }
    Ok(status)
}

type Checked = (Vec<faramesh_core::Diagnostic>, String, serde_json::Value);

fn check(
    path: &Path,
    what: &str,
    global: &Global,
    parse: impl Fn(&str, &str) -> Result<Checked, Report>,
) -> anyhow::Result<Status> {
    let text = super::read(path, what)?;
    let name = path.display().to_string();
    let (report, summary, details) = match parse(&name, &text) {
        Ok((warnings, summary, details)) => (
            Report {
                file: name.clone(),
                diagnostics: warnings,
            },
            Some(summary),
            details,
        ),
        Err(report) => (report, None, serde_json::Value::Null),
    };
    let valid = !report.has_errors();
    if global.json {
        let warnings = report.diagnostics.len() - report.error_count();
        let out = json!({
            "file": name,
            "kind": what,
            "valid": valid,
            "errors": report.error_count(),
            "warnings": warnings,
            "diagnostics": report.diagnostics,
            "summary": details,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        render::print_report(&report, &text);
        match summary {
            Some(summary) => println!(
                "{} {name} is a valid {what}: {summary}",
                paint(output::GOOD, "✓")
            ),
            None => {
                let n = report.error_count();
                println!(
                    "{} {name} is not a valid {what}: {n} error{}",
                    paint(output::ERROR, "✗"),
                    if n == 1 { "" } else { "s" }
                );
            }
        }
    }
    Ok(if valid {
        Status::Success
    } else {
        Status::Failure
    })
}

/// `1 rule`, `3 rules`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
