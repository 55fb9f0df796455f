//! Tables for the terminal: columns sized by display width (a wide or combining character
//! counts as the terminal shows it), styled cells measured without their colour codes.

use crate::output::{paint, BOLD};
use comfy_table::{presets, Cell, ContentArrangement, Table};
use unicode_width::UnicodeWidthChar;

/// Space between columns.
const GAP: u16 = 2;

/// A borderless table with a bold header, columns separated by two spaces.
pub fn new(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().map(|h| Cell::new(paint(BOLD, h))));
    let last = header.len().saturating_sub(1);
    for (i, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, if i == last { 0 } else { GAP }));
    }
    table
}

/// The table's text, without the spaces that pad the last column.
pub fn render(table: &Table) -> String {
    table
        .lines()
        .map(|line| line.trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` cut to at most `max` columns of display width, ending in `…` when cut.
pub fn cut(text: &str, max: usize) -> String {
    let width = |c: char| c.width().unwrap_or(0);
    if text.chars().map(width).sum::<usize>() <= max {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        if used + width(c) > max.saturating_sub(1) {
            break;
        }
        used += width(c);
        out.push(c);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_by_display_width() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("abcdefghijk", 5), "abcd…");
        // Each of these characters takes two columns.
        assert_eq!(cut("日本語のテキスト", 7), "日本語…");
        assert_eq!(cut("ééééé", 3), "éé…");
    }

    #[test]
    fn columns_line_up_by_display_width() {
        let mut table = new(&["NAME", "ROLE"]);
        table.add_row(["日本", "agent"]);
        table.add_row(["ab", "admin"]);
        let text = render(&table);
        assert!(!text.lines().any(|l| l.ends_with(' ')), "{text}");
        let role_column: Vec<usize> = text
            .lines()
            .skip(1)
            .map(|line| {
                // The role is the first word after a space that starts with "a".
                let at = line.find(" a").map_or(0, |i| i + 1);
                line[..at].chars().map(|c| c.width().unwrap_or(0)).sum()
            })
            .collect();
        // "日本" is four columns wide, as wide as "NAME": the roles start at 4 + 2.
        assert_eq!(role_column, [6, 6], "{text}");
    }
}
