//! The server's own secret, and the sealed uploadIds it keys.
//!
//! A multipart uploadId goes out with a tag binding it to its user, its key and the size
//! the client declared, so the server can stay stateless and still refuse another user's
//! uploadId, an uploadId moved to another key, or bounds the client edited. The tag must be
//! keyed with something no client can compute: a token's hash is known to its holder, so
//! the key is 32 random bytes made once and kept in a file only the server reads.

use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

const SECRET_LEN: usize = 32;
/// Hex characters of the tag (128 bits).
const TAG_LEN: usize = 32;
/// Names the layout of what the tag covers, so a tag of another layout never verifies.
const DOMAIN: &[u8] = b"reelup-server uploadId v2";

#[derive(Clone)]
pub struct ServerSecret([u8; SECRET_LEN]);

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "cannot read the server secret {path} ({cause}); make it readable by the server, \
         or point secret_file (REELUP_SERVER_SECRET_FILE) at another file"
    )]
    Unreadable {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(
        "the server secret {path} is not 64 hex characters (32 bytes) but {found}; delete it \
         and start again to have a new one made (multipart uploads in progress then start over)"
    )]
    Malformed { path: PathBuf, found: String },
    #[error(
        "cannot create the server secret {path} ({cause}); let the server write to its \
         directory, run `reelup-server check` once as the config's owner to create it, or \
         point secret_file (REELUP_SERVER_SECRET_FILE) at a writable place"
    )]
    Create {
        path: PathBuf,
        cause: std::io::Error,
    },
}

/// What the client declared about a multipart upload at create, sealed into its uploadId.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Declared {
    /// The whole object's size in bytes.
    pub size: Option<u64>,
    /// Every part's size but the last's.
    pub part_size: Option<u64>,
    /// The upload was created with `checksumAlgorithm: "CRC64NVME"` (Reelup's extension):
    /// every part must be signed with its CRC-64/NVME and complete must name the whole
    /// object's.
    pub crc64nvme: bool,
}

/// Marks a checksummed upload's sealing: `~size-partSize-crc64nvme-tag`. Uploads without
/// checksums keep the three-field form, so uploadIds sealed before checksums existed
/// still open.
const CRC64NVME_MARK: &str = "crc64nvme";

fn field(mac: &mut Hmac<Sha256>, bytes: &[u8]) {
    // Length-prefixed, so no choice of user, key or uploadId can shift bytes between fields.
    mac.update(&(bytes.len() as u64).to_be_bytes());
    mac.update(bytes);
}

fn number(mac: &mut Hmac<Sha256>, n: Option<u64>) {
    match n {
        None => mac.update(&[0]),
        Some(n) => {
            mac.update(&[1]);
            mac.update(&n.to_be_bytes());
        }
    }
}

fn shown(n: Option<u64>) -> String {
    n.map(|n| n.to_string()).unwrap_or_default()
}

