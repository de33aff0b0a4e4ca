//! Who is calling: bearer JWTs checked once at each edge (HTTP and gRPC) before any module
//! code runs, and the credentials this process presents to other modules (ADR 18).
//!
//! Tokens are verified against `AUTH_HS256_SECRET` (development, tests, `mallbots token`) or
//! an OIDC provider's JWKS (`AUTH_JWKS_URL`); the module handlers receive a [`Caller`]. With
//! auth off, every caller is the anonymous admin — which is why the listeners then stay on
//! loopback unless `AUTH=off` is said explicitly (see [`AuthConfig::resolve`]).

mod edge;
mod jwks;
pub(crate) mod token;
mod verify;

use std::{net::IpAddr, time::Duration};

use axum::{extract::FromRequestParts, http::request::Parts};
use tonic::Code;

pub use edge::{Only, Owners, Rule, only, owned};
pub(crate) use edge::{announce, grpc, http};
pub use token::{Minted, mint};
pub use verify::{Auth, Refused};

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

    /// The mall's operators and its modules: they act on anything.
    pub fn is_trusted(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Service)
    }

    /// The mall's operator.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// A depot bot (or trusted).
    pub fn is_bot(&self) -> bool {
        self.may_act_as(Role::Bot)
    }

    /// Whether it has `role` or is trusted.
    pub fn may_act_as(&self, role: Role) -> bool {
        self.role == role || self.is_trusted()
    }

    /// Whether it is the customer `customer_id` (or trusted).
    pub fn is_customer(&self, customer_id: &str) -> bool {
        self.is_trusted() || (self.role == Role::Customer && self.subject == customer_id)
    }

    /// Acting on what belongs to customer `customer_id`: that customer, or the trusted. Another
    /// customer gets `not_found` — the answer it would get if nothing were there, so nothing
    /// leaks; any other role is refused.
    ///
    /// # Errors
    /// Not the owner.
    pub fn owns(
        &self,
        customer_id: &str,
        not_found: impl FnOnce() -> ApiError,
    ) -> Result<(), ApiError> {
        if self.is_customer(customer_id) {
            return Ok(());
        }
        self.require(self.role == Role::Customer)?;
        Err(not_found())
    }

    /// `Ok` when `allowed`, else [`Caller::refusal`].
    ///
    /// # Errors
    /// Not `allowed`.
    pub fn require(&self, allowed: bool) -> Result<(), ApiError> {
        if allowed { Ok(()) } else { Err(self.refusal()) }
    }

    /// The refusal for a role that may not do this at all (403).
    pub fn refusal(&self) -> ApiError {
        ApiError::new(
            Code::PermissionDenied,
            format!("a {} may not do this", self.role.name()),
        )
    }
}

impl Role {
    /// Its name in tokens.
    pub fn name(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::StoreOwner => "store-owner",
            Role::Bot => "bot",
            Role::Admin => "admin",
            Role::Service => "service",
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

/// How long a fetched JWKS document is trusted before it is read again.
const JWKS_MAX_AGE: Duration = Duration::from_secs(600);
/// Fetches for unknown key ids at most this often (a flood of invented `kid`s stays cheap).
const JWKS_MIN_INTERVAL: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests;
