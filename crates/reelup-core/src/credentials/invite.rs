//! Invite links: connecting to a reelup-server from one link instead of typing an endpoint,
//! a CDN URL and a long-lived token.
//!
//! `reelup://connect?endpoint=<url>&cdn=<url>&code=<code>[&name=<profile name>]`, printed by
//! `reelup-server token add|invite`. The link holds a one-time code, never a token:
//! [`redeem`] trades the code for the token at `POST {endpoint}/invites/redeem`, which works
//! once. [`accept`] does all of it for the CLI (`reelup login --invite`) and the app: parse,
//! redeem, save the profile, store the token in the keyring, test the connection.

use std::path::Path;
use std::time::Duration;

use reelup_protocol::{ErrorBody, RedeemRequest, RedeemResponse};

use crate::config::{ConfigError, Flavour, Profile, ProfileConfig, check_name, check_url};
use crate::credentials::{CredentialError, CredentialStore, StoredToken};
use crate::endpoint::identity::{CheckError, check_endpoint};
use crate::{ErrorCode, Secret};

/// The scheme the desktop app registers for deep links.
pub const SCHEME: &str = "reelup";
/// Longest link taken; real ones are a few hundred characters.
pub const MAX_LINK_LEN: usize = 4096;
/// Codes are URL-safe base64 of at most a few hundred bytes.
const CODE_LEN: std::ops::RangeInclusive<usize> = 16..=512;
const REDEEM_TIMEOUT: Duration = Duration::from_secs(30);

/// A parsed invite link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// The presign endpoint (no trailing `/`), https unless on this machine.
    pub endpoint: String,
    /// The CDN base URL (no trailing `/`), https unless on this machine.
    pub cdn: String,
    /// The one-time code; a [`Secret`] so that it never reaches a log.
    pub code: Secret,
    /// The profile name the link suggests, if any (not checked: see [`profile_name_for`]).
    pub name: Option<String>,
}

/// What redeeming a code gave.
#[derive(Debug, Clone)]
pub struct Redeemed {
    pub token: Secret,
    /// The user the token belongs to on the server.
    pub user: String,
}

/// What [`accept`] set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The profile created or updated.
    pub profile: String,
    /// The user the server knows the token as.
    pub user: String,
    /// Where that user's uploads go (`<prefix>/`), as the server said.
    pub prefix: Option<String>,
    /// Whether the profile is now the default.
    pub is_default: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    #[error(
        "this is not a Reelup invite link: {reason}; copy the whole link again, or ask for a new invite link"
    )]
    NotAnInvite { reason: String },
    #[error("the server does not accept this invite code ({message}); ask for a new invite link")]
    Invalid { message: String },
    #[error("this invite link has expired; ask for a new invite link")]
    Expired,
    #[error(
        "this invite link has already been used; each link works once, so ask for a new invite link"
    )]
    Used,
    #[error("the server no longer accepts this invite ({message}); ask for a new invite link")]
    Revoked { message: String },
    #[error(
        "cannot reach {endpoint} ({detail}); check your connection and try the same link again"
    )]
    Unreachable { endpoint: String, detail: String },
    #[error(
        "{endpoint} is refusing requests for now (too many); wait {retry_after_secs} s and try the same link again"
    )]
    RateLimited {
        endpoint: String,
        retry_after_secs: u64,
    },
    #[error(
        "{endpoint} answered HTTP {status} to the invite ({detail}); is it a reelup-server? Ask whoever sent the link"
    )]
    Server {
        endpoint: String,
        status: u16,
        detail: String,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Keyring(#[from] CredentialError),
    /// The profile and token were saved, but the endpoint refused or could not be reached
    /// with the new token.
    #[error(
        "profile {profile:?} is saved with its token, but the connection test failed: {source}"
    )]
    ConnectionTest {
        profile: String,
        #[source]
        source: CheckError,
    },
}

impl InviteError {
    /// A stable name for the error, for the app's UI and `--json` output.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotAnInvite { .. } => ErrorCode::InviteLinkInvalid,
            Self::Invalid { .. } => ErrorCode::InviteInvalid,
            Self::Expired => ErrorCode::InviteExpired,
            Self::Used => ErrorCode::InviteUsed,
            Self::Revoked { .. } => ErrorCode::InviteRevoked,
            Self::Unreachable { .. } => ErrorCode::EndpointUnreachable,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::Server { .. } => ErrorCode::EndpointError,
            Self::Config(e) => e.code(),
            Self::Keyring(e) => e.code(),
            Self::ConnectionTest { source, .. } => ErrorCode::from(source),
        }
    }
}