fn parsed(s: &str) -> Option<Option<u64>> {
    if s.is_empty() {
        return Some(None);
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().map(Some)
}

impl ServerSecret {
    pub fn from_bytes(bytes: [u8; SECRET_LEN]) -> Self {
        Self(bytes)
    }

    pub fn random() -> Self {
        let mut bytes = [0u8; SECRET_LEN];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Reads the secret at `path`, or makes one there (mode 0600) if there is none.
    pub fn load_or_create(path: &Path) -> Result<Self, SecretError> {
        match Self::load(path) {
            Err(SecretError::Unreadable { cause, .. })
                if cause.kind() == std::io::ErrorKind::NotFound => {}
            other => return other,
        }
        let secret = Self::random();
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let created = opts.open(path).and_then(|mut file| {
            file.write_all(format!("{}\n", hex::encode(secret.0)).as_bytes())?;
            file.sync_all()
        });
        match created {
            Ok(()) => {
                tracing::info!(path = %path.display(), "created the server secret");
                Ok(secret)
            }
            // Another process made it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(path),
            Err(cause) => Err(SecretError::Create {
                path: path.to_owned(),
                cause,
            }),
        }
    }

    /// Reads the secret at `path`: 64 hex characters, surrounding whitespace ignored.
    pub fn load(path: &Path) -> Result<Self, SecretError> {
        let text = std::fs::read(path).map_err(|cause| SecretError::Unreadable {
            path: path.to_owned(),
            cause,
        })?;
        let trimmed = text.trim_ascii();
        let mut bytes = [0u8; SECRET_LEN];
        if trimmed.len() != 2 * SECRET_LEN || hex::decode_to_slice(trimmed, &mut bytes).is_err() {
            let found = if trimmed.is_empty() {
                "empty".to_owned()
            } else if trimmed.iter().all(u8::is_ascii_hexdigit) {
                format!("{} hex characters", trimmed.len())
            } else {
                format!("{} bytes that are not all hex digits", trimmed.len())
            };
            return Err(SecretError::Malformed {
                path: path.to_owned(),
                found,
            });
        }
        #[cfg(unix)]
        if let Ok(meta) = std::fs::metadata(path) {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    "the server secret is readable by other users; restrict it with chmod 600"
                );
            }
        }
        Ok(Self(bytes))
    }

    /// An HMAC keyed with the secret, started with `domain` (length-prefixed), so MACs made
    /// for one purpose (uploadIds, invite codes, invite tokens) never verify for another.
    pub(crate) fn mac(&self, domain: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        field(&mut mac, domain);
        mac
    }

    fn tag(&self, user: &str, key: &str, s3_upload_id: &str, declared: Declared) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        field(&mut mac, DOMAIN);
        field(&mut mac, user.as_bytes());
        field(&mut mac, key.as_bytes());
        field(&mut mac, s3_upload_id.as_bytes());
        number(&mut mac, declared.size);
        number(&mut mac, declared.part_size);
        // Only checksummed uploads add a field, so the tag of every other upload is the
        // one sealed before this field existed. HMAC over distinct messages: a tag made
        // with the field never verifies without it, nor the other way round.
        if declared.crc64nvme {
            field(&mut mac, CRC64NVME_MARK.as_bytes());
        }
        hex::encode(&mac.finalize().into_bytes()[..TAG_LEN / 2])
    }

    /// The uploadId a client sees: S3's, then `~size-partSize-tag` (sizes empty when not
    /// declared), or `~size-partSize-crc64nvme-tag` for a checksummed upload. Only
    /// characters that need no escaping in a URL are added.
    ///
    /// AWS ties an uploadId to its key, but not every S3-compatible store does (s3s-fs
    /// completes any uploadId under any key), so the binding is checked here.
    pub fn seal_upload_id(
        &self,
        user: &str,
        key: &str,
        s3_upload_id: &str,
        declared: Declared,
    ) -> String {
        let mark = if declared.crc64nvme {
            format!("{CRC64NVME_MARK}-")
        } else {
            String::new()
        };
        format!(
            "{s3_upload_id}~{}-{}-{mark}{}",
            shown(declared.size),
            shown(declared.part_size),
            self.tag(user, key, s3_upload_id, declared)
        )
    }

    /// S3's uploadId and the declared bounds, if `sealed` was issued to `user` for `key`.
    pub fn open_upload_id<'a>(
        &self,
        user: &str,
        key: &str,
        sealed: &'a str,
    ) -> Option<(&'a str, Declared)> {
        let (id, sealing) = sealed.rsplit_once('~')?;
        let mut fields = sealing.splitn(3, '-');
        let size = parsed(fields.next()?)?;
        let part_size = parsed(fields.next()?)?;
        let rest = fields.next()?;
        let (crc64nvme, tag) = match rest.split_once('-') {
            Some((CRC64NVME_MARK, tag)) => (true, tag),
            Some(_) => return None,
            None => (false, rest),
        };
        let declared = Declared {
            size,
            part_size,
            crc64nvme,
        };
        let expected = self.tag(user, key, id, declared);
        bool::from(tag.as_bytes().ct_eq(expected.as_bytes())).then_some((id, declared))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECLARED: Declared = Declared {
        size: Some(6 << 20),
        part_size: Some(5 << 20),
        crc64nvme: false,
    };

    #[test]
    fn upload_ids_open_only_for_their_user_key_and_bounds() {
        let secret = ServerSecret::from_bytes([1; 32]);
        let sealed =
            secret.seal_upload_id("alice", "alice/k.mp4", "s3-id.with~odd-chars", DECLARED);
        assert_eq!(
            secret.open_upload_id("alice", "alice/k.mp4", &sealed),
            Some(("s3-id.with~odd-chars", DECLARED))
        );
        assert_eq!(
            secret.open_upload_id("alice", "alice/other.mp4", &sealed),
            None
        );
        assert_eq!(secret.open_upload_id("bob", "alice/k.mp4", &sealed), None);
        let other_secret = ServerSecret::from_bytes([2; 32]);
        assert_eq!(
            other_secret.open_upload_id("alice", "alice/k.mp4", &sealed),
            None
        );
        // Bounds edited by the client: the tag no longer fits.
        let bigger = sealed.replacen("~6291456-", "~62914560-", 1);
        assert_ne!(bigger, sealed);
        assert_eq!(secret.open_upload_id("alice", "alice/k.mp4", &bigger), None);
        let undeclared = sealed.replacen("~6291456-5242880-", "~--", 1);
        assert_eq!(
            secret.open_upload_id("alice", "alice/k.mp4", &undeclared),
            None
        );
        for bad in ["s3-id", "s3-id~", "s3-id~--", "s3-id~x-y-z", "s3-id~+1--00"] {
            assert_eq!(
                secret.open_upload_id("alice", "alice/k.mp4", bad),
                None,
                "{bad}"
            );
        }
        let none = secret.seal_upload_id("alice", "alice/k.mp4", "id", Declared::default());
        assert!(none.starts_with("id~--"), "{none}");
        assert_eq!(
            secret.open_upload_id("alice", "alice/k.mp4", &none),
            Some(("id", Declared::default()))
        );
    }

    #[test]
    fn checksummed_upload_ids_say_so_and_old_ones_still_open() {
        let secret = ServerSecret::from_bytes([1; 32]);
        let checked = Declared {
            crc64nvme: true,
            ..DECLARED
        };
        let sealed = secret.seal_upload_id("alice", "alice/k.mp4", "id", checked);
        assert!(
            sealed.starts_with("id~6291456-5242880-crc64nvme-"),
            "{sealed}"
        );
        assert_eq!(
            secret.open_upload_id("alice", "alice/k.mp4", &sealed),
            Some(("id", checked))
        );
        // Dropping the mark (to sign parts without checksums) breaks the tag.
        let unmarked = sealed.replacen("-crc64nvme-", "-", 1);
        assert_eq!(
            secret.open_upload_id("alice", "alice/k.mp4", &unmarked),
            None
        );
        // Adding it to a plain upload's id breaks that tag too.
        let plain = secret.seal_upload_id("alice", "alice/k.mp4", "id", DECLARED);
        let marked = plain.replacen("5242880-", "5242880-crc64nvme-", 1);
        assert_eq!(secret.open_upload_id("alice", "alice/k.mp4", &marked), None);
        let other_mark = sealed.replacen("-crc64nvme-", "-crc32-", 1);
        assert_eq!(
            secret.open_upload_id("alice", "alice/k.mp4", &other_mark),
            None
        );
        // An uploadId sealed before checksums existed (its tag computed outside Rust from
        // the v2 layout): it still opens, as a plain upload.
        let before = "id~6291456-5242880-75fa0119c629b5ed3281dbb80cdd5ed5";
        assert_eq!(
            secret.open_upload_id("alice", "alice/k.mp4", before),
            Some(("id", DECLARED))
        );
        assert_eq!(
            secret.open_upload_id("alice", "alice/k.mp4", &plain),
            Some(("id", DECLARED))
        );
    }

    #[test]
    fn the_secret_file_is_made_once_private_and_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("server.secret");
        let made = ServerSecret::load_or_create(&path).expect("created");
        let again = ServerSecret::load_or_create(&path).expect("read back");
        assert_eq!(made.0, again.0);
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.trim().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "abcd\n").expect("write");
        let err = ServerSecret::load_or_create(&path).unwrap_err().to_string();
        assert!(
            err.contains("not 64 hex characters") && err.contains("4 hex characters"),
            "{err}"
        );
        assert!(err.contains("server.secret"), "{err}");
    }
}
