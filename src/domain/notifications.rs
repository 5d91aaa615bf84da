//! Notifications: what a user is told once per period, and in which words. The quota's
//! thresholds each give one (warning, upgrade, blocked), and so does the forecast the first time
//! it says the limit will be reached before the reset. When a check finds several crossed at
//! once (a user jumping from 79 % to 100 % in one reply), only the highest is told; the lower
//! ones are stored as superseded (read, not listed), so they are not told later either.

use super::forecast::Forecast;
use super::quota::QuotaStatus;
use super::time::short_day;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// The forecast first says the limit will be reached before the reset.
    QuotaForecast,
    QuotaWarning,
    QuotaUpgrade,
    QuotaBlocked,
}

/// Lowest to highest: a higher one crossed in the same check supersedes the lower.
pub const NOTIFICATION_KINDS: [NotificationKind; 4] = [
    NotificationKind::QuotaForecast,
    NotificationKind::QuotaWarning,
    NotificationKind::QuotaUpgrade,
    NotificationKind::QuotaBlocked,
];

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::QuotaForecast => "quota_forecast",
            NotificationKind::QuotaWarning => "quota_warning",
            NotificationKind::QuotaUpgrade => "quota_upgrade",
            NotificationKind::QuotaBlocked => "quota_blocked",
        }
    }

    /// Its bit in a set of kinds ([`Kinds`]).
    fn bit(self) -> u8 {
        1 << NOTIFICATION_KINDS
            .iter()
            .position(|k| *k == self)
            .unwrap_or_default()
    }
}

impl fmt::Display for NotificationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NotificationKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        NOTIFICATION_KINDS
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let allowed: Vec<&str> = NOTIFICATION_KINDS.map(NotificationKind::as_str).into();
                format!("kind must be one of {} (got {s:?})", allowed.join(", "))
            })
    }
}

/// A stored kind that is not one of ours is an error of the database, not of a client.
impl TryFrom<String> for NotificationKind {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// A set of kinds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Kinds(u8);

impl Kinds {
    pub fn all() -> Kinds {
        Kinds(NOTIFICATION_KINDS.iter().fold(0, |bits, k| bits | k.bit()))
    }

    pub fn contains(self, kind: NotificationKind) -> bool {
        self.0 & kind.bit() != 0
    }

    pub fn with(self, kind: NotificationKind) -> Kinds {
        Kinds(self.0 | kind.bit())
    }

    pub fn union(self, other: Kinds) -> Kinds {
        Kinds(self.0 | other.0)
    }

    pub fn iter(self) -> impl Iterator<Item = NotificationKind> {
        NOTIFICATION_KINDS
            .into_iter()
            .filter(move |k| self.contains(*k))
    }
}

/// The kinds a user's standing calls for (whether or not they were told already).
pub fn due(status: &QuotaStatus, forecast: &Forecast) -> Kinds {
    let mut kinds = Kinds::default();
    if status.limit.is_none() {
        return kinds;
    }
    if forecast.limit_on.is_some() {
        kinds = kinds.with(NotificationKind::QuotaForecast);
    }
    if status.is_warning {
        kinds = kinds.with(NotificationKind::QuotaWarning);
    }
    if status.is_upgrade_suggested {
        kinds = kinds.with(NotificationKind::QuotaUpgrade);
    }
    if status.is_blocked {
        kinds = kinds.with(NotificationKind::QuotaBlocked);
    }
    kinds
}

/// Of the kinds newly due, the one to tell: the highest threshold crossed; the forecast only
/// when no threshold is.
pub fn to_tell(new: Kinds) -> Option<NotificationKind> {
    NOTIFICATION_KINDS
        .into_iter()
        .rev()
        .find(|k| new.contains(*k))
}

/// What a notification says: a title and a plain-text body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub title: String,
    pub body: String,
}

