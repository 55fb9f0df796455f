//! Rows to records and back.

use super::unavailable;
use crate::decode::{decode_action, json_text, to_event, RawAction, ACTION_COLUMNS, EVENT_COLUMNS};
use crate::{ActionFilter, ActionRecord, Change, EventRecord, NameColumn, StoreResult};
use faramesh_core::policy::Effect;
use faramesh_core::{Outcome, RiskLevel};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

/// The position of the action `?1` (its rowid): how its events are indexed.
const ACTION_POS: &str = "(SELECT rowid FROM actions WHERE id = ?1)";

fn raw_action(row: &Row<'_>) -> rusqlite::Result<RawAction> {
    raw_action_at(row, 0)
}

/// The action whose `ACTION_COLUMNS` start at column `first` of `row`.
fn raw_action_at(row: &Row<'_>, first: usize) -> rusqlite::Result<RawAction> {
    let mut text: [Option<String>; 25] = Default::default();
    for (i, slot) in text.iter_mut().enumerate().take(23) {
        *slot = row.get(first + i)?;
    }
    text[23] = row.get(first + 24)?;
    text[24] = row.get(first + 25)?;
    Ok(RawAction {
        text,
        demo: row.get::<_, i64>(first + 23)? != 0,
    })
}

fn decode_event(row: &Row<'_>) -> rusqlite::Result<(i64, [String; 6], Option<String>)> {
    Ok((
        row.get(0)?,
        [
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
            row.get(7)?,
        ],
        row.get(6)?,
    ))
}

pub(super) fn get_action(conn: &Connection, id: &str) -> StoreResult<Option<ActionRecord>> {
    let sql = format!("SELECT {ACTION_COLUMNS} FROM actions WHERE id = ?1");
    let mut stmt = conn.prepare_cached(&sql).map_err(unavailable)?;
    stmt.query_row([id], raw_action)
        .optional()
        .map_err(unavailable)?
        .map(decode_action)
        .transpose()
}

pub(super) fn list_actions(
    conn: &Connection,
    filter: &ActionFilter,
) -> StoreResult<Vec<ActionRecord>> {
    if crate::listing::matches_nothing(filter) {
        return Ok(Vec::new());
    }
    let (sql, mut args) = listing_query(filter);
    args.push(SqlValue::Integer(
        i64::try_from(filter.limit).unwrap_or(i64::MAX),
    ));
    args.push(SqlValue::Integer(
        i64::try_from(filter.offset).unwrap_or(i64::MAX),
    ));
    let mut stmt = conn.prepare_cached(&sql).map_err(unavailable)?;
    let raws = stmt
        .query_map(params_from_iter(args), raw_action)
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    raws.into_iter().map(decode_action).collect()
}

/// The distinct names of `column` containing `text` (ignoring case), in order: a loose scan of
/// the index led by the column, one seek per distinct name.
pub(super) fn names_containing(
    conn: &Connection,
    column: NameColumn,
    text: &str,
) -> StoreResult<Vec<String>> {
    let column = column.as_str();
    let sql = format!(
        "WITH RECURSIVE names(name) AS ( \
           SELECT MIN({column}) FROM actions \
           UNION ALL \
           SELECT (SELECT MIN({column}) FROM actions WHERE {column} > names.name) \
           FROM names WHERE names.name IS NOT NULL) \
         SELECT name FROM names WHERE name IS NOT NULL"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(unavailable)?;
    let names = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    Ok(crate::listing::containing(names, text))
}

/// How SQLite spells the listing (see [`crate::listing`]).
const LISTING: crate::listing::Dialect = crate::listing::Dialect {
    position: "rowid",
    placeholder: |n| format!("?{n}"),
    limit_each_range: false,
};

/// The listing's SQL and its filter arguments; the limit and offset follow as the last two.
pub(super) fn listing_query(filter: &ActionFilter) -> (String, Vec<SqlValue>) {
    let (sql, args) = crate::listing::query(&LISTING, ACTION_COLUMNS, filter);
    (sql, args.into_iter().map(SqlValue::Text).collect())
}

pub(super) fn events(conn: &Connection, action_id: &str) -> StoreResult<Vec<EventRecord>> {
    let sql =
        format!("SELECT {EVENT_COLUMNS} FROM events WHERE action_pos = {ACTION_POS} ORDER BY seq");
    let mut stmt = conn.prepare_cached(&sql).map_err(unavailable)?;
    let raws = stmt
        .query_map(params![action_id], decode_event)
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    raws.into_iter().map(to_event).collect()
}

/// The `record_hash` of the action's newest event: the next event's `prev_hash`.
/// See [`crate::Store::changes_between`].
pub(super) fn changes_between(
    conn: &Connection,
    after: u64,
    before: u64,
    limit: usize,
) -> StoreResult<Vec<Change>> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let before = i64::try_from(before).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    changes_where(
        conn,
        "e.seq > ?1 AND e.seq < ?2 AND e.event_type <> 'created' ORDER BY e.seq LIMIT ?3",
        params![after, before, limit],
    )
}

