//! Signing links with the private key of a CloudFront trusted key group. The key stays in
//! this process: no `Debug`, `Display` or error here ever shows it, and only the public half
//! leaves (for the local CDN route's check, and for `reelup-server check` to print).

use std::path::Path;

use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _};
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use sha1::Sha1;

use super::policy::Policy;
use super::url_safe_base64;
use super::verify::PublicKey;

/// Longest key file read: a 4096-bit RSA PEM is about 3.3 KiB.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// What a key file or key-pair ID is wrong with, and the fix.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the CloudFront private key {path} ({reason}); check private_key_file")]
    Unreadable { path: String, reason: String },
    #[error(
        "the CloudFront private key {path} can be read by other users (mode {mode:o}); run `chmod 600 {path}`"
    )]
    Exposed { path: String, mode: u32 },
    #[error(
        "the CloudFront private key is encrypted; store it decrypted, readable by this server only: `openssl pkey -in KEY -out plain.pem`, then `chmod 600 plain.pem`"
    )]
    Encrypted,
    #[error(
        "the CloudFront private key is not a PEM private key (-----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY); make one with `openssl genrsa -out private_key.pem 2048`"
    )]
    NotPem,
    #[error(
        "the CloudFront private key is {found}; CloudFront takes RSA-2048 or ECDSA P-256 keys only: `openssl genrsa -out private_key.pem 2048` or `openssl ecparam -name prime256v1 -genkey -noout -out private_key.pem`"
    )]
    Unsupported { found: String },
    #[error(
        "key_pair_id {0:?} is not a CloudFront public key ID (letters and digits, such as K2JCJMDEHXQW5F); copy it from the CloudFront console's Public keys page"
    )]
    BadKeyPairId(String),
}

#[derive(Clone)]
enum PrivateKey {
    /// PKCS#1 v1.5 over SHA-1: what CloudFront verifies for RSA keys.
    Rsa(Box<rsa::pkcs1v15::SigningKey<Sha1>>),
    /// ECDSA over SHA-256 (deterministic, RFC 6979), DER-encoded.
    Ecdsa(p256::ecdsa::SigningKey),
}

/// Signs CloudFront URLs as one public key of a key group.
#[derive(Clone)]
pub struct LinkSigner {
    key_pair_id: String,
    key: PrivateKey,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSigner")
            .field("key_pair_id", &self.key_pair_id)
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

/// A signed URL and the moment (Unix seconds) it stops working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedLink {
    pub url: String,
    pub expires_at: u64,
}

/// A CloudFront public key ID: it goes into every URL verbatim.
pub fn check_key_pair_id(id: &str) -> Result<(), KeyError> {
    if (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(KeyError::BadKeyPairId(id.to_owned()))
    }
}

/// The first PEM block whose label is a private key's: `openssl ecparam -genkey` writes an
/// `EC PARAMETERS` block before it.
fn private_key_block(pem: &str) -> Option<(&str, &str)> {
    let start = pem.find("-----BEGIN ")?;
    let rest = &pem[start..];
    let label_end = rest["-----BEGIN ".len()..].find("-----")? + "-----BEGIN ".len();
    let label = &rest["-----BEGIN ".len()..label_end];
    let end_marker = format!("-----END {label}-----");
    let end = rest.find(&end_marker)? + end_marker.len();
    if label.ends_with("PRIVATE KEY") {
        Some((label, &rest[..end]))
    } else {
        private_key_block(&rest[end..])
    }
}

