//! `--demo`: a few demonstration actions seeded into an empty database.

use crate::routes::submit_action;
use crate::state::AppState;
use crate::validate::Submission;
use faramesh_core::json::ReceivedObject;
use faramesh_storage::ActionFilter;
use serde_json::{json, Map, Value};

/// Seeds a few demonstration actions, marked `demo`, into an empty database.
pub async fn seed_demo(state: &AppState) -> Result<usize, crate::error::ApiError> {
    let existing = state
        .store
        .list_actions(&ActionFilter {
            limit: 1,
            ..Default::default()
        })
        .await?;
    if !existing.is_empty() {
        return Ok(0);
    }
    let samples: [(&str, &str, Value); 4] = [
        (
            "http",
            "get",
            json!({"url": "https://api.example.com/status"}),
        ),
        ("shell", "run", json!({"cmd": "ls -la /var/log"})),
        (
            "stripe",
            "refund",
            json!({"amount": 2500, "currency": "usd", "charge": "ch_demo"}),
        ),
        ("shell", "run", json!({"cmd": "rm -rf /tmp/build-cache"})),
    ];
    let mut context = Map::new();
    context.insert("demo".into(), Value::Bool(true));
    let composed = |map: Map<String, Value>| {
        ReceivedObject::from_map(map)
            .map_err(|e| crate::error::ApiError::Validation(format!("demo action: {e}")))
    };
    for (tool, operation, params) in &samples {
        let Value::Object(params) = params.clone() else {
            continue;
        };
        let submission = Submission {
            agent_id: "demo-agent".into(),
            tool: (*tool).into(),
            operation: (*operation).into(),
            params: composed(params)?,
            context: composed(context.clone())?,
        };
        let how = crate::routes::Submit {
            demo: true,
            ..Default::default()
        };
        submit_action(state, submission, how).await?;
    }
    Ok(samples.len())
}
