//! Tokens this process makes: development tokens (`mallbots token`) and the `service` token
//! it presents to other modules.

use std::{
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::{AuthConfig, Role};

/// A token and when it expires (seconds since the epoch).
#[derive(Debug, Clone)]
pub struct Minted {
    /// The compact JWT.
    pub token: String,
    /// Its `exp`.
    pub expires_at: u64,
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    sub: &'a str,
    role: Role,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// An HS256 token for `subject` with `role`, valid for `ttl`, carrying the configured issuer
/// and audience.
///
/// # Errors
/// No `AUTH_HS256_SECRET` is configured.
pub fn mint(
    config: &AuthConfig,
    role: Role,
    subject: &str,
    ttl: Duration,
) -> anyhow::Result<Minted> {
    let secret = config.auth_hs256_secret.as_deref().ok_or_else(|| {
        anyhow::anyhow!("minting a token needs AUTH_HS256_SECRET (the secret the mall verifies)")
    })?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let expires_at = now.saturating_add(ttl.as_secs());
    let claims = Claims {
        sub: subject,
        role,
        iat: now,
        exp: expires_at,
        iss: config.auth_issuer.as_deref(),
        aud: config.auth_audience.as_deref(),
    };
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes())?,
    )?;
    Ok(Minted { token, expires_at })
}

/// The `authorization` value sent with gRPC calls to other modules.
pub(crate) enum Outgoing {
    /// Given by the deployment (a JWKS provider's `service` token).
    Fixed(String),
    /// Minted with the shared secret and minted again before it expires.
    Minted {
        config: AuthConfig,
        current: Mutex<Option<Minted>>,
    },
}

/// How long a minted service token lives; a new one is made when less than a tenth is left.
const SERVICE_TTL: Duration = Duration::from_secs(3600);

impl Outgoing {
    pub(crate) fn fixed(token: &str) -> Outgoing {
        Outgoing::Fixed(format!("Bearer {token}"))
    }

    pub(crate) fn minted(secret: &str, config: &AuthConfig) -> Outgoing {
        let config = AuthConfig {
            auth_hs256_secret: Some(secret.to_owned()),
            ..config.clone()
        };
        Outgoing::Minted {
            config,
            current: Mutex::new(None),
        }
    }

    /// The header value for the next call.
    pub(crate) fn header(&self) -> Option<String> {
        match self {
            Outgoing::Fixed(value) => Some(value.clone()),
            Outgoing::Minted { config, current } => {
                let mut current = current.lock().unwrap_or_else(|p| p.into_inner());
                let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
                let fresh = current
                    .as_ref()
                    .is_some_and(|m| m.expires_at > now + SERVICE_TTL.as_secs() / 10);
                if !fresh {
                    *current = mint(config, Role::Service, "mallbots", SERVICE_TTL).ok();
                }
                current.as_ref().map(|m| format!("Bearer {}", m.token))
            }
        }
    }
}
