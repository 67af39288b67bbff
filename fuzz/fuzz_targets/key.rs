//! Keys clients send back (`?key=` on every multipart route): a user owns exactly the keys
//! in the shape the server hands out, `<prefix>/<lower-case uuid>[.<1-8 lower-case alnum>]`,
//! and no other user owns them.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use reelup_fuzz::has_server_shape;
use reelup_server::config::UserConfig;
use reelup_server::users::{User, Users, hash_token};

/// Users as the server knows them: from the config, found by their tokens.
fn users() -> &'static (Arc<User>, Arc<User>) {
    static USERS: OnceLock<(Arc<User>, Arc<User>)> = OnceLock::new();
    USERS.get_or_init(|| {
        let config = |name: &str| UserConfig {
            name: name.into(),
            prefix: None,
            token_sha256: hash_token(&format!("rlp_{name}"))
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into(),
        };
        let users = Users::from_config(&[config("alice"), config("bob")]);
        let get = |name: &str| users.authenticate(&format!("rlp_{name}")).expect("user");
        (get("alice"), get("bob"))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(key) = std::str::from_utf8(data) else {
        return;
    };
    let (alice, bob) = users();
    let owned = alice.owns(key);
    assert_eq!(owned, has_server_shape(key, "alice"), "alice.owns({key:?})");
    if owned {
        assert!(!bob.owns(key), "{key:?} owned by two users");
        assert!(!key.contains("..") && !key.contains('%') && key.matches('/').count() == 1);
    }
    assert_eq!(
        bob.owns(key),
        has_server_shape(key, "bob"),
        "bob.owns({key:?})"
    );
});