impl LinkSigner {
    /// A signer from PEM text: PKCS#1 (`RSA PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) or
    /// PKCS#8 (`PRIVATE KEY`) holding an RSA-2048 or a P-256 key.
    pub fn from_pem(key_pair_id: &str, pem: &str) -> Result<Self, KeyError> {
        check_key_pair_id(key_pair_id)?;
        let (label, block) = private_key_block(pem).ok_or(KeyError::NotPem)?;
        let key = match label {
            "ENCRYPTED PRIVATE KEY" => return Err(KeyError::Encrypted),
            "RSA PRIVATE KEY" => {
                if pem.contains("Proc-Type: 4,ENCRYPTED") {
                    return Err(KeyError::Encrypted);
                }
                let key = rsa::PrivateKey::from_pkcs1_pem(block).map_err(|_| KeyError::NotPem)?;
                rsa_key(key)?
            }
            "EC PRIVATE KEY" => {
                if pem.contains("Proc-Type: 4,ENCRYPTED") {
                    return Err(KeyError::Encrypted);
                }
                let key =
                    p256::SecretKey::from_sec1_pem(block).map_err(|_| KeyError::Unsupported {
                        found: "an EC key on a curve other than P-256 (or a damaged one)".into(),
                    })?;
                PrivateKey::Ecdsa(key.into())
            }
            "PRIVATE KEY" => {
                if let Ok(key) = rsa::PrivateKey::from_pkcs8_pem(block) {
                    rsa_key(key)?
                } else if let Ok(key) = p256::SecretKey::from_pkcs8_pem(block) {
                    PrivateKey::Ecdsa(key.into())
                } else {
                    return Err(KeyError::Unsupported {
                        found: "neither an RSA nor a P-256 key (Ed25519, another curve, or a damaged file)".into(),
                    });
                }
            }
            other => {
                return Err(KeyError::Unsupported {
                    found: format!("a {other:?} PEM block"),
                });
            }
        };
        Ok(Self {
            key_pair_id: key_pair_id.to_owned(),
            key,
        })
    }

    /// [`Self::from_pem`] from a file that only its owner may read.
    pub fn load(key_pair_id: &str, path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let unreadable = |e: std::io::Error| KeyError::Unreadable {
            path: shown.clone(),
            reason: e.to_string(),
        };
        let meta = std::fs::metadata(path).map_err(unreadable)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::Exposed { path: shown, mode });
            }
        }
        if meta.len() > MAX_KEY_FILE {
            return Err(KeyError::NotPem);
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::InvalidData {
                return KeyError::NotPem;
            }
            unreadable(e)
        })?;
        Self::from_pem(key_pair_id, &text)
    }

    /// A new P-256 key (fast to make, unlike RSA): what `--local` signs with.
    pub fn generate_p256(key_pair_id: &str) -> Result<Self, KeyError> {
        use p256::elliptic_curve::Generate as _;
        check_key_pair_id(key_pair_id)?;
        Ok(Self {
            key_pair_id: key_pair_id.to_owned(),
            key: PrivateKey::Ecdsa(p256::SecretKey::generate().into()),
        })
    }

    /// The private key as PKCS#8 PEM, to keep it (mode 0600) across restarts.
    pub fn private_pem(&self) -> zeroize_string::Pem {
        let pem = match &self.key {
            PrivateKey::Rsa(k) => k.to_pkcs8_pem(p256::pkcs8::LineEnding::LF),
            PrivateKey::Ecdsa(k) => k.to_pkcs8_pem(p256::pkcs8::LineEnding::LF),
        };
        zeroize_string::Pem(pem.expect("a key in memory always encodes"))
    }

    /// The public key as SubjectPublicKeyInfo PEM: what goes into CloudFront's "Create
    /// public key" and what `openssl dgst -verify` reads.
    pub fn public_pem(&self) -> String {
        let pem = match &self.key {
            PrivateKey::Rsa(k) => {
                rsa::PublicKey::from(k.as_ref().as_ref()).to_public_key_pem(Default::default())
            }
            PrivateKey::Ecdsa(k) => k.verifying_key().to_public_key_pem(Default::default()),
        };
        pem.expect("a public key always encodes")
    }

    pub fn public_key(&self) -> PublicKey {
        match &self.key {
            PrivateKey::Rsa(k) => PublicKey::Rsa(Box::new(rsa::pkcs1v15::VerifyingKey::new(
                rsa::PublicKey::from(k.as_ref().as_ref()),
            ))),
            PrivateKey::Ecdsa(k) => PublicKey::Ecdsa(*k.verifying_key()),
        }
    }

    pub fn key_pair_id(&self) -> &str {
        &self.key_pair_id
    }

    /// "RSA-2048" or "ECDSA P-256".
    pub fn algorithm(&self) -> &'static str {
        match self.key {
            PrivateKey::Rsa(_) => "RSA-2048",
            PrivateKey::Ecdsa(_) => "ECDSA P-256",
        }
    }

    /// The raw signature of `message` as CloudFront verifies it.
    pub fn signature(&self, message: &[u8]) -> Vec<u8> {
        match &self.key {
            PrivateKey::Rsa(k) => k.sign(message).to_vec(),
            PrivateKey::Ecdsa(k) => {
                let sig: p256::ecdsa::Signature = k.sign(message);
                sig.to_der().as_bytes().to_vec()
            }
        }
    }

    /// `url` signed with a canned policy: `Expires`, `Signature`, `Key-Pair-Id`.
    pub fn sign_canned(&self, url: &str, expires: u64) -> SignedLink {
        let policy = Policy::canned(url, expires);
        let signature = self.signature(policy.to_json().as_bytes());
        SignedLink {
            url: self.with_params(url, &format!("Expires={expires}"), &signature),
            expires_at: expires,
        }
    }

    /// `url` signed with a custom policy, carried in the URL: `Policy`, `Signature`,
    /// `Key-Pair-Id`. The policy's resource is usually `url` itself, or a wildcard over it.
    pub fn sign_custom(&self, url: &str, policy: &Policy) -> SignedLink {
        let json = policy.to_json();
        let signature = self.signature(json.as_bytes());
        let first = format!("Policy={}", url_safe_base64(json.as_bytes()));
        SignedLink {
            url: self.with_params(url, &first, &signature),
            expires_at: policy.date_less_than,
        }
    }

    fn with_params(&self, url: &str, first: &str, signature: &[u8]) -> String {
        // botocore's join: `&` when the URL already has a query of its own.
        let separator = if url.contains('?') { '&' } else { '?' };
        format!(
            "{url}{separator}{first}&Signature={}&Key-Pair-Id={}",
            url_safe_base64(signature),
            self.key_pair_id
        )
    }
}

