//! What the app's integration tests share (each uses some of it).
#![allow(dead_code)]

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

/// This package's folder, as cargo gives it when it runs the test: with the build folder
/// shared between clones (as ./dev and CI do), a test binary built in one clone may run
/// from another, and a path baked in at compile time would point at the wrong, or a
/// deleted, checkout.
pub fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        std::path::PathBuf::from,
    )
}
