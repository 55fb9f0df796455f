//! `faramesh policy diff <old> <new> [<cases>]`.

use crate::cli::Global;
use crate::output::{self, paint};
use crate::Status;
use anstream::println;
use faramesh_core::cases;
use faramesh_core::diff::{diff, Change, Section};
use serde_json::{json, Value};
use std::path::Path;

pub fn run(
    old: &Path,
    new: &Path,
    cases_path: Option<&Path>,
    global: &Global,
) -> anyhow::Result<Status> {
    let old_engine = super::engine(old, None, global)?;
    let new_engine = super::engine(new, None, global)?;
    let (Some(old_policy), Some(new_policy)) = (old_engine.policy(), new_engine.policy()) else {
        anyhow::bail!("both policies must load");
    };
    let changes = diff(old_policy, new_policy);

    let cases = match cases_path {
        Some(path) => super::load(path, "cases", global, cases::parse)?,
        None => Vec::new(),
    };
    let mut decision_changes = Vec::new();
    {
        for case in &cases {
            let before = old_engine.decide(&case.action);
            let after = new_engine.decide(&case.action);
            if (before.outcome, &before.reason_code, before.risk_level)
                != (after.outcome, &after.reason_code, after.risk_level)
            {
                decision_changes.push((case, before, after));
            }
        }
    }

    if global.json {
        let decisions: Vec<Value> = decision_changes
            .iter()
            .map(|(case, before, after)| {
                json!({
                    "case": case.name,
                    "line": case.line,
                    "old": super::test::decision_json(before),
                    "new": super::test::decision_json(after),
                })
            })
            .collect();
        let out = json!({
            "old": {"file": old.display().to_string(), "policy_hash": old_policy.hash()},
            "new": {"file": new.display().to_string(), "policy_hash": new_policy.hash()},
            "changes": changes,
            "decision_changes": decisions,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_changes(&changes);
        if cases_path.is_some() {
            if decision_changes.is_empty() {
                println!("no case changes its decision");
            } else {
                println!("{}", paint(output::BOLD, "decisions that change:"));
            }
            for (case, before, after) in &decision_changes {
                println!(
                    "  {} (line {}): {} {} → {} {}",
                    case.name,
                    case.line,
                    paint(output::outcome_style(before.outcome), before.decision()),
                    paint(
                        output::DIM,
                        format!("[{}, {}]", before.reason_code, before.risk_level)
                    ),
                    paint(output::outcome_style(after.outcome), after.decision()),
                    paint(
                        output::DIM,
                        format!("[{}, {}]", after.reason_code, after.risk_level)
                    ),
                );
            }
        }
        println!(
            "{} rule change(s), {} decision change(s)",
            changes.len(),
            decision_changes.len()
        );
    }
    Ok(if changes.is_empty() && decision_changes.is_empty() {
        Status::Success
    } else {
        Status::Failure
    })
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn print_changes(changes: &[Change]) {
    if changes.is_empty() {
        println!("no rule changes");
        return;
    }
    let label = |s: &Section| match s {
        Section::Rules => "rule",
        Section::RiskRules => "risk rule",
        Section::Limits => "limit",
    };
    for change in changes {
        match change {
            Change::Added {
                section,
                new_number,
                rule,
            } => {
                println!(
                    "{} {} {new_number} added: {}",
                    paint(output::GOOD, "+"),
                    label(section),
                    compact(rule)
                );
            }
            Change::Removed {
                section,
                old_number,
                rule,
            } => {
                println!(
                    "{} {} {old_number} removed: {}",
                    paint(output::ERROR, "-"),
                    label(section),
                    compact(rule)
                );
            }
            Change::Moved {
                section,
                old_number,
                new_number,
                rule,
            } => {
                println!(
                    "{} {} moved from {old_number} to {new_number} (first-match order changed): {}",
                    paint(output::WARN, "↕"),
                    label(section),
                    compact(rule)
                );
            }
            Change::Changed {
                section,
                old_number,
                new_number,
                fields,
            } => {
                let place = if old_number == new_number {
                    format!("{old_number}")
                } else {
                    format!("{old_number} (now {new_number})")
                };
                println!(
                    "{} {} {place} changed:",
                    paint(output::WARN, "~"),
                    label(section)
                );
                for f in fields {
                    let show = |v: &Option<Value>| {
                        v.as_ref().map_or_else(|| "(absent)".to_owned(), compact)
                    };
                    println!("    {}: {} → {}", f.field, show(&f.old), show(&f.new));
                }
            }
        }
    }
}
