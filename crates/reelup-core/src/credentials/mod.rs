//! Where each profile's endpoint token lives: the OS keyring (Secret Service on Linux,
//! Keychain on macOS, Credential Manager on Windows), and nowhere else.
//!
//! What must stay true: a token is only ever held as a [`Secret`]; it is never written to
//! the config, the queue store or a log. `REELUP_TOKEN` is the documented way for a
//! headless box without a keyring: it is used when the keyring has no token to give.
//!
//! And: a stored token is bound to the endpoint it was stored for ([`StoredToken`]), and
//! is only ever handed out for that endpoint ([`token_for`]). The profile file says where
//! a profile points, but anyone who can edit it (a half-finished invite, a hand edit, a
//! script) could otherwise re-point a profile and receive its token; with the endpoint
//! kept beside the token in the keyring, a profile that now points elsewhere gets no token.

pub mod invite;

use crate::Secret;

/// The keyring "service" every Reelup entry is filed under; the profile name is the user.
pub const KEYRING_SERVICE: &str = "dev.reelup.Reelup";

/// Set this for a machine without a keyring (a NAS, a server, CI).
pub const TOKEN_ENV: &str = "REELUP_TOKEN";

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error(
        "no OS keyring is available ({detail}). On a desktop, start or unlock your keyring \
         (GNOME Keyring, KWallet or KeePassXC with Secret Service); on a headless machine, \
         set REELUP_TOKEN instead of storing the token"
    )]
    NoKeyring { detail: String },
    #[error(
        "the keyring refused access to the token of profile {profile:?} ({detail}); unlock the keyring and try again"
    )]
    Locked { profile: String, detail: String },
    #[error("the keyring failed: {detail}")]
    Failed { detail: String },
    /// The profile points somewhere else than the endpoint its stored token is for.
    #[error(
        "the token stored for profile {profile:?} is for {stored_for}, but the profile now points at \
         {endpoint}; Reelup sends a token only to the endpoint it was stored for. If you moved the \
         profile on purpose, log in to the new endpoint (`reelup login --profile {profile}`, an invite \
         link, or paste its token in Settings); otherwise set the endpoint back to {stored_for}"
    )]
    BoundElsewhere {
        profile: String,
        stored_for: String,
        endpoint: String,
    },
}

impl CredentialError {
    pub fn code(&self) -> crate::ErrorCode {
        match self {
            Self::NoKeyring { .. } => crate::ErrorCode::NoKeyring,
            Self::Locked { .. } => crate::ErrorCode::KeyringLocked,
            Self::Failed { .. } => crate::ErrorCode::KeyringFailed,
            Self::BoundElsewhere { .. } => crate::ErrorCode::TokenEndpointMismatch,
        }
    }
}

/// A token as the keyring holds it: with the endpoint it was stored for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// The endpoint this token may be sent to, as [`same_endpoint`] compares them. `None`:
    /// a bare token, stored by a Reelup from before tokens were bound; [`token_for`] binds
    /// it to the profile's endpoint the first time it is used.
    pub endpoint: Option<String>,
    pub token: Secret,
}

impl StoredToken {
    pub fn bound(endpoint: &str, token: Secret) -> Self {
        Self {
            endpoint: Some(normalized_endpoint(endpoint)),
            token,
        }
    }

    /// The text kept as the keyring entry's secret: a small JSON object, so that the
    /// endpoint travels with the token on every platform (Secret Service attributes have
    /// no equivalent in Credential Manager that the `keyring` crate writes).
    fn encode(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => serde_json::json!({
                ENVELOPE_KEY: ENVELOPE_VERSION,
                "endpoint": endpoint,
                "token": self.token.expose(),
            })
            .to_string(),
            None => self.token.expose().to_owned(),
        }
    }

    /// Reads an entry's secret: Reelup's envelope, else (an entry written before tokens
    /// were bound, or by hand) a bare token.
    fn decode(text: String) -> Self {
        #[derive(serde::Deserialize)]
        struct Envelope {
            #[serde(rename = "reelup-token")]
            version: u32,
            endpoint: String,
            token: String,
        }
        match serde_json::from_str::<Envelope>(&text) {
            Ok(e) if e.version == ENVELOPE_VERSION => Self {
                endpoint: Some(e.endpoint),
                token: Secret::new(e.token),
            },
            _ => Self {
                endpoint: None,
                token: Secret::new(text),
            },
        }
    }
}

