//! The EC P-256 key that signs registry tokens, and the self-signed certificate the registry
//! trusts it through (`auth.token.rootcertbundle`; 2.8.2 has no JWKS). Tokens also carry that
//! certificate in their `x5c` header, which is how registry 3 finds the key.
//!
//! The key is never replaced once it exists: every token in flight and the registry's bundle
//! depend on it. A missing key is generated and published with a no-clobber rename, so two
//! processes starting at once agree on one key. A missing certificate is made again from the
//! key, since it holds nothing secret.

use std::fs::{self, File, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use chrono::{Datelike, Days, Utc};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use thiserror::Error;

use super::kid::libtrust_kid;

/// The certificate's file name, in the key's directory.
pub const CERT_FILE_NAME: &str = "token.crt";
pub const CERT_COMMON_NAME: &str = "registry-admin token signer";
/// A PEM EC key is a few hundred bytes; anything far larger is not one.
const MAX_PEM_BYTES: u64 = 64 * 1024;
const KEY_MODE: u32 = 0o600;
/// registry:2 may run as another user and only needs to read the public certificate.
const CERT_MODE: u32 = 0o644;

#[derive(Debug, Error)]
pub enum KeyError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{} is not a PEM EC P-256 private key (PKCS#8 \"PRIVATE KEY\" or SEC1 \"EC PRIVATE KEY\"): {reason}",
        path.display()
    )]
    NotP256 { path: PathBuf, reason: String },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot make a token key or certificate for {}: {reason}", path.display())]
    Generate { path: PathBuf, reason: String },
    /// Anyone who can read the key can sign registry tokens for any account.
    #[error(
        "{} is readable by its group or by others (mode {mode:04o}); the signing key must be \
         private to the service's user: run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Exposed { path: PathBuf, mode: u32 },
}

/// A P-256 signing key with its public key identifiers worked out once.
pub struct TokenKey {
    signing: SigningKey,
    /// The same key for ring, whose assembly P-256 signs in microseconds: every `GET /token`
    /// signs, and the pure-Rust signer costs milliseconds in test builds.
    fast: ring::signature::EcdsaKeyPair,
    rng: ring::rand::SystemRandom,
    spki_der: Vec<u8>,
    kid: String,
    /// DER of the certificate tokens carry in `x5c`: registry 3 finds the key only through
    /// it (it no longer knows libtrust ids), and it must be the very certificate the registry
    /// holds in its bundle. Made from the key at load; `load_or_generate` replaces it with the
    /// matching one from `token.crt`.
    certificate_der: Vec<u8>,
}

// Never print the secret, not even in a debug log.
impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey").field("kid", &self.kid).finish()
    }
}

impl TokenKey {
    /// Reads a PEM key: PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY` (an `EC PARAMETERS`
    /// block before it, as `openssl ecparam -genkey` writes, is skipped).
    pub fn load(path: &Path) -> Result<TokenKey, KeyError> {
        let bytes = read_bounded(path)?;
        TokenKey::from_pem(&bytes).map_err(|reason| KeyError::NotP256 {
            path: path.into(),
            reason,
        })
    }

