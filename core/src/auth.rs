//! Tokens. Users call the API with an HS256 bearer JWT whose `sub` is their id; each launch hands
//! out a session token, a JWT of its own audience bound to one preview, that the proxy and the
//! envelope endpoint accept. The signing secret comes from the configuration or is created once
//! in the data dir and kept there (mode 0600).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// Audience of user tokens.
const USER_AUDIENCE: &str = "previewd";
/// Audience of preview session tokens, so one can never pass for the other.
const SESSION_AUDIENCE: &str = "previewd-session";
/// File holding the generated secret inside the data dir.
const SECRET_FILE: &str = "jwt-secret";

/// Why a token was refused. Every variant answers 401.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("the session token belongs to another preview")]
    WrongPreview,
}

impl AuthError {
    fn from_jwt(err: jsonwebtoken::errors::Error) -> AuthError {
        match err.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
            _ => AuthError::Invalid(err.to_string()),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    aud: String,
    exp: u64,
    iat: u64,
    /// The preview a session token is for; absent on user tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    preview: Option<String>,
}

/// A session token and when it stops working.
#[derive(Debug, Clone)]
pub struct SessionToken {
    pub token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Signs and checks tokens with one secret.
#[derive(Clone)]
pub struct Authenticator {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator { .. }")
    }
}

impl Authenticator {
    /// An authenticator for `secret`.
    pub fn new(secret: &[u8]) -> Authenticator {
        Authenticator {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// Uses `configured` when given, else the secret kept in `data_dir`, creating it on first use.
    pub fn load_or_create(
        configured: Option<&str>,
        data_dir: &Path,
    ) -> std::io::Result<Authenticator> {
        if let Some(secret) = configured {
            return Ok(Authenticator::new(secret.as_bytes()));
        }
        let path = data_dir.join(SECRET_FILE);
        match std::fs::read_to_string(&path) {
            Ok(secret) if !secret.trim().is_empty() => {
                return Ok(Authenticator::new(secret.trim().as_bytes()))
            }
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let secret = hex::encode(bytes);
        std::fs::create_dir_all(data_dir)?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(secret.as_bytes())?;
        file.sync_all()?;
        Ok(Authenticator::new(secret.as_bytes()))
    }

    /// A bearer token for `user`, valid for `ttl`.
    pub fn user_token(&self, user: &str, ttl: Duration) -> String {
        self.sign(user, USER_AUDIENCE, ttl, None)
    }

    /// The user id a bearer token stands for.
    pub fn verify_user(&self, token: &str) -> Result<String, AuthError> {
        Ok(self.verify(token, USER_AUDIENCE)?.sub)
    }

    /// A session token for `user`'s preview `preview_id`, valid for `ttl`.
    pub fn session_token(&self, user: &str, preview_id: &str, ttl: Duration) -> SessionToken {
        let token = self.sign(user, SESSION_AUDIENCE, ttl, Some(preview_id));
        let expires_at =
            chrono::Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        SessionToken { token, expires_at }
    }

    /// Checks that `token` is a live session token for `preview_id`.
    pub fn verify_session(&self, token: &str, preview_id: &str) -> Result<(), AuthError> {
        let claims = self.verify(token, SESSION_AUDIENCE)?;
        if claims.preview.as_deref() != Some(preview_id) {
            return Err(AuthError::WrongPreview);
        }
        Ok(())
    }

    fn sign(&self, user: &str, audience: &str, ttl: Duration, preview: Option<&str>) -> String {
        let iat = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user.to_string(),
            aud: audience.to_string(),
            iat,
            exp: iat.saturating_add(ttl.as_secs()),
            preview: preview.map(str::to_string),
        };
        // Encoding HS256 with an in-memory key and plain claims cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .unwrap_or_default()
    }

    fn verify(&self, token: &str, audience: &str) -> Result<Claims, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(AuthError::from_jwt)?
            .claims;
        if claims.sub.is_empty() {
            return Err(AuthError::Invalid("the token names no user".into()));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A user token round-trips; a session token is not a user token and vice versa.
    #[test]
    fn audiences_are_separate() {
        let auth = Authenticator::new(b"secret");
        let user = auth.user_token("alice", Duration::from_secs(60));
        assert_eq!(auth.verify_user(&user).unwrap(), "alice");
        let session = auth.session_token("alice", "p1", Duration::from_secs(60));
        assert!(auth.verify_user(&session.token).is_err());
        assert!(auth.verify_session(&user, "p1").is_err());
        auth.verify_session(&session.token, "p1").unwrap();
        assert!(matches!(
            auth.verify_session(&session.token, "p2"),
            Err(AuthError::WrongPreview)
        ));
    }

    /// Tokens signed with another secret, garbage and expired tokens are refused.
    #[test]
    fn refusals() {
        let auth = Authenticator::new(b"secret");
        let other = Authenticator::new(b"other").user_token("alice", Duration::from_secs(60));
        assert!(matches!(
            auth.verify_user(&other),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            auth.verify_user("not.a.jwt"),
            Err(AuthError::Invalid(_))
        ));
        let expired = auth.sign("alice", USER_AUDIENCE, Duration::ZERO, None);
        std::thread::sleep(Duration::from_millis(1100));
        assert!(matches!(
            auth.verify_user(&expired),
            Err(AuthError::Expired)
        ));
    }

    /// The generated secret is created once and reused.
    #[test]
    fn secret_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = Authenticator::load_or_create(None, dir.path()).unwrap();
        let token = first.user_token("bob", Duration::from_secs(60));
        let second = Authenticator::load_or_create(None, dir.path()).unwrap();
        assert_eq!(second.verify_user(&token).unwrap(), "bob");
        let mode = std::fs::metadata(dir.path().join(SECRET_FILE)).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
    }
}
