//! Governing one `tools/call`: submitted as an action (or attached to the same call's earlier
//! action), then forwarded, refused, or held for a human with progress notifications, exactly
//! as docs/mcp.md describes. Fails closed: when Faramesh cannot be asked, the call does not
//! go through.

use crate::gate::{Call, Decided, Gate, GateError};
use crate::jsonrpc::{self, Message, RequestKey};
use crate::relay::{CallKey, Options, Report};
use crate::results::refusal;
use faramesh_core::ActionStatus;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Everything a governing task needs.
pub(crate) struct Governed<G: Gate> {
    pub gate: Arc<G>,
    pub options: Arc<Options>,
    pub to_client: mpsc::Sender<Message>,
    pub reports: mpsc::Sender<Report>,
    pub key: RequestKey,
    pub id: Value,
    /// The request as the client sent it, forwarded unchanged if it may run.
    pub message: Message,
    pub call_key: CallKey,
    pub waiting: Waiting,
}

pub(crate) struct Waiting {
    /// The client's progress token, if it gave one.
    pub progress: Option<Value>,
    /// Cancelled when the client cancels the call or the session ends; `why` says which.
    pub cancel: CancellationToken,
    pub why: Arc<OnceLock<&'static str>>,
    /// The client speaks a protocol version whose results carry `resultType`.
    pub typed_results: bool,
}

/// How often a waiting call reports progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Decides `call` and carries the decision out. `attach`: the action of the same call, still
/// pending or approved when an earlier wait ended.
pub(crate) async fn govern<G: Gate>(g: Governed<G>, call: Call, attach: Option<String>) {
    let cancel = g.waiting.cancel.clone();
    // The action waiting for a human, if any: taken back when the wait is cancelled.
    let pending = Mutex::new(None);
    tokio::select! {
        () = carry_out(&g, call, attach, &pending) => {}
        // Nothing to answer: the client cancelled the request, or the session is over.
        () = cancel.cancelled() => {
            let action_id = pending.lock().ok().and_then(|mut p| p.take());
            if let Some(action_id) = action_id {
                let why = g.waiting.why.get().copied().unwrap_or("the MCP client cancelled the call");
                if let Err(e) = g.gate.withdraw(&action_id, why).await {
                    tracing::warn!(action = %action_id, error = %e, "a cancelled call's action could not be withdrawn");
                }
            }
        }
    }
}

async fn carry_out<G: Gate>(
    g: &Governed<G>,
    call: Call,
    attach: Option<String>,
    pending: &Mutex<Option<String>>,
) {
    let attached = attach.is_some();
    let decided = match attach {
        Some(action_id) => match g.gate.current(&action_id).await {
            // Attach only to what can still run; anything else is decided afresh.
            Ok(d)
                if matches!(
                    d.status,
                    ActionStatus::PendingApproval | ActionStatus::Approved
                ) =>
            {
                Ok(d)
            }
            Ok(_) => g.gate.submit(call).await,
            Err(e) => Err(e),
        },
        None => g.gate.submit(call).await,
    };
    let decided = match decided {
        Ok(d) => d,
        Err(e) => return answer(g, unavailable(&g.options, &e)).await,
    };
    match decided.status {
        // Started when it was stored.
        ActionStatus::Executing if !attached => forward(g, decided.action_id, None).await,
        ActionStatus::Allowed | ActionStatus::Approved => start_and_forward(g, decided, None).await,
        ActionStatus::PendingApproval => {
            if let Ok(mut p) = pending.lock() {
                *p = Some(decided.action_id.clone());
            }
            wait_for_human(g, decided).await;
            if let Ok(mut p) = pending.lock() {
                *p = None;
            }
        }
        ActionStatus::Denied => {
            let text = denied(&decided);
            answer(g, text).await;
        }
        other => {
            let text = format!(
                "Faramesh did not let this call run: its action is {other} (action {})",
                decided.action_id
            );
            answer(g, text).await;
        }
    }
}

