//! What Reelup's client engine and `reelup-server` both speak, and nothing else: the
//! Companion S3 routes' wire types, reelup-server's own routes' wire types, the few S3 XML
//! documents both read, how a streaming URL is built from an object key, and the redacting
//! [`Secret`].
//!
//! The server depends on this crate instead of the client engine, so it links no keyring,
//! SQLite or file watcher.

pub mod companion;
pub mod reelup_routes;
pub mod s3_xml;
mod secret;
mod streaming;

pub use companion::{
    Aborted, AwsCredentials, CRC64NVME, CRC64NVME_HEADER, CompleteMultipart, CompletedPart,
    CreateMultipart, ErrorBody, FileMeta, ListedPart, MultipartCompleted, MultipartStart,
    PostPolicy, SignedPart, SignedPartBatch, StsCredentials,
};
pub use reelup_routes::{
    Health, LinkPolicy, LinkRequest, LinkResponse, RedeemRequest, RedeemResponse, TOKEN_HEX_LEN,
    TOKEN_PREFIX, WhoAmI, is_server_token,
};
pub use secret::Secret;
pub use streaming::StreamingUrlBase;
