//! Reelup's CloudFront signer against peers: botocore's `CloudFrontSigner` (with
//! cryptography's RSA PKCS#1 v1.5 / SHA-1 signer) must produce the identical URL for the
//! same RSA key, resource and expiry, canned and custom; ECDSA P-256 signatures must verify
//! with `openssl dgst -sha256 -verify`, and keys made by `openssl` must load. Also the key
//! file checks: another user may not read it, and only RSA-2048 and P-256 keys are taken.

use std::path::Path;
use std::process::Command;

use reelup_server::cloudfront::{KeyError, LinkSigner, Policy, policy::parse_range};

const URL: &str =
    "https://d111111abcdef8.cloudfront.net/alice/0b7c9a3e-1f2d-4e5f-8a9b-0c1d2e3f4a5b.mp4";

fn openssl(args: &[&str], dir: &Path) -> std::process::Output {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (apt install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn private(dir: &Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    path
}

/// botocore's signed URLs for `key`: canned until `expires`, then custom with `policy`'s
/// conditions (built by botocore's own `build_policy`), one a line.
fn botocore_urls(key: &Path, key_pair_id: &str, url: &str, policy: &Policy) -> Vec<String> {
    let python = std::env::var("REELUP_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("REELUP_TEST_PYTHON is not set: run `./dev test`, which installs botocore and cryptography in its venv")
    });
    const SCRIPT: &str = r#"
import sys, datetime
from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

key_file, key_id, url, resource, less, greater, ip = sys.argv[1:8]
with open(key_file, "rb") as f:
    key = serialization.load_pem_private_key(f.read(), password=None)
signer = CloudFrontSigner(key_id, lambda m: key.sign(m, padding.PKCS1v15(), hashes.SHA1()))
at = lambda s: datetime.datetime.fromtimestamp(int(s), tz=datetime.timezone.utc)
print(signer.generate_presigned_url(url, date_less_than=at(less)))
policy = signer.build_policy(resource, at(less), date_greater_than=at(greater) if greater else None, ip_address=ip or None)
print(signer.generate_presigned_url(url, policy=policy))
"#;
    let out = Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .arg(key)
        .arg(key_pair_id)
        .arg(url)
        .arg(&policy.resource)
        .arg(policy.date_less_than.to_string())
        .arg(
            policy
                .date_greater_than
                .map(|t| t.to_string())
                .unwrap_or_default(),
        )
        .arg(policy.source_ip.map(|n| n.to_string()).unwrap_or_default())
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "botocore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn botocore_signs_the_identical_urls_with_the_same_rsa_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    // OpenSSL 3 writes PKCS#8; `-traditional` gives the PKCS#1 form AWS's docs show.
    openssl(&["genrsa", "-out", "pkcs8.pem", "2048"], dir.path());
    openssl(
        &[
            "rsa",
            "-in",
            "pkcs8.pem",
            "-traditional",
            "-out",
            "pkcs1.pem",
        ],
        dir.path(),
    );
    for name in ["pkcs8.pem", "pkcs1.pem"] {
        let key = private(dir.path(), name);
        let signer = LinkSigner::load("K2JCJMDEHXQW5F", &key).expect("RSA-2048 key loads");
        for (url, policy) in [
            (
                URL.to_owned(),
                Policy {
                    resource: URL.to_owned(),
                    date_less_than: 1_767_290_400,
                    date_greater_than: None,
                    source_ip: None,
                },
            ),
            (
                // A query of the URL's own, a wildcard resource, a start and an address range.
                format!("{URL}?size=large"),
                Policy {
                    resource: "https://d111111abcdef8.cloudfront.net/alice/*".to_owned(),
                    date_less_than: 1_767_290_400,
                    date_greater_than: Some(1_767_200_000),
                    source_ip: Some(parse_range("192.0.2.0/24").expect("range")),
                },
            ),
        ] {
            let theirs = botocore_urls(&key, "K2JCJMDEHXQW5F", &url, &policy);
            let canned = signer.sign_canned(&url, policy.date_less_than);
            let custom = signer.sign_custom(&url, &policy);
            assert_eq!(
                theirs,
                vec![canned.url.clone(), custom.url.clone()],
                "{name}"
            );
            assert!(
                canned.url.contains("Expires=1767290400&Signature="),
                "{}",
                canned.url
            );
            assert!(
                custom.url.contains("Policy=") && !custom.url.contains("Expires="),
                "{}",
                custom.url
            );
        }
    }
}

#[test]
fn ecdsa_signatures_verify_with_openssl_and_openssl_keys_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // Ours: a generated key; OpenSSL's: SEC1 with its EC PARAMETERS block, and PKCS#8.
    openssl(
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-out",
            "sec1.pem",
        ],
        d,
    );
    openssl(
        &[
            "pkcs8", "-topk8", "-nocrypt", "-in", "sec1.pem", "-out", "p8.pem",
        ],
        d,
    );
    let mut signers = vec![LinkSigner::generate_p256("KEC1").expect("key")];
    for name in ["sec1.pem", "p8.pem"] {
        signers.push(LinkSigner::load("KEC1", &private(d, name)).expect("P-256 key loads"));
    }
    for signer in signers {
        assert_eq!(signer.algorithm(), "ECDSA P-256");
        let policy = Policy::canned(URL, 1_767_290_400).to_json();
        std::fs::write(d.join("pub.pem"), signer.public_pem()).expect("write");
        std::fs::write(d.join("policy.json"), &policy).expect("write");
        std::fs::write(d.join("sig.der"), signer.signature(policy.as_bytes())).expect("write");
        let ok = openssl(
            &[
                "dgst",
                "-sha256",
                "-verify",
                "pub.pem",
                "-signature",
                "sig.der",
                "policy.json",
            ],
            d,
        );
        assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "Verified OK");
        // The same signature over another expiry must not verify: the check can fail.
        std::fs::write(
            d.join("policy.json"),
            policy.replace("1767290400", "1767290401"),
        )
        .expect("write");
        let bad = Command::new("openssl")
            .args([
                "dgst",
                "-sha256",
                "-verify",
                "pub.pem",
                "-signature",
                "sig.der",
                "policy.json",
            ])
            .current_dir(d)
            .output()
            .expect("openssl");
        assert!(!bad.status.success());
        // And the URL carries that DER signature in CloudFront's base64.
        let link = signer.sign_canned(URL, 1_767_290_400);
        let sig = link
            .url
            .split("Signature=")
            .nth(1)
            .and_then(|r| r.split('&').next())
            .expect("sig");
        assert!(
            reelup_server::cloudfront::from_url_safe_base64(sig).is_some_and(|der| der[0] == 0x30)
        );
    }
}

