//! API tokens in SQLite. Token writes are rare, so they use a pooled connection of their own
//! instead of the action writer's group commit.

use super::unavailable;
use crate::decode::{decode_token, RawToken, TOKEN_COLUMNS};
use crate::{NewToken, StoreError, StoreResult, TokenRecord};
use rusqlite::{params, Connection, OptionalExtension, Row};

fn decode(row: &Row<'_>) -> rusqlite::Result<RawToken> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

pub(super) fn create(conn: &Connection, new: NewToken) -> StoreResult<TokenRecord> {
    let record = TokenRecord::new(new);
    let inserted = conn.execute(
        "INSERT INTO api_tokens (id, name, role, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            record.id,
            record.name,
            record.role.as_str(),
            record.secret_hash,
            record.created_at
        ],
    );
    match inserted {
        Ok(_) => Ok(record),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(StoreError::TokenNameTaken(record.name))
        }
        Err(e) => Err(unavailable(e)),
    }
}

pub(super) fn list(conn: &Connection) -> StoreResult<Vec<TokenRecord>> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, rowid");
    let mut stmt = conn.prepare_cached(&sql).map_err(unavailable)?;
    let raws = stmt
        .query_map([], decode)
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    raws.into_iter().map(decode_token).collect()
}

pub(super) fn revoke(conn: &Connection, name_or_id: &str) -> StoreResult<Option<TokenRecord>> {
    let sql = format!(
        "UPDATE api_tokens SET revoked_at = ?2 WHERE revoked_at IS NULL AND (name = ?1 OR id = ?1) RETURNING {TOKEN_COLUMNS}"
    );
    let raw = conn
        .query_row(&sql, params![name_or_id, crate::now_timestamp()], decode)
        .optional()
        .map_err(unavailable)?;
    raw.map(decode_token).transpose()
}

pub(super) fn by_hash(conn: &Connection, secret_hash: &str) -> StoreResult<Option<TokenRecord>> {
    let sql = format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE secret_hash = ?1 AND revoked_at IS NULL"
    );
    let raw = conn
        .prepare_cached(&sql)
        .map_err(unavailable)?
        .query_row([secret_hash], decode)
        .optional()
        .map_err(unavailable)?;
    raw.map(decode_token).transpose()
}
