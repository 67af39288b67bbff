//! The check CloudFront makes of a signed URL at its edge, made by the local stack's CDN
//! route with the key group's public keys, so the whole flow is tested for real. It refuses
//! an unsigned request, an expired or not-yet-valid one, one for another resource (a changed
//! key or query), a tampered `Policy`, an unknown `Key-Pair-Id`, a signature by another key
//! and a viewer outside the policy's address range, each with a short plain reason.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use p256::pkcs8::DecodePublicKey as _;
use rsa::signature::Verifier as _;
use sha1::Sha1;

use super::from_url_safe_base64;
use super::policy::Policy;
use super::sign::{KeyError, check_key_pair_id};
use crate::store::Clock;

/// The public half of a key-group key.
#[derive(Debug, Clone)]
pub enum PublicKey {
    Rsa(Box<rsa::pkcs1v15::VerifyingKey<Sha1>>),
    Ecdsa(p256::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// A SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`), as CloudFront takes it.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        if let Ok(key) = rsa::PublicKey::from_public_key_pem(pem) {
            return Ok(Self::Rsa(Box::new(rsa::pkcs1v15::VerifyingKey::new(key))));
        }
        p256::ecdsa::VerifyingKey::from_public_key_pem(pem)
            .map(Self::Ecdsa)
            .map_err(|_| KeyError::Unsupported {
                found: "not an RSA or P-256 public key".into(),
            })
    }

    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::Rsa(key) => rsa::pkcs1v15::Signature::try_from(signature)
                .is_ok_and(|sig| key.verify(message, &sig).is_ok()),
            Self::Ecdsa(key) => p256::ecdsa::Signature::from_der(signature)
                .is_ok_and(|sig| key.verify(message, &sig).is_ok()),
        }
    }
}

/// The public keys a distribution trusts, by key-pair ID.
#[derive(Debug, Clone, Default)]
pub struct KeyGroup(HashMap<String, PublicKey>);

impl KeyGroup {
    pub fn with(mut self, key_pair_id: &str, key: PublicKey) -> Result<Self, KeyError> {
        check_key_pair_id(key_pair_id)?;
        self.0.insert(key_pair_id.to_owned(), key);
        Ok(self)
    }
}

/// Why the CDN refused a request; [`Refusal::reason`] is what the viewer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Unsigned,
    Incomplete,
    UnknownKeyPairId,
    BadSignature,
    BadPolicy,
    WrongResource,
    Expired,
    NotYetValid,
    IpNotAllowed,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Self::Unsigned => "this video needs a signed link; ask its owner for one",
            Self::Incomplete => {
                "the signed link is incomplete: it needs Expires or Policy (not both), Signature and Key-Pair-Id, each once"
            }
            Self::UnknownKeyPairId => "the link's Key-Pair-Id is not one this CDN trusts",
            Self::BadSignature => {
                "the link's signature does not match: it was edited or signed with another key"
            }
            Self::BadPolicy => "the link's Policy is not a policy this CDN can apply",
            Self::WrongResource => "the link was signed for another address",
            Self::Expired => "the link has expired; ask for a new one",
            Self::NotYetValid => "the link is not valid yet",
            Self::IpNotAllowed => "the link does not allow your network address",
        }
    }
}

/// The signing parameters of a request's query, and the rest of it as it was sent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SignedQuery {
    expires: Option<String>,
    policy: Option<String>,
    signature: Option<String>,
    key_pair_id: Option<String>,
    repeated: bool,
    /// The other parameters, verbatim and in order: part of the signed resource, and what
    /// goes on to the origin.
    pub rest: Option<String>,
}

impl SignedQuery {
    pub fn parse(query: Option<&str>) -> Self {
        let mut out = Self::default();
        let mut rest = Vec::new();
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match name {
                "Expires" => &mut out.expires,
                "Policy" => &mut out.policy,
                "Signature" => &mut out.signature,
                "Key-Pair-Id" => &mut out.key_pair_id,
                _ => {
                    rest.push(pair);
                    continue;
                }
            };
            if slot.replace(value.to_owned()).is_some() {
                out.repeated = true;
            }
        }
        out.rest = (!rest.is_empty()).then(|| rest.join("&"));
        out
    }

    fn is_unsigned(&self) -> bool {
        self.expires.is_none()
            && self.policy.is_none()
            && self.signature.is_none()
            && self.key_pair_id.is_none()
    }
}

