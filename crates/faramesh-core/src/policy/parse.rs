//! From YAML text to a [`Policy`], collecting every problem on the way.

use super::approval::ApprovalRule;
use super::condition::parse_conditions;
use super::{Effect, Policy, RiskRule, Rule, RuleIndex};
use crate::codes::Code;
use crate::decision::RiskLevel;
use crate::diagnostic::{did_you_mean, Diagnostic, Item, Report, Severity};
use crate::hash::canonical_sha256;
use crate::yaml::{self, Node};
use serde_json::{json, Value};
use std::sync::Arc;

const TOP_KEYS: &[&str] = &["rules", "risk", "limits", "name", "description", "version"];
const RULE_KEYS: &[&str] = &[
    "match",
    "allow",
    "deny",
    "require_approval",
    "description",
    "risk",
    "name",
];
const RISK_KEYS: &[&str] = &["rules"];
const RISK_RULE_KEYS: &[&str] = &["name", "when", "risk_level"];
const EFFECTS: [(&str, Effect); 3] = [
    ("allow", Effect::Allow),
    ("deny", Effect::Deny),
    ("require_approval", Effect::RequireApproval),
];

pub(super) fn parse(source: &str, text: &str) -> Result<Policy, Report> {
    let report = |diagnostics| Report {
        file: source.to_owned(),
        diagnostics,
    };
    let doc = Report::load_yaml(source, text)?;
    let mut diags = Vec::new();

    let Some(entries) = doc.as_map() else {
        let d = Diagnostic::error(
            Code::NotAMapping,
            doc.head_span(),
            format!(
                "a policy must be a mapping with a `rules:` list, found {}",
                doc.describe()
            ),
        )
        .hint(
            "start the file with `rules:` followed by a list of rules (see `faramesh policy new`)",
        );
        return Err(report(vec![d]));
    };
    unknown_keys(entries, TOP_KEYS, "at the top level", None, &mut diags);

    let rules_node = doc.get("rules");
    let mut rules = Vec::new();
    match rules_node {
        None => diags.push(
            Diagnostic::error(
                Code::MissingRules,
                doc.head_span(),
                "the policy has no `rules:` list",
            )
            .hint(
                "add `rules:` with a list of rules; an empty list (`rules: []`) denies everything",
            ),
        ),
        Some(node) => match node.as_seq() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(rule) = parse_rule(item, i + 1, &mut diags) {
                        rules.push(rule);
                    }
                }
            }
            None if matches!(node.kind, yaml::Kind::Null) => {}
            None => diags.push(
                Diagnostic::error(
                    Code::RulesNotList,
                    node.head_span(),
                    format!("`rules` must be a list, found {}", node.describe()),
                )
                .hint("write each rule as a list item starting with `- match:`"),
            ),
        },
    }

    let mut risk_rules = Vec::new();
    let mut risk_rules_node: Option<&Node> = None;
    if let Some(risk) = doc.get("risk") {
        match risk.as_map() {
            Some(risk_entries) => {
                unknown_keys(risk_entries, RISK_KEYS, "in `risk`", None, &mut diags);
                match risk.get("rules") {
                    Some(list) => match list.as_seq() {
                        Some(items) => {
                            risk_rules_node = Some(list);
                            for (i, item) in items.iter().enumerate() {
                                if let Some(rule) = parse_risk_rule(item, i + 1, &mut diags) {
                                    risk_rules.push(rule);
                                }
                            }
                        }
                        None => diags.push(
                            Diagnostic::error(
                                Code::RiskRulesNotList,
                                list.span,
                                format!("`risk.rules` must be a list, found {}", list.describe()),
                            )
                            .hint("write each risk rule as a list item starting with `- name:`"),
                        ),
                    },
                    None => diags.push(
                        Diagnostic::error(
                            Code::MissingRiskRules,
                            risk.head_span(),
                            "`risk` has no `rules:` list",
                        )
                        .hint(
                            "write `risk:` then `rules:` with a list of {name, when, risk_level}",
                        ),
                    ),
                }
            }
            None if matches!(risk.kind, yaml::Kind::Null) => {}
            None => diags.push(Diagnostic::error(
                Code::RiskNotMapping,
                risk.head_span(),
                format!(
                    "`risk` must be a mapping with a `rules:` list, found {}",
                    risk.describe()
                ),
            )),
        }
    }

    let mut limits: Vec<super::limits::Limit> = Vec::new();
    let limits_node = doc.get("limits");
    if let Some(node) = limits_node {
        match node.as_seq() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(limit) = super::limits::parse_limit(item, i + 1, &mut diags) {
                        if limits.iter().any(|l| l.name == limit.name) {
                            diags.push(
                                Diagnostic::error(
                                    Code::BadLimit,
                                    item.head_span(),
                                    format!("two limits are named {:?}", &*limit.name),
                                )
                                .hint(
                                    "give each limit its own name: usage is counted by name"
                                        .to_owned(),
                                )
                                .in_item(Some(Item::Limit(i + 1))),
                            );
                        }
                        limits.push(limit);
                    }
                }
            }
            None if matches!(node.kind, yaml::Kind::Null) => {}
            None => diags.push(
                Diagnostic::error(
                    Code::BadLimit,
                    node.head_span(),
                    format!("`limits` must be a list, found {}", node.describe()),
                )
                .hint("write each limit as a list item starting with `- name:`"),
            ),
        }
    }

    if diags.iter().any(|d| d.severity == Severity::Error) {
        return Err(report(diags));
    }

    // The hashed form is the policy as parsed, so formatting and comments do not change it.
    let as_json = |node: Option<&Node>| -> Result<Vec<Value>, Diagnostic> {
        match node.map(Node::to_json).transpose() {
            Ok(Some(Value::Array(items))) => Ok(items),
            Ok(_) => Ok(Vec::new()),
            Err(e) => Err(Diagnostic::error(Code::BadValue, e.span, e.message)),
        }
    };
    let rules_json = as_json(rules_node).map_err(|d| report(vec![d]))?;
    let risk_rules_json = as_json(risk_rules_node).map_err(|d| report(vec![d]))?;
    let limits_json = as_json(limits_node).map_err(|d| report(vec![d]))?;
    let mut hashed = json!({"rules": rules_json, "risk_rules": risk_rules_json});
    // Limits are part of the hash when present; a policy without them hashes as before.
    if let (Some(node), Some(map)) = (limits_node, hashed.as_object_mut()) {
        map.insert(
            "limits".into(),
            node.to_json()
                .map_err(|e| report(vec![Diagnostic::error(Code::BadValue, e.span, e.message)]))?,
        );
    }
    let hash = canonical_sha256(&hashed).map_err(|e| {
        report(vec![Diagnostic::error(
            Code::BadValue,
            doc.head_span(),
            format!("the policy holds a value with no JSON form: {e}"),
        )])
    })?;

    let mut index = RuleIndex::default();
    for (i, rule) in rules.iter().enumerate() {
        index.insert(
            rule.conditions.tool.as_deref(),
            rule.conditions.op.as_deref(),
            i as u32,
        );
    }
    let mut risk_index = RuleIndex::default();
    for (i, rule) in risk_rules.iter().enumerate() {
        risk_index.insert(
            rule.conditions.tool.as_deref(),
            rule.conditions.op.as_deref(),
            i as u32,
        );
    }
    let warnings = unreachable_rules(&rules, rules_node);

    Ok(Policy {
        source: source.to_owned(),
        rules,
        risk_rules,
        rules_json,
        risk_rules_json,
        limits,
        limits_json,
        hash: hash.into(),
        index,
        risk_index,
        warnings,
    })
}

