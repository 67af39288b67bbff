//! `reelup-server token add|invite|list|remove`: edits the `[[users]]` of a config file in
//! place, keeping its comments and layout, and never writes a token, only its SHA-256. A
//! user has one hash per device (`token_sha256` a string, or an array of them).

use std::path::Path;

use anyhow::{Context, bail};
use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, Value, value};

use crate::config::valid_name;
use crate::users::hash_token;

fn read(path: &Path) -> anyhow::Result<DocumentMut> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {}; create it from docs/reelup-server.example.toml or pass --config",
            path.display()
        )
    })?;
    text.parse().with_context(|| {
        format!(
            "{} is not valid TOML; run `reelup-server check`",
            path.display()
        )
    })
}

/// Writes next to the file and renames over it, so a crash never leaves half a config.
fn write(path: &Path, doc: &DocumentMut) -> anyhow::Result<()> {
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, doc.to_string())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(&tmp, meta.permissions())?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

fn users(doc: &mut DocumentMut) -> anyhow::Result<&mut ArrayOfTables> {
    if !doc.contains_key("users") {
        doc.insert("users", Item::ArrayOfTables(ArrayOfTables::new()));
    }
    doc["users"]
        .as_array_of_tables_mut()
        .context("`users` must be written as [[users]] tables")
}

fn name_of(t: &Table) -> Option<&str> {
    t.get("name").and_then(Item::as_str)
}

/// Adds a user whose first token is `token` (only its hash is written).
pub fn add(path: &Path, name: &str, prefix: Option<&str>, token: &str) -> anyhow::Result<()> {
    let prefix = prefix.unwrap_or(name);
    if !valid_name(name) || !valid_name(prefix) {
        bail!("names and prefixes are 1-64 letters, digits, '-' or '_'");
    }
    let mut doc = read(path)?;
    let list = users(&mut doc)?;
    for t in list.iter() {
        if name_of(t) == Some(name) {
            bail!(
                "{name} is already a user; invite another device with `reelup-server token invite {name}`, \
                 or remove them first with `reelup-server token remove {name}`"
            );
        }
        let their_prefix = t.get("prefix").and_then(Item::as_str).or(name_of(t));
        if their_prefix == Some(prefix) {
            bail!("prefix {prefix:?} belongs to another user; choose another with --prefix");
        }
    }
    let mut t = Table::new();
    t.insert("name", value(name));
    t.insert("prefix", value(prefix));
    t.insert("token_sha256", value(hex::encode(hash_token(token))));
    list.push(t);
    write(path, &doc)
}

/// Adds `token` (its hash) as another device of an existing user.
pub fn add_device(path: &Path, name: &str, token: &str) -> anyhow::Result<()> {
    let mut doc = read(path)?;
    let list = users(&mut doc)?;
    let Some(user) = list.iter_mut().find(|t| name_of(t) == Some(name)) else {
        bail!(
            "there is no user {name} in {}; add them with `reelup-server token add {name}`",
            path.display()
        );
    };
    let hash = hex::encode(hash_token(token));
    let hashes = match user.get("token_sha256").and_then(Item::as_value) {
        None => Array::new(),
        Some(Value::String(one)) => {
            let mut a = Array::new();
            a.push(one.value().as_str());
            a
        }
        Some(Value::Array(many)) => many.clone(),
        Some(_) => bail!("{name}'s token_sha256 is neither a string nor an array of strings"),
    };
    let mut hashes = hashes;
    hashes.push(hash);
    user.insert("token_sha256", value(hashes));
    write(path, &doc)
}

pub fn remove(path: &Path, name: &str) -> anyhow::Result<()> {
    let mut doc = read(path)?;
    let list = users(&mut doc)?;
    let before = list.len();
    list.retain(|t| name_of(t) != Some(name));
    if list.len() == before {
        bail!("there is no user {name} in {}", path.display());
    }
    write(path, &doc)
}

/// `(name, prefix, tokens)` of every user; tokens is how many devices they have.
pub fn list(path: &Path) -> anyhow::Result<Vec<(String, String, usize)>> {
    let mut doc = read(path)?;
    Ok(users(&mut doc)?
        .iter()
        .filter_map(|t| {
            let name = name_of(t)?.to_owned();
            let prefix = t
                .get("prefix")
                .and_then(Item::as_str)
                .unwrap_or(&name)
                .to_owned();
            let tokens = match t.get("token_sha256").and_then(Item::as_value) {
                Some(Value::Array(a)) => a.len(),
                Some(_) => 1,
                None => 0,
            };
            Some((name, prefix, tokens))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;
    use crate::users::{Users, new_token};

    #[test]
    fn add_stores_only_the_hash_and_keeps_comments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("server.toml");
        std::fs::write(
            &path,
            "# my server\nbucket = \"videos\"\ncdn_base_url = \"https://d1.cloudfront.net\"\n",
        )
        .expect("write");
        let token = new_token();
        add(&path, "alice", None, &token).expect("add");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.starts_with("# my server\n"), "{text}");
        assert!(!text.contains(&token), "the token itself is never stored");

        let config = ServerConfig::load(&path, std::iter::empty()).expect("still valid");
        let users = Users::from_config(&config.users);
        assert_eq!(
            users.authenticate(&token).map(|u| u.prefix.clone()),
            Some("alice".into())
        );

        assert!(
            add(&path, "alice", None, &new_token())
                .unwrap_err()
                .to_string()
                .contains("already a user")
        );
        assert!(
            add(&path, "bob", Some("alice"), &new_token())
                .unwrap_err()
                .to_string()
                .contains("belongs to another user")
        );
        add(&path, "bob", None, &new_token()).expect("bob");
        assert_eq!(list(&path).expect("list").len(), 2);

        // A second and third device: the string becomes an array, both tokens work.
        let second = new_token();
        add_device(&path, "alice", &second).expect("second device");
        let third = new_token();
        add_device(&path, "alice", &third).expect("third device");
        assert!(add_device(&path, "carol", &new_token()).is_err());
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.starts_with("# my server\n"), "{text}");
        let config = ServerConfig::load(&path, std::iter::empty()).expect("still valid");
        let users = Users::from_config(&config.users);
        for t in [&token, &second, &third] {
            assert_eq!(
                users.authenticate(t).map(|u| u.name.clone()),
                Some("alice".into())
            );
        }
        assert_eq!(
            list(&path).expect("list")[0],
            ("alice".to_owned(), "alice".to_owned(), 3)
        );

        remove(&path, "alice").expect("remove");
        assert_eq!(
            list(&path).expect("list"),
            vec![("bob".to_owned(), "bob".to_owned(), 1)]
        );
        assert!(remove(&path, "alice").is_err());
    }
}
