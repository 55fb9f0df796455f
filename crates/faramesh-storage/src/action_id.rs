//! Action ids: UUIDs whose first characters are mostly random, so an 8-character prefix
//! names an action, yet which keep a database's id index local to the present.
//!
//! An id index keyed by fully random UUIDs (version 4) takes every insert at a random place:
//! each new action dirties its own index page, and every commit writes all of those pages to
//! the write-ahead log and later back to the database. With 32 actions per group commit, those
//! pages were three quarters of the bytes written, and durable submissions ran at about 8,000/s
//! instead of 14,000/s. Time-ordered UUIDs (version 7) append instead, but put 48 bits of
//! timestamp first: every action of the same minute would share its 8-character prefix, which
//! people read and type to name one (`faramesh approve 3f2a9c1e`).
//!
//! So an id is a version 8 (custom layout) UUID: 16 bits of the current millisecond, wrapping
//! every 65 seconds, then 106 random bits. The ids of one group commit fall in the few index
//! pages that hold their milliseconds, and the first 8 characters still carry 32 bits that
//! differ between actions: 16 of the clock and 16 random ones, which tell apart actions of the
//! same millisecond.

use std::time::{SystemTime, UNIX_EPOCH};

/// A new action id, as text: `xxxxxxxx-xxxx-8xxx-yxxx-xxxxxxxxxxxx`.
pub fn new_action_id() -> String {
    let millisecond = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    action_id_at(millisecond, *uuid::Uuid::new_v4().as_bytes())
}

/// The id of an action created at `millisecond` (since the Unix epoch) from `random` bytes.
fn action_id_at(millisecond: u128, random: [u8; 16]) -> String {
    let mut bytes = random;
    // Truncation is the point: the clock part wraps, so it stays two bytes.
    bytes[..2].copy_from_slice(&(millisecond as u16).to_be_bytes());
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_a_version_8_uuid_that_starts_with_the_wrapping_millisecond() {
        let id = action_id_at(0x1_2345_abcd, [0xff; 16]);
        assert_eq!(id, "abcdffff-ffff-8fff-bfff-ffffffffffff");
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.get_version_num(), 8);
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
    }

    #[test]
    fn ids_of_one_millisecond_sort_together_and_differ_in_their_prefix() {
        let millisecond = 1_800_000_000_000;
        let mut ids: Vec<String> = (0..64u8)
            .map(|i| {
                let mut random = [0u8; 16];
                random[2] = i.wrapping_mul(37);
                random[15] = i;
                action_id_at(millisecond, random)
            })
            .collect();
        let later = action_id_at(millisecond + 1, [0; 16]);
        ids.sort();
        assert!(ids.iter().all(|id| id[..4] == ids[0][..4]));
        assert!(ids.last().unwrap() < &later);
        let prefixes: std::collections::HashSet<&str> = ids.iter().map(|id| &id[..8]).collect();
        assert_eq!(
            prefixes.len(),
            64,
            "the random half of the prefix tells them apart"
        );
    }

    #[test]
    fn new_ids_are_distinct() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_action_id()).collect();
        assert_eq!(ids.len(), 1000);
    }
}
