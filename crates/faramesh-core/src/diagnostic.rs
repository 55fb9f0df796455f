//! Located problems found while checking a policy or profile file.

use crate::codes::Code;
use crate::yaml::Span;
use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// Which numbered item of the file a problem belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "section", content = "number")]
pub enum Item {
    /// A policy rule under `rules:` (1-based).
    Rule(usize),
    /// A risk rule under `risk.rules:` (1-based).
    RiskRule(usize),
    /// An execution-profile rule under `rules:` (1-based).
    ProfileRule(usize),
    /// A limit under `limits:` (1-based).
    Limit(usize),
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Rule(n) => write!(f, "rule {n}"),
            Item::RiskRule(n) => write!(f, "risk rule {n}"),
            Item::ProfileRule(n) => write!(f, "profile rule {n}"),
            Item::Limit(n) => write!(f, "limit {n}"),
        }
    }
}

/// One problem, with where it is and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable kebab-case identifier of the kind of problem (`unknown-key`, `bad-regex`, ...).
    pub code: Code,
    pub message: String,
    pub line: usize,
    pub column: usize,
    /// Byte range in the source.
    pub start: usize,
    pub end: usize,
    #[serde(skip_serializing_if = "Option::is_none", flatten)]
    pub item: Option<Item>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    pub(crate) fn error(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            line: span.line,
            column: span.column,
            start: span.start,
            end: span.end,
            item: None,
            hint: None,
        }
    }

    pub(crate) fn warning(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, span, message)
        }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub(crate) fn in_item(mut self, item: Option<Item>) -> Self {
        if self.item.is_none() {
            self.item = item;
        }
        self
    }
}

/// Every problem of one file. Errors make the file unusable; warnings do not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct Report {
    /// The file name as the user gave it.
    pub file: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// Parses `text` as one YAML document, or reports why it is not one.
    pub(crate) fn load_yaml(source: &str, text: &str) -> Result<crate::yaml::Node, Report> {
        crate::yaml::load(text).map_err(|e| Report {
            file: source.to_owned(),
            diagnostics: vec![Diagnostic::error(Code::YamlSyntax, e.span, e.message)],
        })
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    pub fn error_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }
}

/// One line per problem: `file:line:column: error: message (rule N); hint: ...`.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let severity = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            write!(
                f,
                "{}:{}:{}: {severity}: {}",
                self.file, d.line, d.column, d.message
            )?;
            if let Some(item) = d.item {
                write!(f, " ({item})")?;
            }
            if let Some(hint) = &d.hint {
                write!(f, "; hint: {hint}")?;
            }
        }
        Ok(())
    }
}

/// The closest of `candidates` to a misspelt `word`, if one is close enough to be a likely
/// intent.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (*c, strsim::jaro_winkler(&lower, c)))
        .filter(|(_, score)| *score >= 0.8)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn suggests_close_keys_only() {
        let keys = ["tool", "op", "pattern", "amount_gt", "path_contains"];
        assert_eq!(did_you_mean("patern", &keys), Some("pattern"));
        assert_eq!(did_you_mean("Tool", &keys), Some("tool"));
        assert_eq!(did_you_mean("amount_gtt", &keys), Some("amount_gt"));
        assert_eq!(did_you_mean("zebra", &keys), None);
    }
}
