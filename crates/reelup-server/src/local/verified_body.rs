//! A request body that checks itself as it streams: the digests a client declared
//! (Content-MD5, `x-amz-checksum-*` headers or aws-chunked trailers) are computed over
//! the bytes on their way to disk, and a mismatch ends the stream with an error instead
//! of its last `None`. s3s-fs writes bodies to a temporary file and renames it into place
//! only once the stream ended cleanly, so a damaged body leaves nothing behind (and an
//! earlier good copy of the part or object stays).
//!
//! The part's CRC-64/NVME is always computed (a few GB/s, far below disk speed here), so
//! complete can build the whole object's from its parts without reading them again.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use md5::Digest;
use s3s::dto::{Checksum, StreamingBlob};
use s3s::stream::{ByteStream, RemainingLength};
use s3s::{StdError, TrailingHeaders};

use crate::checksum::{Crc64Nvme, Crc64NvmeDigest};

/// What the client said the body's digests are.
#[derive(Debug, Default, Clone)]
pub struct Declared {
    /// Content-MD5's 16 bytes.
    pub md5: Option<[u8; 16]>,
    /// `x-amz-checksum-*` from headers (base64, as sent).
    pub checksums: Checksum,
    /// The names an `x-amz-trailer` header announced; their values arrive after the body.
    pub trailer: Vec<String>,
}

/// What the stream found once it ended.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub size: u64,
    pub crc64nvme: Crc64Nvme,
    /// Every checksum the client declared, as computed from the bytes.
    pub checksums: Checksum,
    /// Why the body was refused, if it was.
    pub mismatch: Option<String>,
}

/// The shared end of a [`VerifiedBody`]: readable once the store has consumed the body.
#[derive(Clone, Default)]
pub struct Outcome(Arc<Mutex<Option<Verdict>>>);

impl Outcome {
    pub fn verdict(&self) -> Option<Verdict> {
        self.0.lock().ok().and_then(|v| v.clone())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct DigestMismatch(String);

pub struct VerifiedBody {
    inner: StreamingBlob,
    declared: Declared,
    trailers: Option<TrailingHeaders>,
    md5: Option<md5::Md5>,
    hasher: s3s::checksum::ChecksumHasher,
    crc64nvme: Crc64NvmeDigest,
    size: u64,
    outcome: Outcome,
    ended: bool,
}

/// The header a checksum field is sent in, and which of [`Checksum`]'s fields it fills.
const CHECKSUM_HEADERS: [&str; 5] = [
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
    "x-amz-checksum-crc64nvme",
];

fn field_of<'a>(checksums: &'a mut Checksum, header: &str) -> Option<&'a mut Option<String>> {
    Some(match header {
        "x-amz-checksum-crc32" => &mut checksums.checksum_crc32,
        "x-amz-checksum-crc32c" => &mut checksums.checksum_crc32c,
        "x-amz-checksum-sha1" => &mut checksums.checksum_sha1,
        "x-amz-checksum-sha256" => &mut checksums.checksum_sha256,
        "x-amz-checksum-crc64nvme" => &mut checksums.checksum_crc64nvme,
        _ => return None,
    })
}

impl VerifiedBody {
    pub fn new(
        inner: StreamingBlob,
        declared: Declared,
        trailers: Option<TrailingHeaders>,
    ) -> (Self, Outcome) {
        let wanted = |header: &str, value: &Option<String>| {
            value.is_some() || declared.trailer.iter().any(|t| t == header)
        };
        let c = &declared.checksums;
        // CRC-64/NVME is computed below in any case; the hasher does the others.
        let hasher = s3s::checksum::ChecksumHasher {
            crc32: wanted(CHECKSUM_HEADERS[0], &c.checksum_crc32).then(Default::default),
            crc32c: wanted(CHECKSUM_HEADERS[1], &c.checksum_crc32c).then(Default::default),
            sha1: wanted(CHECKSUM_HEADERS[2], &c.checksum_sha1).then(Default::default),
            sha256: wanted(CHECKSUM_HEADERS[3], &c.checksum_sha256).then(Default::default),
            crc64nvme: None,
        };
        let outcome = Outcome::default();
        let body = Self {
            inner,
            md5: declared.md5.map(|_| md5::Md5::new()),
            declared,
            trailers,
            hasher,
            crc64nvme: Crc64NvmeDigest::default(),
            size: 0,
            outcome: outcome.clone(),
            ended: false,
        };
        (body, outcome)
    }

