//! One upload's bytes, from the file to the object store: how a file is cut into parts
//! (`plan`), how a part or a POST is sent and checked (`transfer`), when a failed request is
//! tried again (`retry`), and how fast bytes may go (`pacing`). Nothing here knows about the
//! queue's database; the queue drives these pieces.

mod options;
mod pacing;
mod plan;
mod retry;
pub(crate) mod transfer;

pub use options::{Progress, ProgressFn, UploadOptions};
pub use pacing::BandwidthLimit;
pub use plan::{MAX_PARTS, MIN_PART_SIZE, PartPlan};
pub use retry::RetryPolicy;
