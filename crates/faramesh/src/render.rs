//! Diagnostic reports: source line and caret on a terminal, one line per problem in plain
//! output, an object with every field with --json.

use crate::output;
use anstream::println;
use codespan_reporting::diagnostic::{Diagnostic as Rendered, Label, Severity as RenderedSeverity};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, termcolor, Config, Styles, StylesWriter};
use faramesh_core::{Report, Severity};

/// Prints `report` for a person: pretty when stdout is a terminal, one line per problem otherwise.
pub fn print_report(report: &Report, source: &str) {
    if output::stdout_colored() {
        let file = SimpleFile::new(report.file.as_str(), source);
        let styles = Styles::default();
        let stream = termcolor::StandardStream::stdout(termcolor::ColorChoice::Always);
        let mut writer = StylesWriter::new(stream.lock(), &styles);
        let config = Config::default();
        for d in &report.diagnostics {
            let severity = match d.severity {
                Severity::Error => RenderedSeverity::Error,
                Severity::Warning => RenderedSeverity::Warning,
            };
            let label_text = d.item.map(|i| i.to_string()).unwrap_or_default();
            let mut rendered = Rendered::new(severity)
                .with_code(d.code.as_str())
                .with_message(&d.message)
                .with_labels(vec![
                    Label::primary((), d.start..d.end.max(d.start)).with_message(label_text)
                ]);
            if let Some(hint) = &d.hint {
                rendered = rendered.with_notes(vec![format!("hint: {hint}")]);
            }
            // A failed write to the terminal leaves nothing better to do than carry on.
            let _ = term::emit_to_write_style(&mut writer, &config, &file, &rendered);
        }
    } else if !report.diagnostics.is_empty() {
        println!("{report}");
    }
}
