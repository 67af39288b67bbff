//! Invites against a hostile server and a keyring that refuses: the order of the writes
//! and their rollback. Two real HTTP servers on loopback (the studio, and a hostile one
//! that "redeems" any code), and a keyring that holds the studio's token and refuses
//! writes, as a locked collection, a refusing platform or the Windows Credential Manager's
//! size limit would. (tests/invite_cli.rs does the same with the real binary and a real,
//! locked Secret Service.)

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use reelup_core::Secret;
use reelup_core::config::{Flavour, Profile, ProfileConfig};
use reelup_core::credentials::invite::{InviteError, accept};
use reelup_core::credentials::{CredentialError, CredentialStore, StoredToken, token_for};
use reelup_core::endpoint::identity::check_endpoint;

const STUDIO_TOKEN: &str = "rlp_5tud105tud105tud105tud105tud105tud105tud105tud105tud105tud10000";
const CODE: &str = "AQAAAABpZXNhbHQxMjM0NTY3OGFsaWNlX3NpZ25hdHVyZQ";

type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// An HTTP server on loopback answering `answer(path, authorization)`, recording each
/// request's path and Authorization header.
fn serve(answer: fn(&str, Option<&str>) -> (u16, String)) -> (String, Seen) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen: Seen = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().expect("clone"));
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
            let (mut auth, mut length) = (None, 0usize);
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    match k.trim().to_ascii_lowercase().as_str() {
                        "authorization" => auth = Some(v.trim().to_owned()),
                        "content-length" => length = v.trim().parse().unwrap_or(0),
                        _ => {}
                    }
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let (status, text) = answer(&path, auth.as_deref());
            log.lock().unwrap().push((path, auth));
            let mut conn = conn;
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    (url, seen)
}

