//! One file's bytes, from the disk to the object store: how a file is cut into parts
//! (`plan`), the part permits shared by every file (`permits`), how one part or POST is
//! sent and checked (`transfer`), when a failed request is tried again (`retry`), how fast
//! bytes may go (`pacing`), the POST and multipart protocols (`post`, `multipart`), the
//! progress maths (`progress`), the checksums bytes get (`checksum`) and what is read for an upload (`source`: the file, or a
//! new layout of it).
//!
//! Nothing here knows about the queue's database: a multipart upload records its parts
//! through a [`PartLedger`], which the queue implements over its store.

mod buffers;
pub mod checksum;
mod multipart;
mod options;
mod pacing;
mod permits;
mod plan;
mod post;
pub(crate) mod progress;
mod retry;
pub mod source;
pub(crate) mod transfer;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub(crate) use buffers::BufferPool;

pub use checksum::Verification;
pub(crate) use multipart::PartLedger;
pub use multipart::{FinishedPart, MultipartUpload};
pub use options::{Progress, ProgressFn, UploadOptions};
pub use pacing::BandwidthLimit;
pub use permits::MAX_PARTS_IN_FLIGHT;
pub(crate) use permits::PartPermits;
pub use plan::{MAX_PARTS, MIN_PART_SIZE, PartPlan};
pub(crate) use retry::Retrier;
pub use retry::RetryPolicy;
pub use source::{Segment, Source};

use crate::FileMeta;

/// What every upload of a queue shares: one HTTP client, one bandwidth limit, one pool of
/// part permits.
pub(crate) struct Wire {
    pub http: reqwest::Client,
    pub pacing: transfer::Pacing,
    pub permits: PartPermits,
    /// Where checksummed parts and small files are read into.
    pub buffers: Arc<BufferPool>,
}

/// A finished upload: the object's key, and what was verified on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Uploaded {
    pub key: String,
    pub verified: Verification,
}

/// One run of one file's upload: who signs, what is sent, and how it is paced, retried,
/// reported and stopped.
pub(crate) struct FileUpload<'a, E> {
    pub endpoint: &'a E,
    /// The presign endpoint's URL; the presigned URLs it hands back are checked against it.
    pub endpoint_url: &'a str,
    /// The CDN base, to check the finished object's ETag where the CDN can be asked.
    pub cdn: &'a str,
    /// The bytes sent: the file as it is, or re-laid (faststart).
    pub source: &'a Source,
    /// Name, content type and size (`meta.size`, the source's length) as declared to the
    /// endpoint.
    pub meta: &'a FileMeta,
    pub wire: &'a Wire,
    pub retry: &'a Retrier,
    pub progress: &'a ProgressFn,
    pub stop: &'a CancellationToken,
}