const ENVELOPE_KEY: &str = "reelup-token";
const ENVELOPE_VERSION: u32 = 1;

/// An endpoint as tokens are bound to it: the URL as the `url` crate writes it (lower-case
/// host, IDN as punycode, no default port), without a trailing `/`.
pub fn normalized_endpoint(endpoint: &str) -> String {
    let trimmed = endpoint.trim().trim_end_matches('/');
    match url::Url::parse(trimmed) {
        Ok(u) => u.as_str().trim_end_matches('/').to_owned(),
        Err(_) => trimmed.to_owned(),
    }
}

/// Whether two endpoint URLs name the same place, for a token bound to one of them.
pub fn same_endpoint(a: &str, b: &str) -> bool {
    normalized_endpoint(a) == normalized_endpoint(b)
}

/// The seam between the engine and the platform's secret store; tests of the app and
/// CLI run the real one (gnome-keyring in a private D-Bus session).
pub trait CredentialStore: Send + Sync {
    fn get(&self, profile: &str) -> Result<Option<StoredToken>, CredentialError>;
    fn set(&self, profile: &str, token: &StoredToken) -> Result<(), CredentialError>;
    /// Returns whether there was one.
    fn delete(&self, profile: &str) -> Result<bool, CredentialError>;
}

/// The OS keyring, through the `keyring` crate.
#[derive(Debug, Clone)]
pub struct OsKeyring {
    service: String,
}

impl Default for OsKeyring {
    fn default() -> Self {
        Self {
            service: KEYRING_SERVICE.into(),
        }
    }
}

impl OsKeyring {
    /// Entries under another service name (tests keep theirs apart this way).
    pub fn with_service(service: &str) -> Self {
        Self {
            service: service.into(),
        }
    }

    fn entry(&self, profile: &str) -> Result<keyring::Entry, CredentialError> {
        keyring::Entry::new(&self.service, profile).map_err(|e| map_error(profile, e))
    }
}

fn map_error(profile: &str, e: keyring::Error) -> CredentialError {
    // The keyring crate's messages can quote the platform's reply but never the secret.
    match e {
        keyring::Error::PlatformFailure(inner) => CredentialError::NoKeyring {
            detail: inner.to_string(),
        },
        keyring::Error::NoStorageAccess(inner) => CredentialError::Locked {
            profile: profile.into(),
            detail: inner.to_string(),
        },
        other => CredentialError::Failed {
            detail: other.to_string(),
        },
    }
}

impl CredentialStore for OsKeyring {
    fn get(&self, profile: &str) -> Result<Option<StoredToken>, CredentialError> {
        match self.entry(profile)?.get_password() {
            Ok(t) => Ok(Some(StoredToken::decode(t))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_error(profile, e)),
        }
    }

    fn set(&self, profile: &str, token: &StoredToken) -> Result<(), CredentialError> {
        self.entry(profile)?
            .set_password(&token.encode())
            .map_err(|e| map_error(profile, e))
    }

    fn delete(&self, profile: &str) -> Result<bool, CredentialError> {
        match self.entry(profile)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(map_error(profile, e)),
        }
    }
}

