//! Background jobs as clients see them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobDto {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub progress: i32,
    pub user_id: Option<Uuid>,
    pub metadata: Value,
    pub error: Option<String>,
    pub attempts: i32,
    pub max_attempts: i32,
    pub cancel_requested: bool,
    pub run_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// A report is ready to download.
    pub has_result: bool,
}

/// A page of jobs, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobPageDto {
    pub jobs: Vec<JobDto>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}