fn rsa_key(key: rsa::PrivateKey) -> Result<PrivateKey, KeyError> {
    let bits = key.n().bit_width();
    if bits != 2048 {
        return Err(KeyError::Unsupported {
            found: format!("an RSA-{bits} key"),
        });
    }
    Ok(PrivateKey::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(
        key,
    ))))
}

/// PEM text of a private key that wipes itself when dropped and never prints.
pub mod zeroize_string {
    pub struct Pem(pub(super) p256::pkcs8::der::zeroize::Zeroizing<String>);

    impl Pem {
        pub fn expose(&self) -> &str {
            &self.0
        }
    }

    impl std::fmt::Debug for Pem {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Pem(<private key>)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_are_found_after_ec_parameters() {
        let pem = "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        let (label, block) = private_key_block(pem).expect("block");
        assert_eq!(label, "EC PRIVATE KEY");
        assert!(block.starts_with("-----BEGIN EC PRIVATE KEY-----"));
        assert!(private_key_block("no pem here").is_none());
    }

    #[test]
    fn generated_keys_round_trip_and_never_print() {
        let signer = LinkSigner::generate_p256("KLOCAL1").expect("key");
        let pem = signer.private_pem();
        assert!(!format!("{signer:?} {pem:?}").contains("PRIVATE"));
        let again = LinkSigner::from_pem("KLOCAL1", pem.expose()).expect("parses");
        assert_eq!(again.public_pem(), signer.public_pem());
        assert!(matches!(
            LinkSigner::from_pem("K-1", pem.expose()),
            Err(KeyError::BadKeyPairId(_))
        ));
        assert!(matches!(
            LinkSigner::from_pem("K1", "hello"),
            Err(KeyError::NotPem)
        ));
    }
}