fn parse_rule(node: &Node, number: usize, diags: &mut Vec<Diagnostic>) -> Option<Rule> {
    let item = Item::Rule(number);
    let Some(entries) = node.as_map() else {
        diags.push(
            Diagnostic::error(Code::RuleNotMapping, node.head_span(), format!("a rule must be a mapping, found {}", node.describe()))
                .hint("write a rule as `- match: {...}` followed by `allow: true`, `deny: true` or `require_approval: true`")
                .in_item(Some(item)),
        );
        return None;
    };
    let errors_before = error_count(diags);
    unknown_keys(entries, RULE_KEYS, "in a rule", Some(item), diags);

    let conditions = match node.get("match") {
        Some(m) => parse_conditions(m, "match", item, diags),
        None => {
            diags.push(
                Diagnostic::error(
                    Code::MissingMatch,
                    node.head_span(),
                    "the rule has no `match:`",
                )
                .hint(
                    "add `match:` with the conditions, e.g. `match: {tool: \"shell\", op: \"*\"}`",
                )
                .in_item(Some(item)),
            );
            None
        }
    };

    let effect = the_effect(node, item, diags);

    let description = text_field(node, "description", item, diags);
    let name = text_field(node, "name", item, diags);
    let risk = node
        .get("risk")
        .and_then(|v| risk_level(v, "risk", item, diags));

    if error_count(diags) > errors_before {
        return None;
    }
    let (conditions, (effect, approval)) = (conditions?, effect?);
    let reason: Arc<str> = match &description {
        Some(d) => d.as_str().into(),
        None => match effect {
            Effect::Allow => "Allowed by policy rule",
            Effect::Deny => "Denied by policy rule",
            Effect::RequireApproval => "Requires approval by policy rule",
        }
        .into(),
    };
    let upgraded_reason = format!("{reason} (high risk requires approval)").into();
    Some(Rule {
        number,
        line: node.head_span().line,
        name: name.map(Into::into),
        conditions,
        effect,
        description,
        risk,
        approval,
        reason,
        upgraded_reason,
    })
}