/// Checks signed requests against a key group at the time of its clock.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: KeyGroup,
    clock: Arc<dyn Clock>,
}

impl Verifier {
    pub fn new(keys: KeyGroup, clock: Arc<dyn Clock>) -> Self {
        Self { keys, clock }
    }

    /// Whether a viewer at `client` may fetch `resource` (the URL as requested, without
    /// the signing parameters) with `query`'s signature.
    pub fn check(
        &self,
        resource: &str,
        query: &SignedQuery,
        client: IpAddr,
    ) -> Result<(), Refusal> {
        if query.is_unsigned() {
            return Err(Refusal::Unsigned);
        }
        let (Some(signature), Some(key_pair_id)) = (&query.signature, &query.key_pair_id) else {
            return Err(Refusal::Incomplete);
        };
        if query.repeated || query.expires.is_some() == query.policy.is_some() {
            return Err(Refusal::Incomplete);
        }
        let key = self
            .keys
            .0
            .get(key_pair_id)
            .ok_or(Refusal::UnknownKeyPairId)?;
        let signature = from_url_safe_base64(signature).ok_or(Refusal::BadSignature)?;
        let policy = if let Some(expires) = &query.expires {
            let expires: u64 = expires.parse().map_err(|_| Refusal::Incomplete)?;
            // The canned policy is rebuilt from the request: any change to the address or
            // to Expires changes what was signed.
            let policy = Policy::canned(resource, expires);
            if !key.verifies(policy.to_json().as_bytes(), &signature) {
                return Err(Refusal::BadSignature);
            }
            policy
        } else {
            let text = query.policy.as_deref().unwrap_or_default();
            let json = from_url_safe_base64(text).ok_or(Refusal::BadPolicy)?;
            if !key.verifies(&json, &signature) {
                return Err(Refusal::BadSignature);
            }
            let policy = Policy::parse(&json).map_err(|_| Refusal::BadPolicy)?;
            if !policy.covers(resource) {
                return Err(Refusal::WrongResource);
            }
            policy
        };
        let now = self
            .clock
            .now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if now >= policy.date_less_than {
            return Err(Refusal::Expired);
        }
        if policy.date_greater_than.is_some_and(|start| now < start) {
            return Err(Refusal::NotYetValid);
        }
        if !policy.allows_ip(client) {
            return Err(Refusal::IpNotAllowed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudfront::LinkSigner;
    use crate::store::SystemClock;

    const URL: &str = "http://127.0.0.1:7300/cdn/dev/clip.mp4";

    fn verifier(signer: &LinkSigner) -> Verifier {
        let group = KeyGroup::default()
            .with(signer.key_pair_id(), signer.public_key())
            .expect("id");
        Verifier::new(group, Arc::new(SystemClock))
    }

    fn split(url: &str) -> (String, SignedQuery) {
        let (base, query) = url.split_once('?').expect("query");
        (base.to_owned(), SignedQuery::parse(Some(query)))
    }

    #[test]
    fn a_signed_url_checks_and_an_edited_one_does_not() {
        let signer = LinkSigner::generate_p256("KTEST").expect("key");
        let v = verifier(&signer);
        let local: IpAddr = "127.0.0.1".parse().expect("ip");
        let link = signer.sign_canned(URL, 4_000_000_000);
        let (base, q) = split(&link.url);
        assert_eq!(base, URL);
        assert_eq!(v.check(&base, &q, local), Ok(()));
        assert_eq!(
            v.check("http://127.0.0.1:7300/cdn/dev/other.mp4", &q, local),
            Err(Refusal::BadSignature)
        );
        let (_, later) = split(&link.url.replace("Expires=", "Expires=1"));
        assert_eq!(v.check(&base, &later, local), Err(Refusal::BadSignature));
        assert_eq!(
            v.check(&base, &SignedQuery::parse(None), local),
            Err(Refusal::Unsigned)
        );
        let (_, doubled) = split(&format!("{}&Expires=1", link.url));
        assert_eq!(v.check(&base, &doubled, local), Err(Refusal::Incomplete));
    }

    #[test]
    fn other_query_parameters_stay_in_the_resource() {
        let q = SignedQuery::parse(Some("a=1&Expires=5&b=2&Signature=x&Key-Pair-Id=K"));
        assert_eq!(q.rest.as_deref(), Some("a=1&b=2"));
        assert_eq!(q.expires.as_deref(), Some("5"));
    }
}