    /// Compares everything declared with what the bytes give; `Some(reason)` on a mismatch.
    fn judge(&mut self) -> Verdict {
        let crc64nvme = self.crc64nvme.value();
        let mut computed = std::mem::take(&mut self.hasher).finalize();
        computed.checksum_crc64nvme = Some(crc64nvme.to_base64());
        let mut declared = self.declared.checksums.clone();
        if let Some(trailers) = &self.trailers {
            // Read, not taken: the store reads them too.
            trailers.read(|headers| {
                for header in CHECKSUM_HEADERS {
                    if let (Some(value), Some(field)) = (
                        headers.get(header).and_then(|v| v.to_str().ok()),
                        field_of(&mut declared, header),
                    ) {
                        *field = Some(value.to_owned());
                    }
                }
            });
        }
        let mut mismatch = None;
        if let (Some(want), Some(md5)) = (self.declared.md5, self.md5.take()) {
            let got: [u8; 16] = md5.finalize().into();
            if got != want {
                mismatch = Some(format!(
                    "the Content-MD5 you specified did not match what we received (sent {}, received {})",
                    hex::encode(want),
                    hex::encode(got)
                ));
            }
        }
        let mut answered = Checksum::default();
        for header in CHECKSUM_HEADERS {
            let want = field_of(&mut declared, header).and_then(|f| f.clone());
            let got = field_of(&mut computed, header).and_then(|f| f.clone());
            if let Some(want) = want {
                if mismatch.is_none() && Some(&want) != got.as_ref() {
                    mismatch = Some(format!(
                        "the {header} you specified did not match the calculated checksum (sent {want}, calculated {})",
                        got.as_deref().unwrap_or("nothing")
                    ));
                }
                if let Some(field) = field_of(&mut answered, header) {
                    *field = got;
                }
            }
        }
        Verdict {
            size: self.size,
            crc64nvme,
            checksums: answered,
            mismatch,
        }
    }
}

impl Stream for VerifiedBody {
    type Item = Result<Bytes, StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                let this = &mut *self;
                if let Some(md5) = &mut this.md5 {
                    md5.update(&bytes);
                }
                this.hasher.update(&bytes);
                this.crc64nvme.update(&bytes);
                this.size += bytes.len() as u64;
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(None) => {
                self.ended = true;
                let verdict = self.judge();
                let refusal = verdict.mismatch.clone();
                if let Ok(mut slot) = self.outcome.0.lock() {
                    *slot = Some(verdict);
                }
                Poll::Ready(refusal.map(|why| Err(Box::new(DigestMismatch(why)) as StdError)))
            }
            other => other,
        }
    }
}

impl ByteStream for VerifiedBody {
    fn remaining_length(&self) -> RemainingLength {
        self.inner.remaining_length()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn blob(chunks: &[&'static [u8]]) -> StreamingBlob {
        let items: Vec<Result<Bytes, std::io::Error>> =
            chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
        StreamingBlob::wrap(futures::stream::iter(items))
    }

    async fn drain(body: VerifiedBody) -> Vec<Result<Bytes, StdError>> {
        body.collect().await
    }

    #[tokio::test]
    async fn a_matching_body_passes_and_reports_its_crc() {
        let declared = Declared {
            md5: Some(md5::Md5::digest(b"123456789").into()),
            checksums: Checksum {
                checksum_crc64nvme: Some("rosUhgp5mIg=".into()),
                ..Default::default()
            },
            trailer: Vec::new(),
        };
        let (body, outcome) = VerifiedBody::new(blob(&[b"1234", b"56789"]), declared, None);
        let items = drain(body).await;
        assert!(items.iter().all(Result::is_ok));
        let verdict = outcome.verdict().expect("ended");
        assert_eq!(verdict.mismatch, None);
        assert_eq!(
            (verdict.size, verdict.crc64nvme.0),
            (9, 0xae8b_1486_0a79_9888)
        );
        assert_eq!(
            verdict.checksums.checksum_crc64nvme.as_deref(),
            Some("rosUhgp5mIg=")
        );
    }

    #[tokio::test]
    async fn a_flipped_byte_ends_the_stream_with_an_error() {
        for declared in [
            Declared {
                md5: Some(md5::Md5::digest(b"123456789").into()),
                ..Default::default()
            },
            Declared {
                checksums: Checksum {
                    checksum_crc64nvme: Some("rosUhgp5mIg=".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
            Declared {
                checksums: Checksum {
                    checksum_crc32c: Some(
                        s3s::checksum::ChecksumHasher {
                            crc32c: Some(Default::default()),
                            ..Default::default()
                        }
                        .finalize()
                        .checksum_crc32c
                        .expect("empty crc32c"),
                    ),
                    ..Default::default()
                },
                ..Default::default()
            },
        ] {
            let (body, outcome) =
                VerifiedBody::new(blob(&[b"1234", b"56788"]), declared.clone(), None);
            let items = drain(body).await;
            assert_eq!(items.len(), 3, "{declared:?}");
            assert!(items[2].is_err(), "{declared:?}");
            let why = outcome.verdict().and_then(|v| v.mismatch).expect("refused");
            assert!(why.contains("did not match"), "{why}");
        }
    }

    #[tokio::test]
    async fn nothing_declared_passes_anything() {
        let (body, outcome) = VerifiedBody::new(blob(&[b"abc"]), Declared::default(), None);
        assert!(drain(body).await.iter().all(Result::is_ok));
        let verdict = outcome.verdict().expect("ended");
        assert_eq!(verdict.mismatch, None);
        assert_eq!(verdict.crc64nvme, Crc64Nvme::of(b"abc"));
    }
}
