//! The execution profile: a coarse gate that runs before the policy (docs/policies.md).

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use crate::action::Subject;
use crate::codes::Code;
use crate::decision::{reason_code, Outcome};
use crate::diagnostic::{Diagnostic, Item, Report, Severity};
use crate::hash::canonical_sha256;
use crate::policy::compile_regex;
use crate::policy::unknown_keys;
use crate::yaml::{Kind, Node};
use regex::Regex;
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::sync::Arc;

const TOP_KEYS: &[&str] = &[
    "id",
    "version",
    "allowed_tools",
    "rules",
    "required_controls",
    "description",
];
const RULE_KEYS: &[&str] = &["name", "when", "pattern", "outcome", "reason_code"];
const WHEN_KEYS: &[&str] = &["tool", "op", "operation"];
const CONTROL_KEYS: &[&str] = &["approval_token"];

/// A compiled profile rule.
#[derive(Debug, Clone)]
pub struct ProfileRule {
    pub number: usize,
    pub name: Arc<str>,
    /// `None` for `"*"` or absent.
    pub tool: Option<String>,
    pub op: Option<String>,
    pub pattern: Option<Regex>,
    pub outcome: Outcome,
    pub reason_code: Arc<str>,
}

/// A checked execution profile.
#[derive(Debug, Clone)]
pub struct Profile {
    source: String,
    id: Arc<str>,
    version: Arc<str>,
    allowed_tools: HashSet<String>,
    rules: Vec<ProfileRule>,
    approval_token_required: bool,
    hashed_form: Value,
    hash: Arc<str>,
    warnings: Vec<Diagnostic>,
}

/// What the profile says about an action.
pub(crate) enum Verdict<'a> {
    /// The tool is not in `allowed_tools`.
    ToolNotAllowed,
    /// A profile rule matched.
    Rule(&'a ProfileRule),
    /// `required_controls.approval_token` is set and the action carries none.
    MissingApprovalToken,
    /// The profile lets the policy decide.
    Pass,
}

