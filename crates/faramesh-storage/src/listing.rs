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

use crate::ActionFilter;
use faramesh_core::ActionStatus;

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

/// The listing's SQL, selecting `columns`, and its filter arguments (agent, tool, as given);
/// the limit and offset follow them as the last two parameters.
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
    let statuses: &[ActionStatus] = match &filter.status {
        Some(status) => std::slice::from_ref(status),
        None => &ActionStatus::ALL,
    };
    let (limit, offset) = (placeholder(args.len() + 1), placeholder(args.len() + 2));
    let arms: Vec<String> = statuses
        .iter()
        .map(|status| {
            let mut conditions = equal.clone();
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
    let sql = format!(
        "SELECT {columns} FROM actions WHERE {position} IN (SELECT {position} FROM ({}) AS ranges \
         ORDER BY 1 DESC LIMIT {limit} OFFSET {offset}) ORDER BY {position} DESC",
        arms.join(" UNION ALL ")
    );
    (sql, args)
}
