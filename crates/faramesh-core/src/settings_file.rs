//! What every settings file other than the policy shares (the MCP servers file, the routes
//! file of notifications): located problems, unknown keys with a suggestion, `${VAR}` read from
//! the environment, and values that must never be shown.

#![warn(
    clippy::string_slice,
    clippy::indexing_slicing,
    reason = "this module reads input: a bad index must be an error, not a panic"
)]

use crate::diagnostic::did_you_mean;
use crate::yaml::{Node, Span};
use std::fmt;

/// A value that may hold a secret: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// One problem of a file, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A problem at `span`.
pub fn at(span: Span, message: String) -> Problem {
    Problem {
        line: span.line,
        column: span.column,
        message,
    }
}

/// Every problem of one file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FileError {
    pub file: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}:{}:{}: error: {}",
                self.file, p.line, p.column, p.message
            )?;
        }
        Ok(())
    }
}

/// Reads `text`, the YAML file `file`; a syntax error is its one located problem.
pub fn load(file: &str, text: &str) -> Result<Node, FileError> {
    crate::yaml::load(text).map_err(|e| FileError {
        file: file.to_owned(),
        problems: vec![at(e.span, e.message)],
    })
}

/// The problem of an unknown key `name` of `place`, suggesting the nearest of `known`.
pub fn unknown_key(key: &Node, name: &str, known: &[&str], place: &str) -> Problem {
    let hint = did_you_mean(name, known)
        .map(|k| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default();
    at(
        key.span,
        format!(
            "unknown key `{name}` in {place}{hint}; known keys: {}",
            known.join(", ")
        ),
    )
}

/// Reports every key of the mapping `node` that is not one of `known`.
pub fn check_keys(node: &Node, known: &[&str], place: &str, problems: &mut Vec<Problem>) {
    for (key, _) in node.as_map().unwrap_or_default() {
        let name = key.as_str().unwrap_or_default();
        if !known.contains(&name) {
            problems.push(unknown_key(key, name, known, place));
        }
    }
}

/// `text` with each `${VAR}` replaced by the variable's value as `env` reads it; `$$` is a
/// `$`. A variable that is not set is a problem at `span`.
pub fn expand(
    text: &str,
    span: Span,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut ok = true;
    while let Some(at_dollar) = rest.find('$') {
        out.push_str(rest.get(..at_dollar).unwrap_or_default());
        let after = rest.get(at_dollar + 1..).unwrap_or_default();
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                problems.push(at(
                    span,
                    format!("`${{` without a closing `}}` in {text:?}"),
                ));
                return None;
            };
            let name = body.get(..end).unwrap_or_default();
            match env(name) {
                Some(value) => out.push_str(&value),
                None => {
                    problems.push(at(
                        span,
                        format!("the environment has no variable `{name}`; set it before starting the server"),
                    ));
                    ok = false;
                }
            }
            rest = body.get(end + 1..).unwrap_or_default();
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    ok.then_some(out)
}
