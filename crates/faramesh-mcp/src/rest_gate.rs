//! The gate over the REST API, for the stdio wrapper: a Faramesh server anywhere, reached with
//! the typed client and the agent's token.

use crate::gate::{Call, Decided, Finished, Gate, GateError};
use faramesh_client::{Action, Client, ClientError, StreamFilter, Submission};
use faramesh_core::ActionStatus;
use std::collections::HashSet;
use std::time::Duration;

/// How long to wait before opening the live stream again after it was lost.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct RestGate {
    client: Client,
}

impl RestGate {
    pub fn new(client: Client) -> RestGate {
        RestGate { client }
    }
}

fn decided(action: Action) -> Decided {
    Decided {
        action_id: action.id,
        status: action.status,
        reason: action.reason.unwrap_or_default(),
    }
}

fn gate_error(e: ClientError) -> GateError {
    match e {
        ClientError::Conflict { detail, .. } => GateError::Refused(detail),
        other => GateError::Unavailable(other.to_string()),
    }
}

impl Gate for RestGate {
    async fn submit(&self, call: Call) -> Result<Decided, GateError> {
        let submission = Submission {
            agent_id: call.agent_id,
            tool: call.server,
            operation: call.tool,
            params: call.arguments,
            context: call.context,
        };
        self.client
            .submit_and_start(&submission)
            .await
            .map(decided)
            .map_err(gate_error)
    }

    async fn current(&self, action_id: &str) -> Result<Decided, GateError> {
        self.client
            .get(action_id)
            .await
            .map(decided)
            .map_err(gate_error)
    }

    async fn settled(&self, action_id: &str, agent_id: &str) -> Result<Decided, GateError> {
        let filter = StreamFilter {
            agent_id: Some(agent_id.to_owned()),
            ..StreamFilter::default()
        };
        loop {
            // Subscribed first, then read: a decision made in between is in the stream.
            let subscription = self.client.subscribe(&filter).await;
            match self.current(action_id).await {
                Ok(now) if now.status != ActionStatus::PendingApproval => return Ok(now),
                Ok(_) => {}
                // Faramesh is away: keep waiting; the caller's deadline ends the wait.
                Err(e) => tracing::debug!(error = %e, "waiting for approval: Faramesh unreachable"),
            }
            let mut decided = false;
            if let Ok(mut subscription) = subscription {
                while let Some(Ok(message)) = subscription.next().await {
                    let data = &message.data;
                    let this = data.get("id").and_then(|v| v.as_str()) == Some(action_id);
                    let pending = data.get("status").and_then(|v| v.as_str())
                        == Some(ActionStatus::PendingApproval.as_str());
                    if this && !pending {
                        decided = true;
                        break;
                    }
                }
            }
            if !decided {
                tokio::time::sleep(RESUBSCRIBE_AFTER).await;
            }
        }
    }

    async fn start(&self, action_id: &str) -> Result<(), GateError> {
        self.client
            .start(action_id)
            .await
            .map(|_| ())
            .map_err(gate_error)
    }

    async fn withdraw(&self, action_id: &str, reason: &str) -> Result<(), GateError> {
        self.client
            .withdraw(action_id, reason)
            .await
            .map(|_| ())
            .map_err(gate_error)
    }

    async fn finish(&self, action_id: &str, finished: Finished) -> Result<(), GateError> {
        self.client
            .report_result(
                action_id,
                finished.success,
                finished.error.as_deref(),
                Some(finished.output),
            )
            .await
            .map(|_| ())
            .map_err(gate_error)
    }

    async fn denied_tools(
        &self,
        agent_id: &str,
        server: &str,
        tools: Vec<String>,
    ) -> Result<HashSet<String>, GateError> {
        self.client
            .denied_operations(agent_id, server, tools)
            .await
            .map(|denied| denied.into_iter().collect())
            .map_err(gate_error)
    }
}
