//! The Template Provider's static authority key, kept in the chain directory so its public half
//! (what a pool pins as the provider's `authority_public_key`) survives restarts. Made once from
//! the system's randomness and written like the payout key: atomically, mode 0600, never
//! overwritten. The file holds the secret in SRI's text form (Base58Check of the 32 bytes, as
//! `authority_secret_key` in SRI's configuration files).

use std::fs;
use std::path::Path;

use bitcoin::secp256k1::{Secp256k1, SecretKey};

use crate::node::wallet::{random_secret_key, write_new};
use crate::node::NodeError;
use crate::sv2::AuthorityPublicKey;

/// The key file's name in the chain directory.
pub const AUTHORITY_KEY_FILE: &str = "sv2-authority.key";

/// A loaded authority key pair.
#[derive(Clone)]
pub struct AuthorityKey {
    secret: SecretKey,
    public: AuthorityPublicKey,
}

impl std::fmt::Debug for AuthorityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("AuthorityKey")
            .field("public", &self.public.to_string())
            .finish()
    }
}

impl AuthorityKey {
    /// The key in `dir/sv2-authority.key`, made (with `dir`) if there is none. Returns whether it
    /// was made now. A file that holds no key is an error, never overwritten.
    pub fn load_or_create(dir: &Path) -> Result<(AuthorityKey, bool), NodeError> {
        let path = dir.join(AUTHORITY_KEY_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => return Ok((parse(&path, &text)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(NodeError::io("read the SV2 authority key", &path, e)),
        }
        fs::create_dir_all(dir).map_err(|e| NodeError::io("create the data directory", dir, e))?;
        let secret = random_secret_key(&path)?;
        let text = format!(
            "{}\n",
            bitcoin::base58::encode_check(&secret.secret_bytes())
        );
        if write_new(dir, &path, &text)? {
            Ok((AuthorityKey::from_secret(secret), true))
        } else {
            // Another process made it first: use theirs.
            let text = fs::read_to_string(&path)
                .map_err(|e| NodeError::io("read the SV2 authority key", &path, e))?;
            Ok((parse(&path, &text)?, false))
        }
    }

    fn from_secret(secret: SecretKey) -> AuthorityKey {
        let (xonly, _) = secret.x_only_public_key(&Secp256k1::signing_only());
        AuthorityKey {
            secret,
            public: AuthorityPublicKey(xonly),
        }
    }

    /// The public key clients pin.
    pub fn public(&self) -> AuthorityPublicKey {
        self.public
    }

    /// A Noise responder signing its certificates with this key, valid for `validity`.
    pub fn responder(
        &self,
        validity: std::time::Duration,
    ) -> Result<Box<noise_sv2::Responder>, noise_sv2::Error> {
        noise_sv2::Responder::from_authority_kp(
            &self.public.to_bytes(),
            &self.secret.secret_bytes(),
            validity,
        )
    }
}

fn parse(path: &Path, text: &str) -> Result<AuthorityKey, NodeError> {
    let secret = bitcoin::base58::decode_check(text.trim())
        .ok()
        .and_then(|bytes| SecretKey::from_slice(&bytes).ok())
        .ok_or_else(|| NodeError::KeyFile {
            path: path.to_owned(),
            why: "it does not hold a Base58Check secp256k1 secret key; move it away to have a new key made (pools must then pin the new public key)".into(),
        })?;
    Ok(AuthorityKey::from_secret(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_loaded() {
        let dir = std::env::temp_dir().join(format!("wgminer-sv2-key-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let (made, created) = AuthorityKey::load_or_create(&dir).expect("made");
        assert!(created);
        let (loaded, created) = AuthorityKey::load_or_create(&dir).expect("loaded");
        assert!(!created);
        assert_eq!(made.public(), loaded.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join(AUTHORITY_KEY_FILE))
                .expect("key file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(made.responder(std::time::Duration::from_secs(60)).is_ok());
        fs::write(dir.join(AUTHORITY_KEY_FILE), "garbage\n").expect("overwrite");
        assert!(matches!(
            AuthorityKey::load_or_create(&dir),
            Err(NodeError::KeyFile { .. })
        ));
        let _ = fs::remove_dir_all(&dir);
    }
}
