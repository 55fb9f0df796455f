//! Rules indexed by tool and operation, so that finding the first matching rule visits only
//! the rules that can match, in their original order.

use std::collections::HashMap;

/// Rule positions for one tool (or for the `"*"` tool).
#[derive(Debug, Clone, Default)]
struct ByOperation {
    exact: HashMap<String, Vec<u32>>,
    any: Vec<u32>,
}

impl ByOperation {
    fn insert(&mut self, op: Option<&str>, position: u32) {
        match op {
            Some(op) => self.exact.entry(op.to_owned()).or_default().push(position),
            None => self.any.push(position),
        }
    }
}

/// Positions of rules by (tool, operation); each list is ascending because rules are
/// inserted in file order.
#[derive(Debug, Clone, Default)]
pub struct RuleIndex {
    exact: HashMap<String, ByOperation>,
    any: ByOperation,
}

impl RuleIndex {
    /// Adds the rule at `position` (which must exceed every earlier position).
    pub fn insert(&mut self, tool: Option<&str>, op: Option<&str>, position: u32) {
        match tool {
            Some(tool) => self
                .exact
                .entry(tool.to_owned())
                .or_default()
                .insert(op, position),
            None => self.any.insert(op, position),
        }
    }

    /// Positions of the rules whose tool and operation admit (`tool`, `op`), ascending.
    pub fn candidates<'a>(&'a self, tool: &str, op: &str) -> Candidates<'a> {
        const EMPTY: &[u32] = &[];
        let for_tool = self.exact.get(tool);
        Candidates {
            lists: [
                for_tool
                    .and_then(|t| t.exact.get(op))
                    .map_or(EMPTY, Vec::as_slice),
                for_tool.map_or(EMPTY, |t| t.any.as_slice()),
                self.any.exact.get(op).map_or(EMPTY, Vec::as_slice),
                self.any.any.as_slice(),
            ],
        }
    }
}

/// A lazy merge of four ascending lists: yields positions in rule order without allocating.
#[derive(Debug, Clone)]
pub struct Candidates<'a> {
    lists: [&'a [u32]; 4],
}

impl Iterator for Candidates<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let mut best: Option<(usize, u32)> = None;
        for (i, list) in self.lists.iter().enumerate() {
            if let Some(&head) = list.first() {
                if best.is_none_or(|(_, b)| head < b) {
                    best = Some((i, head));
                }
            }
        }
        let (i, head) = best?;
        if let Some(list) = self.lists.get_mut(i) {
            *list = list.get(1..).unwrap_or_default();
        }
        Some(head as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::RuleIndex;

    #[test]
    fn yields_only_admissible_rules_in_file_order() {
        let mut index = RuleIndex::default();
        let rules = [
            (Some("http"), Some("get")),
            (Some("shell"), None),
            (None, Some("get")),
            (Some("http"), None),
            (None, None),
            (Some("http"), Some("post")),
        ];
        for (i, (tool, op)) in rules.iter().enumerate() {
            index.insert(*tool, *op, i as u32);
        }
        assert_eq!(
            index.candidates("http", "get").collect::<Vec<_>>(),
            vec![0, 2, 3, 4]
        );
        assert_eq!(
            index.candidates("http", "post").collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        assert_eq!(
            index.candidates("shell", "get").collect::<Vec<_>>(),
            vec![1, 2, 4]
        );
        assert_eq!(index.candidates("ftp", "put").collect::<Vec<_>>(), vec![4]);
    }
}
