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

/// Why a send is refused before it reaches the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The period's usage (with sends under way) has reached the block threshold.
    Blocked,
    /// What is left cannot hold the prompt and at least one token of reply.
    TooLittleLeft { available: i64 },
}

/// What a send may use: the reply's token cap and the tokens to hold back until it is settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admission {
    pub max_output: i64,
    pub reserve: i64,
}

/// Admits a send whose prompt is estimated at `prompt` tokens and which asks for at most
/// `max_output` tokens of reply, given what the period has `used`, what sends under way hold
/// (`reserved`), and the limit. The reply's cap shrinks to what is left, so concurrent sends
/// can never together pass the block threshold (as long as the estimates hold).
pub fn admit(
    used: i64,
    reserved: i64,
    limit: Option<i64>,
    thresholds: Thresholds,
    prompt: i64,
    max_output: i64,
) -> Result<Admission, Refusal> {
    let Some(limit) = limit else {
        return Ok(Admission {
            max_output,
            reserve: 0,
        });
    };
    let cap = (i128::from(limit.max(0)) * i128::from(thresholds.block) / 100) as i64;
    let committed = used.max(0) + reserved.max(0);
    if committed >= cap {
        return Err(Refusal::Blocked);
    }
    let available = cap - committed;
    if available < prompt + 1 {
        return Err(Refusal::TooLittleLeft { available });
    }
    let max_output = max_output.clamp(1, available - prompt);
    Ok(Admission {
        max_output,
        reserve: prompt + max_output,
    })
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

    #[test]
    fn admission_shrinks_the_reply_to_what_is_left_and_never_passes_the_limit() {
        let t = Thresholds::default();
        // Plenty left: as asked, and the whole estimate is held back.
        assert_eq!(
            admit(0, 0, Some(10_000), t, 100, 1_000),
            Ok(Admission {
                max_output: 1_000,
                reserve: 1_100
            })
        );
        // 9,000 used and 500 held by a send under way: 500 left, the reply gets 400.
        assert_eq!(
            admit(9_000, 500, Some(10_000), t, 100, 4_096),
            Ok(Admission {
                max_output: 400,
                reserve: 500
            })
        );
        assert_eq!(
            admit(9_000, 900, Some(10_000), t, 100, 4_096),
            Err(Refusal::TooLittleLeft { available: 100 })
        );
        assert_eq!(
            admit(10_000, 0, Some(10_000), t, 1, 1),
            Err(Refusal::Blocked)
        );
        assert_eq!(
            admit(9_000, 1_000, Some(10_000), t, 1, 1),
            Err(Refusal::Blocked)
        );
        assert_eq!(admit(0, 0, Some(0), t, 1, 1), Err(Refusal::Blocked));
        // Unlimited: nothing held back.
        assert_eq!(
            admit(i64::MAX / 2, 0, None, t, 10, 20),
            Ok(Admission {
                max_output: 20,
                reserve: 0
            })
        );
        // A block threshold below 100 %: the cap is that share of the limit.
        let early = Thresholds::new(50, 80, 90).unwrap();
        assert_eq!(
            admit(9_000, 0, Some(10_000), early, 1, 1),
            Err(Refusal::Blocked)
        );
    }

    #[test]
    fn any_order_of_admissions_stays_within_the_limit() {
        let t = Thresholds::default();
        let limit = 10_000;
        let mut reserved = 0;
        let mut admitted = 0;
        // 20 sends arrive while none has finished: what they hold never passes the limit.
        for _ in 0..20 {
            if let Ok(a) = admit(9_000, reserved, Some(limit), t, 30, 4_096) {
                reserved += a.reserve;
                admitted += 1;
            }
        }
        assert!(9_000 + reserved <= limit, "{reserved}");
        assert_eq!(admitted, 1, "the first takes what is left");
    }
}
