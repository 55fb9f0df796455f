//! Canonical JSON on arbitrary JSON: when a value has a canonical form, that form is JSON,
//! and canonicalizing it again gives the same text (idempotence).
#![no_main]

use faramesh_core::json::canonical_string;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(first) = canonical_string(&value) else {
        return;
    };
    let reparsed: Value = match serde_json::from_str(&first) {
        Ok(v) => v,
        Err(e) => panic!("canonical text is not JSON ({e}): {first:?}"),
    };
    let second = match canonical_string(&reparsed) {
        Ok(s) => s,
        Err(e) => panic!("canonical text has no canonical form ({e}): {first:?}"),
    };
    assert_eq!(first, second, "canonicalization is not idempotent");
});
