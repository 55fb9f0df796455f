//! A `match:` mapping read on its own, for files other than the policy that pick actions with
//! the policy's own conditions (the routes file of notifications).

use super::condition::{parse_conditions, Conditions};
use crate::action::{ActionRequest, Subject};
use crate::diagnostic::{Diagnostic, Item};
use crate::yaml::Node;

/// The conditions of one `match:`; every one must hold.
#[derive(Debug, Clone, Default)]
pub struct ActionMatch(Conditions);

impl ActionMatch {
    /// Reads `node` as the match conditions of `section` (its name in messages). Every problem
    /// is reported, located.
    pub fn parse(node: &Node, section: &str) -> Result<ActionMatch, Vec<Diagnostic>> {
        let mut diags = Vec::new();
        // Parsing reports problems per policy rule; here there is no rule to name.
        let conditions = parse_conditions(node, section, Item::Rule(0), &mut diags);
        for d in &mut diags {
            d.item = None;
        }
        match conditions {
            Some(c) if diags.is_empty() => Ok(ActionMatch(c)),
            _ => Err(diags),
        }
    }

    /// Whether every condition holds for `action`.
    pub fn matches(&self, action: &ActionRequest) -> bool {
        self.0.matches(&Subject::new(action))
    }
}