/// The token to send for `profile` to `endpoint` (the profile's endpoint now): the
/// keyring's, if it was stored for that endpoint, else `REELUP_TOKEN` (the headless way, on
/// a machine with no keyring or none stored). The keyring wins so that one variable set
/// for one endpoint never reaches another profile's endpoint that has its own token.
///
/// A token stored for another endpoint is [`CredentialError::BoundElsewhere`]: neither it
/// nor `REELUP_TOKEN` is given out. A bare token (stored before tokens were bound) is bound
/// to `endpoint` here, once, by rewriting its entry; if the keyring will not take the
/// rewrite, the token is not given out either, so that no token stays unbound.
pub fn token_for(
    store: &dyn CredentialStore,
    profile: &str,
    endpoint: &str,
) -> Result<Option<Secret>, CredentialError> {
    match store.get(profile) {
        Ok(Some(StoredToken {
            endpoint: Some(stored_for),
            token,
        })) => {
            if same_endpoint(&stored_for, endpoint) {
                Ok(Some(token))
            } else {
                Err(CredentialError::BoundElsewhere {
                    profile: profile.to_owned(),
                    stored_for,
                    endpoint: endpoint.to_owned(),
                })
            }
        }
        Ok(Some(StoredToken {
            endpoint: None,
            token,
        })) => {
            store.set(profile, &StoredToken::bound(endpoint, token.clone()))?;
            tracing::info!(
                profile,
                endpoint,
                "bound the profile's stored token to its endpoint"
            );
            Ok(Some(token))
        }
        Ok(None) => Ok(token_from_env()),
        Err(e) => token_from_env().map(Some).ok_or(e),
    }
}

/// `REELUP_TOKEN`, when set and not blank.
pub fn token_from_env() -> Option<Secret> {
    std::env::var(TOKEN_ENV)
        .ok()
        .filter(|t| !t.trim().is_empty())
        .map(|t| Secret::new(t.trim()))
}

/// Moves a profile's token when the profile is renamed.
pub fn rename(store: &dyn CredentialStore, from: &str, to: &str) -> Result<(), CredentialError> {
    if from == to {
        return Ok(());
    }
    if let Some(token) = store.get(from)? {
        store.set(to, &token)?;
        store.delete(from)?;
    }
    Ok(())
}

/// Tokens for the queue's presign clients, looked up once per profile and endpoint and
/// kept in memory (as [`Secret`]s) so an upload does not ask the keyring for every part.
pub struct TokenCache {
    store: std::sync::Arc<dyn CredentialStore>,
    known: std::sync::Mutex<KnownTokens>,
}

/// By (profile, normalized endpoint): a token is only ever remembered for the endpoint
/// [`token_for`] gave it out for.
type KnownTokens = std::collections::HashMap<(String, String), Option<Secret>>;