/// The one effect of a rule: `allow`, `deny` or `require_approval` set to `true`, or
/// `require_approval` given as a mapping of approval rules.
fn the_effect(
    node: &Node,
    item: Item,
    diags: &mut Vec<Diagnostic>,
) -> Option<(Effect, Option<Arc<ApprovalRule>>)> {
    let mut effects = Vec::new();
    let mut approval = None;
    for (key, effect) in EFFECTS {
        let Some(value) = node.get(key) else { continue };
        match value.kind {
            yaml::Kind::Bool(true) => effects.push(effect),
            yaml::Kind::Bool(false) => {}
            yaml::Kind::Map(_) if effect == Effect::RequireApproval => {
                effects.push(effect);
                approval = super::approval::parse(value, item, diags).map(Arc::new);
            }
            _ => diags.push(
                Diagnostic::error(
                    Code::EffectNotBoolean,
                    value.span,
                    if effect == Effect::RequireApproval {
                        format!(
                            "`{key}` must be true, false or a mapping of approval rules, found {}",
                            value.describe()
                        )
                    } else {
                        format!("`{key}` must be true or false, found {}", value.describe())
                    },
                )
                .hint(format!("write `{key}: true`"))
                .in_item(Some(item)),
            ),
        }
    }
    match effects.as_slice() {
        [one] => Some((*one, approval)),
        [] => {
            diags.push(
                Diagnostic::error(
                    Code::MissingEffect,
                    node.head_span(),
                    "the rule has no effect",
                )
                .hint("add exactly one of `allow: true`, `deny: true` or `require_approval: true`")
                .in_item(Some(item)),
            );
            None
        }
        several => {
            let names: Vec<&str> = several.iter().map(|e| e.as_str()).collect();
            diags.push(
                Diagnostic::error(
                    Code::SeveralEffects,
                    node.head_span(),
                    format!("the rule has several effects: {}", names.join(", ")),
                )
                .hint("keep exactly one of allow, deny and require_approval")
                .in_item(Some(item)),
            );
            None
        }
    }
}

fn parse_risk_rule(node: &Node, number: usize, diags: &mut Vec<Diagnostic>) -> Option<RiskRule> {
    let item = Item::RiskRule(number);
    let Some(entries) = node.as_map() else {
        diags.push(
            Diagnostic::error(
                Code::RuleNotMapping,
                node.head_span(),
                format!("a risk rule must be a mapping, found {}", node.describe()),
            )
            .hint("write a risk rule as `- name: ...` with `when:` and `risk_level:`")
            .in_item(Some(item)),
        );
        return None;
    };
    let errors_before = error_count(diags);
    unknown_keys(entries, RISK_RULE_KEYS, "in a risk rule", Some(item), diags);
    let mut missing = |key: &str, hint: &str| {
        diags.push(
            Diagnostic::error(
                Code::MissingKey,
                node.head_span(),
                format!("the risk rule has no `{key}`"),
            )
            .hint(hint.to_owned())
            .in_item(Some(item)),
        );
    };
    let has_name = node.get("name").is_some();
    let has_when = node.get("when").is_some();
    let has_level = node.get("risk_level").is_some();
    if !has_name {
        missing(
            "name",
            "add `name:` so reports can say which risk rule applied",
        );
    }
    if !has_when {
        missing(
            "when",
            "add `when:` with conditions, e.g. `when: {tool: \"shell\", pattern: \"rm -rf\"}`",
        );
    }
    if !has_level {
        missing("risk_level", "add `risk_level:` with low, medium or high");
    }
    let name = text_field(node, "name", item, diags);
    // `when:` holds conditions, or (as text) a CEL expression alone.
    let conditions = node.get("when").and_then(|w| match w.as_str() {
        Some(_) => {
            let key = Node {
                span: w.span,
                kind: crate::yaml::Kind::String("when".to_owned()),
            };
            let wrapped = Node {
                span: w.span,
                kind: crate::yaml::Kind::Map(vec![(key, w.clone())]),
            };
            parse_conditions(&wrapped, "when", item, diags)
        }
        None => parse_conditions(w, "when", item, diags),
    });
    let level = node
        .get("risk_level")
        .and_then(|v| risk_level(v, "risk_level", item, diags));
    if error_count(diags) > errors_before {
        return None;
    }
    Some(RiskRule {
        number,
        line: node.head_span().line,
        name: name?.into(),
        conditions: conditions?,
        level: level?,
    })
}

