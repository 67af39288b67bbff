//! The wire types of reelup-server's own routes, which Companion does not have: redeeming
//! an invite, asking who a token belongs to, re-signing a streaming link, and the health
//! check.
//!
//! | route                  | token | request           | answer           |
//! |------------------------|-------|-------------------|------------------|
//! | `POST /invites/redeem` | no    | [`RedeemRequest`] | [`RedeemResponse`] |
//! | `GET /whoami`          | yes   |                   | [`WhoAmI`]       |
//! | `POST /reelup/link`    | yes   | [`LinkRequest`]   | [`LinkResponse`] |
//! | `GET /health`          | no    |                   | [`Health`]       |
//!
//! `POST /reelup/link` signs a CloudFront link to an object of the caller's (its key under
//! the caller's prefix: another user's key is 403 `forbidden`, a missing object 404
//! `no_such_object`), for `lifetimeSecs` (the server's default when absent; outside the
//! server's bounds 400 `bad_lifetime`), with a canned policy or a custom one (`ipRange`:
//! an address or CIDR range, custom only). A server without a CloudFront key answers 501
//! `links_unavailable`; plain Companion has no such route (404). Client and server both
//! use these, so the names below are the contract; refusals are [`crate::companion::ErrorBody`]
//! as on every route.

use serde::{Deserialize, Serialize};

use crate::Secret;

/// `POST /invites/redeem`'s body: the one-time code from an invite link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemRequest {
    #[serde(with = "crate::secret::as_string")]
    pub code: Secret,
}

/// How every token a reelup-server issues starts (`reelup-server token add|invite`, and
/// the token an invite redeems for).
pub const TOKEN_PREFIX: &str = "rlp_";
/// Hex digits after [`TOKEN_PREFIX`]: 32 bytes (random, or an HMAC-SHA256).
pub const TOKEN_HEX_LEN: usize = 64;

/// Whether `token` has the one shape a reelup-server issues: `rlp_` and 64 lowercase hex
/// digits. A client takes nothing else from `POST /invites/redeem`, so a hostile server
/// cannot make it store (or choke a keyring with) a token of its own making.
pub fn is_server_token(token: &str) -> bool {
    token.strip_prefix(TOKEN_PREFIX).is_some_and(|hex| {
        hex.len() == TOKEN_HEX_LEN && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// `POST /invites/redeem`'s answer: the token the code stood for, and whose it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemResponse {
    #[serde(with = "crate::secret::as_string")]
    pub token: Secret,
    pub user: String,
}

/// `GET /whoami`'s answer (with a token): the user it belongs to and the key prefix the
/// user's uploads go under (`<prefix>/...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    pub user: String,
    pub prefix: String,
}

/// `POST /reelup/link`'s body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    pub key: String,
    #[serde(
        rename = "lifetimeSecs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub lifetime_secs: Option<u64>,
    #[serde(default)]
    pub policy: LinkPolicy,
    /// Only with a custom policy: viewers must come from this address or CIDR range.
    #[serde(rename = "ipRange", default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
}

/// A canned policy (`Expires`: shortest URL) or a custom one (`Policy`: may name an
/// address range).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkPolicy {
    #[default]
    Canned,
    Custom,
}

/// `POST /reelup/link`'s answer: the signed URL and when it stops working (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkResponse {
    pub url: String,
    #[serde(rename = "expiresAt")]
    pub expires_at: u64,
}

/// `GET /health`'s answer (no token): `{"status": "ok"}` while the server serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
}

impl Health {
    pub fn ok() -> Self {
        Self {
            status: "ok".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text<T: Serialize>(value: &T) -> String {
        serde_json::to_string(value).expect("serialises")
    }

    #[test]
    fn redeem_wire_forms_carry_the_secret_and_debug_hides_it() {
        let req = RedeemRequest {
            code: Secret::new("AQAAcode"),
        };
        assert_eq!(text(&req), r#"{"code":"AQAAcode"}"#);
        let resp = RedeemResponse {
            token: Secret::new("tok-9"),
            user: "alice".into(),
        };
        assert_eq!(text(&resp), r#"{"token":"tok-9","user":"alice"}"#);
        let back: RedeemResponse = serde_json::from_str(&text(&resp)).expect("parses");
        assert_eq!(back, resp);
        let debug = format!("{req:?} {resp:?}");
        assert!(
            !debug.contains("AQAAcode") && !debug.contains("tok-9"),
            "{debug}"
        );
        // Without a token there is nothing to store: refused, not an empty token.
        assert!(serde_json::from_str::<RedeemResponse>(r#"{"user":"alice"}"#).is_err());
    }

    #[test]
    fn link_wire_forms() {
        let req = LinkRequest {
            key: "alice/k.mp4".into(),
            lifetime_secs: Some(3600),
            policy: LinkPolicy::Custom,
            ip_range: Some("203.0.113.0/24".into()),
        };
        assert_eq!(
            text(&req),
            r#"{"key":"alice/k.mp4","lifetimeSecs":3600,"policy":"custom","ipRange":"203.0.113.0/24"}"#
        );
        let least: LinkRequest = serde_json::from_str(r#"{"key":"k"}"#).expect("parses");
        assert_eq!(
            (least.policy, least.lifetime_secs),
            (LinkPolicy::Canned, None)
        );
        assert!(serde_json::from_str::<LinkRequest>(r#"{"key":"k","policy":"open"}"#).is_err());
        assert!(serde_json::from_str::<LinkRequest>(r#"{"key":"k","lifetime":5}"#).is_err());
        let resp = LinkResponse {
            url: "https://d/k?Expires=1".into(),
            expires_at: 1,
        };
        assert_eq!(
            text(&resp),
            r#"{"url":"https://d/k?Expires=1","expiresAt":1}"#
        );
    }

    #[test]
    fn whoami_and_health_wire_forms() {
        let who = WhoAmI {
            user: "alice".into(),
            prefix: "uploads/alice".into(),
        };
        assert_eq!(text(&who), r#"{"user":"alice","prefix":"uploads/alice"}"#);
        assert_eq!(text(&Health::ok()), r#"{"status":"ok"}"#);
    }
}
