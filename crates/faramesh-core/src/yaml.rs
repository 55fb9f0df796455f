//! A YAML document as a tree whose every node knows where it stands in the source, so that
//! policy and profile diagnostics can name a line and column. Scalars are resolved with the
//! YAML 1.2 core schema. Anchors and aliases are expanded under a node budget, so an alias
//! bomb is an error rather than an exhausted machine.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use saphyr_parser::{Event, Parser, ScalarStyle, Span as YamlSpan};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;

/// A byte range in the source text, with the 1-based line and column of its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub line: usize,
    pub column: usize,
}

/// One node of a YAML document.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub span: Span,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    /// A number literal (kept as text, so integers of any size stay exact).
    Number(Number),
    /// `.inf`, `-.inf` or `.nan`: valid YAML, but not representable in JSON.
    NonFinite(String),
    String(String),
    Seq(Vec<Node>),
    /// Entries in source order; keys are nodes so their position is known too.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The entries when this node is a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::String(s) => Some(s),
            _ => None,
        }
    }

    /// Where a diagnostic about the whole node should point: the first key of a mapping (its
    /// full span runs on to the next item), the node itself otherwise.
    pub fn head_span(&self) -> Span {
        match &self.kind {
            Kind::Map(entries) => entries.first().map_or(self.span, |(key, _)| key.span),
            _ => self.span,
        }
    }

    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// A short description of the node's type, for messages ("a list", "the number 3").
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Null => "nothing (null)".to_owned(),
            Kind::Bool(b) => format!("the boolean {b}"),
            Kind::Number(n) => format!("the number {n}"),
            Kind::NonFinite(s) => format!("the number {s}"),
            Kind::String(s) => format!("the text {s:?}"),
            Kind::Seq(_) => "a list".to_owned(),
            Kind::Map(_) => "a mapping".to_owned(),
        }
    }

    /// The node as JSON. Mapping keys become text; `.inf`/`.nan` have no JSON form.
    pub fn to_json(&self) -> Result<Value, LoadError> {
        Ok(match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Number(n) => Value::Number(n.clone()),
            Kind::NonFinite(text) => {
                return Err(LoadError::new(
                    self.span,
                    format!("{text} cannot be represented in JSON; use a finite number"),
                ))
            }
            Kind::String(s) => Value::String(s.clone()),
            Kind::Seq(items) => {
                Value::Array(items.iter().map(Node::to_json).collect::<Result<_, _>>()?)
            }
            Kind::Map(entries) => {
                let mut map = Map::with_capacity(entries.len());
                for (key, value) in entries {
                    map.insert(key.key_text()?, value.to_json()?);
                }
                Value::Object(map)
            }
        })
    }

    /// The text of a mapping key. Scalar keys of other types keep their literal text.
    pub fn key_text(&self) -> Result<String, LoadError> {
        match &self.kind {
            Kind::String(s) => Ok(s.clone()),
            Kind::Number(n) => Ok(n.to_string()),
            Kind::Bool(b) => Ok(b.to_string()),
            Kind::Null => Ok("null".to_owned()),
            Kind::NonFinite(s) => Ok(s.clone()),
            Kind::Seq(_) | Kind::Map(_) => Err(LoadError::new(
                self.span,
                "a mapping key must be plain text, not a list or mapping".to_owned(),
            )),
        }
    }
}

/// A document that is not well-formed YAML, or exceeds a safety limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (line {}, column {})", span.line, span.column)]
pub struct LoadError {
    pub span: Span,
    pub message: String,
}

impl LoadError {
    fn new(span: Span, message: String) -> Self {
        LoadError { span, message }
    }
}

/// Limits that keep hostile documents cheap to reject.
const MAX_DEPTH: usize = 128;
const MAX_NODES: usize = 1_000_000;

/// Parses `text` as one YAML document. An empty document is `Kind::Null`.
pub fn load(text: &str) -> Result<Node, LoadError> {
    let lines = LineIndex::new(text);
    let mut builder = Builder {
        lines: &lines,
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        documents: 0,
        root: None,
    };
    let mut parser = Parser::new_from_str(text);
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| {
            let marker = e.marker();
            let span = lines.span_at(marker.line(), marker.col());
            LoadError::new(span, format!("not valid YAML: {}", e.info()))
        })?;
        builder.event(event, span)?;
    }
    Ok(builder.root.unwrap_or(Node {
        span: Span {
            start: 0,
            end: 0,
            line: 1,
            column: 1,
        },
        kind: Kind::Null,
    }))
}

