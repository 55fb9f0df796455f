//! The action an agent submits, as the engine sees it.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use crate::policy::UrlParts;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::cell::OnceCell;

/// A tool call an agent wants to make.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = ActionSubmission))]
pub struct ActionRequest {
    /// Non-empty, at most 10,000 characters, no NUL.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 10000))]
    pub agent_id: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 10000))]
    pub tool: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 10000))]
    pub operation: String,
    /// Tool-specific; at most 100,000 bytes as JSON and 10 levels of objects. The server
    /// requires it (`{}` for none); the engine reads a missing one as `{}`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub params: Map<String, Value>,
    /// Free metadata; `{}` when absent.
    #[serde(default)]
    pub context: Map<String, Value>,
}

/// An action under evaluation: borrowed fields plus the probe text and the parsed
/// `params.url`, each built at most once and only if a condition needs it.
pub(crate) struct Subject<'a> {
    pub agent_id: &'a str,
    pub tool: &'a str,
    pub operation: &'a str,
    pub params: &'a Map<String, Value>,
    pub context: &'a Map<String, Value>,
    probe: OnceCell<String>,
    url: OnceCell<Option<UrlParts>>,
}

impl<'a> Subject<'a> {
    pub fn new(action: &'a ActionRequest) -> Self {
        Subject {
            agent_id: &action.agent_id,
            tool: &action.tool,
            operation: &action.operation,
            params: &action.params,
            context: &action.context,
            probe: OnceCell::new(),
            url: OnceCell::new(),
        }
    }

    pub fn probe(&self) -> &str {
        self.probe
            .get_or_init(|| crate::json::probe_text(self.params))
    }

    /// `params.url` parsed as a URL; `None` when it is missing, not text or not a URL. Only
    /// params are read: the URL the request goes to is the one in params.
    pub fn url(&self) -> Option<&UrlParts> {
        self.url
            .get_or_init(|| match self.params.get("url") {
                Some(Value::String(text)) => UrlParts::parse(text),
                _ => None,
            })
            .as_ref()
    }

    /// `key` in params, else in context; a null counts as absent.
    pub fn lookup(&self, key: &str) -> Option<&'a Value> {
        let present = |v: &&Value| !v.is_null();
        self.params
            .get(key)
            .filter(present)
            .or_else(|| self.context.get(key).filter(present))
    }

    /// `field` in params, then context, then as a dotted path into params (`query.kind`).
    pub fn field(&self, field: &str) -> Option<&'a Value> {
        if let Some(v) = self.lookup(field) {
            return Some(v);
        }
        if !field.contains('.') {
            return None;
        }
        let mut parts = field.split('.');
        let mut current = self.params.get(parts.next()?)?;
        for part in parts {
            current = match current {
                Value::Object(map) => map.get(part)?,
                Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(current)
    }
}
