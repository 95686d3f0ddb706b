//! The authority public key in the text form SRI's roles read from their configuration
//! (`authority_public_key = "9auq…"`): Base58Check of a 2-byte little-endian key version (1) and
//! the 32-byte x-only secp256k1 key. Base58Check is rust-bitcoin's.

use std::fmt;
use std::str::FromStr;

use bitcoin::secp256k1::XOnlyPublicKey;

/// The key version SRI writes before the key (`Secp256k1PublicKey` in `stratum-apps`).
const KEY_VERSION: u16 = 1;

/// Why a text is not an authority public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("not Base58Check: {0}")]
    Base58(String),
    #[error("{0} bytes, not the 34 of a key version and an x-only key")]
    Length(usize),
    #[error("key version {0}, not {KEY_VERSION}")]
    Version(u16),
    #[error("not a secp256k1 x-only public key")]
    Point,
}

/// An authority's x-only public key: what a client pins to trust a server's Noise certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthorityPublicKey(pub XOnlyPublicKey);

impl AuthorityPublicKey {
    /// The 32 key bytes, as `noise_sv2` takes them.
    pub fn to_bytes(self) -> [u8; 32] {
        self.0.serialize()
    }
}

impl fmt::Display for AuthorityPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = [0u8; 34];
        bytes[..2].copy_from_slice(&KEY_VERSION.to_le_bytes());
        bytes[2..].copy_from_slice(&self.0.serialize());
        f.write_str(&bitcoin::base58::encode_check(&bytes))
    }
}

impl FromStr for AuthorityPublicKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, KeyError> {
        let bytes = bitcoin::base58::decode_check(text.trim())
            .map_err(|e| KeyError::Base58(e.to_string()))?;
        if bytes.len() != 34 {
            return Err(KeyError::Length(bytes.len()));
        }
        let version = u16::from_le_bytes([bytes[0], bytes[1]]);
        if version != KEY_VERSION {
            return Err(KeyError::Version(version));
        }
        XOnlyPublicKey::from_slice(&bytes[2..])
            .map(AuthorityPublicKey)
            .map_err(|_| KeyError::Point)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example key pair of SRI's pool configuration (`config-examples/`): the public text
    /// must decode to the x-only key of the secret, and encode back to the same text.
    #[test]
    fn sri_example_key_round_trips() {
        let public = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72";
        let secret = "mkDLTBBRxdBv998612qipDYoTK3YUrqLe8uWw7gu3iXbSrn2n";
        let key: AuthorityPublicKey = public.parse().expect("SRI's example key");
        assert_eq!(key.to_string(), public);
        let secret = bitcoin::base58::decode_check(secret).expect("base58check");
        let secp = bitcoin::secp256k1::Secp256k1::new();
        let sk = bitcoin::secp256k1::SecretKey::from_slice(&secret).expect("a secret key");
        let (xonly, _) = sk.x_only_public_key(&secp);
        assert_eq!(key.0, xonly);
    }

    #[test]
    fn refuses_what_is_not_a_key() {
        assert!(matches!(
            "not base58 0OIl".parse::<AuthorityPublicKey>(),
            Err(KeyError::Base58(_))
        ));
        let short = bitcoin::base58::encode_check(&[1, 0, 2]);
        assert_eq!(
            short.parse::<AuthorityPublicKey>(),
            Err(KeyError::Length(3))
        );
        let mut v2 = [0u8; 34];
        v2[0] = 2;
        let v2 = bitcoin::base58::encode_check(&v2);
        assert_eq!(v2.parse::<AuthorityPublicKey>(), Err(KeyError::Version(2)));
    }
}