enum Open {
    Seq {
        span: Span,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        span: Span,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

struct Builder<'a> {
    lines: &'a LineIndex<'a>,
    stack: Vec<Open>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    documents: usize,
    root: Option<Node>,
}

impl Builder<'_> {
    fn event(&mut self, event: Event<'_>, yspan: YamlSpan) -> Result<(), LoadError> {
        let span = self.lines.span(yspan);
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(LoadError::new(
                        span,
                        "the file holds more than one YAML document (`---`); keep one".to_owned(),
                    ));
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                let is_str_tag = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let kind = if style == ScalarStyle::Plain && !is_str_tag {
                    resolve_plain(&value)
                } else {
                    Kind::String(value.into_owned())
                };
                self.push(Node { span, kind }, anchor)?;
            }
            Event::SequenceStart(anchor, _) => {
                self.enter(span)?;
                self.stack.push(Open::Seq {
                    span,
                    anchor,
                    items: Vec::new(),
                });
            }
            Event::MappingStart(anchor, _) => {
                self.enter(span)?;
                self.stack.push(Open::Map {
                    span,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                });
            }
            Event::SequenceEnd => {
                if let Some(Open::Seq {
                    span: start,
                    anchor,
                    items,
                }) = self.stack.pop()
                {
                    let span = join(start, span);
                    self.push(
                        Node {
                            span,
                            kind: Kind::Seq(items),
                        },
                        anchor,
                    )?;
                }
            }
            Event::MappingEnd => {
                if let Some(Open::Map {
                    span: start,
                    anchor,
                    entries,
                    ..
                }) = self.stack.pop()
                {
                    let span = join(start, span);
                    self.push(
                        Node {
                            span,
                            kind: Kind::Map(entries),
                        },
                        anchor,
                    )?;
                }
            }
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id) else {
                    return Err(LoadError::new(
                        span,
                        "alias to an unknown anchor".to_owned(),
                    ));
                };
                let mut copy = target.clone();
                copy.span = span;
                self.nodes += count_nodes(&copy);
                if self.nodes > MAX_NODES {
                    return Err(LoadError::new(
                        span,
                        format!("aliases expand to more than {MAX_NODES} nodes; the document is too large"),
                    ));
                }
                self.push(copy, 0)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
        Ok(())
    }

    fn enter(&mut self, span: Span) -> Result<(), LoadError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(LoadError::new(
                span,
                format!("nesting deeper than {MAX_DEPTH} levels is not supported"),
            ));
        }
        Ok(())
    }

    fn push(&mut self, node: Node, anchor: usize) -> Result<(), LoadError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(LoadError::new(
                node.span,
                format!("the document has more than {MAX_NODES} nodes"),
            ));
        }
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Open::Seq { items, .. }) => items.push(node),
            Some(Open::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => {
                    if let Some(first) = entries.iter().find(|(existing, _)| same_key(existing, &k))
                    {
                        return Err(LoadError::new(
                            k.span,
                            format!(
                                "duplicate key {} (first given on line {}); keep one",
                                k.key_text().unwrap_or_default(),
                                first.0.span.line
                            ),
                        ));
                    }
                    entries.push((k, node));
                }
            },
        }
        Ok(())
    }
}

fn same_key(a: &Node, b: &Node) -> bool {
    match (a.key_text(), b.key_text()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn count_nodes(node: &Node) -> usize {
    1 + match &node.kind {
        Kind::Seq(items) => items.iter().map(count_nodes).sum(),
        Kind::Map(entries) => entries
            .iter()
            .map(|(k, v)| count_nodes(k) + count_nodes(v))
            .sum(),
        _ => 0,
    }
}

fn join(start: Span, end: Span) -> Span {
    Span {
        end: end.end.max(start.start),
        ..start
    }
}

/// Resolves a plain scalar with the YAML 1.2 core schema.
fn resolve_plain(text: &str) -> Kind {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Kind::Null,
        "true" | "True" | "TRUE" => return Kind::Bool(true),
        "false" | "False" | "FALSE" => return Kind::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => return Kind::NonFinite(text.to_owned()),
        _ => {}
    }
    if let Some(n) = parse_core_number(text) {
        return Kind::Number(n);
    }
    Kind::String(text.to_owned())
}

fn parse_core_number(text: &str) -> Option<Number> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let negative = text.starts_with('-');
    if let Some(hex) = unsigned.strip_prefix("0x") {
        return radix_number(hex, 16, negative);
    }
    if let Some(oct) = unsigned.strip_prefix("0o") {
        return radix_number(oct, 8, negative);
    }
    if !is_core_decimal(unsigned) {
        return None;
    }
    // JSON has no leading '+', no leading '.', no trailing '.'; normalise to a JSON literal.
    let mut literal = String::with_capacity(text.len() + 2);
    if negative {
        literal.push('-');
    }
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => {
            let (mantissa, exponent) = unsigned.split_at(i);
            (mantissa, Some(exponent))
        }
        None => (unsigned, None),
    };
    if mantissa.starts_with('.') {
        literal.push('0');
    }
    literal.push_str(mantissa.strip_suffix('.').unwrap_or(mantissa));
    if let Some(exp) = exponent {
        literal.push_str(exp);
    }
    literal.parse().ok()
}