impl Profile {
    /// Parses and checks a profile file, reporting every problem at once.
    pub fn parse(source: &str, text: &str) -> Result<Profile, Report> {
        let report = |diagnostics| Report {
            file: source.to_owned(),
            diagnostics,
        };
        let doc = Report::load_yaml(source, text)?;
        let Some(entries) = doc.as_map() else {
            return Err(report(vec![Diagnostic::error(
                Code::NotAMapping,
                doc.head_span(),
                format!("a profile must be a mapping with `id`, `version` and `allowed_tools`, found {}", doc.describe()),
            )]));
        };
        let mut diags = Vec::new();
        unknown_keys(entries, TOP_KEYS, "at the top level", None, &mut diags);

        let id = required_text(
            &doc,
            "id",
            "name the profile, e.g. id: \"default\"",
            &mut diags,
        );
        let version = required_text(
            &doc,
            "version",
            "version the profile, e.g. version: \"1\"",
            &mut diags,
        );

        let mut allowed_tools = Vec::new();
        match doc.get("allowed_tools") {
            None => diags.push(
                Diagnostic::error(Code::MissingKey, doc.head_span(), "the profile has no `allowed_tools`")
                    .hint("list the tools this profile lets through, e.g. allowed_tools: [\"http\", \"shell\"]"),
            ),
            Some(node) => match node.as_seq() {
                Some(items) => {
                    for item in items {
                        match item.as_str() {
                            Some(tool) => {
                                if tool == "*" {
                                    diags.push(
                                        Diagnostic::warning(Code::WildcardTool, item.span, "`*` in allowed_tools is a tool name, not a wildcard")
                                            .hint("list every tool the profile lets through"),
                                    );
                                }
                                allowed_tools.push(tool.to_owned());
                            }
                            None => diags.push(Diagnostic::error(
                                Code::NotText,
                                item.span,
                                format!("each allowed tool must be text, found {}", item.describe()),
                            )),
                        }
                    }
                    if items.is_empty() {
                        diags.push(
                            Diagnostic::warning(Code::NoTools, node.head_span(), "allowed_tools is empty: every action will be halted")
                                .hint("list the tools this profile lets through"),
                        );
                    }
                }
                None => diags.push(Diagnostic::error(
                    Code::NotAList,
                    node.head_span(),
                    format!("`allowed_tools` must be a list, found {}", node.describe()),
                )),
            },
        }

        let mut rules = Vec::new();
        let mut hashed_rules = Vec::new();
        if let Some(node) = doc.get("rules") {
            match node.as_seq() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Some((rule, hashed)) = parse_rule(item, i + 1, &mut diags) {
                            rules.push(rule);
                            hashed_rules.push(hashed);
                        }
                    }
                }
                None if matches!(node.kind, Kind::Null) => {}
                None => diags.push(Diagnostic::error(
                    Code::NotAList,
                    node.head_span(),
                    format!("`rules` must be a list, found {}", node.describe()),
                )),
            }
        }

        let mut approval_token_required = false;
        if let Some(node) = doc.get("required_controls") {
            match node.as_map() {
                Some(controls) => {
                    unknown_keys(
                        controls,
                        CONTROL_KEYS,
                        "in `required_controls`",
                        None,
                        &mut diags,
                    );
                    if let Some(v) = node.get("approval_token") {
                        match v.kind {
                            Kind::Bool(b) => approval_token_required = b,
                            _ => diags.push(Diagnostic::error(
                                Code::NotBoolean,
                                v.span,
                                format!(
                                    "`approval_token` must be true or false, found {}",
                                    v.describe()
                                ),
                            )),
                        }
                    }
                }
                None if matches!(node.kind, Kind::Null) => {}
                None => diags.push(Diagnostic::error(
                    Code::NotAMapping,
                    node.head_span(),
                    format!(
                        "`required_controls` must be a mapping, found {}",
                        node.describe()
                    ),
                )),
            }
        }

        if diags.iter().any(|d| d.severity == Severity::Error) {
            return Err(report(diags));
        }
        let (Some(id), Some(version)) = (id, version) else {
            return Err(report(diags));
        };
        // The hashed form has every default filled in (docs/audit.md).
        let hashed_form = json!({
            "id": id,
            "version": version,
            "allowed_tools": allowed_tools,
            "rules": hashed_rules,
            "required_controls": {"approval_token": approval_token_required},
        });
        let hash = canonical_sha256(&hashed_form).map_err(|e| {
            report(vec![Diagnostic::error(
                Code::BadValue,
                doc.head_span(),
                format!("the profile holds a value with no JSON form: {e}"),
            )])
        })?;
        Ok(Profile {
            source: source.to_owned(),
            id: id.into(),
            version: version.into(),
            allowed_tools: allowed_tools.into_iter().collect(),
            rules,
            approval_token_required,
            hashed_form,
            hash: hash.into(),
            warnings: diags,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn id(&self) -> &Arc<str> {
        &self.id
    }

    pub fn version(&self) -> &Arc<str> {
        &self.version
    }

    /// `profile_hash` (docs/audit.md).
    pub fn hash(&self) -> &Arc<str> {
        &self.hash
    }

    /// The object `profile_hash` is computed over.
    pub fn hashed_form(&self) -> &Value {
        &self.hashed_form
    }

    pub fn rules(&self) -> &[ProfileRule] {
        &self.rules
    }

    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// Whether the profile halts every call of `tool`/`operation`, whatever its arguments:
    /// the tool is not allowed, or the first rule that could match halts and has no pattern.
    /// `Some(false)` when a rule decides otherwise for every call; `None` when the policy
    /// decides (or the arguments do).
    pub(crate) fn halts_every_call(&self, tool: &str, operation: &str) -> Option<bool> {
        if !self.allowed_tools.contains(tool) {
            return Some(true);
        }
        for rule in &self.rules {
            if rule.tool.as_deref().is_some_and(|t| t != tool)
                || rule.op.as_deref().is_some_and(|o| o != operation)
            {
                continue;
            }
            match (rule.pattern.is_some(), rule.outcome) {
                (false, outcome) => return Some(outcome == Outcome::Halt),
                (true, Outcome::Halt) => {}
                (true, _) => return Some(false),
            }
        }
        None
    }

    pub(crate) fn evaluate(&self, s: &Subject<'_>) -> Verdict<'_> {
        if !self.allowed_tools.contains(s.tool) {
            return Verdict::ToolNotAllowed;
        }
        let matched = self.rules.iter().find(|rule| {
            rule.tool.as_deref().is_none_or(|t| t == s.tool)
                && rule.op.as_deref().is_none_or(|o| o == s.operation)
                && rule
                    .pattern
                    .as_ref()
                    .is_none_or(|re| re.is_match(s.probe()))
        });
        if let Some(rule) = matched {
            return Verdict::Rule(rule);
        }
        if self.approval_token_required && !carries_token(s) {
            return Verdict::MissingApprovalToken;
        }
        Verdict::Pass
    }
}

/// An `approval_token` that is present and not empty, null or false.
fn carries_token(s: &Subject<'_>) -> bool {
    let truthy = |v: Option<&Value>| match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(t)) => !t.is_empty(),
        Some(_) => true,
    };
    truthy(s.context.get("approval_token")) || truthy(s.params.get("approval_token"))
}

