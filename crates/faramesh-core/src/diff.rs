//! What changed between two policies: rules, risk rules and limits added, removed, moved and
//! changed.

use crate::json::canonical_string;
use crate::policy::Policy;
use serde::Serialize;
use serde_json::Value;

/// One difference between two policies. Rule numbers are 1-based.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    Added {
        section: Section,
        new_number: usize,
        rule: Value,
    },
    Removed {
        section: Section,
        old_number: usize,
        rule: Value,
    },
    /// Same rule, new position (first match order changed).
    Moved {
        section: Section,
        old_number: usize,
        new_number: usize,
        rule: Value,
    },
    /// Same rule (same name, or same match), other fields differ.
    Changed {
        section: Section,
        old_number: usize,
        new_number: usize,
        fields: Vec<FieldChange>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    Rules,
    RiskRules,
    Limits,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// Every rule and risk-rule difference from `old` to `new`.
pub fn diff(old: &Policy, new: &Policy) -> Vec<Change> {
    let mut changes = diff_section(
        Section::Rules,
        old.rules_json(),
        new.rules_json(),
        &["name", "match"],
    );
    changes.extend(diff_section(
        Section::RiskRules,
        old.risk_rules_json(),
        new.risk_rules_json(),
        &["name", "when"],
    ));
    changes.extend(diff_section(
        Section::Limits,
        old.limits_json(),
        new.limits_json(),
        &["name"],
    ));
    changes
}

fn diff_section(
    section: Section,
    old: &[Value],
    new: &[Value],
    identity_keys: &[&str],
) -> Vec<Change> {
    let key = |v: &Value| canonical_string(v).unwrap_or_default();
    let old_keys: Vec<String> = old.iter().map(key).collect();
    let new_keys: Vec<String> = new.iter().map(key).collect();
    let (mut old_used, mut new_used) = lcs(&old_keys, &new_keys);
    let mut changes = Vec::new();

    // Identical rules outside the common subsequence moved.
    for j in 0..new.len() {
        if new_used[j] {
            continue;
        }
        if let Some(i) = (0..old.len()).find(|&i| !old_used[i] && old_keys[i] == new_keys[j]) {
            old_used[i] = true;
            new_used[j] = true;
            changes.push(Change::Moved {
                section,
                old_number: i + 1,
                new_number: j + 1,
                rule: new[j].clone(),
            });
        }
    }
    // Rules with the same identity (name, else match/when) changed.
    for id_key in identity_keys {
        for j in 0..new.len() {
            if new_used[j] {
                continue;
            }
            let Some(id) = new[j].get(id_key) else {
                continue;
            };
            if let Some(i) =
                (0..old.len()).find(|&i| !old_used[i] && old[i].get(id_key) == Some(id))
            {
                old_used[i] = true;
                new_used[j] = true;
                changes.push(Change::Changed {
                    section,
                    old_number: i + 1,
                    new_number: j + 1,
                    fields: field_changes(&old[i], &new[j]),
                });
            }
        }
    }
    for (i, used) in old_used.iter().enumerate() {
        if !used {
            changes.push(Change::Removed {
                section,
                old_number: i + 1,
                rule: old[i].clone(),
            });
        }
    }
    for (j, used) in new_used.iter().enumerate() {
        if !used {
            changes.push(Change::Added {
                section,
                new_number: j + 1,
                rule: new[j].clone(),
            });
        }
    }
    changes
}

fn field_changes(old: &Value, new: &Value) -> Vec<FieldChange> {
    let empty = serde_json::Map::new();
    let (o, n) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<&String> = o
        .keys()
        .chain(n.keys().filter(|k| !o.contains_key(*k)))
        .collect();
    keys.sort();
    keys.into_iter()
        .filter(|k| {
            o.get(*k).map(|v| canonical_string(v).ok())
                != n.get(*k).map(|v| canonical_string(v).ok())
        })
        .map(|k| FieldChange {
            field: k.clone(),
            old: o.get(k).cloned(),
            new: n.get(k).cloned(),
        })
        .collect()
}

/// Marks the elements of a longest common subsequence of `a` and `b`.
fn lcs(a: &[String], b: &[String]) -> (Vec<bool>, Vec<bool>) {
    let (n, m) = (a.len(), b.len());
    let mut table = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[at(i, j)] = if a[i] == b[j] {
                table[at(i + 1, j + 1)] + 1
            } else {
                table[at(i + 1, j)].max(table[at(i, j + 1)])
            };
        }
    }
    let (mut used_a, mut used_b) = (vec![false; n], vec![false; m]);
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if a[i] == b[j] {
            used_a[i] = true;
            used_b[j] = true;
            i += 1;
            j += 1;
        } else if table[at(i + 1, j)] >= table[at(i, j + 1)] {
            i += 1;
        } else {
            j += 1;
        }
    }
    (used_a, used_b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> Policy {
        Policy::parse("p.yaml", text).expect("valid policy")
    }

    #[test]
    fn reports_added_removed_moved_and_changed_rules() {
        let old = policy(
            "rules:\n  - match: {tool: a}\n    allow: true\n  - match: {tool: b}\n    deny: true\n  - match: {tool: c}\n    allow: true\n  - match: {tool: d}\n    allow: true\n",
        );
        let new = policy(
            "rules:\n  - match: {tool: c}\n    allow: true\n  - match: {tool: a}\n    allow: true\n  - match: {tool: b}\n    require_approval: true\n  - match: {tool: e}\n    allow: true\n",
        );
        let changes = diff(&old, &new);
        let kinds: Vec<String> = changes
            .iter()
            .map(|c| match c {
                Change::Added { new_number, .. } => format!("added {new_number}"),
                Change::Removed { old_number, .. } => format!("removed {old_number}"),
                Change::Moved {
                    old_number,
                    new_number,
                    ..
                } => format!("moved {old_number}->{new_number}"),
                Change::Changed {
                    old_number,
                    new_number,
                    fields,
                    ..
                } => {
                    let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
                    format!("changed {old_number}->{new_number} {}", names.join(","))
                }
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "moved 1->2",
                "changed 2->3 deny,require_approval",
                "removed 4",
                "added 4"
            ]
        );
    }

    #[test]
    fn formatting_only_changes_nothing() {
        let old = policy("rules:\n  - match: {tool: a, op: b}\n    allow: true\n");
        let new =
            policy("# comment\nrules:\n  - match:\n      op: b\n      tool: a\n    allow: true\n");
        assert!(diff(&old, &new).is_empty());
    }
}
