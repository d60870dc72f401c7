//! Slurm JWTs: HS256 tokens with the claims Slurm's `auth/jwt` checks
//! (`sun` = local user name, `iat`, `exp`), signed with the same key file
//! as slurmctld's `AuthAltParameters=jwt_key=...` (`jwt_hs256.key`).

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

#[derive(Serialize)]
struct Claims<'a> {
    sun: &'a str,
    iat: u64,
    exp: u64,
}

/// Signs short-lived tokens with the Slurm key (kept only in memory).
pub struct JwtSigner {
    key: EncodingKey,
    lifespan: Duration,
}

impl JwtSigner {
    /// Load the key file (its permissions were checked by the config).
    pub fn load(path: &Path, lifespan: Duration) -> std::io::Result<Self> {
        let bytes = Zeroizing::new(std::fs::read(path)?);
        if bytes.len() < 16 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} holds {} bytes: too short for a JWT key",
                    path.display(),
                    bytes.len()
                ),
            ));
        }
        Ok(Self::from_secret(&bytes, lifespan))
    }

    pub fn from_secret(secret: &[u8], lifespan: Duration) -> Self {
        JwtSigner {
            key: EncodingKey::from_secret(secret),
            lifespan,
        }
    }

    /// A token for local user `sun`, valid from now for the lifespan.
    pub fn token(&self, sun: &str) -> Result<Zeroizing<String>, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        let claims = Claims {
            sun,
            iat: now,
            exp: now + self.lifespan.as_secs(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .map(Zeroizing::new)
            .map_err(|e| format!("cannot sign a Slurm JWT: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn token_has_slurm_claims_and_verifies() {
        let s = JwtSigner::from_secret(b"0123456789abcdef0123", Duration::from_secs(60));
        let t = s.token("alice").unwrap();
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let h: serde_json::Value = serde_json::from_slice(&e.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(h["alg"], "HS256");
        let c: serde_json::Value = serde_json::from_slice(&e.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(c["sun"], "alice");
        assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 60);
        let mut v = jsonwebtoken::Validation::new(Algorithm::HS256);
        v.required_spec_claims = ["exp".to_string()].into_iter().collect();
        let key = jsonwebtoken::DecodingKey::from_secret(b"0123456789abcdef0123");
        assert!(jsonwebtoken::decode::<serde_json::Value>(&t, &key, &v).is_ok());
        let bad = jsonwebtoken::DecodingKey::from_secret(b"another key 123456");
        assert!(jsonwebtoken::decode::<serde_json::Value>(&t, &bad, &v).is_err());
    }
}