fn not_an_invite(reason: impl Into<String>) -> InviteError {
    InviteError::NotAnInvite {
        reason: reason.into(),
    }
}

impl Invite {
    /// Reads an invite link: exactly `reelup://connect?` with `endpoint`, `cdn`, `code` and
    /// optionally `name`, each once. Anything else is refused with what is wrong: a link is
    /// what the consent panel shows, so nothing in it may go unread (an unknown parameter
    /// could mean something to a later version that this one would not show), and a
    /// parameter given twice could mean two things.
    pub fn parse(link: &str) -> Result<Self, InviteError> {
        let link = link.trim();
        if link.len() > MAX_LINK_LEN {
            return Err(not_an_invite(format!(
                "it is {} characters long, far more than an invite",
                link.len()
            )));
        }
        let url = url::Url::parse(link)
            .map_err(|e| not_an_invite(format!("it does not parse as a link ({e})")))?;
        if !url.scheme().eq_ignore_ascii_case(SCHEME) {
            return Err(not_an_invite(format!(
                "it starts with {}: instead of {SCHEME}://connect",
                url.scheme()
            )));
        }
        // Exactly `reelup://connect?...`: the form `reelup-server` prints and the OS hands
        // over. No user name, port, path or fragment, which no invite has.
        let exact = url
            .host_str()
            .is_some_and(|h| h.eq_ignore_ascii_case("connect"))
            && url.username().is_empty()
            && url.password().is_none()
            && url.port().is_none()
            && matches!(url.path(), "" | "/")
            && url.fragment().is_none();
        if !exact {
            return Err(not_an_invite(
                "it is not a connect link (reelup://connect?...)",
            ));
        }
        let (mut endpoint, mut cdn, mut code, mut name) = (None, None, None, None);
        for (key, value) in url.query_pairs() {
            let slot = match key.as_ref() {
                "endpoint" => &mut endpoint,
                "cdn" => &mut cdn,
                "code" => &mut code,
                "name" => &mut name,
                other => {
                    return Err(not_an_invite(format!(
                        "it has a parameter {:?} that invites do not have (they have endpoint, \
                         cdn, code and name)",
                        other.chars().take(40).collect::<String>()
                    )));
                }
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(not_an_invite(format!("it gives {key} twice")));
            }
        }
        let endpoint = endpoint
            .filter(|e| !e.is_empty())
            .ok_or_else(|| not_an_invite("it has no endpoint"))?;
        check_url(&endpoint, "its endpoint").map_err(not_an_invite)?;
        let cdn = cdn
            .filter(|c| !c.is_empty())
            .ok_or_else(|| not_an_invite("it has no cdn"))?;
        check_url(&cdn, "its cdn").map_err(not_an_invite)?;
        let code = code
            .filter(|c| !c.is_empty())
            .ok_or_else(|| not_an_invite("it has no code"))?;
        let code_ok = CODE_LEN.contains(&code.len())
            && code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !code_ok {
            return Err(not_an_invite(
                "its code is cut short or has characters an invite code never has",
            ));
        }
        Ok(Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            cdn: cdn.trim_end_matches('/').to_owned(),
            code: Secret::new(code),
            name: name.filter(|n| !n.trim().is_empty()),
        })
    }
}

/// A valid profile name from whatever text: characters a profile name cannot have become
/// `-`, at most 64 of them; `None` if nothing usable is left.
fn usable_name(text: &str) -> Option<String> {
    let mapped: String = text
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    let trimmed = mapped.trim_matches(|c| c == '-' || c == '.');
    (check_name(trimmed).is_ok() && trimmed.chars().any(|c| c.is_ascii_alphanumeric()))
        .then(|| trimmed.to_owned())
}

/// The profile an invite goes into: `given` (checked as typed), else the link's `name`,
/// else the endpoint's host name (made valid), else `reelup`.
pub fn profile_name_for(invite: &Invite, given: Option<&str>) -> Result<String, InviteError> {
    if let Some(given) = given {
        check_name(given).map_err(ConfigError::from)?;
        return Ok(given.to_owned());
    }
    let from_host = || {
        url::Url::parse(&invite.endpoint)
            .ok()
            .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_owned()))
            .and_then(|h| usable_name(&h))
    };
    Ok(invite
        .name
        .as_deref()
        .and_then(usable_name)
        .or_else(from_host)
        .unwrap_or_else(|| "reelup".to_owned()))
}

