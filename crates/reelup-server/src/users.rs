//! Who may sign: tokens map to users, and each user owns one key prefix.
//!
//! Only SHA-256 hashes of tokens are kept. Tokens are 32 random bytes, so a plain hash is
//! as strong as a slow one here, and looking a token up by its hash leaks nothing an
//! attacker can steer: they cannot choose the bytes of the hash they present.

use std::collections::HashMap;
use std::sync::Arc;

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::UserConfig;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub prefix: String,
}

impl User {
    pub fn new(name: &str, prefix: &str) -> Self {
        Self {
            name: name.to_owned(),
            prefix: prefix.to_owned(),
        }
    }

    /// Whether `key` is one of this user's objects, in exactly the shape `new_key` hands out:
    /// `<prefix>/<uuid>[.<ext>]`, a lower-case hyphenated uuid and 1 to 8 lower-case letters or
    /// digits. Anything else (`<uuid>.`, `<uuid>.MP4`) names an object the server never made.
    pub fn owns(&self, key: &str) -> bool {
        key.strip_prefix(self.prefix.as_str())
            .and_then(|r| r.strip_prefix('/'))
            .is_some_and(is_object_name)
    }
}

/// `<uuid>[.<ext>]`, the name part of every key the server hands out: a lower-case
/// hyphenated uuid and an extension of 1 to 8 lower-case letters or digits.
fn is_object_name(rest: &str) -> bool {
    let (id, ext) = match rest.split_once('.') {
        Some((id, ext)) => (id, Some(ext)),
        None => (rest, None),
    };
    uuid::Uuid::try_parse(id).is_ok_and(|u| u.hyphenated().to_string() == id)
        && ext.is_none_or(|e| {
            (1..=8).contains(&e.len())
                && e.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// Whether `key` has the shape of a key the server hands out, `<prefix>/<uuid>[.<ext>]`
/// with a prefix a user may have, whoever it belongs to.
pub fn is_issued_key(key: &str) -> bool {
    key.split_once('/')
        .is_some_and(|(prefix, rest)| crate::config::valid_name(prefix) && is_object_name(rest))
}

#[derive(Debug, Clone, Default)]
pub struct Users {
    by_hash: HashMap<[u8; 32], Arc<User>>,
}

pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new token: `rlp_` and 32 random bytes in hex. Printed once, never stored. Clients
/// take only this shape from an invite ([`reelup_protocol::is_server_token`]).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{}{}", reelup_protocol::TOKEN_PREFIX, hex::encode(bytes))
}

impl Users {
    pub fn from_config(users: &[UserConfig]) -> Self {
        let by_hash = users
            .iter()
            .flat_map(|u| {
                let user = Arc::new(User::new(&u.name, u.prefix()));
                u.token_sha256.iter().filter_map(move |h| {
                    let mut hash = [0u8; 32];
                    hex::decode_to_slice(h, &mut hash).ok()?;
                    Some((hash, user.clone()))
                })
            })
            .collect();
        Self { by_hash }
    }

    /// These users, and the token hashing to `hash` as one more of `name`'s (the local
    /// stack's invited devices).
    pub fn with_hash(mut self, name: &str, prefix: &str, hash: [u8; 32]) -> Self {
        self.by_hash.insert(hash, Arc::new(User::new(name, prefix)));
        self
    }

    /// Whether any token belongs to a user called `name`.
    pub fn has_user(&self, name: &str) -> bool {
        self.by_hash.values().any(|u| u.name == name)
    }

    /// One user holding `token`; the local stack's development user.
    pub fn single(name: &str, prefix: &str, token: &str) -> Self {
        let hash = hash_token(token);
        Self {
            by_hash: HashMap::from([(hash, Arc::new(User::new(name, prefix)))]),
        }
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    pub fn authenticate(&self, token: &str) -> Option<Arc<User>> {
        let hash = hash_token(token);
        let (stored, user) = self.by_hash.get_key_value(&hash)?;
        bool::from(stored.ct_eq(&hash)).then(|| user.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_tokens_have_the_shape_clients_accept() {
        for _ in 0..32 {
            let t = new_token();
            assert!(reelup_protocol::is_server_token(&t), "{t}");
        }
    }

    #[test]
    fn tokens_authenticate_their_user_only() {
        let a = new_token();
        let b = new_token();
        // A second device of bob's.
        let c = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
        let users = Users::from_config(&[
            UserConfig {
                name: "alice".into(),
                prefix: None,
                token_sha256: hex::encode(hash_token(&a)).into(),
            },
            UserConfig {
                name: "bob".into(),
                prefix: Some("b".into()),
                token_sha256: vec![hex::encode(hash_token(&b)), hex::encode(hash_token(&c))].into(),
            },
        ]);
        assert_eq!(
            users.authenticate(&a).map(|u| u.prefix.clone()),
            Some("alice".into())
        );
        assert_eq!(
            users.authenticate(&b).map(|u| u.name.clone()),
            Some("bob".into())
        );
        assert_eq!(
            users.authenticate(&c).map(|u| u.name.clone()),
            Some("bob".into())
        );
        assert!(users.has_user("bob") && !users.has_user("carol"));
        assert!(users.authenticate("rlp_wrong").is_none());
        assert!(users.authenticate("").is_none());
    }

    #[test]
    fn users_own_exactly_their_prefix_and_key_shape() {
        let u = User::new("alice", "alice");
        let id = "0d9c6a36-8f43-4c51-9a6e-2f8f2a6f7a11";
        assert!(u.owns(&format!("alice/{id}.mp4")));
        assert!(u.owns(&format!("alice/{id}")));
        assert!(!u.owns(&format!("alicex/{id}.mp4")));
        assert!(!u.owns(&format!("bob/{id}.mp4")));
        assert!(!u.owns(&format!("alice/../bob/{id}.mp4")));
        assert!(!u.owns(&format!("alice/x/{id}.mp4")));
        assert!(!u.owns("alice/anything.mp4"));
        assert!(!u.owns(&format!("alice/{}.mp4", id.to_uppercase())));
        // Keys the server never hands out: an empty or upper-case extension.
        assert!(!u.owns(&format!("alice/{id}.")));
        assert!(!u.owns(&format!("alice/{id}.MP4")));
        assert!(is_issued_key(&format!("alice/{id}.mp4")));
        assert!(is_issued_key(&format!("dev/{id}")));
        for bad in [
            "",
            ".",
            "../",
            "dev/",
            &format!("dev/../{id}"),
            &format!("../dev/{id}"),
            &format!("dev/{id}/.."),
            &format!("dev/{id}.mp4?list-type=2"),
            &format!("/dev/{id}"),
        ] {
            assert!(!is_issued_key(bad), "{bad}");
        }
    }
}
