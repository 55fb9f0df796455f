//! Colour and styles. Colour is used only on a terminal, never with --json or --no-color
//! (or `NO_COLOR`); `anstream` strips styles everywhere else.

use crate::cli::Global;
use anstyle::{AnsiColor, Style};
use std::io::IsTerminal;

pub const ERROR: Style = AnsiColor::Red.on_default().bold();
pub const GOOD: Style = AnsiColor::Green.on_default().bold();
pub const WARN: Style = AnsiColor::Yellow.on_default().bold();
pub const DIM: Style = Style::new().dimmed();
pub const BOLD: Style = Style::new().bold();

pub fn configure(global: &Global) {
    if global.json || global.no_color {
        anstream::ColorChoice::Never.write_global();
    }
}

/// Whether stdout gets colour.
pub fn stdout_colored() -> bool {
    match anstream::ColorChoice::global() {
        anstream::ColorChoice::Never => false,
        anstream::ColorChoice::Always | anstream::ColorChoice::AlwaysAnsi => true,
        anstream::ColorChoice::Auto => {
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    }
}

/// `text` in `style`.
pub fn paint(style: Style, text: impl std::fmt::Display) -> String {
    format!("{}{text}{}", style.render(), style.render_reset())
}

/// The style of an outcome: green to run, yellow to wait, red to stop.
pub fn outcome_style(outcome: faramesh_core::Outcome) -> Style {
    match outcome {
        faramesh_core::Outcome::Execute => GOOD,
        faramesh_core::Outcome::Abstain => WARN,
        faramesh_core::Outcome::Halt => ERROR,
    }
}

/// `text` as one word of a POSIX shell command: as it is when that is safe, else in single
/// quotes, so a suggested command can be pasted as printed.
pub fn shell_word(text: &str) -> String {
    let safe = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@+,%".contains(c));
    if safe {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Says on stderr what went wrong: `error: <message>`, the word in the error style.
pub fn error(message: impl std::fmt::Display) {
    anstream::eprintln!("{}error:{} {message}", ERROR.render(), ERROR.render_reset());
}

/// Says on stderr what the user should know: `note: <message>`, the word in the warning style.
pub fn note(message: impl std::fmt::Display) {
    anstream::eprintln!("{}note:{} {message}", WARN.render(), WARN.render_reset());
}

/// `value` as indented JSON, for `--json` output.
pub fn pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}
