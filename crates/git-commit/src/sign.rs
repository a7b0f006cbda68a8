//! OpenPGP commit signing with an ASCII-armored secret key (Flux's
//! `spec.git.commit.signingKey.secretRef`, key `git.asc`), on the pure-Rust `pgp` crate: no
//! `gpg` binary or agent is needed at run time. The signature is a detached, armored v4 (or
//! v6 for v6 keys) binary signature over the commit object, stored in the commit's `gpgsig`
//! header, which is what `git verify-commit` checks.

use crate::auth::Secret;
use crate::GitError;
use chrono::SubsecRound as _;
use pgp::composed::{Deserializable, SignedSecretKey, StandaloneSignature};
use pgp::packet::{SignatureConfig, SignatureType, Subpacket, SubpacketData};
use pgp::types::{KeyDetails, Password};

/// An armored OpenPGP secret key that signs commits.
#[derive(Clone)]
pub struct SigningKey {
    key: SignedSecretKey,
    passphrase: Option<Secret>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("fingerprint", &self.fingerprint())
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn signing_error(message: impl std::fmt::Display) -> GitError {
    GitError::Git {
        context: "OpenPGP signing key".into(),
        message: message.to_string(),
    }
}

impl SigningKey {
    /// Reads an armored secret key (`-----BEGIN PGP PRIVATE KEY BLOCK-----`); `passphrase`
    /// unlocks it when it is encrypted. A wrong passphrase is reported here, not at commit
    /// time.
    pub fn from_armored(armored: &str, passphrase: Option<Secret>) -> Result<Self, GitError> {
        let (key, _) = SignedSecretKey::from_string(armored)
            .map_err(|e| signing_error(format!("not an armored OpenPGP secret key: {e}")))?;
        let signing = SigningKey { key, passphrase };
        signing.sign_bytes(b"tagsmith key check")?;
        Ok(signing)
    }

    /// The primary key's fingerprint, upper-case hex.
    pub fn fingerprint(&self) -> String {
        self.key
            .fingerprint()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect()
    }

    fn password(&self) -> Password {
        match &self.passphrase {
            Some(p) => Password::from(p.expose()),
            None => Password::empty(),
        }
    }

    /// A detached, armored signature over `data`.
    pub(crate) fn sign_bytes(&self, data: &[u8]) -> Result<String, GitError> {
        let mut config =
            SignatureConfig::from_key(rand::thread_rng(), &*self.key, SignatureType::Binary)
                .map_err(signing_error)?;
        config.hashed_subpackets = vec![
            Subpacket::regular(SubpacketData::SignatureCreationTime(
                chrono::Utc::now().trunc_subsecs(0),
            ))
            .map_err(signing_error)?,
            Subpacket::regular(SubpacketData::IssuerFingerprint(self.key.fingerprint()))
                .map_err(signing_error)?,
        ];
        config.unhashed_subpackets =
            vec![Subpacket::regular(SubpacketData::Issuer(self.key.key_id()))
                .map_err(signing_error)?];
        let signature = config
            .sign(&*self.key, &self.password(), data)
            .map_err(|e| {
                signing_error(format!(
                    "signing failed (a missing or incorrect passphrase?): {e}"
                ))
            })?;
        StandaloneSignature::new(signature)
            .to_armored_string(Default::default())
            .map_err(signing_error)
    }
}