/// Trades the invite's code for its token at `POST {endpoint}/invites/redeem`. The code
/// works once: after `Ok`, the same link gives [`InviteError::Used`].
pub async fn redeem(http: &reqwest::Client, invite: &Invite) -> Result<Redeemed, InviteError> {
    let endpoint = invite.endpoint.clone();
    let resp = http
        .post(format!("{endpoint}/invites/redeem"))
        .json(&RedeemRequest {
            code: invite.code.clone(),
        })
        .timeout(REDEEM_TIMEOUT)
        .send()
        .await
        .map_err(|e| InviteError::Unreachable {
            endpoint: endpoint.clone(),
            detail: crate::endpoint::identity::without_url(&e),
        })?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(60);
    let text = resp.text().await.map_err(|e| InviteError::Unreachable {
        endpoint: endpoint.clone(),
        detail: crate::endpoint::identity::without_url(&e),
    })?;
    if (200..300).contains(&status) {
        return match serde_json::from_str::<RedeemResponse>(&text) {
            // Only the shape a reelup-server issues: a hostile or broken server cannot make
            // this machine store a token of its choosing (one too long for the Windows
            // Credential Manager, say, to fail the keyring write on purpose).
            Ok(RedeemResponse { token, user })
                if reelup_protocol::is_server_token(token.expose()) && valid_user(&user) =>
            {
                Ok(Redeemed { token, user })
            }
            Ok(_) => Err(InviteError::Server {
                endpoint,
                status,
                detail: format!(
                    "the answer's token or user is not what a reelup-server gives out (a token is \
                     {}{} hex digits, a user 1-64 letters, digits, '-' or '_'); nothing was saved",
                    reelup_protocol::TOKEN_PREFIX,
                    reelup_protocol::TOKEN_HEX_LEN
                ),
            }),
            Err(_) => Err(InviteError::Server {
                endpoint,
                status,
                detail: "the answer has no token and user".into(),
            }),
        };
    }
    let ErrorBody { error, message } = serde_json::from_str(&text).unwrap_or_default();
    // The server's error codes, never its wording, decide what went wrong.
    Err(match error.as_str() {
        "invite_invalid" => InviteError::Invalid { message },
        "invite_expired" => InviteError::Expired,
        "invite_used" => InviteError::Used,
        "invite_revoked" | "invite_user_removed" => InviteError::Revoked { message },
        "rate_limited" => InviteError::RateLimited {
            endpoint,
            retry_after_secs: retry_after,
        },
        _ => InviteError::Server {
            endpoint,
            status,
            detail: if message.is_empty() {
                text.chars().take(200).collect()
            } else {
                message
            },
        },
    })
}

