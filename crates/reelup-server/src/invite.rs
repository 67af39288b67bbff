//! Invite links: how a creator connects without anyone typing or pasting a long-lived token.
//!
//! `reelup-server token add|invite NAME` prints
//! `reelup://connect?endpoint=<url>&cdn=<url>&code=<code>[&name=<profile>]`. The code is
//! stateless: the user's name, a random 16-byte nonce and an expiry, MAC'd with the server
//! secret, in URL-safe base64. The token it redeems for is derived from the nonce with the
//! same secret, so it is stored nowhere either: `token add|invite` append only its SHA-256
//! to the user's `token_sha256`, as for any token. `POST /invites/redeem` checks the MAC and
//! the expiry, then marks the nonce used with a conditional PUT (`If-None-Match: *`) of
//! [`Invite::marker_key`] in the bucket, so every replica sharing the bucket agrees that a
//! code works once; only then does it hand out the token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{ServerConfig, check_url, valid_name};
use crate::secret::ServerSecret;

/// How long an invite link works unless `--expires` says otherwise.
pub const DEFAULT_VALID_FOR: Duration = Duration::from_secs(24 * 3600);
/// The longest `--expires`: a link is a bearer credential until used, so not forever.
pub const MAX_VALID_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// Keys of used-invite markers. User prefixes are `valid_name`s, which have no dots, so no
/// user can sign for, and the CDN route never serves, anything under it.
pub const MARKER_PREFIX: &str = ".reelup/invites/";
/// The longest code this server makes (a 64-byte name) is 163 characters; anything much
/// longer is refused before it is decoded.
pub const MAX_CODE_LEN: usize = 256;

/// Names what the MAC covers, so neither an uploadId tag nor an invite token ever verifies
/// as a code.
const CODE_DOMAIN: &[u8] = b"reelup-server invite code v1";
/// The derivation of the token an invite redeems for.
const TOKEN_DOMAIN: &[u8] = b"reelup invite token";
const VERSION: u8 = 1;
const NONCE_LEN: usize = 16;
const MAC_LEN: usize = 32;
/// Version, expiry, nonce.
const HEAD_LEN: usize = 1 + 8 + NONCE_LEN;

