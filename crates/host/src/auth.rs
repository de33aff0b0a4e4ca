//! Who is calling: bearer JWTs checked once at each edge (HTTP and gRPC) before any module
//! code runs, and the credentials this process presents to other modules (ADR 18).
//!
//! Tokens are verified against `AUTH_HS256_SECRET` (development, tests, `mallbots token`) or
//! an OIDC provider's JWKS (`AUTH_JWKS_URL`); the module handlers receive a [`Caller`]. With
//! auth off, every caller is the anonymous admin — which is why the listeners then stay on
//! loopback unless `AUTH=off` is said explicitly (see [`AuthConfig::resolve`]).

mod jwks;
pub(crate) mod token;

use std::{net::IpAddr, sync::Arc, time::Duration};

use axum::{
    extract::{FromRequestParts, Request, State},
    http::{HeaderMap, HeaderValue, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tonic::Code;

pub use token::{Minted, mint};

use crate::ApiError;

/// What a caller may be: the roles of the mall.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Acts on its own customer record, payments, baskets, orders and notifications.
    Customer,
    /// Acts on the stores it created and their products.
    StoreOwner,
    /// Picks depot shopping lists.
    Bot,
    /// Operates the mall: everything, search across customers, operator routes, metrics.
    Admin,
    /// A module calling another (gRPC-only writes).
    Service,
}

impl Role {
    fn parse(name: &str) -> Option<Role> {
        serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
    }
}

/// The authenticated caller of a request: the token's `sub` and its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's subject (for a customer, its customer id).
    pub subject: String,
    /// What it may do.
    pub role: Role,
}

impl Caller {
    /// Who calls when auth is off: anyone who can reach the (loopback) port, with every right.
    pub fn anonymous() -> Caller {
        Caller {
            subject: "anonymous".into(),
            role: Role::Admin,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Caller, ApiError> {
        // Set by the edge for every route that is not public; absent only on a public route.
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::new(Code::Unauthenticated, "missing bearer token"))
    }
}

/// Authentication settings, from flags or environment variables.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AuthConfig {
    /// `on` or `off`. Unset: on when a key source is configured; otherwise off, with the
    /// listeners held to loopback. `off` serves without authentication on any address.
    #[arg(long = "auth", env = "AUTH", value_parser = parse_switch)]
    pub auth: Option<bool>,
    /// Shared secret HS256 tokens are verified (and `mallbots token` mints them) with.
    #[arg(long, env = "AUTH_HS256_SECRET", hide_env_values = true)]
    pub auth_hs256_secret: Option<String>,
    /// An OIDC provider's JWKS document; keys are cached and fetched again on an unknown `kid`.
    #[arg(long, env = "AUTH_JWKS_URL")]
    pub auth_jwks_url: Option<String>,
    /// The `iss` every token must carry (unset: not checked).
    #[arg(long, env = "AUTH_ISSUER")]
    pub auth_issuer: Option<String>,
    /// The `aud` every token must carry (unset: tokens must carry none).
    #[arg(long, env = "AUTH_AUDIENCE")]
    pub auth_audience: Option<String>,
    /// The token this process presents to other modules over gRPC with a JWKS provider (a
    /// `service` token from it); with `AUTH_HS256_SECRET` the process mints its own.
    #[arg(long, env = "AUTH_SERVICE_TOKEN", hide_env_values = true)]
    pub auth_service_token: Option<String>,
}

fn parse_switch(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        _ => Err(format!("expected on or off, got {value:?}")),
    }
}

/// How a process authenticates, decided from [`AuthConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Tokens required.
    On,
    /// Off because nothing was configured: the listeners default to loopback and may not be
    /// moved off it.
    OffLoopback,
    /// Off because `AUTH=off` was said: any address.
    OffSaid,
}

