//! What Reelup's client engine and `reelup-server` both speak, and nothing else: the
//! Companion S3 routes' wire types, the few S3 XML documents both read, how a streaming URL
//! is built from an object key, and the redacting [`Secret`].
//!
//! The server depends on this crate instead of the client engine, so it links no keyring,
//! SQLite or file watcher.

pub mod companion;
pub mod s3_xml;
mod secret;
mod streaming;

pub use companion::{CompletedPart, FileMeta, ListedPart, MultipartStart, PostPolicy, SignedPart};
pub use secret::Secret;
pub use streaming::StreamingUrlBase;
