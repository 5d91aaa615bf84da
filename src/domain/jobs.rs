//! Background jobs: their kinds, their states and the legal moves between them, and how long a
//! failed attempt waits before the next.
//!
//! ```text
//! pending ──claim──▶ running ──▶ completed
//!    │                 │  ├────▶ failed      (last attempt failed, or its lease ran out)
//!    │                 │  └────▶ pending     (retry after a backoff)
//!    └──cancel──▶ cancelled ◀──stopped on request──┘
//! ```

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A job's type: of its row, its DTO and the page alike. Adding one makes the compiler name the
/// places that need it: `as_str` and `has_handler` here, the runner's dispatch
/// (`server::jobs::handlers::run`), `POST /api/admin/jobs` (`server::rest::jobs::create`), the
/// admin page's label for its summary (`ui::admin::jobs::row`), and `JOB_TYPES` below (whose
/// length the compiler checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobType {
    UsageSync,
    DocumentProcessing,
    ReportGeneration,
}

pub const JOB_TYPES: [JobType; 3] = [
    JobType::UsageSync,
    JobType::DocumentProcessing,
    JobType::ReportGeneration,
];

impl JobType {
    pub fn as_str(self) -> &'static str {
        match self {
            JobType::UsageSync => "usage_sync",
            JobType::DocumentProcessing => "document_processing",
            JobType::ReportGeneration => "report_generation",
        }
    }

    /// Whether the runner can do jobs of this type (`document_processing` is reserved).
    pub fn has_handler(self) -> bool {
        match self {
            JobType::UsageSync | JobType::ReportGeneration => true,
            JobType::DocumentProcessing => false,
        }
    }

    /// The types the runner cannot do: the claim leaves their jobs alone.
    pub fn without_handler() -> Vec<&'static str> {
        JOB_TYPES
            .into_iter()
            .filter(|t| !t.has_handler())
            .map(JobType::as_str)
            .collect()
    }
}

/// A stored type that is not one of ours is an error of the database, not of a client.
impl TryFrom<String> for JobType {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl fmt::Display for JobType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        JOB_TYPES
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| one_of("type", s, JOB_TYPES.map(JobType::as_str)))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
}

pub const JOB_STATUSES: [JobStatus; 5] = [
    JobStatus::Pending,
    JobStatus::Running,
    JobStatus::Completed,
    JobStatus::Failed,
    JobStatus::Cancelled,
];

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Nothing happens to a finished job any more.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for JobStatus {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl FromStr for JobStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        JOB_STATUSES
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| one_of("status", s, JOB_STATUSES.map(JobStatus::as_str)))
    }
}

/// What a job was asked to do: the fields of its `metadata` object, by type (serialized as that
/// object: untagged, the type is the job's own column).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum JobInput {
    /// Asked for by someone (their e-mail), or the day's scheduled sync.
    UsageSync {
        #[serde(skip_serializing_if = "Option::is_none")]
        requested_by: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        scheduled_for: Option<String>,
    },
    /// Every user's days from `start_date` to `end_date` (`YYYY-MM-DD`, checked when asked).
    Report {
        start_date: String,
        end_date: String,
    },
    /// Reserved: no handler, nothing read.
    DocumentProcessing {},
}

impl JobInput {
    pub fn kind(&self) -> JobType {
        match self {
            JobInput::UsageSync { .. } => JobType::UsageSync,
            JobInput::Report { .. } => JobType::ReportGeneration,
            JobInput::DocumentProcessing {} => JobType::DocumentProcessing,
        }
    }

