//! CRC-64/NVME values as S3 carries them (`x-amz-checksum-crc64nvme`: base64 of the 8-byte
//! big-endian CRC), read strictly from clients and combined across parts.

use base64::Engine;
use crc_fast::CrcAlgorithm;

/// Base64 of 8 bytes: 11 significant characters and one `=`.
const BASE64_LEN: usize = 12;

/// One CRC-64/NVME.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crc64Nvme(pub u64);

impl Crc64Nvme {
    /// The CRC of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(crc_fast::checksum(CrcAlgorithm::Crc64Nvme, bytes))
    }

    /// The CRC of this value's bytes followed by `next_len` bytes whose CRC is `next`:
    /// how S3 makes a full-object checksum from its parts', without reading them again.
    pub fn then(self, next: Self, next_len: u64) -> Self {
        Self(crc_fast::checksum_combine(
            CrcAlgorithm::Crc64Nvme,
            self.0,
            next.0,
            next_len,
        ))
    }

    /// Reads a client's value. Only S3's exact form is accepted (12 characters of
    /// standard, padded base64 decoding to 8 bytes), so the text signed into a URL or a
    /// policy is the text the store will compare.
    pub fn parse(text: &str) -> Result<Self, String> {
        let example = "e.g. AAAAAAAAAAA= for the CRC 0";
        if text.len() != BASE64_LEN {
            // Never echo a long value back: say how long it was.
            let shown = if text.len() <= 2 * BASE64_LEN {
                format!("{text:?} is")
            } else {
                "the value is".to_owned()
            };
            return Err(format!(
                "{shown} {} characters; a CRC-64/NVME is the base64 of its 8 bytes, big-endian: {BASE64_LEN} characters, {example}",
                text.len()
            ));
        }
        let bytes: [u8; 8] = base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                format!(
                    "{text:?} is not base64 of 8 bytes; send the CRC-64/NVME's 8 bytes, big-endian, in standard base64 with its padding, {example}"
                )
            })?;
        Ok(Self(u64::from_be_bytes(bytes)))
    }

    /// S3's form of the value.
    pub fn to_base64(self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0.to_be_bytes())
    }
}

/// A streaming CRC-64/NVME, fed the bytes as they pass.
pub struct Crc64NvmeDigest(crc_fast::Digest);

impl Default for Crc64NvmeDigest {
    fn default() -> Self {
        Self(crc_fast::Digest::new(CrcAlgorithm::Crc64Nvme))
    }
}

impl Crc64NvmeDigest {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn value(&self) -> Crc64Nvme {
        Crc64Nvme(self.0.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The catalogue's check value (CRC-64/NVME of "123456789"), and its S3 form.
    #[test]
    fn matches_the_published_check_value() {
        let crc = Crc64Nvme::of(b"123456789");
        assert_eq!(crc.0, 0xae8b_1486_0a79_9888);
        assert_eq!(crc.to_base64(), "rosUhgp5mIg=");
        assert_eq!(Crc64Nvme::parse("rosUhgp5mIg="), Ok(crc));
        let mut digest = Crc64NvmeDigest::default();
        digest.update(b"1234");
        digest.update(b"56789");
        assert_eq!(digest.value(), crc);
    }

    #[test]
    fn parts_combine_into_the_crc_of_the_whole() {
        let whole: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (a, rest) = whole.split_at(65_537);
        let (b, c) = rest.split_at(1);
        let combined = Crc64Nvme::of(a)
            .then(Crc64Nvme::of(b), b.len() as u64)
            .then(Crc64Nvme::of(c), c.len() as u64);
        assert_eq!(combined, Crc64Nvme::of(&whole));
        // An empty part changes nothing.
        assert_eq!(combined.then(Crc64Nvme::of(&[]), 0), combined);
    }

    #[test]
    fn only_s3s_exact_form_parses() {
        for bad in [
            "",
            "AAAAAAAAAAA",      // no padding
            "AAAAAAAAAAAA",     // 9 bytes' worth, no padding
            "AAAAAAAAAA==",     // 7 bytes
            "AAAAAAAAAAB=",     // trailing bits set: not canonical
            "AAAAAAAAAA-=",     // URL-safe alphabet
            "AAAA AAAAAA=",     // a space
            "AAAAAAAAAAAAAAAA", // 12 bytes
        ] {
            assert!(Crc64Nvme::parse(bad).is_err(), "{bad:?}");
        }
        let huge = "A".repeat(1 << 20);
        let message = Crc64Nvme::parse(&huge).unwrap_err();
        assert!(message.len() < 200, "{message}");
        assert!(message.contains("1048576 characters"), "{message}");
    }
}