/// See [`crate::Store::changes_with_seqs`].
pub(super) fn changes_with_seqs(conn: &Connection, seqs: &[u64]) -> StoreResult<Vec<Change>> {
    // One parameter for any number of values: a JSON array, read by SQLite's json_each.
    let list = serde_json::to_string(seqs).map_err(|e| crate::decode::corrupt("seqs", e))?;
    changes_where(
        conn,
        "e.seq IN (SELECT value FROM json_each(?1)) AND e.event_type <> 'created' ORDER BY e.seq",
        params![list],
    )
}

/// The changes of the events matching `condition` (on `e`, the events, joined with `a`, their
/// actions).
fn changes_where(
    conn: &Connection,
    condition: &str,
    values: impl rusqlite::Params,
) -> StoreResult<Vec<Change>> {
    let sql = format!(
        "SELECT e.seq, e.event_type, e.meta, {} FROM events e JOIN actions a ON a.rowid = e.action_pos WHERE {condition}",
        crate::decode::qualified_action_columns("a")
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(unavailable)?;
    let rows = stmt
        .query_map(values, |row| {
            let seq: i64 = row.get(0)?;
            let event_type: String = row.get(1)?;
            let meta: String = row.get(2)?;
            Ok((seq, event_type, meta, raw_action_at(row, 3)?))
        })
        .map_err(unavailable)?;
    let mut changes = Vec::new();
    for row in rows {
        let (seq, event_type, meta, raw) = row.map_err(unavailable)?;
        let action = decode_action(raw)?;
        changes.extend(Change::from_event(seq, &event_type, &meta, &action));
    }
    Ok(changes)
}

pub(super) fn last_record_hash(conn: &Connection, action_id: &str) -> StoreResult<Option<String>> {
    conn.prepare_cached(&format!(
        "SELECT record_hash FROM events WHERE action_pos = {ACTION_POS} ORDER BY seq DESC LIMIT 1"
    ))
    .map_err(unavailable)?
    .query_row([action_id], |row| row.get(0))
    .optional()
    .map_err(unavailable)
}

pub(super) fn insert_action(conn: &Connection, a: &ActionRecord) -> StoreResult<()> {
    let sql = format!("INSERT INTO actions ({ACTION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)");
    let reason_details = a
        .reason_details
        .as_ref()
        .map(|v| json_text(v, "reason_details"))
        .transpose()?;
    let result = a
        .result
        .as_ref()
        .map(|v| json_text(v, "result"))
        .transpose()?;
    conn.prepare_cached(&sql)
        .map_err(unavailable)?
        .execute(params![
            a.id,
            a.agent_id,
            a.tool,
            a.operation,
            a.params.text(),
            a.context.text(),
            a.status.as_str(),
            a.decision.map(Effect::as_str),
            a.reason,
            a.risk_level.map(RiskLevel::as_str),
            a.approval_token,
            a.policy_version,
            a.outcome.map(Outcome::as_str),
            a.reason_code,
            reason_details,
            a.request_hash,
            a.policy_hash,
            a.profile_id,
            a.profile_version,
            a.profile_hash,
            a.runtime_version,
            a.provenance_id,
            result,
            i64::from(a.demo),
            a.created_at,
            a.updated_at,
        ])
        .map_err(unavailable)?;
    Ok(())
}

pub(super) fn insert_event(conn: &Connection, e: &EventRecord) -> StoreResult<i64> {
    conn.prepare_cached(
        "INSERT INTO events (id, action_id, action_pos, event_type, meta, created_at, prev_hash, record_hash) VALUES (?1, ?2, (SELECT rowid FROM actions WHERE id = ?2), ?3, ?4, ?5, ?6, ?7)",
    )
    .map_err(unavailable)?
    .execute(params![e.id, e.action_id, e.event_type.as_str(), json_text(&e.meta, "event meta")?, e.created_at, e.prev_hash, e.record_hash])
    .map_err(unavailable)?;
    Ok(conn.last_insert_rowid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use faramesh_core::ActionStatus;

    /// `EXPLAIN QUERY PLAN` of the listing for `filter`, one line per step.
    fn plan(conn: &Connection, filter: &ActionFilter) -> Vec<String> {
        let (sql, mut args) = listing_query(filter);
        args.extend([SqlValue::Integer(20), SqlValue::Integer(0)]);
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(params_from_iter(args), |row| row.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn every_combination_of_filters_reads_one_index_on_exactly_its_columns_without_sorting() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrations().to_latest(&mut conn).unwrap();
        for agent in [None, Some("agent-a")] {
            for tool in [None, Some("shell")] {
                for status in [None, Some(ActionStatus::Failed)] {
                    let filter = ActionFilter {
                        limit: 20,
                        offset: 0,
                        agent_id: agent.map(str::to_owned),
                        tool: tool.map(str::to_owned),
                        status,
                        names: None,
                    };
                    let steps = plan(&conn, &filter);
                    let text = steps.join("; ");
                    // The page's rows are read by rowid, never by a scan of the table.
                    assert!(
                        steps
                            .iter()
                            .any(|s| s.contains("USING INTEGER PRIMARY KEY (rowid=?)")),
                        "{filter:?}: {text}"
                    );
                    assert!(!text.contains("TEMP B-TREE"), "{filter:?}: {text}");
                    let columns: Vec<&str> = [
                        agent.map(|_| "agent_id=?"),
                        tool.map(|_| "tool=?"),
                        Some("status=?"),
                    ]
                    .into_iter()
                    .flatten()
                    .collect();
                    let searches: Vec<&String> = steps
                        .iter()
                        .filter(|s| s.contains("COVERING INDEX"))
                        .collect();
                    // Without a status, one search per status, merged in order.
                    let arms = if status.is_some() {
                        1
                    } else {
                        ActionStatus::ALL.len()
                    };
                    assert_eq!(searches.len(), arms, "{filter:?}: {text}");
                    let wanted = format!("({})", columns.join(" AND "));
                    assert!(
                        searches.iter().all(|s| s.contains(&wanted)),
                        "{filter:?} should search {wanted}: {text}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_search_merges_one_index_range_per_name_and_status_without_sorting() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrations().to_latest(&mut conn).unwrap();
        let names: Vec<crate::Name> = NameColumn::ALL
            .into_iter()
            .map(|column| crate::Name {
                column,
                value: "support".into(),
            })
            .collect();
        for status in [None, Some(ActionStatus::Failed)] {
            let filter = ActionFilter {
                limit: 20,
                status,
                names: Some(names.clone()),
                ..Default::default()
            };
            let steps = plan(&conn, &filter);
            let text = steps.join("; ");
            assert!(!text.contains("TEMP B-TREE"), "{filter:?}: {text}");
            assert!(!text.contains("SCAN actions"), "{filter:?}: {text}");
            // Merged in order, so reading stops once the page is full.
            assert!(text.contains("MERGE (UNION)"), "{filter:?}: {text}");
            for column in NameColumn::ALL {
                let index = format!("actions_{}_status", column.as_str().trim_end_matches("_id"));
                let wanted = format!(
                    "COVERING INDEX {index} ({}=? AND status=?)",
                    column.as_str()
                );
                let ranges = steps.iter().filter(|s| s.contains(&wanted)).count();
                let per_name = if status.is_some() {
                    1
                } else {
                    ActionStatus::ALL.len()
                };
                assert_eq!(
                    ranges, per_name,
                    "{filter:?} should search {wanted}: {text}"
                );
            }
        }
    }
}
