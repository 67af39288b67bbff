//! The checks an upload's bytes get, and what was verified in the end.
//!
//! Two kinds, chosen per upload by what the endpoint offers:
//! - CRC-64/NVME (reelup-server's checksum extension): each part's CRC is computed from
//!   the bytes in memory that are then sent, signed into the part's URL, and checked by the
//!   store; the whole object's CRC is combined from the parts' (no second read) and checked
//!   by the store at complete, whatever the part size.
//! - MD5 (any Companion): computed from the bytes as they are sent, then compared with the
//!   ETag the store answers (the MD5 of what it received). A mismatch sends the part again.
//!
//! What must stay true: a checksum is always of the bytes sent, never of a second read of
//! the file, and [`Verification`] never claims more than was actually compared.

use base64::Engine;
use crc_fast::CrcAlgorithm;
use serde::{Deserialize, Serialize};

/// A CRC-64/NVME, S3's full-object checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crc64Nvme {
    value: u64,
    /// Bytes it covers: needed to combine it with the CRC of what follows.
    len: u64,
}

impl Crc64Nvme {
    /// The CRC of no bytes, to combine others into.
    pub const EMPTY: Self = Self { value: 0, len: 0 };

    pub fn of(bytes: &[u8]) -> Self {
        Self {
            value: crc_fast::checksum(CrcAlgorithm::Crc64Nvme, bytes),
            len: bytes.len() as u64,
        }
    }

    /// The CRC of `self`'s bytes followed by `next`'s, from the two CRCs alone.
    pub fn then(self, next: Self) -> Self {
        if self.len == 0 {
            return next;
        }
        Self {
            value: crc_fast::checksum_combine(
                CrcAlgorithm::Crc64Nvme,
                self.value,
                next.value,
                next.len,
            ),
            len: self.len + next.len,
        }
    }

    /// S3's form: base64 of the eight big-endian bytes.
    pub fn to_base64(self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.value.to_be_bytes())
    }

    /// A CRC in S3's form, covering `len` bytes; `None` if it is not base64 of eight bytes.
    pub fn from_base64(text: &str, len: u64) -> Option<Self> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?;
        let value = u64::from_be_bytes(bytes.try_into().ok()?);
        Some(Self { value, len })
    }
}

/// What was compared for a finished upload, as History and `reelup queue --json` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum Verification {
    /// The store checked every part's CRC-64/NVME and the whole object's, combined from
    /// the parts the file was read into.
    ObjectCrc64nvme,
    /// The store checked every part's CRC-64/NVME; it confirmed no whole-object checksum.
    PartsCrc64nvme,
    /// A POST whose CRC-64/NVME the store checked against the whole file.
    FileCrc64nvme,
    /// Every part's ETag matched the MD5 of the bytes sent.
    PartsMd5,
    /// The POST's ETag matched the MD5 of the whole file as sent.
    FileMd5,
    /// Nothing could be compared: the store answered neither a checksum nor an ETag that
    /// is an MD5 (SSE-KMS, or a proxy that hides ETags).
    Unverified,
}

impl Verification {
    /// One line for people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::ObjectCrc64nvme => "verified: CRC64NVME of the whole file",
            Self::PartsCrc64nvme => "verified: every part's CRC64NVME",
            Self::FileCrc64nvme => "verified: CRC64NVME of the whole file",
            Self::PartsMd5 => "verified: every part's MD5",
            Self::FileMd5 => "verified: MD5 of the whole file",
            Self::Unverified => "not verified: the store answered no checksum to compare",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ObjectCrc64nvme => "object_crc64nvme",
            Self::PartsCrc64nvme => "parts_crc64nvme",
            Self::FileCrc64nvme => "file_crc64nvme",
            Self::PartsMd5 => "parts_md5",
            Self::FileMd5 => "file_md5",
            Self::Unverified => "unverified",
        }
    }

    /// A stored value; `None` for one this version does not know (a newer Reelup's).
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::ObjectCrc64nvme,
            Self::PartsCrc64nvme,
            Self::FileCrc64nvme,
            Self::PartsMd5,
            Self::FileMd5,
            Self::Unverified,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// Whether an ETag names the same bytes as `md5`: ETags come quoted or not, and in either
