//! The wire types of reelup-server's own routes, which Companion does not have: redeeming
//! an invite, asking who a token belongs to, and the health check. Client and server both
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
    fn whoami_and_health_wire_forms() {
        let who = WhoAmI {
            user: "alice".into(),
            prefix: "uploads/alice".into(),
        };
        assert_eq!(text(&who), r#"{"user":"alice","prefix":"uploads/alice"}"#);
        assert_eq!(text(&Health::ok()), r#"{"status":"ok"}"#);
    }
}