    /// `Err` is the reason, for the caller to name its source.
    pub fn from_pem(pem_bytes: &[u8]) -> Result<TokenKey, String> {
        let blocks = pem::parse_many(pem_bytes).map_err(|e| format!("not PEM: {e}"))?;
        let parsed = blocks.iter().find_map(|b| match b.tag() {
            "PRIVATE KEY" => {
                Some(SigningKey::from_pkcs8_der(b.contents()).map_err(|e| e.to_string()))
            }
            "EC PRIVATE KEY" => Some(
                p256::SecretKey::from_sec1_der(b.contents())
                    .map(SigningKey::from)
                    .map_err(|e| e.to_string()),
            ),
            _ => None,
        });
        let signing = match parsed {
            Some(Ok(k)) => k,
            Some(Err(e)) => return Err(format!("not a P-256 key ({e})")),
            None => {
                let tags: Vec<&str> = blocks.iter().map(|b| b.tag()).collect();
                return Err(if tags.is_empty() {
                    "no PEM block found".into()
                } else {
                    format!("found {tags:?}; encrypted and non-EC keys are not supported")
                });
            }
        };
        let spki_der = signing
            .verifying_key()
            .to_public_key_der()
            .map_err(|e| format!("cannot encode its public key: {e}"))?
            .into_vec();
        let kid = libtrust_kid(&spki_der);
        let pkcs8 = signing
            .to_pkcs8_der()
            .map_err(|e| format!("cannot encode the key: {e}"))?;
        let rng = ring::rand::SystemRandom::new();
        let fast = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_bytes(),
            &rng,
        )
        .map_err(|e| format!("not a usable P-256 key ({e})"))?;
        let certificate_der = self_signed_certificate(&signing)?;
        Ok(TokenKey {
            signing,
            fast,
            rng,
            spki_der,
            kid,
            certificate_der,
        })
    }

    /// A fresh key, and its PKCS#8 PEM for writing.
    pub fn generate() -> Result<(TokenKey, String), String> {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| e.to_string())?;
        let pem = pair.serialize_pem();
        // Parsed back through the loader, so a generated key is exactly what a restart reads.
        let key = TokenKey::from_pem(pem.as_bytes())?;
        Ok((key, pem))
    }

    /// The libtrust key id registry:2 looks this key up by.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki_der
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        self.signing.verifying_key()
    }

    /// ES256: ECDSA P-256 over SHA-256 of `message`, as the 64 bytes r‖s that JWS uses (the
    /// registry refuses a DER signature).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        match self.fast.sign(&self.rng, message) {
            // FIXED signing is r‖s, 32 bytes each, for P-256.
            Ok(sig) if sig.as_ref().len() == 64 => out.copy_from_slice(sig.as_ref()),
            // Only a failing system RNG gets here; the deterministic (RFC 6979) signer needs none.
            _ => {
                let signature: Signature = self.signing.sign(message);
                out.copy_from_slice(&signature.to_bytes());
            }
        }
        out
    }

    /// The certificate this key's tokens carry in `x5c`, as PEM: what `load_or_generate`
    /// writes to a missing `token.crt`.
    pub fn certificate_pem(&self) -> String {
        pem::encode_config(
            &pem::Pem::new("CERTIFICATE", self.certificate_der.clone()),
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        )
    }

    /// DER of the certificate tokens carry in `x5c` (see `certificate_der` above).
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The first certificate in `bundle` (PEM) that is for this key, as DER.
    fn certificate_in_bundle(&self, bundle: &[u8]) -> Option<Vec<u8>> {
        // The certificate's DER embeds the SubjectPublicKeyInfo verbatim, so finding ours in
        // it is exact without parsing X.509.
        pem::parse_many(bundle).ok()?.into_iter().find_map(|b| {
            (b.tag() == "CERTIFICATE"
                && b.contents()
                    .windows(self.spki_der.len())
                    .any(|w| w == self.spki_der.as_slice()))
            .then(|| b.into_contents())
        })
    }

    /// Whether `bundle` (PEM certificates) holds a certificate for this key.
    pub fn is_in_bundle(&self, bundle: &[u8]) -> bool {
        self.certificate_in_bundle(bundle).is_some()
    }

    /// Takes the certificate for this key out of `bundle` as the one tokens carry; `false`
    /// (and the key unchanged) when the bundle holds none.
    fn adopt_certificate_from(&mut self, bundle: &[u8]) -> bool {
        match self.certificate_in_bundle(bundle) {
            Some(der) => {
                self.certificate_der = der;
                true
            }
            None => false,
        }
    }
}

/// A self-signed certificate for `signing`, valid from yesterday (clock skew) to 9999-12-31,
/// RFC 5280's "no well-defined expiration": the registry only takes the key out of it, and a
/// certificate that expired would end token auth with no warning.
fn self_signed_certificate(signing: &SigningKey) -> Result<Vec<u8>, String> {
    let pkcs8 = signing
        .to_pkcs8_der()
        .map_err(|e| format!("cannot encode the key: {e}"))?;
    let pair = rcgen::KeyPair::try_from(pkcs8.as_bytes()).map_err(|e| e.to_string())?;
    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, CERT_COMMON_NAME);
    params.distinguished_name = dn;
    let start = Utc::now()
        .date_naive()
        .checked_sub_days(Days::new(1))
        .ok_or("the clock is out of range")?;
    // Month and day always fit in u8; the fallback is never taken.
    let (month, day) = (
        u8::try_from(start.month()).unwrap_or(1),
        u8::try_from(start.day()).unwrap_or(1),
    );
    params.not_before = rcgen::date_time_ymd(start.year(), month, day);
    params.not_after = rcgen::date_time_ymd(9999, 12, 31);
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    let cert = params.self_signed(&pair).map_err(|e| e.to_string())?;
    Ok(cert.der().to_vec())
}

