//! Reelup's upload engine.
//!
//! Everything that moves a video to S3 lives here so that the desktop app, the `reelup` CLI
//! and the end-to-end tests drive exactly the same code. The engine never holds AWS keys: it
//! asks a [`PresignEndpoint`] for a presigned POST policy (small files) or presigned part
//! URLs (multipart), then sends the bytes straight to the object store.

mod bandwidth;
pub mod credentials;
mod error;
mod fingerprint;
pub mod identity;
pub mod invite;
mod media;
mod plan;
pub mod platform;
mod presign;
pub mod profiles;
pub mod queue_state;
pub mod queue_store;
mod retry;
pub mod s3_xml;
mod secret;
mod streaming;
mod transfer;
mod upload;
mod upload_queue;
pub mod watch;
pub mod watch_uploads;

pub use bandwidth::BandwidthLimit;
pub use error::{UploadError, redact_urls};
pub use fingerprint::Fingerprint;
pub use media::{Rejected, VIDEO_EXTENSIONS, collect_videos, content_type_for, is_video};
pub use plan::{MAX_PARTS, MIN_PART_SIZE, PartPlan};
pub use presign::{
    CompanionClient, CompletedPart, FileMeta, ListedPart, MultipartStart, PostPolicy,
    PresignEndpoint, SignedPart, check_presigned_url,
};
pub use retry::RetryPolicy;
pub use secret::Secret;
pub use streaming::StreamingUrlBase;
pub use upload::{Progress, ProgressFn, UploadOptions};
pub use upload_queue::{ProfileTargets, QueueEvent, QueueOptions, UploadQueue};