/// A user name as reelup-server allows them (`valid_name` there): it is shown to the
/// user, so a server cannot put arbitrary text in the app's messages.
fn valid_user(user: &str) -> bool {
    (1..=64).contains(&user.len())
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Connects this machine with an invite link: what `reelup login --invite` and the app's
/// "open invite link" both call.
///
/// 1. Parses `link`, reads the profiles file at `config_path` and picks the profile name
///    ([`profile_name_for`]); checks the keyring answers. Any problem here stops it before
///    the one-time code is spent.
/// 2. Redeems the code. If that fails, nothing has been written.
/// 3. Stores the token in `keyring` under the profile's name, bound to the link's endpoint
///    ([`crate::credentials::StoredToken`]). If that fails, nothing else is written: the
///    profile still points where it did, with the token it had.
/// 4. Creates the profile (flavour reelup-server, the link's endpoint and CDN), or updates
///    the endpoint and CDN of an existing one, keeping its other settings; makes it the
///    default when there is no default. If that fails, the keyring entry is put back as it
///    was (and the profiles file too), so the profile and its token never disagree.
/// 5. Tests the connection with the token (`GET {endpoint}/whoami`, as `reelup login`
///    does). If that fails, the profile and token stay saved and
///    [`InviteError::ConnectionTest`] says so.
///
/// The order matters: were the profile re-pointed first and the keyring write then
/// refused, the profile would name the new server while the keyring held the old server's
/// token. The binding of a token to its endpoint would still keep that token from the new
/// server, but the profile would be left pointing at a server it has no token for.
pub async fn accept(
    http: &reqwest::Client,
    link: &str,
    profile_name: Option<&str>,
    config_path: &Path,
    keyring: &dyn CredentialStore,
) -> Result<Accepted, InviteError> {
    let invite = Invite::parse(link)?;
    let mut config = ProfileConfig::load(config_path)?;
    let name = profile_name_for(&invite, profile_name)?;
    let mut profile = config
        .get(&name)
        .cloned()
        .unwrap_or_else(|| Profile::new(&name, &invite.endpoint));
    profile.endpoint = invite.endpoint.clone();
    profile.cdn = Some(invite.cdn.clone());
    profile.flavour = Flavour::ReelupServer;
    profile.validate().map_err(ConfigError::from)?;
    // A keyring that is missing or locked would only be found after the code is spent;
    // what it holds now is what a failed step 4 puts back.
    let previous_token = keyring.get(&name)?;
    let previous_file = FileBefore::read(config_path)?;

    let redeemed = redeem(http, &invite).await?;

    keyring.set(
        &name,
        &StoredToken::bound(&invite.endpoint, redeemed.token.clone()),
    )?;
    let saved = config
        .save_profile(Some(&name), profile)
        .and_then(|()| match config.default {
            None => config.set_default(&name),
            Some(_) => Ok(()),
        });
    if let Err(e) = saved {
        let keyring_back = match &previous_token {
            Some(t) => keyring.set(&name, t),
            None => keyring.delete(&name).map(|_| ()),
        };
        let file_back = previous_file.restore(config_path);
        if let Err(k) = &keyring_back {
            // The new token stays bound to the new endpoint, so even now it is not sent
            // to the old one; the user is told to log in again.
            tracing::warn!(profile = %name, error = %k, "could not put the old token back");
        }
        if let Err(f) = &file_back {
            tracing::warn!(profile = %name, error = %f, "could not put the profiles file back");
        }
        return Err(e.into());
    }
    let who = check_endpoint(
        http,
        &invite.endpoint,
        Flavour::ReelupServer,
        Some(&redeemed.token),
    )
    .await
    .map_err(|source| InviteError::ConnectionTest {
        profile: name.clone(),
        source,
    })?;
    Ok(Accepted {
        is_default: config.default.as_deref() == Some(name.as_str()),
        profile: name,
        user: who.user.unwrap_or(redeemed.user),
        prefix: who.prefix,
    })
}

/// The profiles file as it was before an invite changed it, to put back if the invite
/// cannot finish.
struct FileBefore(Option<Vec<u8>>);

impl FileBefore {
    fn read(path: &Path) -> Result<Self, ConfigError> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Self(Some(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self(None)),
            Err(e) => Err(ConfigError::Unreadable {
                path: path.to_owned(),
                message: format!("{e}; check the file's permissions"),
            }),
        }
    }

    fn restore(&self, path: &Path) -> std::io::Result<()> {
        match &self.0 {
            Some(bytes) => {
                let tmp = path.with_extension("toml.restore");
                std::fs::write(&tmp, bytes)?;
                std::fs::rename(&tmp, path)
            }
            None => match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE: &str = "AQAAAABpZXNhbHQxMjM0NTY3OGFsaWNlX3NpZ25hdHVyZQ";

    fn link(query: &str) -> String {
        format!("reelup://connect?{query}")
    }

    #[test]
    fn parses_the_link_format() {
        let l = link(&format!(
            "endpoint=https%3A%2F%2Fuploads.example.com%2F&cdn=https%3A%2F%2Fd1.cloudfront.net\
             &code={CODE}&name=studio"
        ));
        let i = Invite::parse(&l).expect("parses");
        assert_eq!(i.endpoint, "https://uploads.example.com");
        assert_eq!(i.cdn, "https://d1.cloudfront.net");
        assert_eq!(i.code.expose(), CODE);
        assert_eq!(i.name.as_deref(), Some("studio"));
        assert!(!format!("{i:?}").contains(CODE), "the code is redacted");
        // Loopback may be http; an upper case scheme and host work too.
        let local = format!(
            "REELUP://Connect?endpoint=http://127.0.0.1:7300&cdn=http://127.0.0.1:7300/cdn&code={CODE}"
        );
        let i = Invite::parse(&local).expect("parses");
        assert_eq!(i.endpoint, "http://127.0.0.1:7300");
        assert_eq!(i.name, None);
    }

    #[test]
    fn refuses_what_is_not_an_invite_and_says_why() {
        let ok_rest = format!("cdn=https://c.example.com&code={CODE}");
        for (bad, says) in [
            (
                "https://example.com/connect".to_owned(),
                "starts with https",
            ),
            ("not a link".to_owned(), "does not parse"),
            (
                format!("reelup://other?endpoint=https://e.example.com&{ok_rest}"),
                "not a connect link",
            ),
            (link(&ok_rest), "no endpoint"),
            (
                link(&format!("endpoint=http://e.example.com&{ok_rest}")),
                "plain http",
            ),
            (link(&format!("endpoint=file:///etc&{ok_rest}")), "scheme"),
            (
                link(&format!("endpoint=https://e.example.com&code={CODE}")),
                "no cdn",
            ),
            (
                link("endpoint=https://e.example.com&cdn=https://c.example.com"),
                "no code",
            ),
            (
                link("endpoint=https://e.example.com&cdn=https://c.example.com&code=short"),
                "cut short",
            ),
            (
                link(&format!(
                    "endpoint=https://e.example.com&cdn=https://c.example.com&code={CODE}%20x"
                )),
                "cut short",
            ),
            (
                link(&format!(
                    "endpoint=https://e.example.com&endpoint=https://f.example.com&{ok_rest}"
                )),
                "endpoint twice",
            ),
            ("x".repeat(MAX_LINK_LEN + 1), "far more"),
            // Not exactly reelup://connect with the known parameters.
            (
                format!("reelup:connect?endpoint=https://e.example.com&{ok_rest}"),
                "not a connect link",
            ),
            (
                format!("reelup://connect/x?endpoint=https://e.example.com&{ok_rest}"),
                "not a connect link",
            ),
            (
                format!("reelup://u@connect?endpoint=https://e.example.com&{ok_rest}"),
                "not a connect link",
            ),
            (
                format!("reelup://connect:1?endpoint=https://e.example.com&{ok_rest}"),
                "not a connect link",
            ),
            (
                format!("reelup://connect?endpoint=https://e.example.com&{ok_rest}#x"),
                "not a connect link",
            ),
            (
                link(&format!(
                    "endpoint=https://e.example.com&{ok_rest}&future=1"
                )),
                "parameter \"future\"",
            ),
            (
                link(&format!(
                    "endpoint=https://e.example.com&{ok_rest}&Endpoint=x"
                )),
                "parameter \"Endpoint\"",
            ),
            // User info makes a URL read as one host and connect to another.
            (
                link(&format!(
                    "endpoint=https%3A%2F%2Fuploads.studio.example%40evil.example&{ok_rest}"
                )),
                "connecting to evil.example",
            ),
            (
                link(&format!(
                    "endpoint=https://e.example.com&cdn=https://cdn.studio.example@evil.example&code={CODE}"
                )),
                "connecting to evil.example",
            ),
            (
                link(&format!("endpoint=http://evil%5C@localhost/&{ok_rest}")),
                "backslash",
            ),
        ] {
            let err = Invite::parse(&bad).expect_err(&bad);
            assert_eq!(err.code(), ErrorCode::InviteLinkInvalid);
            let text = err.to_string();
            assert!(text.contains(says), "{bad}: {text}");
            assert!(text.contains("ask for a new invite link"), "{text}");
        }
    }

    #[test]
    fn profile_names_come_from_the_flag_the_link_or_the_host() {
        let mut i = Invite::parse(&link(&format!(
            "endpoint=https://uploads.example.com:8443&cdn=https://c.example.com&code={CODE}&name=My%20Studio!"
        )))
        .expect("parses");
        assert_eq!(profile_name_for(&i, Some("mine")).expect("given"), "mine");
        assert!(profile_name_for(&i, Some("no spaces")).is_err());
        assert_eq!(profile_name_for(&i, None).expect("link"), "My-Studio");
        i.name = Some("!!!".into());
        assert_eq!(
            profile_name_for(&i, None).expect("host"),
            "uploads.example.com"
        );
        i.endpoint = "http://[::1]:7300".into();
        assert_eq!(profile_name_for(&i, None).expect("host"), "1");
        i.name = Some("x".repeat(100));
        assert_eq!(profile_name_for(&i, None).expect("long").len(), 64);
    }
}