fn required_text(doc: &Node, key: &str, hint: &str, diags: &mut Vec<Diagnostic>) -> Option<String> {
    match doc.get(key) {
        None => {
            diags.push(
                Diagnostic::error(
                    Code::MissingKey,
                    doc.head_span(),
                    format!("the profile has no `{key}`"),
                )
                .hint(hint.to_owned()),
            );
            None
        }
        Some(v) => match v.as_str() {
            Some(s) => Some(s.to_owned()),
            None => {
                diags.push(
                    Diagnostic::error(
                        Code::NotText,
                        v.span,
                        format!("`{key}` must be text, found {}", v.describe()),
                    )
                    .hint(format!("quote it: {key}: \"...\"")),
                );
                None
            }
        },
    }
}

fn parse_rule(
    node: &Node,
    number: usize,
    diags: &mut Vec<Diagnostic>,
) -> Option<(ProfileRule, Value)> {
    let item = Some(Item::ProfileRule(number));
    let Some(entries) = node.as_map() else {
        diags.push(
            Diagnostic::error(
                Code::RuleNotMapping,
                node.head_span(),
                format!(
                    "a profile rule must be a mapping, found {}",
                    node.describe()
                ),
            )
            .in_item(item),
        );
        return None;
    };
    let before = diags.len();
    unknown_keys(entries, RULE_KEYS, "in a profile rule", item, diags);
    let text = |key: &str, diags: &mut Vec<Diagnostic>| {
        node.get(key)
            .and_then(|v| text_of(v, key, item, diags))
            .map(str::to_owned)
    };
    let name = text("name", diags);
    if node.get("name").is_none() {
        diags.push(
            Diagnostic::error(
                Code::MissingKey,
                node.head_span(),
                "the profile rule has no `name`",
            )
            .hint("add `name:`; it becomes the reason of decisions this rule makes")
            .in_item(item),
        );
    }
    let When {
        tool,
        op,
        json: when_json,
    } = parse_when(node, item, diags);
    let pattern_text = text("pattern", diags);
    let pattern = pattern_text
        .as_deref()
        .and_then(|p| compile_pattern(node, p, item, diags));
    let outcome_text = text("outcome", diags).unwrap_or_else(|| "HALT".to_owned());
    let outcome = Outcome::parse(&outcome_text);
    if outcome.is_none() {
        let span = span_of(node, "outcome");
        diags.push(
            Diagnostic::error(
                Code::BadOutcome,
                span,
                format!("`outcome` must be HALT, ABSTAIN or EXECUTE, found {outcome_text:?}"),
            )
            .in_item(item),
        );
    }
    let reason_code =
        text("reason_code", diags).unwrap_or_else(|| reason_code::PROFILE_RULE_DENY.to_owned());
    if diags
        .iter()
        .skip(before)
        .any(|d| d.severity == Severity::Error)
    {
        return None;
    }
    let name = name?;
    let hashed = json!({
        "name": name,
        "when": when_json,
        "pattern": pattern_text,
        "outcome": outcome_text,
        "reason_code": reason_code,
    });
    let rule = ProfileRule {
        number,
        name: name.into(),
        tool,
        op,
        pattern,
        outcome: outcome?,
        reason_code: reason_code.into(),
    };
    Some((rule, hashed))
}