/// `[0-9]+ | [0-9]* '.' [0-9]* with a digit somewhere`, optionally followed by an exponent.
fn is_core_decimal(s: &str) -> bool {
    let (mantissa, exponent) = match s.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, Some(exponent)),
        None => (s, None),
    };
    let mut parts = mantissa.splitn(2, '.');
    let int_part = parts.next().unwrap_or("");
    let frac_part = parts.next();
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(int_part)
        && frac_part.is_none_or(digits)
        && (!int_part.is_empty() || frac_part.is_some_and(|f| !f.is_empty()));
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

fn radix_number(digits: &str, radix: u32, negative: bool) -> Option<Number> {
    let value = u128::from_str_radix(digits, radix).ok()?;
    let literal = if negative {
        format!("-{value}")
    } else {
        value.to_string()
    };
    literal.parse().ok()
}

/// Maps the parser's (line, character column) positions to byte offsets.
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    /// Byte offset of 1-based `line`, 0-based character `col`.
    fn offset(&self, line: usize, col: usize) -> usize {
        let Some(&start) = self.starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        let Some(rest) = self.text.get(start..) else {
            return self.text.len();
        };
        rest.char_indices()
            .nth(col)
            .map_or(self.text.len(), |(i, _)| start + i)
    }

    fn span_at(&self, line: usize, col: usize) -> Span {
        let start = self.offset(line, col);
        Span {
            start,
            end: start,
            line: line.max(1),
            column: col + 1,
        }
    }

    fn span(&self, span: YamlSpan) -> Span {
        let start = self.offset(span.start.line(), span.start.col());
        let end = self.offset(span.end.line(), span.end.col()).max(start);
        Span {
            start,
            end,
            line: span.start.line().max(1),
            column: span.start.col() + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Value {
        load(text).expect("valid yaml").to_json().expect("json")
    }

    #[test]
    fn resolves_core_schema_scalars() {
        let value = json("a: 1\nb: 1.5\nc: true\nd: ~\ne: '1'\nf: yes\ng: 0x1f\nh: .5\ni: 1e3\nj: -7\nk: +12\nl: 3.");
        assert_eq!(
            crate::json::canonical_string(&value).unwrap(),
            r#"{"a":1,"b":1.5,"c":true,"d":null,"e":"1","f":"yes","g":31,"h":0.5,"i":1000,"j":-7,"k":12,"l":3}"#
        );
    }

    #[test]
    fn keeps_big_integers_exact() {
        let value = json("n: 123456789012345678901234567890");
        assert_eq!(value["n"].to_string(), "123456789012345678901234567890");
    }

    #[test]
    fn spans_point_at_keys_and_values() {
        let doc = load("rules:\n  - match:\n      tool: \"shell\"\n").unwrap();
        let rule = &doc.get("rules").unwrap().as_seq().unwrap()[0];
        let tool = rule.get("match").unwrap().get("tool").unwrap();
        assert_eq!((tool.span.line, tool.span.column), (3, 13));
    }

    #[test]
    fn rejects_duplicate_keys_with_both_lines() {
        let err = load("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.span.line, 3);
        assert!(
            err.message.contains("first given on line 1"),
            "{}",
            err.message
        );
    }

    #[test]
    fn rejects_several_documents() {
        assert!(load("a: 1\n---\nb: 2\n").is_err());
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = i - 1;
            text.push_str(&format!("a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"));
        }
        let err = load(&text).unwrap_err();
        assert!(err.message.contains("nodes"), "{}", err.message);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = "[".repeat(1000) + &"]".repeat(1000);
        let err = load(&text).unwrap_err();
        assert!(
            err.message.contains("nesting") || err.message.contains("recursion"),
            "{}",
            err.message
        );
    }

    #[test]
    fn syntax_errors_are_located() {
        let err = load("rules:\n  - match: {tool: shell\n").unwrap_err();
        assert!(err.span.line >= 2, "{err:?}");
    }

    #[test]
    fn non_ascii_columns_map_to_byte_offsets() {
        let text = "é: \"x\"\n";
        let doc = load(text).unwrap();
        let (_, v) = &doc.as_map().unwrap()[0];
        assert_eq!(text.get(v.span.start..v.span.end), Some("\"x\""));
    }
}