/// Holds the call until a human decides, the wait ends, or the client cancels (which ends
/// this task from outside).
async fn wait_for_human<G: Gate>(g: &Governed<G>, decided: Decided) {
    let wait = g.options.approval_wait;
    let started = tokio::time::Instant::now();
    let deadline = started + wait;
    let settled = g.gate.settled(&decided.action_id, &g.options.agent_id);
    tokio::pin!(settled);
    let mut ticks = tokio::time::interval(PROGRESS_EVERY);
    let mut last_progress = None;
    loop {
        tokio::select! {
            result = &mut settled => {
                let decided = match result {
                    Ok(d) => d,
                    Err(e) => return answer(g, unavailable(&g.options, &e)).await,
                };
                return match decided.status {
                    ActionStatus::Approved => start_and_forward(g, decided, last_progress).await,
                    ActionStatus::Denied => answer(g, denied(&decided)).await,
                    other => {
                        let text = format!(
                            "Faramesh did not let this call run: nobody approved it and its action is {other} (action {})",
                            decided.action_id
                        );
                        answer(g, text).await
                    }
                };
            }
            () = tokio::time::sleep_until(deadline) => {
                let text = format!(
                    "This call is waiting for a human's approval in Faramesh (action {}): {}. Nobody decided within {} s. Make the same call again once it is approved; it will run then, once.",
                    decided.action_id, decided.reason, wait.as_secs()
                );
                let _ = g
                    .reports
                    .send(Report::Parked {
                        key: g.key.clone(),
                        call: g.call_key.clone(),
                        action_id: decided.action_id.clone(),
                    })
                    .await;
                let _ = g.to_client.send(jsonrpc::response(&g.id, refusal(text, g.waiting.typed_results))).await;
                return;
            }
            _ = ticks.tick() => {
                if let Some(token) = &g.waiting.progress {
                    let elapsed = started.elapsed().as_secs_f64();
                    last_progress = Some(elapsed);
                    let params = json!({
                        "progressToken": token,
                        "progress": elapsed,
                        "total": wait.as_secs_f64(),
                        "message": format!("Waiting for approval in Faramesh (action {})", decided.action_id),
                    });
                    let _ = g.to_client.send(jsonrpc::notification("notifications/progress", params)).await;
                }
            }
        }
    }
}

/// Starts the action (only one start wins, so it runs at most once) and hands the call to the
/// relay to forward.
async fn start_and_forward<G: Gate>(g: &Governed<G>, decided: Decided, progress: Option<f64>) {
    if let Err(e) = g.gate.start(&decided.action_id).await {
        let text = match e {
            GateError::Refused(why) => format!(
                "Faramesh did not let this call run: {why} (action {})",
                decided.action_id
            ),
            GateError::Unavailable(_) => unavailable(&g.options, &e),
        };
        return answer(g, text).await;
    }
    forward(g, decided.action_id, progress).await;
}

/// Hands a started call to the relay to forward.
async fn forward<G: Gate>(g: &Governed<G>, action_id: String, progress: Option<f64>) {
    let progress = g
        .waiting
        .progress
        .clone()
        .and_then(|token| progress.map(|last| (token, last)));
    let _ = g
        .reports
        .send(Report::Forward {
            key: g.key.clone(),
            message: g.message.clone(),
            action_id,
            progress,
        })
        .await;
}

/// Answers the call with a tool error saying why it did not run.
async fn answer<G: Gate>(g: &Governed<G>, text: String) {
    let _ = g
        .reports
        .send(Report::Answered { key: g.key.clone() })
        .await;
    let result = refusal(text, g.waiting.typed_results);
    let _ = g.to_client.send(jsonrpc::response(&g.id, result)).await;
}

fn denied(decided: &Decided) -> String {
    format!(
        "Faramesh denied this call: {} (action {})",
        decided.reason, decided.action_id
    )
}

fn unavailable(options: &Options, e: &GateError) -> String {
    format!(
        "Faramesh could not decide this call, so it was not made: {e}. The MCP server {} was not called.",
        options.server
    )
}
