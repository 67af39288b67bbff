//! CloudFront signed URLs: what `reelup-server` signs with the key of a trusted key group
//! ([`sign`]), the policy statements it signs ([`policy`]), and the check the local stack's
//! CDN route makes with the public key, as CloudFront does at its edge ([`verify`]).
//!
//! CloudFront specifies it all: RSA-2048 keys sign with PKCS#1 v1.5 over SHA-1, ECDSA P-256
//! keys sign with SHA-256 and a DER signature; a canned policy travels as `Expires`, a
//! custom one as `Policy`; both with `Signature` and `Key-Pair-Id`, in CloudFront's own
//! URL-safe base64. botocore's `CloudFrontSigner` is the peer `tests/links` checks against.

pub mod policy;
pub mod sign;
pub mod verify;

use base64::Engine as _;

pub use policy::Policy;
pub use sign::{KeyError, LinkSigner, SignedLink};
pub use verify::{KeyGroup, Refusal, Verifier};

/// How this server signs links: its key, whether every streaming URL must be signed, and
/// the lifetimes clients get and may ask for.
#[derive(Debug)]
pub struct SignedLinks {
    pub signer: LinkSigner,
    pub required: bool,
    pub default_lifetime: std::time::Duration,
    pub max_lifetime: std::time::Duration,
}

impl SignedLinks {
    /// The lifetime for a client that asked for `asked` seconds (none: the default),
    /// within [`crate::config::MIN_LINK_LIFETIME_SECS`] and the maximum; else the bounds.
    pub fn lifetime(&self, asked: Option<u64>) -> Result<u64, String> {
        let max = self.max_lifetime.as_secs();
        let min = crate::config::MIN_LINK_LIFETIME_SECS;
        let secs = asked.unwrap_or(self.default_lifetime.as_secs());
        if (min..=max).contains(&secs) {
            Ok(secs)
        } else {
            Err(format!(
                "a link lifetime of {secs} s is outside this server's bounds: ask for {min} s to {max} s ({})",
                human_secs(max)
            ))
        }
    }
}

/// "30 days", "12 h", "90 s": lifetimes in the words a creator reads.
pub fn human_secs(secs: u64) -> String {
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// The query parameters a signed URL adds; the CDN strips them before it asks the origin,
/// and they are never part of the resource the policy names.
pub const SIGNING_PARAMS: &[&str] = &["Expires", "Policy", "Signature", "Key-Pair-Id"];

/// CloudFront's URL-safe base64: standard base64 with `+` -> `-`, `=` -> `_`, `/` -> `~`
/// (not RFC 4648's URL alphabet, which CloudFront does not read).
pub fn url_safe_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(bytes)
        .chars()
        .map(|c| match c {
            '+' => '-',
            '=' => '_',
            '/' => '~',
            c => c,
        })
        .collect()
}

/// The bytes of [`url_safe_base64`] text; none if it is not that alphabet.
pub fn from_url_safe_base64(text: &str) -> Option<Vec<u8>> {
    // Standard-alphabet characters are refused: they are what an edited URL would carry.
    if text.contains(['+', '=', '/']) {
        return None;
    }
    let standard: String = text
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '=',
            '~' => '/',
            c => c,
        })
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(standard)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_safe_base64_uses_cloudfronts_three_substitutions() {
        // 0xfb 0xff -> "+/8=" in standard base64.
        assert_eq!(url_safe_base64(&[0xfb, 0xff]), "-~8_");
        assert_eq!(from_url_safe_base64("-~8_"), Some(vec![0xfb, 0xff]));
        assert_eq!(from_url_safe_base64("+/8="), None);
        assert_eq!(from_url_safe_base64("!!"), None);
    }
}