/// What an invite code says, once its MAC checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub user: String,
    pub nonce: [u8; NONCE_LEN],
    /// Unix seconds; the code works strictly before this.
    pub expires: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Garbled, edited, cut short, or made with another server's secret.
    #[error("the invite code is not one this server made")]
    Invalid,
    #[error("the invite code has expired")]
    Expired,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Invite {
    /// A new invite for `user`, working for `valid_for` from `now`.
    pub fn new(user: &str, now: SystemTime, valid_for: Duration) -> Self {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        Self {
            user: user.to_owned(),
            nonce,
            expires: unix(now).saturating_add(valid_for.as_secs()),
        }
    }

    fn payload(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(HEAD_LEN + self.user.len());
        p.push(VERSION);
        p.extend_from_slice(&self.expires.to_be_bytes());
        p.extend_from_slice(&self.nonce);
        // Last, so its length is whatever is left before the fixed-length MAC.
        p.extend_from_slice(self.user.as_bytes());
        p
    }

    fn mac(secret: &ServerSecret, payload: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = secret.mac(CODE_DOMAIN);
        mac.update(payload);
        mac.finalize().into_bytes().into()
    }

    /// The code that goes in the link: URL-safe base64 of the payload and its MAC.
    pub fn seal(&self, secret: &ServerSecret) -> String {
        let mut bytes = self.payload();
        let mac = Self::mac(secret, &bytes);
        bytes.extend_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The invite in `code`, if this server's secret made it and it has not expired at
    /// `now`. The MAC is checked first, so a forged code is `Invalid` whatever it claims.
    pub fn open(secret: &ServerSecret, code: &str, now: SystemTime) -> Result<Self, CodeError> {
        if code.len() > MAX_CODE_LEN {
            return Err(CodeError::Invalid);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(code.trim())
            .map_err(|_| CodeError::Invalid)?;
        if bytes.len() < HEAD_LEN + 1 + MAC_LEN {
            return Err(CodeError::Invalid);
        }
        let (payload, mac) = bytes.split_at(bytes.len() - MAC_LEN);
        let expected = Self::mac(secret, payload);
        if !bool::from(expected.ct_eq(mac)) {
            return Err(CodeError::Invalid);
        }
        if payload[0] != VERSION {
            return Err(CodeError::Invalid);
        }
        let expires = u64::from_be_bytes(payload[1..9].try_into().expect("8 bytes"));
        let nonce: [u8; NONCE_LEN] = payload[9..HEAD_LEN].try_into().expect("16 bytes");
        let user = std::str::from_utf8(&payload[HEAD_LEN..]).map_err(|_| CodeError::Invalid)?;
        if !valid_name(user) {
            return Err(CodeError::Invalid);
        }
        if unix(now) >= expires {
            return Err(CodeError::Expired);
        }
        Ok(Self {
            user: user.to_owned(),
            nonce,
            expires,
        })
    }

    /// The token this invite redeems for, in the shape of [`crate::users::new_token`]:
    /// derived from the nonce, so neither the code nor the server has to store it.
    pub fn token(&self, secret: &ServerSecret) -> String {
        let mut mac = secret.mac(TOKEN_DOMAIN);
        mac.update(&self.nonce);
        format!(
            "{}{}",
            reelup_protocol::TOKEN_PREFIX,
            hex::encode(mac.finalize().into_bytes())
        )
    }

    /// Where the bucket records that this invite was used.
    pub fn marker_key(&self) -> String {
        format!("{MARKER_PREFIX}{}", hex::encode(Sha256::digest(self.nonce)))
    }
}

/// A new invite for `user`: its code, and the token to add to the user's hashes.
#[derive(Debug, Clone)]
pub struct Issued {
    pub invite: Invite,
    pub code: String,
    pub token: String,
}

pub fn issue(secret: &ServerSecret, user: &str, now: SystemTime, valid_for: Duration) -> Issued {
    let invite = Invite::new(user, now, valid_for);
    Issued {
        code: invite.seal(secret),
        token: invite.token(secret),
        invite,
    }
}

fn encoded(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `reelup://connect?endpoint=..&cdn=..&code=..[&name=..]`, the format the app and the CLI
/// take. It never carries a token.
pub fn link(endpoint: &str, cdn: &str, code: &str, name: Option<&str>) -> String {
    let mut link = format!(
        "reelup://connect?endpoint={}&cdn={}&code={}",
        encoded(endpoint.trim_end_matches('/')),
        encoded(cdn.trim_end_matches('/')),
        encoded(code)
    );
    if let Some(name) = name {
        link.push_str("&name=");
        link.push_str(&encoded(name));
    }
    link
}

/// The endpoint URL invite links name: `--endpoint`, else the config's `public_url`.
pub fn public_endpoint(
    config: &ServerConfig,
    config_path: &std::path::Path,
    flag: Option<&str>,
) -> anyhow::Result<String> {
    match flag.or(config.public_url.as_deref()) {
        Some(url) => {
            check_url(url, false).map_err(|m| anyhow::anyhow!("--endpoint: {m}"))?;
            Ok(url.trim_end_matches('/').to_owned())
        }
        None => anyhow::bail!(
            "an invite link needs this server's public URL, and none is set: add \
             public_url = \"https://uploads.example.com\" to {} (or set \
             REELUP_SERVER_PUBLIC_URL), or pass --endpoint URL",
            config_path.display()
        ),
    }
}

/// `24h`, `30m`, `7d`, `90s` or plain seconds; from 1 minute to 30 days.
pub fn parse_valid_for(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; write e.g. 24h, 30m or 7d"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 24 * 3600,
        other => {
            return Err(format!(
                "{other:?} is not a unit; write e.g. 24h, 30m or 7d (s, m, h, d)"
            ));
        }
    };
    let d = Duration::from_secs(n.saturating_mul(scale));
    if d < Duration::from_secs(60) || d > MAX_VALID_FOR {
        return Err(format!(
            "{text:?} is out of range; an invite can last from 1 minute to 30 days"
        ));
    }
    Ok(d)
}

/// The link drawn as a QR code of Unicode half blocks, for a phone or a second screen.
pub fn qr(link: &str) -> Option<String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(link.as_bytes()).ok()?;
    // Light modules drawn as blocks: terminals are mostly dark, and scanners want dark on
    // light with the quiet zone around it.
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn codes_round_trip_and_expire() {
        let secret = ServerSecret::from_bytes([7; 32]);
        let issued = issue(&secret, "alice", at(1_000_000), DEFAULT_VALID_FOR);
        assert!(issued.code.len() <= MAX_CODE_LEN);
        assert!(
            issued
                .code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{}",
            issued.code
        );
        let opened = Invite::open(&secret, &issued.code, at(1_000_001)).expect("opens");
        assert_eq!(opened, issued.invite);
        assert_eq!(opened.token(&secret), issued.token);
        // The only shape a client stores from POST /invites/redeem.
        assert!(reelup_protocol::is_server_token(&issued.token));
        assert!(issued.token.starts_with("rlp_") && issued.token.len() == 68);
        assert!(!issued.code.contains(&issued.token[4..]));
        assert!(opened.marker_key().starts_with(".reelup/invites/"));
        assert_eq!(
            Invite::open(&secret, &issued.code, at(1_000_000 + 24 * 3600)),
            Err(CodeError::Expired)
        );
        // Two invites for one user: different codes, tokens and markers.
        let other = issue(&secret, "alice", at(1_000_000), DEFAULT_VALID_FOR);
        assert_ne!(other.code, issued.code);
        assert_ne!(other.token, issued.token);
        assert_ne!(other.invite.marker_key(), issued.invite.marker_key());
        // The longest name still fits.
        let long = "a".repeat(64);
        let code = issue(&secret, &long, at(0), DEFAULT_VALID_FOR).code;
        assert!(code.len() <= MAX_CODE_LEN, "{}", code.len());
        assert_eq!(
            Invite::open(&secret, &code, at(1)).map(|i| i.user),
            Ok(long)
        );
    }

    #[test]
    fn tampered_or_foreign_codes_are_invalid() {
        let secret = ServerSecret::from_bytes([7; 32]);
        let issued = issue(&secret, "alice", at(1_000_000), DEFAULT_VALID_FOR);
        let now = at(1_000_001);
        let other = ServerSecret::from_bytes([8; 32]);
        assert_eq!(
            Invite::open(&other, &issued.code, now),
            Err(CodeError::Invalid)
        );
        // Every single-character edit.
        let bytes = issued.code.as_bytes();
        for i in 0..bytes.len() {
            let mut edited = bytes.to_vec();
            edited[i] = if edited[i] == b'A' { b'B' } else { b'A' };
            let edited = String::from_utf8(edited).expect("ascii");
            assert_eq!(
                Invite::open(&secret, &edited, now),
                Err(CodeError::Invalid),
                "edit at {i}"
            );
        }
        // A later expiry, re-encoded, without the secret to MAC it.
        let mut raw = URL_SAFE_NO_PAD.decode(&issued.code).expect("b64");
        raw[1..9].copy_from_slice(&u64::MAX.to_be_bytes());
        let extended = URL_SAFE_NO_PAD.encode(&raw);
        assert_eq!(
            Invite::open(&secret, &extended, at(2_000_000_000)),
            Err(CodeError::Invalid)
        );
        for bad in [
            "",
            "x",
            "====",
            &issued.code[..issued.code.len() - 1],
            &format!("{}A", issued.code),
            &"A".repeat(MAX_CODE_LEN + 1),
        ] {
            assert_eq!(
                Invite::open(&secret, bad, now),
                Err(CodeError::Invalid),
                "{bad}"
            );
        }
        // A forged code that has also expired is still just invalid.
        assert_eq!(
            Invite::open(&other, &issued.code, at(u64::MAX / 2)),
            Err(CodeError::Invalid)
        );
    }

    #[test]
    fn links_carry_endpoint_cdn_code_and_name_never_the_token() {
        let l = link(
            "https://uploads.example.com/",
            "https://d1.cloudfront.net",
            "abc-_9",
            Some("studio"),
        );
        assert_eq!(
            l,
            "reelup://connect?endpoint=https%3A%2F%2Fuploads.example.com\
             &cdn=https%3A%2F%2Fd1.cloudfront.net&code=abc-_9&name=studio"
        );
        let parsed = url::Url::parse(&l).expect("URL");
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        assert_eq!(pairs[0].1, "https://uploads.example.com");
        assert!(qr(&l).is_some_and(|q| q.contains('█') || q.contains('▀')));
    }

    #[test]
    fn expiry_durations() {
        assert_eq!(parse_valid_for("24h"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_valid_for("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_valid_for("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_valid_for("3600"), Ok(Duration::from_secs(3600)));
        for bad in ["", "h", "1x", "10s", "31d", "-1h", "99999999999999999999d"] {
            assert!(parse_valid_for(bad).is_err(), "{bad}");
        }
    }
}
