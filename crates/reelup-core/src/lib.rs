//! Reelup's upload engine.
//!
//! Everything that moves a video to S3 lives here so that the desktop app, the `reelup` CLI
//! and the end-to-end tests drive exactly the same code. The engine never holds AWS keys: it
//! asks a [`PresignEndpoint`] for a presigned POST policy (small files) or presigned part
//! URLs (multipart), then sends the bytes straight to the object store.
//!
//! Where things live (the README's layout table says the same):
//!
//! | folder         | what it holds                                                        |
//! |----------------|----------------------------------------------------------------------|
//! | `endpoint/`    | the presign endpoint seam, the Companion client, endpoint identity   |
//! | `engine/`      | one upload's bytes: part plan, transfers, retry loop, pacing, permits |
//! | `queue/`       | the durable queue: its front, state machine, scheduler, SQLite store |
//! | `watch/`       | watched folders: settling, filters, roots, feeding the queue         |
//! | `config/`      | profiles in `config.toml` and their validation                       |
//! | `credentials/` | endpoint tokens in the OS keyring, invite links                      |
//! | `media/`       | which files are videos, content types, file fingerprints             |
//! | `platform.rs`  | everything that differs between Linux, macOS and Windows             |
//!
//! The wire types both the engine and `reelup-server` speak are in `reelup-protocol` and
//! re-exported here. The types every caller needs are re-exported at the root; the rest are
//! reached through their folder.

pub mod config;
pub mod credentials;
pub mod endpoint;
pub mod engine;
mod error;
pub mod media;
pub mod platform;
pub mod queue;
pub mod watch;

pub use endpoint::{CompanionClient, PresignEndpoint, check_presigned_url};
pub use engine::{
    BandwidthLimit, MAX_PARTS, MIN_PART_SIZE, PartPlan, Progress, ProgressFn, RetryPolicy,
    UploadOptions, Verification,
};
pub use error::{ErrorCode, UnknownErrorCode, UploadError, redact_urls};
pub use media::{
    Fingerprint, Rejected, VIDEO_EXTENSIONS, VideoDetails, collect_videos, content_type_for,
    details_line, is_video,
};
pub use queue::{ProfileTargets, QueueEvent, QueueOptions, UploadQueue};
pub use reelup_protocol::{
    CompletedPart, FileMeta, LinkPolicy, LinkRequest, LinkResponse, ListedPart, MultipartCompleted,
    MultipartStart, PostPolicy, Secret, SignedPart, StreamingUrlBase, s3_xml,
};