#[test]
fn key_files_are_refused_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    openssl(&["genrsa", "-out", "open.pem", "2048"], d);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(d.join("open.pem"), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        let err = LinkSigner::load("K1", &d.join("open.pem")).expect_err("readable by others");
        assert!(matches!(err, KeyError::Exposed { .. }));
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
    openssl(&["genrsa", "-out", "small.pem", "1024"], d);
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", "ed.pem"], d);
    openssl(
        &[
            "ecparam",
            "-name",
            "secp384r1",
            "-genkey",
            "-noout",
            "-out",
            "p384.pem",
        ],
        d,
    );
    for name in ["small.pem", "ed.pem", "p384.pem"] {
        let err = LinkSigner::load("K1", &private(d, name)).expect_err(name);
        assert!(matches!(err, KeyError::Unsupported { .. }), "{name}: {err}");
        assert!(
            err.to_string()
                .contains("RSA-2048 or ECDSA P-256 keys only"),
            "{name}: {err}"
        );
    }
    openssl(
        &[
            "genrsa",
            "-aes128",
            "-passout",
            "pass:x",
            "-out",
            "locked.pem",
            "2048",
        ],
        d,
    );
    let err = LinkSigner::load("K1", &private(d, "locked.pem")).expect_err("encrypted");
    assert!(matches!(err, KeyError::Encrypted), "{err}");
    std::fs::write(d.join("junk.pem"), "not a key").expect("write");
    let err = LinkSigner::load("K1", &private(d, "junk.pem")).expect_err("junk");
    assert!(matches!(err, KeyError::NotPem), "{err}");
    let err = LinkSigner::load("K1", &d.join("absent.pem")).expect_err("absent");
    assert!(err.to_string().contains("absent.pem"), "{err}");
    // No error ever shows the key itself.
    let text = std::fs::read_to_string(d.join("small.pem")).expect("read");
    let body = text.lines().nth(1).expect("a base64 line");
    let err = LinkSigner::from_pem("K1", &text).expect_err("1024");
    assert!(!format!("{err} {err:?}").contains(body));
}

#[test]
fn the_config_takes_both_key_settings_or_neither() {
    use reelup_server::config::ServerConfig;
    let base = "bucket = \"reelup-test\"\ncdn_base_url = \"https://d.example.net\"\n";
    let parse = |extra: &str| ServerConfig::parse(&format!("{base}{extra}"), "t.toml", Vec::new());
    assert!(parse("").is_ok());
    let half = parse("[cloudfront]\nkey_pair_id = \"K2JCJMDEHXQW5F\"\n").expect_err("half");
    assert!(
        half.to_string()
            .contains("both key_pair_id and private_key_file"),
        "{half}"
    );
    let required = parse("[cloudfront]\nrequire_signed_links = true\n").expect_err("no key");
    assert!(
        required.to_string().contains("require_signed_links"),
        "{required}"
    );
    let bad_id = parse("[cloudfront]\nkey_pair_id = \"K 2\"\nprivate_key_file = \"k.pem\"\n")
        .expect_err("id");
    assert!(
        bad_id
            .to_string()
            .contains("not a CloudFront public key ID"),
        "{bad_id}"
    );
    let lifetimes =
        parse("[cloudfront]\ndefault_link_lifetime_secs = 90000\nmax_link_lifetime_secs = 3600\n")
            .expect_err("default over max");
    assert!(
        lifetimes.to_string().contains("default_link_lifetime_secs"),
        "{lifetimes}"
    );
    let ok = parse("[cloudfront]\nkey_pair_id = \"K2JCJMDEHXQW5F\"\nprivate_key_file = \"k.pem\"\nrequire_signed_links = true\n")
        .expect("valid");
    assert!(ok.cloudfront.require_signed_links);
}