fn risk_level(
    node: &Node,
    key: &str,
    item: Item,
    diags: &mut Vec<Diagnostic>,
) -> Option<RiskLevel> {
    let text = node.as_str().unwrap_or("");
    match RiskLevel::parse(text) {
        Some(level) => Some(level),
        None => {
            let shown = match node.as_str() {
                Some(s) => format!("{s:?}"),
                None => node.describe(),
            };
            let hint = match did_you_mean(text, &["low", "medium", "high"]) {
                Some(s) if !text.is_empty() => format!("did you mean `{s}`?"),
                _ => "use low, medium or high".to_owned(),
            };
            diags.push(
                Diagnostic::error(
                    Code::BadRisk,
                    node.head_span(),
                    format!("`{key}` must be low, medium or high, found {shown}"),
                )
                .hint(hint)
                .in_item(Some(item)),
            );
            None
        }
    }
}

fn text_field(node: &Node, key: &str, item: Item, diags: &mut Vec<Diagnostic>) -> Option<String> {
    let value = node.get(key)?;
    match value.as_str() {
        Some(s) => Some(s.to_owned()),
        None => {
            diags.push(
                Diagnostic::error(
                    Code::NotText,
                    value.span,
                    format!("`{key}` must be text, found {}", value.describe()),
                )
                .hint(format!("quote it: {key}: \"...\""))
                .in_item(Some(item)),
            );
            None
        }
    }
}

pub(crate) fn unknown_keys(
    entries: &[(Node, Node)],
    known: &[&str],
    place: &str,
    item: Option<Item>,
    diags: &mut Vec<Diagnostic>,
) {
    for (key, _) in entries {
        let text = key.key_text().unwrap_or_default();
        if known.contains(&text.as_str()) {
            continue;
        }
        let hint = match did_you_mean(&text, known) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("known keys here: {}", known.join(", ")),
        };
        diags.push(
            Diagnostic::error(
                Code::UnknownKey,
                key.span,
                format!("unknown key `{text}` {place}"),
            )
            .hint(hint)
            .in_item(item),
        );
    }
}

fn error_count(diags: &[Diagnostic]) -> usize {
    diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count()
}

/// Rules that can never decide because an earlier rule without extra conditions covers the
/// same tool and operation.
fn unreachable_rules(rules: &[Rule], rules_node: Option<&Node>) -> Vec<Diagnostic> {
    let items = rules_node.and_then(Node::as_seq).unwrap_or(&[]);
    let mut warnings = Vec::new();
    for (j, later) in rules.iter().enumerate() {
        let covers = |earlier: &Rule| {
            earlier.conditions.is_unconditional()
                && earlier
                    .conditions
                    .tool
                    .as_ref()
                    .is_none_or(|t| later.conditions.tool.as_ref() == Some(t))
                && earlier
                    .conditions
                    .op
                    .as_ref()
                    .is_none_or(|o| later.conditions.op.as_ref() == Some(o))
        };
        if let Some(earlier) = rules.iter().take(j).find(|r| covers(r)) {
            let span = items.get(j).map(Node::head_span).unwrap_or_default();
            warnings.push(
                Diagnostic::warning(
                    Code::UnreachableRule,
                    span,
                    format!("this rule can never match: rule {} (line {}) already decides every action it covers", earlier.number, earlier.line),
                )
                .hint("move the more specific rule above the general one, or delete it")
                .in_item(Some(Item::Rule(later.number))),
            );
        }
    }
    warnings
}