fn studio(path: &str, auth: Option<&str>) -> (u16, String) {
    match (path, auth) {
        ("/whoami", Some(a)) if a == format!("Bearer {STUDIO_TOKEN}") => {
            (200, r#"{"user":"ana","prefix":"ana"}"#.to_owned())
        }
        _ => (401, r#"{"error":"unauthorized","message":"no"}"#.to_owned()),
    }
}

fn hostile(path: &str, _auth: Option<&str>) -> (u16, String) {
    match path {
        "/invites/redeem" => (
            200,
            format!(r#"{{"token":"rlp_{}","user":"ana"}}"#, "e".repeat(64)),
        ),
        _ => (401, r#"{"error":"unauthorized","message":"no"}"#.to_owned()),
    }
}

/// One profile's entry, kept in memory; `refuse` makes every write fail.
struct Keyring {
    entry: Mutex<Option<StoredToken>>,
    refuse: bool,
}

impl CredentialStore for Keyring {
    fn get(&self, _profile: &str) -> Result<Option<StoredToken>, CredentialError> {
        Ok(self.entry.lock().unwrap().clone())
    }
    fn set(&self, profile: &str, token: &StoredToken) -> Result<(), CredentialError> {
        if self.refuse {
            return Err(CredentialError::Locked {
                profile: profile.into(),
                detail: "the collection is locked".into(),
            });
        }
        *self.entry.lock().unwrap() = Some(token.clone());
        Ok(())
    }
    fn delete(&self, _profile: &str) -> Result<bool, CredentialError> {
        Ok(self.entry.lock().unwrap().take().is_some())
    }
}

fn link(endpoint: &str) -> String {
    format!("reelup://connect?endpoint={endpoint}&cdn={endpoint}/cdn&code={CODE}&name=studio")
}

/// A profile `studio` on `endpoint`, with the studio's token in the keyring.
fn setup(config_path: &Path, endpoint: &str, refuse: bool) -> Keyring {
    std::fs::create_dir_all(config_path.parent().unwrap()).unwrap();
    let mut config = ProfileConfig::load(config_path).unwrap();
    let mut p = Profile::new("studio", endpoint);
    p.flavour = Flavour::ReelupServer;
    p.parts_in_flight = 7;
    config.save_profile(None, p).unwrap();
    Keyring {
        entry: Mutex::new(Some(StoredToken::bound(
            endpoint,
            Secret::new(STUDIO_TOKEN),
        ))),
        refuse,
    }
}

/// What "Test connection" and every upload do: the profile's endpoint now, with the token
/// the keyring gives for it.
async fn test_connection(config_path: &Path, keyring: &Keyring) -> Result<String, String> {
    let config = ProfileConfig::load(config_path).map_err(|e| e.to_string())?;
    let p = config.get("studio").expect("profile").clone();
    let token = token_for(keyring, "studio", &p.endpoint).map_err(|e| e.to_string())?;
    check_endpoint(
        &reqwest::Client::new(),
        &p.endpoint,
        p.flavour,
        token.as_ref(),
    )
    .await
    .map(|who| who.user.unwrap_or_default())
    .map_err(|e| e.to_string())
}

fn studio_token_seen(seen: &Seen) -> bool {
    seen.lock()
        .unwrap()
        .iter()
        .any(|(_, auth)| auth.as_deref().is_some_and(|a| a.contains(STUDIO_TOKEN)))
}

#[tokio::test]
async fn a_refused_keyring_write_leaves_the_profile_with_its_studio_and_token() {
    let (studio_url, _) = serve(studio);
    let (hostile_url, hostile_seen) = serve(hostile);
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config/config.toml");
    let keyring = setup(&config_path, &studio_url, true);
    let before = std::fs::read_to_string(&config_path).unwrap();

    let err = accept(
        &reqwest::Client::new(),
        &link(&hostile_url),
        None,
        &config_path,
        &keyring,
    )
    .await
    .expect_err("the keyring refuses");
    assert!(matches!(err, InviteError::Keyring(_)), "{err}");
    assert_eq!(
        std::fs::read_to_string(&config_path).unwrap(),
        before,
        "profile untouched"
    );
    assert_eq!(
        keyring.get("studio").unwrap(),
        Some(StoredToken::bound(&studio_url, Secret::new(STUDIO_TOKEN)))
    );

    // The next "Test connection" goes to the studio, with the studio's token.
    assert_eq!(
        test_connection(&config_path, &keyring).await,
        Ok("ana".into())
    );
    assert!(!studio_token_seen(&hostile_seen));
}

/// The token was stored, then the profiles file cannot be written: the keyring entry is
/// put back as it was, and the file too.
#[tokio::test]
async fn a_failed_profile_write_puts_the_old_token_back() {
    let (studio_url, _) = serve(studio);
    let (hostile_url, hostile_seen) = serve(hostile);
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config/config.toml");
    let keyring = setup(&config_path, &studio_url, false);
    let before = std::fs::read_to_string(&config_path).unwrap();
    // Where the config is written first: a directory there makes the write fail.
    std::fs::create_dir(config_path.with_extension("toml.tmp")).unwrap();

    let err = accept(
        &reqwest::Client::new(),
        &link(&hostile_url),
        None,
        &config_path,
        &keyring,
    )
    .await
    .expect_err("the profile cannot be written");
    assert!(err.to_string().contains("cannot write"), "{err}");
    assert_eq!(std::fs::read_to_string(&config_path).unwrap(), before);
    assert_eq!(
        keyring.get("studio").unwrap(),
        Some(StoredToken::bound(&studio_url, Secret::new(STUDIO_TOKEN))),
        "the studio's token is back"
    );
    assert_eq!(
        test_connection(&config_path, &keyring).await,
        Ok("ana".into())
    );
    assert!(!studio_token_seen(&hostile_seen));
}

/// Even with the profile re-pointed behind Reelup's back, the studio's token stays bound
/// to the studio: "Test connection" sends nothing to the new host and says why.
#[tokio::test]
async fn a_profile_moved_by_hand_gets_no_token() {
    let (studio_url, _) = serve(studio);
    let (hostile_url, hostile_seen) = serve(hostile);
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config/config.toml");
    let keyring = setup(&config_path, &studio_url, false);
    let text = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(&config_path, text.replace(&studio_url, &hostile_url)).unwrap();

    let said = test_connection(&config_path, &keyring)
        .await
        .expect_err("no token for another host");
    assert!(
        said.contains(&studio_url) && said.contains("reelup login --profile studio"),
        "{said}"
    );
    assert!(hostile_seen.lock().unwrap().is_empty(), "nothing was sent");
}