/// What a profile rule's `when` selects: a tool and an operation (`None` for any), and the
/// mapping as it is hashed.
struct When {
    tool: Option<String>,
    op: Option<String>,
    json: Map<String, Value>,
}

fn parse_when(node: &Node, item: Option<Item>, diags: &mut Vec<Diagnostic>) -> When {
    let mut when = When {
        tool: None,
        op: None,
        json: Map::new(),
    };
    let Some(w) = node.get("when") else {
        diags.push(
            Diagnostic::error(
                Code::MissingKey,
                node.head_span(),
                "the profile rule has no `when`",
            )
            .hint("add `when: {tool: \"shell\"}` (tool and op/operation, \"*\" allowed)")
            .in_item(item),
        );
        return when;
    };
    let Some(entries) = w.as_map().filter(|m| !m.is_empty()) else {
        diags.push(
            Diagnostic::error(
                Code::EmptyMatch,
                w.span,
                "`when` must be a non-empty mapping",
            )
            .hint("write `when: {tool: \"*\"}` to match every tool")
            .in_item(item),
        );
        return when;
    };
    unknown_keys(
        entries,
        WHEN_KEYS,
        "in a profile rule's `when`",
        item,
        diags,
    );
    for (k, v) in entries {
        let key = k.key_text().unwrap_or_default();
        let Some(s) = text_of(v, &key, item, diags) else {
            continue;
        };
        let value = (s != "*").then(|| s.to_owned());
        if key == "tool" {
            when.tool = value;
        } else if WHEN_KEYS.contains(&key.as_str()) {
            when.op = value;
        }
        when.json.insert(key, Value::String(s.to_owned()));
    }
    when
}

/// The text of `v`, the value of `key`; anything else is a problem.
fn text_of<'a>(
    v: &'a Node,
    key: &str,
    item: Option<Item>,
    diags: &mut Vec<Diagnostic>,
) -> Option<&'a str> {
    let text = v.as_str();
    if text.is_none() {
        diags.push(
            Diagnostic::error(
                Code::NotText,
                v.span,
                format!("`{key}` must be text, found {}", v.describe()),
            )
            .in_item(item),
        );
    }
    text
}

fn compile_pattern(
    node: &Node,
    text: &str,
    item: Option<Item>,
    diags: &mut Vec<Diagnostic>,
) -> Option<regex::Regex> {
    match compile_regex(text) {
        Ok(re) => Some(re),
        Err(why) => {
            diags.push(
                Diagnostic::error(
                    Code::BadRegex,
                    span_of(node, "pattern"),
                    format!("`pattern` is not a usable regular expression: {why}"),
                )
                .in_item(item),
            );
            None
        }
    }
}

/// Where the value of `key` stands, or the rule itself when the key is absent.
fn span_of(node: &Node, key: &str) -> crate::yaml::Span {
    node.get(key).map_or(node.head_span(), |n| n.span)
}
