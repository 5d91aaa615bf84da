//! The quota rule: from the tokens used in the period, the limit and the thresholds, how far
//! along a user is and which flags are up. Flags are cumulative (blocked implies upgrade
//! suggested implies warning). All comparisons are exact integer arithmetic; the percentage is
//! only for showing.

use serde::{Deserialize, Serialize};

/// Percentages at which the flags go up. Defaults 80 / 95 / 100.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thresholds {
    pub warning: u32,
    pub upgrade: u32,
    pub block: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            warning: 80,
            upgrade: 95,
            block: 100,
        }
    }
}

impl Thresholds {
    /// Checks `0 < warning <= upgrade <= block <= 100`.
    pub fn new(warning: u32, upgrade: u32, block: u32) -> Result<Self, String> {
        if warning == 0 || warning > upgrade || upgrade > block || block > 100 {
            return Err(format!(
                "thresholds must satisfy 0 < warning <= upgrade <= block <= 100 (got {warning}/{upgrade}/{block})"
            ));
        }
        Ok(Self {
            warning,
            upgrade,
            block,
        })
    }
}

/// Where a user stands in the period.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuotaStatus {
    /// Tokens allowed in the period; `None` is unlimited.
    pub limit: Option<i64>,
    pub used: i64,
    /// `None` when unlimited; never negative.
    pub remaining: Option<i64>,
    /// Used / limit × 100, rounded down to two decimals (0 when unlimited, 100 for a zero limit).
    pub percentage: f64,
    pub is_warning: bool,
    pub is_upgrade_suggested: bool,
    pub is_blocked: bool,
}

/// True when `used` is at least `percent` % of `limit` (exact).
fn at_least(used: i64, limit: i64, percent: u32) -> bool {
    i128::from(used) * 100 >= i128::from(limit) * i128::from(percent)
}

/// The rule. A zero limit is blocked from the start; unlimited is never flagged.
pub fn quota_status(used: i64, limit: Option<i64>, thresholds: Thresholds) -> QuotaStatus {
    let used = used.max(0);
    match limit {
        None => QuotaStatus {
            limit: None,
            used,
            remaining: None,
            percentage: 0.0,
            is_warning: false,
            is_upgrade_suggested: false,
            is_blocked: false,
        },
        Some(limit) if limit <= 0 => QuotaStatus {
            limit: Some(0),
            used,
            remaining: Some(0),
            percentage: 100.0,
            is_warning: true,
            is_upgrade_suggested: true,
            is_blocked: true,
        },
        Some(limit) => {
            let basis_points = i128::from(used) * 10_000 / i128::from(limit);
            let is_blocked = at_least(used, limit, thresholds.block);
            let is_upgrade_suggested = is_blocked || at_least(used, limit, thresholds.upgrade);
            QuotaStatus {
                limit: Some(limit),
                used,
                remaining: Some((limit - used).max(0)),
                percentage: basis_points.min(i128::from(i64::MAX)) as f64 / 100.0,
                is_warning: is_upgrade_suggested || at_least(used, limit, thresholds.warning),
                is_upgrade_suggested,
                is_blocked,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_at_every_boundary() {
        let t = Thresholds::default();
        // (used of 10_000, percentage, warning, upgrade, blocked)
        for (used, pct, w, u, b) in [
            (0, 0.0, false, false, false),
            (7_999, 79.99, false, false, false),
            (8_000, 80.0, true, false, false),
            (9_499, 94.99, true, false, false),
            (9_500, 95.0, true, true, false),
            (9_999, 99.99, true, true, false),
            (10_000, 100.0, true, true, true),
            (15_000, 150.0, true, true, true),
        ] {
            let s = quota_status(used, Some(10_000), t);
            assert_eq!(s.percentage, pct, "{used}");
            assert_eq!(
                (s.is_warning, s.is_upgrade_suggested, s.is_blocked),
                (w, u, b),
                "{used}"
            );
            assert_eq!(s.remaining, Some((10_000 - used).max(0)), "{used}");
        }
    }

    #[test]
    fn boundaries_are_exact_for_limits_that_do_not_divide() {
        let t = Thresholds::default();
        // 80% of 3 tokens is 2.4: 2 is below, 3 is at the block.
        assert!(!quota_status(2, Some(3), t).is_warning);
        assert!(quota_status(3, Some(3), t).is_blocked);
        // 79.999...% of a large limit is still below.
        let limit = 1_000_000_007;
        let below = limit * 8 / 10;
        assert!(!quota_status(below, Some(limit), t).is_warning);
        assert!(quota_status(below + 1, Some(limit), t).is_warning);
    }

    #[test]
    fn zero_and_unlimited() {
        let t = Thresholds::default();
        let zero = quota_status(0, Some(0), t);
        assert!(zero.is_blocked && zero.is_warning && zero.is_upgrade_suggested);
        assert_eq!(zero.percentage, 100.0);
        let unlimited = quota_status(i64::MAX, None, t);
        assert!(!unlimited.is_warning && !unlimited.is_blocked);
        assert_eq!(unlimited.remaining, None);
        assert_eq!(unlimited.percentage, 0.0);
    }

    #[test]
    fn thresholds_are_configurable_and_checked() {
        let t = Thresholds::new(50, 75, 90).unwrap();
        let s = quota_status(90, Some(100), t);
        assert!(s.is_blocked);
        assert!(!quota_status(49, Some(100), t).is_warning);
        for (w, u, b) in [(0, 95, 100), (96, 95, 100), (80, 101, 100), (80, 95, 101)] {
            assert!(Thresholds::new(w, u, b).is_err(), "{w}/{u}/{b}");
        }
    }
}
