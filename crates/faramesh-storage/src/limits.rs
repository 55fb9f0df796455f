//! Usage of the policy's limits, as stored: each action's charge against a limit is a row, and
//! a limit's usage is the sum of its rows within the window.

use chrono::{DateTime, Utc};
use faramesh_core::policy::limits::{LimitCharge, LimitExceeded};
use serde::Serialize;

/// How [`crate::Store::charge_limits`] treats the charges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeMode {
    /// Count every charge when all fit; otherwise count none and say which does not.
    CheckAndCount,
    /// Only say whether every charge fits (an action a human decides later).
    CheckOnly,
    /// Count every charge, fitting or not (an action a human approved).
    CountAnyway,
}

impl ChargeMode {
    /// Whether the charges are counted, given whether one of them did not fit.
    pub(crate) fn counts(self, exceeded: bool) -> bool {
        match self {
            ChargeMode::CheckAndCount => !exceeded,
            ChargeMode::CheckOnly => false,
            ChargeMode::CountAnyway => true,
        }
    }
}

/// The usage of one limit by one key, now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitUsage {
    pub limit: String,
    pub key: String,
    /// The sum of the counted amounts in the window (calls count 1 each).
    pub used: f64,
    /// How many actions were counted in the window.
    pub calls: u64,
}

/// The start of `charge`'s window ending at `now`, as stored times compare.
pub(crate) fn window_start(now: DateTime<Utc>, window_seconds: u64) -> String {
    let seconds = i64::try_from(window_seconds).unwrap_or(i64::MAX);
    let start = chrono::TimeDelta::try_seconds(seconds)
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    faramesh_core::timestamp::format(start)
}

/// The first charge that does not fit `used` (the usage found for each, in order), if any.
pub(crate) fn first_exceeded(charges: &[LimitCharge], used: &[f64]) -> Option<LimitExceeded> {
    charges
        .iter()
        .zip(used)
        .find(|(c, u)| !c.fits(**u))
        .map(|(c, u)| c.exceeded(*u))
}