/// What `load_or_generate` found or did.
#[derive(Debug)]
pub struct KeySetup {
    pub key: TokenKey,
    pub key_path: PathBuf,
    pub cert_path: PathBuf,
    /// The key did not exist and this call made it.
    pub key_generated: bool,
    pub certificate: CertificateStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateStatus {
    /// It was missing and has been written from the key.
    Written,
    /// It exists and holds a certificate for the key.
    Matches,
    /// It exists but holds no certificate for this key (or no certificate at all): a registry
    /// given it as its bundle refuses every token. Left alone: it may be the operator's.
    DoesNotMatch,
}

/// `token.crt` beside the key.
pub fn cert_path_for(key_path: &Path) -> PathBuf {
    key_path.with_file_name(CERT_FILE_NAME)
}

/// Loads the key at `key_path`, generating it when missing, and makes sure `token.crt` exists
/// beside it. An existing key, even an unusable one, is never replaced.
pub fn load_or_generate(key_path: &Path) -> Result<KeySetup, KeyError> {
    let generate_err = |reason: String| KeyError::Generate {
        path: key_path.into(),
        reason,
    };
    let (key, key_generated) = match fs::metadata(key_path) {
        Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o077 != 0 => {
            return Err(KeyError::Exposed {
                path: key_path.into(),
                mode: meta.permissions().mode() & 0o7777,
            });
        }
        Ok(_) => (TokenKey::load(key_path)?, false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let (key, pem) = TokenKey::generate().map_err(generate_err)?;
            if write_new(key_path, pem.as_bytes(), KEY_MODE)? {
                (key, true)
            } else {
                // Another process published its key first: use that one.
                (TokenKey::load(key_path)?, false)
            }
        }
        Err(source) => {
            return Err(KeyError::Read {
                path: key_path.into(),
                source,
            });
        }
    };
    let mut key = key;
    let cert_path = cert_path_for(key_path);
    // Tokens carry the very certificate the registry reads from token.crt in `x5c`; on a
    // mismatch they keep the one made from the key, which no registry given that file trusts
    // either way (reported, and the file left alone).
    let certificate = match read_bounded(&cert_path) {
        Ok(bundle) if key.adopt_certificate_from(&bundle) => CertificateStatus::Matches,
        Ok(_) => CertificateStatus::DoesNotMatch,
        Err(KeyError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            if write_new(&cert_path, key.certificate_pem().as_bytes(), CERT_MODE)? {
                CertificateStatus::Written
            } else if key.adopt_certificate_from(&read_bounded(&cert_path)?) {
                CertificateStatus::Matches
            } else {
                CertificateStatus::DoesNotMatch
            }
        }
        Err(e) => return Err(e),
    };
    Ok(KeySetup {
        key,
        key_path: key_path.into(),
        cert_path,
        key_generated,
        certificate,
    })
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, KeyError> {
    let err = |source| KeyError::Read {
        path: path.into(),
        source,
    };
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|f| f.take(MAX_PEM_BYTES + 1).read_to_end(&mut bytes))
        .map_err(err)?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {MAX_PEM_BYTES} bytes"),
        )));
    }
    Ok(bytes)
}