/// The words of a notification of `kind` for a user at `status`, with the forecast's date of
/// the limit and the local day the quota resets.
pub fn message(
    kind: NotificationKind,
    status: &QuotaStatus,
    limit_on: Option<NaiveDate>,
    resets_on: NaiveDate,
) -> Message {
    let used = format!(
        "You have used {} % of your monthly tokens ({} of {}).",
        status.percentage.floor(),
        status.used,
        status.limit.unwrap_or_default()
    );
    let resets = format!("Your quota resets on {}.", short_day(resets_on));
    let (title, body) = match kind {
        NotificationKind::QuotaForecast => (
            match limit_on {
                Some(day) => format!("At this pace you reach your limit on {}", short_day(day)),
                None => "At this pace you reach your limit before the reset".into(),
            },
            format!("{used} {resets}"),
        ),
        NotificationKind::QuotaWarning => (
            format!("{} % of your monthly tokens used", status.percentage.floor()),
            format!("{used} {resets}"),
        ),
        NotificationKind::QuotaUpgrade => (
            "You are close to your monthly limit".into(),
            format!("{used} {resets} A larger plan is on the pricing page."),
        ),
        NotificationKind::QuotaBlocked => (
            "You have reached your monthly limit".into(),
            format!("{used} New messages are refused until the reset. {resets} A larger plan is on the pricing page."),
        ),
    };
    Message { title, body }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::quota::{quota_status, Thresholds};

    fn forecast_with(limit_on: Option<NaiveDate>) -> Forecast {
        Forecast {
            pace: crate::domain::forecast::Pace {
                amount: 0,
                seconds: 1,
            },
            projected: 0,
            projected_percentage: None,
            warning_on: None,
            upgrade_on: None,
            limit_on,
        }
    }

    #[test]
    fn what_is_due_and_what_is_told() {
        let t = Thresholds::default();
        let none = forecast_with(None);
        let soon = forecast_with(NaiveDate::from_ymd_opt(2026, 12, 19));
        assert_eq!(due(&quota_status(10, None, t), &soon), Kinds::default());
        assert_eq!(
            due(&quota_status(79, Some(100), t), &none),
            Kinds::default()
        );
        let forecast_only = due(&quota_status(10, Some(100), t), &soon);
        assert_eq!(
            forecast_only.iter().collect::<Vec<_>>(),
            [NotificationKind::QuotaForecast]
        );
        assert_eq!(
            to_tell(forecast_only),
            Some(NotificationKind::QuotaForecast)
        );
        let warned = due(&quota_status(80, Some(100), t), &soon);
        assert_eq!(to_tell(warned), Some(NotificationKind::QuotaWarning));
        // From 79 % to 100 % at once: only the block is told.
        let all = due(&quota_status(100, Some(100), t), &none);
        assert_eq!(all.iter().count(), 3);
        assert_eq!(to_tell(all), Some(NotificationKind::QuotaBlocked));
        assert_eq!(to_tell(Kinds::default()), None);
        assert!(Kinds::all().iter().eq(NOTIFICATION_KINDS));
    }

    #[test]
    fn kinds_read_back_and_refuse_others() {
        for kind in NOTIFICATION_KINDS {
            assert_eq!(kind.as_str().parse::<NotificationKind>(), Ok(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
        let err = "quota".parse::<NotificationKind>().unwrap_err();
        assert!(err.contains("quota_warning"), "{err}");
    }

    #[test]
    fn the_words() {
        let t = Thresholds::default();
        let resets = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
        let m = message(
            NotificationKind::QuotaForecast,
            &quota_status(30_000, Some(100_000), t),
            NaiveDate::from_ymd_opt(2026, 12, 19),
            resets,
        );
        assert_eq!(m.title, "At this pace you reach your limit on 19 Dec");
        assert_eq!(
            m.body,
            "You have used 30 % of your monthly tokens (30000 of 100000). Your quota resets on 1 Jan."
        );
        let m = message(
            NotificationKind::QuotaWarning,
            &quota_status(80_500, Some(100_000), t),
            None,
            resets,
        );
        assert_eq!(m.title, "80 % of your monthly tokens used");
        let m = message(
            NotificationKind::QuotaBlocked,
            &quota_status(100_000, Some(100_000), t),
            None,
            resets,
        );
        assert!(m.body.contains("refused until the reset"), "{}", m.body);
    }
}
