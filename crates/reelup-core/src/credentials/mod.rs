//! Where each profile's endpoint token lives: the OS keyring (Secret Service on Linux,
//! Keychain on macOS, Credential Manager on Windows), and nowhere else.
//!
//! What must stay true: a token is only ever held as a [`Secret`]; it is never written to
//! the config, the queue store or a log. `REELUP_TOKEN` is the documented way for a
//! headless box without a keyring: it is used when the keyring has no token to give.

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
}

impl CredentialError {
    pub fn code(&self) -> crate::ErrorCode {
        match self {
            Self::NoKeyring { .. } => crate::ErrorCode::NoKeyring,
            Self::Locked { .. } => crate::ErrorCode::KeyringLocked,
            Self::Failed { .. } => crate::ErrorCode::KeyringFailed,
        }
    }
}

/// The seam between the engine and the platform's secret store; tests of the app and
/// CLI run the real one (gnome-keyring in a private D-Bus session).
pub trait CredentialStore: Send + Sync {
    fn get(&self, profile: &str) -> Result<Option<Secret>, CredentialError>;
    fn set(&self, profile: &str, token: &Secret) -> Result<(), CredentialError>;
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
    fn get(&self, profile: &str) -> Result<Option<Secret>, CredentialError> {
        match self.entry(profile)?.get_password() {
            Ok(t) => Ok(Some(Secret::new(t))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_error(profile, e)),
        }
    }

    fn set(&self, profile: &str, token: &Secret) -> Result<(), CredentialError> {
        self.entry(profile)?
            .set_password(token.expose())
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

/// The token to send for `profile`: the keyring's, else `REELUP_TOKEN` (the headless way,
/// on a machine with no keyring or none stored). The keyring wins so that one variable set
/// for one endpoint never reaches another profile's endpoint that has its own token.
pub fn token_for(
    store: &dyn CredentialStore,
    profile: &str,
) -> Result<Option<Secret>, CredentialError> {
    match store.get(profile) {
        Ok(Some(t)) => Ok(Some(t)),
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

/// Tokens for the queue's presign clients, looked up once per profile and kept in memory
/// (as [`Secret`]s) so an upload does not ask the keyring for every part.
pub struct TokenCache {
    store: std::sync::Arc<dyn CredentialStore>,
    known: std::sync::Mutex<std::collections::HashMap<String, Option<Secret>>>,
}

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

    /// The token for an item's profile; for an item without one, `REELUP_TOKEN`.
    pub fn token(&self, profile: Option<&str>) -> Option<Secret> {
        let Some(profile) = profile else {
            return token_from_env();
        };
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = known.get(profile) {
            return t.clone();
        }
        match token_for(self.store.as_ref(), profile) {
            Ok(t) => {
                known.insert(profile.to_owned(), t.clone());
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
            .remove(profile);
    }
}
