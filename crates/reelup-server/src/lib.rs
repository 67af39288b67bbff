//! `reelup-server`: signs SigV4 POST policies and multipart part URLs for one bucket behind
//! Uppy Companion's S3 routes, and in `--local` mode runs the whole stack on loopback: an
//! embedded S3-compatible store that checks signatures and a CDN-like route with Range.

pub mod api;
pub mod cdn;
pub mod checksum;
pub mod cloudfront;
pub mod config;
pub mod content_type;
pub mod credentials;
pub mod edge;
pub mod invite;
pub mod local;
pub mod post_policy;
pub mod secret;
pub mod serve;
pub mod store;
pub mod tokens;
pub mod users;

pub use api::{ApiState, router, router_with};
pub use local::{LocalOptions, LocalStack};
