//! The listing query both backends use: a page of actions, newest first, filtered by any
//! combination of agent, tool and status.
//!
//! Every listing index ends in `status` (SQLite migration 0004, PostgreSQL migration 0002), so
//! each combination of filters has an index on exactly its columns. With `status` among the
//! filters, that index holds exactly the matching actions in insertion order. Without it, the
//! index holds them in eight ranges, one per status, each in insertion order; a `UNION ALL`
//! with an `ORDER BY` makes the database merge those ranges, reading only as far as the page
//! needs. Without any filter, the ranges are those of the status index: a deep page then skips
//! small index entries instead of whole rows of the table. The page's positions come from the
//! indexes alone; its rows are read by position afterwards.
//!
//! A search adds names (of an agent, tool or operation) any of which an action must have: each
//! name makes its own ranges, one per status, in the index led by its column, and the ranges
//! of all names are merged the same way. Names of different columns can select the same
//! action twice, so their ranges are joined with `UNION`, which both databases merge without
//! reading past the page either (SQLite merges a compound `SELECT … ORDER BY` of any kind;
//! PostgreSQL deduplicates the already-cut ranges).

use crate::{ActionFilter, NameColumn};
use faramesh_core::ActionStatus;

/// The most names a search may select actions by: each makes one range per status, and SQLite
/// refuses a compound `SELECT` of more than 500 parts.
pub const MAX_SEARCH_NAMES: usize = 32;

/// How a backend spells its listing query.
pub(crate) struct Dialect {
    /// The column that orders actions by insertion: SQLite's `rowid`, PostgreSQL's `pos`.
    pub position: &'static str,
    /// The placeholder of the `n`th parameter (1-based).
    pub placeholder: fn(usize) -> String,
    /// Whether each status range is cut to the page's depth itself. SQLite merges the ranges of
    /// a `UNION ALL … ORDER BY` and stops once the page is full; PostgreSQL (15) appends them
    /// and sorts everything they hold, so each range gets its own `ORDER BY … LIMIT` and at
    /// most eight times the page's depth is sorted.
    pub limit_each_range: bool,
}

/// Whether the filter can match no action at all: a search that found no name, or whose
/// names all contradict the exact filters. The backends answer such a listing without a query.
pub(crate) fn matches_nothing(filter: &ActionFilter) -> bool {
    filter
        .names
        .as_ref()
        .is_some_and(|names| names.iter().all(|name| contradicts(filter, name)))
}

/// Whether an action with `name` cannot match the filter's exact agent or tool.
fn contradicts(filter: &ActionFilter, name: &crate::Name) -> bool {
    let exact = match name.column {
        NameColumn::Agent => &filter.agent_id,
        NameColumn::Tool => &filter.tool,
        NameColumn::Operation => return false,
    };
    exact.as_ref().is_some_and(|value| *value != name.value)
}

/// The listing's SQL, selecting `columns`, and its filter arguments (agent, tool and names, as
/// given); the limit and offset follow them as the last two parameters. Not for a filter that
/// [`matches_nothing`].
pub(crate) fn query(
    dialect: &Dialect,
    columns: &str,
    filter: &ActionFilter,
) -> (String, Vec<String>) {
    let Dialect {
        position,
        placeholder,
        limit_each_range,
    } = dialect;
    let mut args = Vec::new();
    let mut equal = Vec::new();
    for (column, value) in [("agent_id", &filter.agent_id), ("tool", &filter.tool)] {
        if let Some(value) = value {
            args.push(value.clone());
            equal.push(format!("{column} = {}", placeholder(args.len())));
        }
    }
    // The conditions of each name's ranges, beside the exact ones; without a search, one set.
    let by_name: Vec<Vec<String>> = match &filter.names {
        None => vec![equal],
        Some(names) => names
            .iter()
            .filter(|name| !contradicts(filter, name))
            .map(|name| {
                let mut conditions = equal.clone();
                args.push(name.value.clone());
                // A fixed column name, never input: safe to spell out.
                conditions.push(format!(
                    "{} = {}",
                    name.column.as_str(),
                    placeholder(args.len())
                ));
                conditions
            })
            .collect(),
    };
    let statuses: &[ActionStatus] = match &filter.status {
        Some(status) => std::slice::from_ref(status),
        None => &ActionStatus::ALL,
    };
    let (limit, offset) = (placeholder(args.len() + 1), placeholder(args.len() + 2));
    let arms: Vec<String> = by_name
        .iter()
        .flat_map(|conditions| statuses.iter().map(move |status| (conditions, status)))
        .map(|(conditions, status)| {
            let mut conditions = conditions.clone();
            // A fixed word of the lifecycle, never input: safe to spell out.
            conditions.push(format!("status = '{}'", status.as_str()));
            let arm = format!(
                "SELECT {position} FROM actions WHERE {}",
                conditions.join(" AND ")
            );
            if *limit_each_range {
                format!(
                    "({arm} ORDER BY {position} DESC LIMIT CAST({limit} AS BIGINT) + CAST({offset} AS BIGINT))"
                )
            } else {
                arm
            }
        })
        .collect();
    let page = if by_name.len() > 1 {
        // Written as one compound so that SQLite merges it; see the module's comment.
        format!(
            "{} ORDER BY 1 DESC LIMIT {limit} OFFSET {offset}",
            arms.join(" UNION ")
        )
    } else {
        format!(
            "SELECT {position} FROM ({}) AS ranges ORDER BY 1 DESC LIMIT {limit} OFFSET {offset}",
            arms.join(" UNION ALL ")
        )
    };
    let sql = format!(
        "SELECT {columns} FROM actions WHERE {position} IN ({page}) ORDER BY {position} DESC"
    );
    (sql, args)
}

/// The `names` that contain `text`, ignoring case: what a search matches names by, in Rust
/// rather than SQL so both databases agree on what "ignoring case" means.
pub(crate) fn containing(names: impl IntoIterator<Item = String>, text: &str) -> Vec<String> {
    let text = text.to_lowercase();
    names
        .into_iter()
        .filter(|name| name.to_lowercase().contains(&text))
        .collect()
}
