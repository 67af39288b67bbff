//! Settings and progress reports shared by every upload path.

use std::sync::Arc;

use serde::Serialize;

const MIB: u64 = 1024 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct UploadOptions {
    /// Files of at least this size go up as multipart; smaller ones by one POST.
    pub multipart_threshold: u64,
    /// Preferred part size; [`crate::PartPlan`] raises it to fit S3's part limit. Parts
    /// are streamed from disk, so memory does not grow with it.
    pub part_size: u64,
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self {
            multipart_threshold: 16 * MIB,
            part_size: 16 * MIB,
        }
    }
}

/// Called as bytes go out; callers throttle it for display.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// Bytes of one file sent so far: streamed bytes for a POST, finished parts for multipart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub sent: u64,
    pub total: u64,
}
