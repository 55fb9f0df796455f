//! `faramesh notify`: the server's notification routes and their delivery.

use crate::cli::{Global, NotifyCommand};
use crate::{output, table, Status};
use anstream::{eprintln, println};
use faramesh_client::{Client, ClientError, NotificationFilter};
use std::time::{Duration, Instant};

pub fn run(command: &NotifyCommand, global: &Global) -> anyhow::Result<Status> {
    crate::server_commands::with_client(global, |client| async move {
        match command {
            NotifyCommand::Test { route, wait } => test(&client, route, *wait, global).await,
            NotifyCommand::List {
                action,
                route,
                state,
                limit,
            } => {
                let filter = NotificationFilter {
                    limit: Some(*limit),
                    action_id: action.clone(),
                    route: route.clone(),
                    state: state.clone(),
                };
                list(&client, &filter, global).await
            }
            NotifyCommand::Routes => routes(&client, global).await,
        }
    })
}

/// Queues a test message and waits up to `wait` seconds for its delivery.
async fn test(
    client: &Client,
    route: &str,
    wait: u64,
    global: &Global,
) -> Result<Status, ClientError> {
    let queued = client.test_notification(route).await?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(wait);
    let mut latest = queued.clone();
    // A receiver that is down keeps this waiting for the whole `wait`: say what is happening.
    let spinner = if global.json {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new_spinner()
    };
    spinner.enable_steady_tick(Duration::from_millis(120));
    // The delivery worker takes it within a second; poll until it is no longer pending.
    while latest.state == "pending" && Instant::now() < deadline {
        spinner.set_message(waiting_message(route, &latest, started.elapsed(), wait));
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(found) = client.notification(&queued.id).await? {
            latest = found;
        }
    }
    spinner.finish_and_clear();
    if global.json {
        println!("{}", output::pretty(&latest));
    }
    match latest.state.as_str() {
        "delivered" => {
            if !global.json {
                println!(
                    "{} delivered a test message through route {route} (notification {})",
                    output::paint(output::GOOD, "✓"),
                    latest.id
                );
            }
            Ok(Status::Success)
        }
        state => {
            if !global.json {
                let why = latest
                    .last_error
                    .as_deref()
                    .unwrap_or("no attempt finished yet");
                let next = if state == "pending" {
                    "; it stays queued and is retried (faramesh notify list shows it)"
                } else {
                    "; the worker gave up on it"
                };
                eprintln!(
                    "{} the test message through route {route} was not delivered within {wait} s: {why}{next}",
                    output::paint(output::ERROR, "✗"),
                );
            }
            Ok(Status::Failure)
        }
    }
}

/// The spinner's line while a test message waits: how long, and the last failed attempt.
fn waiting_message(
    route: &str,
    latest: &faramesh_client::Notification,
    waited: Duration,
    wait: u64,
) -> String {
    let attempts = match (latest.attempts, latest.last_error.as_deref()) {
        (0, _) => String::new(),
        (n, Some(error)) => format!("; attempt {n} failed: {error}"),
        (n, None) => format!("; attempt {n}"),
    };
    format!(
        "waiting for the delivery through route {route} ({} of {wait} s{attempts})",
        waited.as_secs()
    )
}

async fn list(
    client: &Client,
    filter: &NotificationFilter,
    global: &Global,
) -> Result<Status, ClientError> {
    let found = client.notifications(filter).await?;
    if global.json {
        println!("{}", output::pretty(&found));
        return Ok(Status::Success);
    }
    if found.is_empty() {
        println!("No notifications.");
        return Ok(Status::Success);
    }
    let mut rows = table::new(&[
        "CREATED (UTC)",
        "ROUTE",
        "KIND",
        "ACTION",
        "STATE",
        "ATTEMPTS",
        "DETAIL",
    ]);
    for n in found {
        let detail = match n.state.as_str() {
            "delivered" => format!("at {}", n.delivered_at.as_deref().unwrap_or("-")),
            "pending" => match (&n.last_error, &n.next_attempt_at) {
                (Some(error), Some(at)) => format!("retry at {at}: {error}"),
                _ => "queued".to_owned(),
            },
            _ => n.last_error.unwrap_or_default(),
        };
        rows.add_row([
            n.created_at
                .chars()
                .take(19)
                .collect::<String>()
                .replace('T', " "),
            n.route,
            n.kind,
            n.action_id
                .map(|id| id.chars().take(8).collect())
                .unwrap_or_else(|| "-".into()),
            n.state,
            n.attempts.to_string(),
            detail,
        ]);
    }
    println!("{}", table::render(&rows));
    Ok(Status::Success)
}

async fn routes(client: &Client, global: &Global) -> Result<Status, ClientError> {
    let routes = client.notification_routes().await?;
    if global.json {
        println!("{}", output::pretty(&routes));
        return Ok(Status::Success);
    }
    if routes.is_empty() {
        println!("No routes: start `faramesh serve` with a routes file (--notify FILE, or notify.yaml in its directory).");
        return Ok(Status::Success);
    }
    let mut rows = table::new(&["NAME", "KIND", "ESCALATION"]);
    for r in routes {
        rows.add_row([
            r.name,
            r.kind,
            if r.escalation { "yes" } else { "-" }.to_owned(),
        ]);
    }
    println!("{}", table::render(&rows));
    Ok(Status::Success)
}