impl AuthConfig {
    /// The mode, or why the configuration cannot run.
    ///
    /// # Errors
    /// `AUTH=on` without a key source, or both key sources at once.
    pub fn resolve(&self) -> anyhow::Result<Mode> {
        let keyed = match (&self.auth_hs256_secret, &self.auth_jwks_url) {
            (Some(_), Some(_)) => {
                anyhow::bail!("set AUTH_HS256_SECRET or AUTH_JWKS_URL, not both")
            }
            (Some(secret), None) if secret.len() < 32 => {
                anyhow::bail!("AUTH_HS256_SECRET must be at least 32 bytes long")
            }
            (secret, jwks) => secret.is_some() || jwks.is_some(),
        };
        match (self.auth, keyed) {
            (Some(false), _) => Ok(Mode::OffSaid),
            (_, true) => Ok(Mode::On),
            (Some(true), false) => {
                anyhow::bail!("AUTH=on needs AUTH_HS256_SECRET or AUTH_JWKS_URL")
            }
            (None, false) => Ok(Mode::OffLoopback),
        }
    }

    /// Where a listener binds: `configured`, else all interfaces with auth and loopback
    /// without.
    ///
    /// # Errors
    /// An unauthenticated API asked to listen beyond loopback without `AUTH=off`.
    pub fn bind_address(&self, configured: Option<IpAddr>, what: &str) -> anyhow::Result<IpAddr> {
        let mode = self.resolve()?;
        match (configured, mode) {
            (Some(ip), Mode::OffLoopback) if !ip.is_loopback() => anyhow::bail!(
                "refusing to serve {what} without authentication on {ip}: set AUTH_HS256_SECRET \
                 or AUTH_JWKS_URL, or AUTH=off to accept an open API"
            ),
            (Some(ip), _) => Ok(ip),
            (None, Mode::OffLoopback) => Ok(IpAddr::from([127, 0, 0, 1])),
            (None, _) => Ok(IpAddr::from([0, 0, 0, 0])),
        }
    }
}

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

/// Says at start who may call, loudly when nobody is asked.
pub(crate) fn announce(config: &AuthConfig, auth: &Auth) {
    match config.resolve() {
        Ok(Mode::On) => {
            let keys = if config.auth_jwks_url.is_some() {
                "JWKS"
            } else {
                "AUTH_HS256_SECRET"
            };
            tracing::info!(keys, issuer = ?config.auth_issuer, audience = ?config.auth_audience, "authentication on: bearer tokens required");
            if config.auth_jwks_url.is_some() && auth.outgoing().is_none() {
                tracing::warn!(
                    "no AUTH_SERVICE_TOKEN: calls to modules in other processes will be refused"
                );
            }
        }
        Ok(Mode::OffLoopback) => tracing::warn!(
            "AUTHENTICATION OFF: anyone who reaches this machine's loopback can act as admin; \
             listening on loopback only (set AUTH_HS256_SECRET or AUTH_JWKS_URL to require tokens)"
        ),
        Ok(Mode::OffSaid) => tracing::warn!(
            "AUTHENTICATION OFF (AUTH=off): anyone who reaches these ports can act as admin"
        ),
        Err(_) => {}
    }
}

/// Paths anyone may read: health, the API documents and Swagger UI.
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/" | "/liveness" | "/readiness" | "/openapi.json" | "/asyncapi.json"
    ) || path == "/swagger-ui"
        || path.starts_with("/swagger-ui/")
}

/// The HTTP edge: a [`Caller`] for every route that is not public, or 401; `/metrics` is the
/// admin's.
pub(crate) async fn http(State(auth): State<Auth>, mut request: Request, next: Next) -> Response {
    if is_public(request.uri().path()) {
        return next.run(request).await;
    }
    let caller = match auth.caller(request.headers()).await {
        Ok(caller) => caller,
        Err(refused) => return refused.into_response(),
    };
    if request.uri().path() == "/metrics" && caller.role != Role::Admin {
        return ApiError::new(Code::PermissionDenied, "metrics are the admin's").into_response();
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// The gRPC edge: the same check for every method but reflection's, refusals as gRPC statuses.
pub(crate) async fn grpc(State(auth): State<Auth>, mut request: Request, next: Next) -> Response {
    if request.uri().path().starts_with("/grpc.reflection.") {
        return next.run(request).await;
    }
    match auth.caller(request.headers()).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(refused) => tonic::Status::from(refused).into_http(),
    }
}

/// How long a fetched JWKS document is trusted before it is read again.
const JWKS_MAX_AGE: Duration = Duration::from_secs(600);
/// Fetches for unknown key ids at most this often (a flood of invented `kid`s stays cheap).
const JWKS_MIN_INTERVAL: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests;
