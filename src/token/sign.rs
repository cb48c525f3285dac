//! Registry tokens: ES256 JWTs in the shape both Distribution 2.8 and 3 accept: the key named
//! twice in the header — a libtrust `kid` (2.8) and the signing certificate in `x5c` (2.8 and 3;
//! 3 knows no libtrust ids, see docs/registry-versions.md) — `aud` as a plain string, and a raw
//! r‖s signature. Off-the-shelf JWT crates get at least one of these wrong for this registry,
//! and the format is small, so it is written out here.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::key::TokenKey;
use crate::names::{Resource, Scope};

/// One entry of the `access` claim. registry:2 matches these exactly: no patterns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaim {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// A granted scope as the claim writes it: the catalog's `*` stays literal, since registry:2
/// asks for exactly `registry:catalog:*`.
impl From<&Scope> for AccessClaim {
    fn from(scope: &Scope) -> AccessClaim {
        match &scope.resource {
            Resource::Repository(name) => AccessClaim {
                kind: "repository".into(),
                name: name.to_string(),
                actions: scope.wanted.actions.iter().map(|a| a.to_string()).collect(),
            },
            Resource::Catalog => AccessClaim {
                kind: "registry".into(),
                name: "catalog".into(),
                actions: vec!["*".into()],
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub typ: String,
    pub alg: String,
    pub kid: String,
    /// The certificate chain, leaf first, each standard base64 of DER (RFC 7515 §4.1.6): here
    /// only the self-signed certificate in `token.crt`.
    pub x5c: Vec<String>,
}

/// In the order registry:2's `ClaimSet` declares them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The account name; "" for an anonymous caller.
    pub sub: String,
    /// The service, as a string: registry:2 refuses an array.
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub access: Vec<AccessClaim>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub token: String,
    /// Whole seconds, equal to `iat`.
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub struct TokenIssuer {
    key: TokenKey,
    /// The header's `x5c` entry, encoded once: it is the same for every token of this key.
    x5c: String,
    issuer: String,
    service: String,
    ttl: Duration,
}

impl TokenIssuer {
    pub fn new(
        key: TokenKey,
        issuer: impl Into<String>,
        service: impl Into<String>,
        ttl: Duration,
    ) -> TokenIssuer {
        TokenIssuer {
            x5c: STANDARD.encode(key.certificate_der()),
            key,
            issuer: issuer.into(),
            service: service.into(),
            ttl,
        }
    }

    pub fn key(&self) -> &TokenKey {
        &self.key
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn issue(&self, sub: &str, access: &[AccessClaim]) -> IssuedToken {
        self.issue_at(sub, access, Utc::now())
    }

    /// As `issue`, as if the clock read `now`.
    pub fn issue_at(&self, sub: &str, access: &[AccessClaim], now: DateTime<Utc>) -> IssuedToken {
        self.issue_with_ttl(sub, access, now, self.ttl)
    }

    /// As `issue_at`, living `ttl` rather than the configured lifetime: registry-admin's own
    /// tokens are kept shorter than clients'.
    pub fn issue_with_ttl(
        &self,
        sub: &str,
        access: &[AccessClaim],
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> IssuedToken {
        let iat = now.timestamp();
        // TTLs are validated to minutes at start-up; saturate rather than wrap on nonsense.
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let exp = iat.saturating_add(ttl);
        let mut jti = [0u8; 16];
        rand::rng().fill_bytes(&mut jti);
        let header = Header {
            typ: "JWT".into(),
            alg: "ES256".into(),
            kid: self.key.kid().into(),
            x5c: vec![self.x5c.clone()],
        };
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: sub.into(),
            aud: self.service.clone(),
            exp,
            // nbf = iat: the registry allows 60 s of skew either way, which covers its clock
            // running a little behind ours.
            nbf: iat,
            iat,
            jti: hex::encode(jti),
            access: access.to_vec(),
        };
        let token = sign_parts(&self.key, &json(&header), &json(&claims));
        let at = |secs: i64| DateTime::from_timestamp(secs, 0).unwrap_or(now);
        IssuedToken {
            token,
            issued_at: at(iat),
            expires_at: at(iat)
                .checked_add_signed(TimeDelta::seconds(ttl))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        }
    }
}

/// `base64url(header).base64url(claims).base64url(r‖s)`, all without padding. Public so that
/// tests can sign deliberately wrong headers or claims with a real key.
pub fn sign_parts(key: &TokenKey, header_json: &[u8], claims_json: &[u8]) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header_json),
        URL_SAFE_NO_PAD.encode(claims_json)
    );
    let signature = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn json(value: &impl Serialize) -> Vec<u8> {
    // Structs of strings and integers cannot fail to serialise.
    serde_json::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::Signature;
    use p256::ecdsa::signature::Verifier;

    fn issuer() -> TokenIssuer {
        let (key, _) = TokenKey::generate().unwrap();
        TokenIssuer::new(key, "registry-admin", "registry", Duration::from_secs(300))
    }

    fn decode(part: &str) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn a_token_has_the_header_and_claims_registry_2_expects() {
        let issuer = issuer();
        let access = vec![AccessClaim {
            kind: "repository".into(),
            name: "team/app".into(),
            actions: vec!["pull".into(), "push".into()],
        }];
        let now = DateTime::from_timestamp(1_700_000_000, 123_000_000).unwrap();
        let t = issuer.issue_at("alice", &access, now);
        let parts: Vec<&str> = t.token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            String::from_utf8(URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap(),
            format!(
                r#"{{"typ":"JWT","alg":"ES256","kid":"{}","x5c":["{}"]}}"#,
                issuer.key().kid(),
                STANDARD.encode(issuer.key().certificate_der())
            )
        );
        let claims = decode(parts[1]);
        let jti = claims["jti"].as_str().unwrap().to_string();
        assert_eq!(jti.len(), 32);
        assert_eq!(
            claims,
            serde_json::json!({
                "iss": "registry-admin",
                "sub": "alice",
                "aud": "registry",
                "exp": 1_700_000_300,
                "nbf": 1_700_000_000,
                "iat": 1_700_000_000,
                "jti": jti,
                "access": [{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}]
            })
        );
        assert_eq!(t.issued_at.timestamp(), 1_700_000_000);
        assert_eq!(t.issued_at.timestamp_subsec_nanos(), 0);
        assert_eq!(t.expires_at.timestamp(), 1_700_000_300);
    }

    #[test]
    fn x5c_holds_the_certificate_of_the_signing_key() {
        let issuer = issuer();
        let t = issuer.issue("", &[]);
        let header = decode(t.token.split('.').next().unwrap());
        let chain = header["x5c"].as_array().unwrap();
        assert_eq!(chain.len(), 1);
        // Standard base64 (with padding, `+` and `/`), not the URL-safe form of the JWT parts.
        let der = STANDARD.decode(chain[0].as_str().unwrap()).unwrap();
        assert_eq!(der, issuer.key().certificate_der());
        // The certificate embeds this key's public key, and no other key's.
        let spki = issuer.key().public_key_der();
        assert!(der.windows(spki.len()).any(|w| w == spki));
        let (other, _) = TokenKey::generate().unwrap();
        let theirs = other.public_key_der();
        assert!(!der.windows(theirs.len()).any(|w| w == theirs));
    }

    #[test]
    fn the_signature_is_raw_r_and_s_over_the_first_two_parts() {
        let issuer = issuer();
        let t = issuer.issue("", &[]);
        let (input, sig) = t.token.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        assert_eq!(sig.len(), 64);
        let sig = Signature::from_slice(&sig).unwrap();
        assert!(
            issuer
                .key()
                .verifying_key()
                .verify(input.as_bytes(), &sig)
                .is_ok()
        );
        let claims = decode(input.split('.').nth(1).unwrap());
        assert_eq!(claims["sub"], "");
        assert_eq!(claims["access"], serde_json::json!([]));
    }

    #[test]
    fn every_token_gets_its_own_jti() {
        let issuer = issuer();
        let jti = |t: IssuedToken| decode(t.token.split('.').nth(1).unwrap())["jti"].clone();
        let now = Utc::now();
        assert_ne!(
            jti(issuer.issue_at("a", &[], now)),
            jti(issuer.issue_at("a", &[], now))
        );
    }
}