    /// The job's `metadata` as stored and sent (the same JSON as before these types).
    pub fn to_metadata(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// A job's input read from its metadata, by its type (a missing field reads as empty).
    pub fn read(kind: JobType, metadata: &serde_json::Value) -> Self {
        let text = |key: &str| metadata[key].as_str().map(str::to_string);
        match kind {
            JobType::UsageSync => JobInput::UsageSync {
                requested_by: text("requested_by"),
                scheduled_for: text("scheduled_for"),
            },
            JobType::ReportGeneration => JobInput::Report {
                start_date: text("start_date").unwrap_or_default(),
                end_date: text("end_date").unwrap_or_default(),
            },
            JobType::DocumentProcessing => JobInput::DocumentProcessing {},
        }
    }
}

/// What a finished job found: its `metadata.summary`, by type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobSummary {
    UsageSync(UsageSyncSummary),
    Report(ReportSummary),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageSyncSummary {
    pub users: i64,
    pub days_written: i64,
    pub failed: i64,
    /// The first 20 users whose sync failed (admins only: see `JobDto::for_non_admin`).
    #[serde(default)]
    pub failures: Vec<SyncFailure>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncFailure {
    pub user_id: String,
    /// The e-mail the admin knows the user by (`None`: the user is gone).
    pub email: Option<String>,
    pub error: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSummary {
    pub from: String,
    pub to: String,
    pub rows: i64,
    pub bytes: i64,
}

impl JobSummary {
    /// A job's summary read from its metadata by its type: `None` before it has one (or for a
    /// type that has none).
    pub fn read(kind: JobType, metadata: &serde_json::Value) -> Option<Self> {
        let summary = metadata.get("summary")?;
        match kind {
            JobType::UsageSync => UsageSyncSummary::deserialize(summary)
                .ok()
                .map(JobSummary::UsageSync),
            JobType::ReportGeneration => ReportSummary::deserialize(summary)
                .ok()
                .map(JobSummary::Report),
            JobType::DocumentProcessing => None,
        }
    }

    /// Puts the summary into a job's metadata (beside its input).
    pub fn write_into(&self, metadata: &mut serde_json::Value) {
        let summary = match self {
            JobSummary::UsageSync(s) => serde_json::to_value(s),
            JobSummary::Report(s) => serde_json::to_value(s),
        };
        if metadata.is_null() {
            *metadata = serde_json::Value::Object(serde_json::Map::new());
        }
        if let (Some(object), Ok(summary)) = (metadata.as_object_mut(), summary) {
            object.insert("summary".into(), summary);
        }
    }
}

fn one_of<const N: usize>(field: &str, got: &str, valid: [&str; N]) -> String {
    format!(
        "{field} must be one of: {} (got {})",
        valid.join(", "),
        crate::domain::text::quoted(got)
    )
}

/// A move the state machine does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a {from} job cannot become {to}")]
pub struct IllegalMove {
    pub from: JobStatus,
    pub to: JobStatus,
}

/// Checks a move: claim (pending → running), cancel (pending → cancelled), the end of an
/// attempt (running → completed, failed, pending for a retry, or cancelled when asked to stop).
/// Finished jobs never move.
pub fn check_move(from: JobStatus, to: JobStatus) -> Result<(), IllegalMove> {
    use JobStatus::*;
    match (from, to) {
        (Pending, Running | Cancelled) | (Running, Completed | Failed | Pending | Cancelled) => {
            Ok(())
        }
        _ => Err(IllegalMove { from, to }),
    }
}

/// What cancelling a job does, by its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cancel {
    /// Pending: cancelled at once.
    Now,
    /// Running: asked to stop; it ends `cancelled` when its handler sees the request.
    Requested,
    /// Finished: nothing to cancel (409).
    Finished,
}

pub fn cancel(status: JobStatus) -> Cancel {
    match status {
        JobStatus::Pending => Cancel::Now,
        JobStatus::Running => Cancel::Requested,
        _ => Cancel::Finished,
    }
}

/// After a failed attempt number `attempt` (1 = the first) of `max_attempts`: `Some(delay in
/// seconds)` before the next, doubling from `base_secs` up to an hour; `None` when that was
/// the last.
pub fn retry_delay_secs(attempt: i64, max_attempts: i64, base_secs: i64) -> Option<i64> {
    if attempt >= max_attempts {
        return None;
    }
    let exp = (attempt - 1).clamp(0, 20) as u32;
    Some(base_secs.saturating_mul(1i64 << exp).min(3600))
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobStatus::*;

    #[test]
    fn inputs_and_summaries_keep_the_json_they_had() {
        let asked = JobInput::UsageSync {
            requested_by: Some("a@example.com".into()),
            scheduled_for: None,
        };
        assert_eq!(
            asked.to_metadata(),
            serde_json::json!({"requested_by": "a@example.com"})
        );
        let report = JobInput::Report {
            start_date: "2026-11-01".into(),
            end_date: "2026-11-30".into(),
        };
        let mut metadata = report.to_metadata();
        assert_eq!(
            metadata,
            serde_json::json!({"start_date": "2026-11-01", "end_date": "2026-11-30"})
        );
        assert_eq!(JobInput::read(JobType::ReportGeneration, &metadata), report);
        assert_eq!(report.kind(), JobType::ReportGeneration);
        assert_eq!(
            JobInput::DocumentProcessing {}.to_metadata(),
            serde_json::json!({})
        );
        assert_eq!(JobSummary::read(JobType::ReportGeneration, &metadata), None);
        let summary = JobSummary::Report(ReportSummary {
            from: "2026-11-01".into(),
            to: "2026-11-30".into(),
            rows: 4,
            bytes: 120,
        });
        summary.write_into(&mut metadata);
        assert_eq!(
            metadata["summary"],
            serde_json::json!({"from": "2026-11-01", "to": "2026-11-30", "rows": 4, "bytes": 120})
        );
        assert_eq!(metadata["start_date"], "2026-11-01");
        assert_eq!(
            JobSummary::read(JobType::ReportGeneration, &metadata),
            Some(summary)
        );
        // Read by the job's type, not guessed from the keys.
        assert_eq!(JobSummary::read(JobType::UsageSync, &metadata), None);
        let sync = serde_json::json!({"summary": {"users": 2, "days_written": 3, "failed": 1,
            "failures": [{"user_id": "u1", "email": null, "error": "boom"}]}});
        let Some(JobSummary::UsageSync(read)) = JobSummary::read(JobType::UsageSync, &sync) else {
            panic!("a usage sync's summary");
        };
        assert_eq!((read.users, read.days_written, read.failed), (2, 3, 1));
        assert_eq!(read.failures[0].email, None);
    }

    #[test]
    fn only_legal_moves_are_allowed() {
        let legal = [
            (Pending, Running),
            (Pending, Cancelled),
            (Running, Completed),
            (Running, Failed),
            (Running, Pending),
            (Running, Cancelled),
        ];
        for from in JOB_STATUSES {
            for to in JOB_STATUSES {
                let want = legal.contains(&(from, to));
                assert_eq!(check_move(from, to).is_ok(), want, "{from} -> {to}");
            }
        }
        assert_eq!(
            check_move(Completed, Running).unwrap_err().to_string(),
            "a completed job cannot become running"
        );
    }

    #[test]
    fn cancelling_depends_on_the_status() {
        for (status, want) in [
            (Pending, Cancel::Now),
            (Running, Cancel::Requested),
            (Completed, Cancel::Finished),
            (Failed, Cancel::Finished),
            (Cancelled, Cancel::Finished),
        ] {
            assert_eq!(cancel(status), want, "{status}");
        }
    }

    #[test]
    fn retries_back_off_exponentially_until_the_last_attempt() {
        for (attempt, max, want) in [
            (1, 3, Some(10)),
            (2, 3, Some(20)),
            (3, 3, None),
            (4, 3, None),
            (1, 1, None),
            (5, 10, Some(160)),
            (9, 10, Some(2560)),
            (10, 30, Some(3600)), // capped at an hour
            (25, 30, Some(3600)),
        ] {
            assert_eq!(retry_delay_secs(attempt, max, 10), want, "{attempt}/{max}");
        }
    }

    #[test]
    fn names_parse_and_unknown_ones_list_the_valid() {
        for t in JOB_TYPES {
            assert_eq!(t.as_str().parse::<JobType>(), Ok(t));
        }
        for s in JOB_STATUSES {
            assert_eq!(s.as_str().parse::<JobStatus>(), Ok(s));
        }
        assert_eq!(
            "sync".parse::<JobType>().unwrap_err(),
            "type must be one of: usage_sync, document_processing, report_generation (got \"sync\")"
        );
        assert!("done"
            .parse::<JobStatus>()
            .unwrap_err()
            .contains("pending, running, completed, failed, cancelled"));
        assert!(!JobType::DocumentProcessing.has_handler());
        assert!(Completed.is_finished() && !Running.is_finished());
    }
}
