//! Checking a profile's endpoint and token before the token is stored or an upload starts:
//! `reelup login`, and "Test connection" in the app's settings.

use std::time::Duration;

use reelup_protocol::WhoAmI;

use crate::Secret;
use crate::config::Flavour;

/// Who the endpoint says the token belongs to, where it says (reelup-server's `/whoami`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub user: Option<String>,
    pub prefix: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot reach {endpoint} ({detail}); check the URL and that the server is running")]
    Unreachable { endpoint: String, detail: String },
    #[error(
        "{endpoint} refused the token (HTTP {status}); check it, or ask the server's admin for a new one"
    )]
    Refused { endpoint: String, status: u16 },
    #[error(
        "{endpoint} has no /whoami, so it is not a reelup-server; if it is a Uppy Companion, set the profile's flavour to companion"
    )]
    NotReelupServer { endpoint: String },
    #[error("{endpoint} answered HTTP {status} ({body}); check the endpoint URL (without /s3)")]
    Unexpected {
        endpoint: String,
        status: u16,
        body: String,
    },
}

impl CheckError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "endpoint_unreachable",
            Self::Refused { .. } => "token_refused",
            Self::NotReelupServer { .. } => "not_reelup_server",
            Self::Unexpected { .. } => "endpoint_error",
        }
    }
}

/// Asks the endpoint whether `token` is good. A reelup-server answers `/whoami`; a plain
/// Companion has no such route, so it is asked to sign a POST policy, which proves the
/// same and uploads nothing.
pub async fn check_endpoint(
    http: &reqwest::Client,
    endpoint: &str,
    flavour: Flavour,
    token: Option<&Secret>,
) -> Result<Identity, CheckError> {
    let endpoint = endpoint.trim_end_matches('/');
    let url = match flavour {
        Flavour::ReelupServer => format!("{endpoint}/whoami"),
        Flavour::Companion => {
            format!("{endpoint}/s3/params?filename=reelup-login-check.mp4&type=video%2Fmp4")
        }
    };
    let mut req = http.get(&url).timeout(Duration::from_secs(15));
    if let Some(t) = token {
        req = req.bearer_auth(t.expose());
    }
    let resp = req.send().await.map_err(|e| CheckError::Unreachable {
        endpoint: endpoint.into(),
        detail: without_url(&e),
    })?;
    let status = resp.status().as_u16();
    match status {
        200..=299 => {}
        401 | 403 => {
            return Err(CheckError::Refused {
                endpoint: endpoint.into(),
                status,
            });
        }
        404 if flavour == Flavour::ReelupServer => {
            return Err(CheckError::NotReelupServer {
                endpoint: endpoint.into(),
            });
        }
        _ => {
            let body = resp.text().await.unwrap_or_default();
            return Err(CheckError::Unexpected {
                endpoint: endpoint.into(),
                status,
                body: body.chars().take(200).collect(),
            });
        }
    }
    if flavour == Flavour::Companion {
        return Ok(Identity::default());
    }
    // A 2xx that is not `WhoAmI` still proves the token; who it is stays unknown.
    Ok(match resp.json::<WhoAmI>().await {
        Ok(who) => Identity {
            user: Some(who.user),
            prefix: Some(who.prefix),
        },
        Err(_) => Identity::default(),
    })
}

/// reqwest's top message is generic ("error sending request") and names the URL; the
/// causes say why, without it. Also used by `invite`.
pub(crate) fn without_url(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else {
        "no connection".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}
