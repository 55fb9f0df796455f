//! `faramesh policy shadow-report`: what the server's shadow policy would have decided
//! otherwise.

use crate::cli::Global;
use crate::{output, table, Status};
use anstream::{eprintln, println};

pub fn run(policy_hash: Option<&str>, latest: u32, global: &Global) -> anyhow::Result<Status> {
    crate::server_commands::with_client(global, |client| async move {
        let report = client.shadow_report(policy_hash, latest).await?;
        Ok(show(&report, global))
    })
}

/// Prints the report; failure when the shadow policy disagreed, error when there is none.
fn show(report: &faramesh_client::ShadowReport, global: &Global) -> Status {
    if global.json {
        println!("{}", output::pretty(&report));
    }
    let Some(shadow) = &report.shadow_policy else {
        if !global.json {
            eprintln!("The server runs without a shadow policy: start it with `faramesh serve --shadow-policy FILE` (or FARAMESH_SHADOW_POLICY) to try a candidate policy on real traffic.");
        }
        return Status::Error;
    };
    let disagreements: u64 = report.pairs.iter().map(|p| p.count).sum();
    if global.json {
        return if disagreements == 0 {
            Status::Success
        } else {
            Status::Failure
        };
    }
    let name = shadow.file.as_deref().unwrap_or("the shadow policy");
    let hash = shadow.policy_hash.get(..12).unwrap_or(&shadow.policy_hash);
    println!(
        "Shadow policy {name} ({hash}): {} submission(s) decided since it was loaded, {} decided otherwise.",
        report.decided_since_loaded, report.disagreed_since_loaded
    );
    if disagreements == 0 {
        println!("No recorded disagreement: it would have decided every recorded action as the active policy did.");
        return Status::Success;
    }
    println!("{disagreements} recorded disagreement(s) in all:");
    let mut pairs = table::new(&["ACTIVE", "SHADOW", "ACTIONS"]);
    for p in &report.pairs {
        pairs.add_row([
            p.active.as_str().to_owned(),
            p.shadow.as_str().to_owned(),
            p.count.to_string(),
        ]);
    }
    println!("{}", table::render(&pairs));
    if !report.latest.is_empty() {
        println!("Latest:");
        let mut rows = table::new(&[
            "CREATED (UTC)",
            "ACTION",
            "AGENT",
            "TOOL",
            "OPERATION",
            "ACTIVE",
            "SHADOW",
            "SHADOW REASON",
        ]);
        for d in &report.latest {
            rows.add_row([
                d.created_at
                    .chars()
                    .take(19)
                    .collect::<String>()
                    .replace('T', " "),
                d.action_id.chars().take(8).collect(),
                table::cut(&d.agent_id, 20),
                table::cut(&d.tool, 12),
                table::cut(&d.operation, 12),
                d.active_outcome.as_str().to_owned(),
                d.shadow_outcome.as_str().to_owned(),
                table::cut(
                    &format!("{}: {}", d.shadow_reason_code, d.shadow_reason),
                    60,
                ),
            ]);
        }
        println!("{}", table::render(&rows));
    }
    Status::Failure
}