/// case of hex digits.
pub(crate) fn etag_is_md5(etag: &str, md5: &[u8; 16]) -> bool {
    etag.trim_matches('"')
        .eq_ignore_ascii_case(&hex::encode(md5))
}

/// Whether an ETag is a plain MD5 (32 hex digits, quoted or not): S3's ETag for bytes
/// stored in one piece, unless encrypted with SSE-KMS.
pub(crate) fn is_md5_etag(etag: &str) -> bool {
    let hex = etag.trim_matches('"');
    hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CRC-64/NVME check value (the CRC of "123456789") from the CRC catalogue
    /// (reveng.sourceforge.io, "CRC-64/NVME"), which AWS's SDKs also test against.
    #[test]
    fn crc64nvme_matches_the_published_check_value() {
        let crc = Crc64Nvme::of(b"123456789");
        assert_eq!(crc.value, 0xae8b_1486_0a79_9888);
        assert_eq!(
            Crc64Nvme::from_base64(&crc.to_base64(), 9),
            Some(crc),
            "base64 round trip"
        );
    }

    #[test]
    fn combined_crcs_equal_the_crc_of_the_whole() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect();
        for cut in [0, 1, 4096, 65_537, 99_999, 100_000] {
            let (a, b) = data.split_at(cut);
            assert_eq!(
                Crc64Nvme::EMPTY
                    .then(Crc64Nvme::of(a))
                    .then(Crc64Nvme::of(b)),
                Crc64Nvme::of(&data),
                "cut at {cut}"
            );
        }
        // One flipped byte changes it.
        let mut damaged = data.clone();
        damaged[50_000] ^= 1;
        assert_ne!(Crc64Nvme::of(&damaged), Crc64Nvme::of(&data));
    }

    #[test]
    fn base64_of_anything_but_eight_bytes_is_refused() {
        assert_eq!(Crc64Nvme::from_base64("AAAA", 1), None);
        assert_eq!(Crc64Nvme::from_base64("not base64!", 1), None);
        assert_eq!(Crc64Nvme::from_base64("AAAAAAAAAAAAAA==", 1), None);
    }

    #[test]
    fn verifications_round_trip_their_stored_names() {
        for v in [
            Verification::ObjectCrc64nvme,
            Verification::PartsCrc64nvme,
            Verification::FileCrc64nvme,
            Verification::PartsMd5,
            Verification::FileMd5,
            Verification::Unverified,
        ] {
            assert_eq!(Verification::parse(v.as_str()), Some(v));
            assert_eq!(
                serde_json::to_value(v).unwrap(),
                serde_json::Value::String(v.as_str().into())
            );
        }
        assert_eq!(Verification::parse("sha256_someday"), None);
    }

    #[test]
    fn md5_etags_are_told_from_others() {
        assert!(is_md5_etag("\"0cc175b9c0f1b6a831c399e269772661\""));
        assert!(is_md5_etag("0CC175B9C0F1B6A831C399E269772661"));
        assert!(!is_md5_etag("\"0cc175b9c0f1b6a831c399e269772661-2\""));
        assert!(!is_md5_etag("kms-etag"));
        let md5: [u8; 16] = hex::decode("0cc175b9c0f1b6a831c399e269772661")
            .unwrap()
            .try_into()
            .unwrap();
        assert!(etag_is_md5("\"0cc175b9c0f1b6a831c399e269772661\"", &md5));
        // POST answers carry it unquoted in their XML.
        assert!(etag_is_md5("0CC175B9C0F1B6A831C399E269772661", &md5));
        assert!(!etag_is_md5("\"0cc175b9c0f1b6a831c399e269772662\"", &md5));
    }
}