impl TokenCache {
    pub fn new(store: std::sync::Arc<dyn CredentialStore>) -> Self {
        Self {
            store,
            known: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    pub fn store(&self) -> &dyn CredentialStore {
        self.store.as_ref()
    }

    /// The token for an item's profile, to send to `endpoint` (see [`token_for`]); for an
    /// item without a profile, `REELUP_TOKEN`.
    pub fn token(&self, profile: Option<&str>, endpoint: &str) -> Option<Secret> {
        let Some(profile) = profile else {
            return token_from_env();
        };
        let key = (profile.to_owned(), normalized_endpoint(endpoint));
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = known.get(&key) {
            return t.clone();
        }
        match token_for(self.store.as_ref(), profile, endpoint) {
            Ok(t) => {
                known.insert(key, t.clone());
                t
            }
            // Not cached: the keyring may be unlocked by the next attempt.
            Err(e) => {
                tracing::warn!(profile, error = %e, "no token from the keyring");
                None
            }
        }
    }

    /// Drops what is remembered for `profile` after its token changed.
    pub fn forget(&self, profile: &str) {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(p, _), _| p != profile);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Entries kept as the OS keyring keeps them: the encoded text.
    #[derive(Default)]
    struct TextKeyring {
        entries: Mutex<HashMap<String, String>>,
        refuse_writes: bool,
    }

    impl CredentialStore for TextKeyring {
        fn get(&self, profile: &str) -> Result<Option<StoredToken>, CredentialError> {
            let entries = self.entries.lock().unwrap();
            Ok(entries.get(profile).cloned().map(StoredToken::decode))
        }
        fn set(&self, profile: &str, token: &StoredToken) -> Result<(), CredentialError> {
            if self.refuse_writes {
                return Err(CredentialError::Failed {
                    detail: "refused".into(),
                });
            }
            let mut entries = self.entries.lock().unwrap();
            entries.insert(profile.into(), token.encode());
            Ok(())
        }
        fn delete(&self, profile: &str) -> Result<bool, CredentialError> {
            Ok(self.entries.lock().unwrap().remove(profile).is_some())
        }
    }

    const TOKEN: &str = "rlp_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_token_is_given_out_only_for_the_endpoint_it_was_stored_for() {
        let k = TextKeyring::default();
        k.set(
            "studio",
            &StoredToken::bound("https://Uploads.Studio.example/", Secret::new(TOKEN)),
        )
        .unwrap();
        let raw = k.entries.lock().unwrap()["studio"].clone();
        assert!(raw.contains("https://uploads.studio.example"), "{raw}");
        // The same place, however it is written.
        for same in [
            "https://uploads.studio.example",
            "https://UPLOADS.studio.example:443/",
        ] {
            let t = token_for(&k, "studio", same).unwrap().expect(same);
            assert_eq!(t.expose(), TOKEN);
        }
        for other in [
            "https://evil.example",
            "http://uploads.studio.example",
            "https://uploads.studio.example:8443",
            "https://uploads.studio.example.evil.example",
        ] {
            let e = token_for(&k, "studio", other).expect_err(other);
            assert_eq!(e.code(), crate::ErrorCode::TokenEndpointMismatch);
            let text = e.to_string();
            assert!(
                text.contains(other) && text.contains("reelup login --profile studio"),
                "{text}"
            );
        }
        // Cached lookups keep to the same rule.
        let cache = TokenCache::new(std::sync::Arc::new(k));
        assert!(
            cache
                .token(Some("studio"), "https://evil.example")
                .is_none()
        );
        assert!(
            cache
                .token(Some("studio"), "https://uploads.studio.example")
                .is_some()
        );
        assert!(
            cache
                .token(Some("studio"), "https://evil.example")
                .is_none()
        );
    }

    #[test]
    fn a_bare_token_from_an_older_version_is_bound_at_its_first_use() {
        let k = TextKeyring::default();
        k.entries
            .lock()
            .unwrap()
            .insert("studio".into(), TOKEN.into());
        let t = token_for(&k, "studio", "https://uploads.studio.example").unwrap();
        assert_eq!(t.map(|t| t.expose().to_owned()).as_deref(), Some(TOKEN));
        let stored = k.get("studio").unwrap().unwrap();
        assert_eq!(
            stored.endpoint.as_deref(),
            Some("https://uploads.studio.example")
        );
        assert!(token_for(&k, "studio", "https://evil.example").is_err());

        // A keyring that will not take the binding gives the token out nowhere.
        let locked = TextKeyring {
            refuse_writes: true,
            ..TextKeyring::default()
        };
        locked
            .entries
            .lock()
            .unwrap()
            .insert("studio".into(), TOKEN.into());
        assert!(token_for(&locked, "studio", "https://uploads.studio.example").is_err());
    }

    #[test]
    fn entries_that_are_not_the_envelope_read_as_bare_tokens() {
        for text in [
            "plain-token",
            "{\"reelup-token\":2,\"endpoint\":\"https://a\",\"token\":\"t\"}",
            "{\"endpoint\":\"https://a\",\"token\":\"t\"}",
            "{not json",
        ] {
            let t = StoredToken::decode(text.to_owned());
            assert_eq!(t.endpoint, None, "{text}");
            assert_eq!(t.token.expose(), text);
        }
        let bound = StoredToken::bound("https://a.example", Secret::new(TOKEN));
        assert_eq!(StoredToken::decode(bound.encode()), bound);
        assert!(!format!("{bound:?}").contains(TOKEN), "Debug redacts");
    }
}
