//! `faramesh policy test`: decide one action, or run a cases file.

use crate::cli::{Global, TestArgs};
use crate::output::{self, paint};
use crate::{key_values, Status};
use anstream::println;
use anyhow::bail;
use faramesh_core::cases::{self, CaseResult};
use faramesh_core::{ActionRequest, DecidedBy, Decision};
use serde_json::json;

pub fn run(args: &TestArgs, global: &Global) -> anyhow::Result<Status> {
    let Some(cases_path) = &args.cases else {
        return decide_one(args, global);
    };
    let engine = super::engine(&args.policy, args.profile.as_deref(), global)?;
    let cases = super::load(cases_path, "cases", global, cases::parse)?;
    let results = cases::run(&engine, &cases);
    let failed = results.iter().filter(|r| !r.passed()).count();
    let passed = results.len() - failed;
    if global.json {
        let list: Vec<_> = results.iter().map(case_json).collect();
        let out = json!({"policy": args.policy.display().to_string(), "passed": passed, "failed": failed, "cases": list});
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for r in &results {
            print_case(r);
        }
        let summary = format!("{passed} passed, {failed} failed");
        println!(
            "{}",
            paint(
                if failed == 0 {
                    output::GOOD
                } else {
                    output::ERROR
                },
                summary
            )
        );
    }
    Ok(if failed == 0 {
        Status::Success
    } else {
        Status::Failure
    })
}

fn decide_one(args: &TestArgs, global: &Global) -> anyhow::Result<Status> {
    let (Some(tool), Some(op)) = (&args.tool, &args.op) else {
        bail!("give a cases file, or the action with --tool and --op (e.g. --tool shell --op run --param cmd=ls)");
    };
    let action = ActionRequest {
        agent_id: args.agent.clone(),
        tool: tool.clone(),
        operation: op.clone(),
        params: key_values::object(args.params_json.as_deref(), &args.params, "--param")?,
        context: key_values::object(None, &args.context, "--context")?,
    };
    let engine = super::engine(&args.policy, args.profile.as_deref(), global)?;
    let decision = engine.decide(&action);
    if global.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&decision_json(&decision))?
        );
    } else {
        print_decision(&decision);
    }
    Ok(Status::Success)
}

pub fn decision_json(d: &Decision) -> serde_json::Value {
    let mut value = serde_json::to_value(d).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("decision".into(), d.decision().into());
    }
    value
}

pub fn decided_by(d: &Decision) -> String {
    match &d.decided_by {
        DecidedBy::PolicyRule { number, line, name } => match name {
            Some(n) => format!("policy rule {number} \"{n}\" (line {line})"),
            None => format!("policy rule {number} (line {line})"),
        },
        DecidedBy::ProfileRule { number, name } => format!("profile rule {number} \"{name}\""),
        DecidedBy::Profile => "the execution profile".to_owned(),
        DecidedBy::Default => "no rule matched (deny by default)".to_owned(),
        DecidedBy::Failure => "evaluation failed (fail closed)".to_owned(),
    }
}

fn print_decision(d: &Decision) {
    let row = |label: &str, value: &str| {
        println!("{}  {value}", paint(output::BOLD, format!("{label:<15}")))
    };
    let style = output::outcome_style(d.outcome);
    row(
        "decision",
        &paint(style, format!("{} ({})", d.decision(), d.outcome)),
    );
    row("reason", &d.reason);
    row("reason_code", &d.reason_code);
    row("risk_level", d.risk_level.as_str());
    row("decided by", &decided_by(d));
    if let Some(rule) = &d.risk_rule {
        row("risk rule", rule);
    }
    let none = "null".to_owned();
    row("request_hash", d.request_hash.as_deref().unwrap_or(&none));
    row("policy_hash", d.policy_hash.as_deref().unwrap_or(&none));
    row(
        "policy_version",
        d.policy_version.as_deref().unwrap_or(&none),
    );
    if d.profile_hash.is_some() {
        row("profile_id", d.profile_id.as_deref().unwrap_or(&none));
        row("profile_hash", d.profile_hash.as_deref().unwrap_or(&none));
    }
    row("runtime_version", &d.runtime_version);
    row("provenance_id", &d.provenance_id);
}

fn print_case(r: &CaseResult<'_>) {
    let d = &r.decision;
    let got = format!("{}, {}, {}", d.decision(), d.reason_code, d.risk_level);
    if r.passed() {
        println!(
            "{}  {}  {}",
            paint(output::GOOD, "PASS"),
            r.case.name,
            paint(output::DIM, format!("({got})"))
        );
    } else {
        println!(
            "{}  {}  {}",
            paint(output::ERROR, "FAIL"),
            r.case.name,
            paint(output::DIM, format!("(line {})", r.case.line))
        );
        for m in &r.mismatches {
            println!(
                "      {}: expected {}, got {}",
                m.field,
                paint(output::BOLD, &m.expected),
                paint(output::ERROR, &m.actual)
            );
        }
        println!(
            "      {}",
            paint(
                output::DIM,
                format!("reason: {}; decided by {}", d.reason, decided_by(d))
            )
        );
    }
}

fn case_json(r: &CaseResult<'_>) -> serde_json::Value {
    json!({
        "name": r.case.name,
        "line": r.case.line,
        "passed": r.passed(),
        "mismatches": r.mismatches,
        "result": decision_json(&r.decision),
    })
}
