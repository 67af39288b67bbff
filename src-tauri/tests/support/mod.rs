//! What the app's integration tests share.

use std::collections::HashMap;
use std::sync::Mutex;

use reelup_core::credentials::{CredentialError, CredentialStore, StoredToken};

/// Keeps tokens in memory: these tests are about the app, not the keyring (the real one is
/// covered by tests/app and tests/profiles_keyring.rs).
#[derive(Default)]
pub struct MemoryKeyring(pub Mutex<HashMap<String, StoredToken>>);

impl CredentialStore for MemoryKeyring {
    fn get(&self, profile: &str) -> Result<Option<StoredToken>, CredentialError> {
        Ok(self.0.lock().unwrap().get(profile).cloned())
    }
    fn set(&self, profile: &str, token: &StoredToken) -> Result<(), CredentialError> {
        self.0.lock().unwrap().insert(profile.into(), token.clone());
        Ok(())
    }
    fn delete(&self, profile: &str) -> Result<bool, CredentialError> {
        Ok(self.0.lock().unwrap().remove(profile).is_some())
    }
}
