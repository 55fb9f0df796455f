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
            let mut summary = format!(
                "{}, {}, {}policy_hash {}",
                count(p.rules().len(), "rule"),
                count(p.risk_rules().len(), "risk rule"),
                if p.limits().is_empty() {
                    String::new()
                } else {
                    format!("{}, ", count(p.limits().len(), "limit"))
                },
                p.hash()
            );
            // The keys beyond the seed's, each said in words.
            for line in explained(&p) {
                summary.push_str("\n  ");
                summary.push_str(&line);
            }
            let details = json!({"rules": p.rules().len(), "risk_rules": p.risk_rules().len(), "limits": p.limits().len(), "explained": explained(&p), "policy_hash": p.hash(), "policy_version": p.default_version()});
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
                if what == "policy" && looks_like_a_profile(&text) {
                    println!(
                        "  {name} looks like an execution profile (it has `allowed_tools`): check it with `faramesh policy validate POLICY --profile {}`",
                        crate::output::shell_word(&name)
                    );
                }
            }
        }
    }
    Ok(if valid {
        Status::Success
    } else {
        Status::Failure
    })
}

/// Whether `text` is a mapping with `allowed_tools` at its top: a profile, not a policy.
fn looks_like_a_profile(text: &str) -> bool {
    faramesh_core::yaml::load(text)
        .ok()
        .is_some_and(|doc| doc.get("allowed_tools").is_some())
}

/// What each limit and each `when` expression of `p` does, one line each.
fn explained(p: &Policy) -> Vec<String> {
    use faramesh_core::policy::limits::{Measure, OnExceed, Per};
    use faramesh_core::policy::Effect;
    let mut lines = Vec::new();
    let expression =
        |what: String, e: &faramesh_core::policy::expression::Expression, failing: &str| {
            format!(
            "{what} when \"{}\": a CEL expression over {}; one that cannot be evaluated {failing}",
            e.source(),
            e.reads().join(", ")
        )
        };
    for rule in p.rules() {
        if let Some(e) = &rule.conditions.expression {
            let failing = if rule.effect == Effect::Allow {
                "does not match, so this rule does not allow"
            } else {
                "matches, so this rule applies (fail closed)"
            };
            lines.push(expression(
                format!("rule {} (line {})", rule.number, rule.line),
                e,
                failing,
            ));
        }
    }
    for rule in p.risk_rules() {
        if let Some(e) = &rule.conditions.expression {
            lines.push(expression(
                format!("risk rule {} (line {})", rule.name, rule.line),
                e,
                "matches, so the risk is raised",
            ));
        }
    }
    for limit in p.limits() {
        let window = faramesh_core::policy::limits::describe_window(limit.window_seconds);
        let counts = match &limit.measure {
            Measure::Calls { max } => format!("at most {max} calls in any {window}"),
            Measure::Sum { path, max } => {
                format!("{} summed, at most {max} in any {window}", path.text)
            }
        };
        let per = match &limit.per {
            Per::AgentId => "per agent_id".to_owned(),
            Per::Tool => "per tool".to_owned(),
            Per::Global => "for everyone together".to_owned(),
            Per::Field(path) => format!("per {}", path.text),
        };
        let over = match limit.on_exceed {
            OnExceed::Deny => "denied",
            OnExceed::RequireApproval => "a human decides",
        };
        lines.push(format!(
            "limit {} (line {}): {counts}, {per}, counted when allowed or approved; over it: {over}",
            limit.name, limit.line
        ));
    }
    lines
}

/// `1 rule`, `3 rules`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