/// Publishes `contents` at `path` only if nothing is there: temp file in the same directory,
/// mode set, fsync, no-clobber rename, directory fsync. A reader sees no file or the whole
/// file. `Ok(false)`: something else got there first, and is left as it is.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<bool, KeyError> {
    let err = |source| KeyError::Write {
        path: path.into(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(err)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(err)?;
    // Set after creation, so the umask cannot narrow the certificate or widen the key.
    tmp.as_file()
        .set_permissions(Permissions::from_mode(mode))
        .map_err(err)?;
    tmp.write_all(contents).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    match tmp.persist_noclobber(path) {
        Ok(_) => {}
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(err(e.error)),
    }
    File::open(dir).and_then(|d| d.sync_all()).map_err(err)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier;

    /// A test key made with `openssl ecparam -name prime256v1 -genkey -noout`, and the same key
    /// through `openssl pkcs8 -topk8 -nocrypt`; its kid was computed with openssl and Python.
    const SEC1: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIB853EADG+AAodNPmINWwmkiKt8suSY0OqTimtia8MrioAoGCCqGSM49
AwEHoUQDQgAEJRF3U1XaR3igmVzy+JES2yDg/McTuS3S9WaziiZph2RXXB9DZUdE
75zOpm9HWPVlgGRQtRrH3E8Ndo/WuKxmMQ==
-----END EC PRIVATE KEY-----
";
    const PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgHzncQAMb4ACh00+Y
g1bCaSIq3yy5JjQ6pOKa2JrwyuKhRANCAAQlEXdTVdpHeKCZXPL4kRLbIOD8xxO5
LdL1ZrOKJmmHZFdcH0NlR0TvnM6mb0dY9WWAZFC1GsfcTw12j9a4rGYx
-----END PRIVATE KEY-----
";
    const KID: &str = "6QBR:TEU6:LULT:2YBW:6CNQ:UDT6:HQSD:ZLGA:OUBV:P2LP:UXAQ:H3KC";
    /// `openssl ecparam -name secp384r1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt`.
    const P384: &str = "-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDBIYrg2CoZvEm1dmhJg
Df8Hoy2JhsmVAaMFh/clCTEicF4yHFO+pD6DSQTsqCLw+HGhZANiAAQ+fQ/9eYPT
S+5n+EDc+SRkpf0qE41BfyhtWH5GCgGFguRxcmTnScT0PhuDInksk7lIrkLrY2QL
Zxvum5mVTzYokFX8SPjQSXibUJ7SefHY41VCLS4fOguveTQhs7L+FGM=
-----END PRIVATE KEY-----
";
    /// `openssl genpkey -algorithm ed25519`.
    const ED25519: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIK059lO9L7X2roi4sFvlmPFU5LC+CUttZQV9CTHR66cX
-----END PRIVATE KEY-----
";

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// A key file as an operator should leave it: 0600.
    fn write_private(path: &Path, text: impl AsRef<[u8]>) {
        fs::write(path, text).unwrap();
        fs::set_permissions(path, Permissions::from_mode(0o600)).unwrap();
    }

    #[test]
    fn a_key_others_can_read_stops_start_up_naming_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token.key");
        for exposed in [0o644, 0o640, 0o604] {
            fs::write(&path, SEC1).unwrap();
            fs::set_permissions(&path, Permissions::from_mode(exposed)).unwrap();
            let err = load_or_generate(&path).unwrap_err();
            assert!(matches!(err, KeyError::Exposed { .. }), "{err}");
            let text = err.to_string();
            assert!(
                text.contains(&format!("chmod 600 {}", path.display())),
                "{text}"
            );
            assert!(!dir.path().join(CERT_FILE_NAME).exists(), "nothing written");
        }
        fs::set_permissions(&path, Permissions::from_mode(0o400)).unwrap();
        assert_eq!(load_or_generate(&path).unwrap().key.kid(), KID);
    }

    #[test]
    fn sec1_and_pkcs8_keys_load_with_the_openssl_kid() {
        for text in [SEC1, PKCS8] {
            let key = TokenKey::from_pem(text.as_bytes()).unwrap();
            assert_eq!(key.kid(), KID);
        }
        let with_params = format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{SEC1}"
        );
        assert_eq!(
            TokenKey::from_pem(with_params.as_bytes()).unwrap().kid(),
            KID
        );
    }

    #[test]
    fn a_key_that_is_not_p256_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("p384.pem", P384),
            ("ed25519.pem", ED25519),
            ("garbage.pem", "not a key at all"),
            (
                "cert.pem",
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            ),
        ] {
            let path = dir.path().join(name);
            write_private(&path, text);
            let err = load_or_generate(&path).unwrap_err();
            assert!(matches!(err, KeyError::NotP256 { .. }), "{name}: {err}");
            assert!(err.to_string().contains(name), "{err}");
            // Never replaced, even though it is unusable.
            assert_eq!(fs::read_to_string(&path).unwrap(), text);
            assert!(!dir.path().join(CERT_FILE_NAME).exists());
        }
    }

    #[test]
    fn an_unreadable_key_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the key should be: exists, but cannot be read as a file.
        let path = dir.path().join("token.key");
        fs::create_dir(&path).unwrap();
        let err = load_or_generate(&path).unwrap_err();
        assert!(matches!(err, KeyError::Read { .. }), "{err}");
        assert!(err.to_string().contains("token.key"), "{err}");
        let big = dir.path().join("big.key");
        write_private(&big, vec![b'a'; 70_000]);
        assert!(matches!(load_or_generate(&big), Err(KeyError::Read { .. })));
    }

    #[test]
    fn a_missing_key_is_generated_private_with_a_certificate_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("auth").join("token.key");
        let setup = load_or_generate(&key_path).unwrap();
        assert!(setup.key_generated);
        assert_eq!(setup.certificate, CertificateStatus::Written);
        assert_eq!(setup.cert_path, dir.path().join("auth").join("token.crt"));
        assert_eq!(mode(&key_path), 0o600);
        assert_eq!(mode(&setup.cert_path), 0o644);
        let cert = fs::read_to_string(&setup.cert_path).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
        assert!(setup.key.is_in_bundle(cert.as_bytes()));
        // No temp files left behind.
        let names: Vec<_> = fs::read_dir(dir.path().join("auth"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");

        let again = load_or_generate(&key_path).unwrap();
        assert!(!again.key_generated);
        assert_eq!(again.certificate, CertificateStatus::Matches);
        assert_eq!(again.key.kid(), setup.key.kid());
        assert_eq!(fs::read_to_string(&setup.cert_path).unwrap(), cert);
    }

    #[test]
    fn a_missing_certificate_is_made_again_from_the_existing_key() {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("signer.key");
        write_private(&key_path, SEC1);
        let setup = load_or_generate(&key_path).unwrap();
        assert!(!setup.key_generated);
        assert_eq!(setup.certificate, CertificateStatus::Written);
        assert_eq!(setup.key.kid(), KID);
        assert_eq!(fs::read_to_string(&key_path).unwrap(), SEC1);
        let cert = fs::read(dir.path().join(CERT_FILE_NAME)).unwrap();
        assert!(setup.key.is_in_bundle(&cert));
    }

    #[test]
    fn a_certificate_for_another_key_is_reported_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (other, _) = TokenKey::generate().unwrap();
        let foreign = other.certificate_pem();
        fs::write(dir.path().join(CERT_FILE_NAME), &foreign).unwrap();
        let key_path = dir.path().join("token.key");
        let setup = load_or_generate(&key_path).unwrap();
        assert_eq!(setup.certificate, CertificateStatus::DoesNotMatch);
        assert_eq!(fs::read_to_string(&setup.cert_path).unwrap(), foreign);
        // A bundle holding both is fine.
        let both = format!("{foreign}{}", setup.key.certificate_pem());
        assert!(setup.key.is_in_bundle(both.as_bytes()));
    }

    /// The DER of the only certificate in a PEM file.
    fn der_of(path: &Path) -> Vec<u8> {
        let blocks = pem::parse_many(fs::read(path).unwrap()).unwrap();
        assert_eq!(blocks.len(), 1);
        blocks[0].contents().to_vec()
    }

    #[test]
    fn the_certificate_tokens_carry_is_the_one_in_token_crt() {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("token.key");
        let first = load_or_generate(&key_path).unwrap();
        assert_eq!(first.certificate, CertificateStatus::Written);
        assert_eq!(first.key.certificate_der(), der_of(&first.cert_path));

        // A restart takes the file's certificate, not a fresh one made from the key (its
        // dates and serial would differ from what the registry holds).
        let again = load_or_generate(&key_path).unwrap();
        assert_eq!(again.certificate, CertificateStatus::Matches);
        assert_eq!(again.key.certificate_der(), der_of(&first.cert_path));
        let unloaded = TokenKey::load(&key_path).unwrap();
        assert_ne!(unloaded.certificate_der(), der_of(&first.cert_path));

        // A bundle holding another key's certificate first: ours is the one taken.
        let (other, _) = TokenKey::generate().unwrap();
        let ours = fs::read_to_string(&first.cert_path).unwrap();
        fs::write(
            &first.cert_path,
            format!("{}{ours}", other.certificate_pem()),
        )
        .unwrap();
        let mixed = load_or_generate(&key_path).unwrap();
        assert_eq!(mixed.certificate, CertificateStatus::Matches);
        assert_eq!(mixed.key.certificate_der(), first.key.certificate_der());

        // Rotation as the README describes it: both files removed, a new pair written, and
        // tokens carry the new certificate.
        fs::remove_file(&key_path).unwrap();
        fs::remove_file(&first.cert_path).unwrap();
        let rotated = load_or_generate(&key_path).unwrap();
        assert!(rotated.key_generated);
        assert_ne!(rotated.key.kid(), first.key.kid());
        assert_eq!(rotated.key.certificate_der(), der_of(&rotated.cert_path));
        assert_ne!(rotated.key.certificate_der(), first.key.certificate_der());
    }

    #[test]
    fn signatures_are_raw_r_and_s_that_verify() {
        let key = TokenKey::from_pem(PKCS8.as_bytes()).unwrap();
        let sig = key.sign(b"message");
        let parsed = Signature::from_slice(&sig).unwrap();
        assert!(key.verifying_key().verify(b"message", &parsed).is_ok());
        assert!(key.verifying_key().verify(b"other", &parsed).is_err());
    }

    #[test]
    fn debug_output_shows_the_kid_and_not_the_secret() {
        let key = TokenKey::from_pem(SEC1.as_bytes()).unwrap();
        assert_eq!(format!("{key:?}"), format!("TokenKey {{ kid: {KID:?} }}"));
    }
}
