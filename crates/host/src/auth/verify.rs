//! Checking a bearer token: the shared secret or the provider's keys, then the claims.

use std::sync::Arc;

use axum::{
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tonic::Code;

use super::{AuthConfig, Caller, Mode, Role, jwks, token};
use crate::ApiError;

/// The token checker of one process; cheap to clone.
#[derive(Clone)]
pub struct Auth(Option<Arc<Verifier>>);

struct Verifier {
    keys: Keys,
    issuer: Option<String>,
    audience: Option<String>,
    /// What this process presents to other modules.
    outgoing: Option<Arc<token::Outgoing>>,
}

enum Keys {
    Secret(DecodingKey),
    Jwks(jwks::Jwks),
}

/// Why a request was refused at the edge.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// No bearer token.
    #[error("missing bearer token")]
    Missing,
    /// A token that does not verify (signature, expiry, issuer, audience, unknown key).
    #[error("invalid token: {0}")]
    Invalid(String),
    /// A valid token without a role of the mall.
    #[error("the token carries no role of this mall (customer, store-owner, bot, admin, service)")]
    NoRole,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let code = match self {
            Refused::NoRole => Code::PermissionDenied,
            Refused::Missing | Refused::Invalid(_) => Code::Unauthenticated,
        };
        let mut response = ApiError::new(code, self.to_string()).into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        response
    }
}

impl From<Refused> for tonic::Status {
    fn from(refused: Refused) -> tonic::Status {
        match refused {
            Refused::NoRole => tonic::Status::permission_denied(refused.to_string()),
            Refused::Missing | Refused::Invalid(_) => {
                tonic::Status::unauthenticated(refused.to_string())
            }
        }
    }
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    role: Option<String>,
    /// Many OIDC providers list roles instead; the first one the mall knows is taken.
    #[serde(default)]
    roles: Vec<String>,
}

impl Auth {
    /// Off: every caller is [`Caller::anonymous`].
    pub fn off() -> Auth {
        Auth(None)
    }

    /// The checker `config` describes.
    ///
    /// # Errors
    /// The configuration is contradictory or a key cannot be read.
    pub fn new(config: &AuthConfig) -> anyhow::Result<Auth> {
        if config.resolve()? != Mode::On {
            return Ok(Auth::off());
        }
        let (keys, outgoing) = match (&config.auth_hs256_secret, &config.auth_jwks_url) {
            (Some(secret), _) => {
                let key = DecodingKey::from_secret(secret.as_bytes())?;
                let outgoing = token::Outgoing::minted(secret, config);
                (Keys::Secret(key), Some(outgoing))
            }
            (None, Some(url)) => {
                let outgoing = config
                    .auth_service_token
                    .as_ref()
                    .map(|token| token::Outgoing::fixed(token));
                (Keys::Jwks(jwks::Jwks::new(url)?), outgoing)
            }
            (None, None) => anyhow::bail!("AUTH=on needs AUTH_HS256_SECRET or AUTH_JWKS_URL"),
        };
        Ok(Auth(Some(Arc::new(Verifier {
            keys,
            issuer: config.auth_issuer.clone(),
            audience: config.auth_audience.clone(),
            outgoing: outgoing.map(Arc::new),
        }))))
    }

    /// Whether tokens are checked.
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// The caller a request's `authorization` header proves.
    ///
    /// # Errors
    /// No token, a token that does not verify, or one without a role.
    pub async fn caller(&self, headers: &HeaderMap) -> Result<Caller, Refused> {
        let Some(verifier) = &self.0 else {
            return Ok(Caller::anonymous());
        };
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|token| !token.is_empty())
            .ok_or(Refused::Missing)?;
        verifier.verify(token).await
    }

    /// The `authorization` value this process sends to other modules, if any.
    pub(crate) fn outgoing(&self) -> Option<Arc<token::Outgoing>> {
        self.0.as_ref()?.outgoing.clone()
    }
}

impl Verifier {
    async fn verify(&self, token: &str) -> Result<Caller, Refused> {
        let invalid = |e: jsonwebtoken::errors::Error| Refused::Invalid(e.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(invalid)?;
        let (key, algorithms) = match &self.keys {
            Keys::Secret(key) => (key.clone(), vec![Algorithm::HS256]),
            Keys::Jwks(jwks) => {
                let kid = header
                    .kid
                    .as_deref()
                    .ok_or_else(|| Refused::Invalid("the token names no key (kid)".into()))?;
                jwks.key(kid).await?
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.algorithms = algorithms;
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            validation.required_spec_claims.insert("iss".into());
        }
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                validation.required_spec_claims.insert("aud".into());
            }
            None => validation.validate_aud = false,
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(invalid)?
            .claims;
        let role = claims
            .role
            .iter()
            .chain(&claims.roles)
            .find_map(|name| Role::parse(name))
            .ok_or(Refused::NoRole)?;
        Ok(Caller {
            subject: claims.sub,
            role,
        })
    }
}
