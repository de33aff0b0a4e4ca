//! The edges: who calls each HTTP route and gRPC method, and the layers modules put on their
//! routes to say who may use them.

use std::future::Future;

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tonic::Code;

use super::{Auth, AuthConfig, Caller, Mode, Refused, Role};
use crate::ApiError;

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

/// A rule on the caller alone (its role), for routes whose every caller is judged alike.
pub type Rule = fn(&Caller) -> bool;

/// The middleware function behind [`only`].
type Check = fn(State<Rule>, Request, Next) -> futures::future::BoxFuture<'static, Response>;

/// The layer [`only`] makes.
pub type Only = axum::middleware::FromFnLayer<Check, Rule, (State<Rule>, Request)>;

/// A layer answering 403 to callers `rule` refuses, before the handler runs: a module's
/// role rules stay in its router, beside the routes they guard.
pub fn only(rule: Rule) -> Only {
    axum::middleware::from_fn_with_state(
        rule,
        |State(rule): State<Rule>, request: Request, next: Next| {
            Box::pin(async move {
                let allowed = request
                    .extensions()
                    .get::<Caller>()
                    .map(|caller| (rule(caller), caller));
                match allowed {
                    Some((true, _)) => next.run(request).await,
                    Some((false, caller)) => caller.refusal().into_response(),
                    None => Refused::Missing.into_response(),
                }
            }) as futures::future::BoxFuture<'static, Response>
        },
    )
}

/// What a module says about its resources for [`owned`]: who owns one.
pub trait Owners: Clone + Send + Sync + 'static {
    /// The role an owner has (a basket's owner is a customer, a store's a store owner).
    const ROLE: Role;

    /// The subject owning resource `id`, or the answer the route gives when there is none.
    fn owner(&self, id: &str) -> impl Future<Output = Result<String, ApiError>> + Send;

    /// The answer for a resource that is not there — also given to a caller of the owner's
    /// role that does not own it, so nothing leaks.
    fn not_found(&self) -> ApiError;
}

/// A route layer (`axum::middleware::from_fn_with_state(owners, owned::<O>)`) for routes
/// of one `{id}`: the trusted pass without a look-up; the owner's role passes when it owns the
/// resource and gets not-found otherwise; any other role is refused (403).
pub async fn owned<O: Owners>(
    State(owners): State<O>,
    caller: Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
    request: Request,
    next: Next,
) -> Response {
    if caller.is_trusted() {
        return next.run(request).await;
    }
    if let Err(refused) = caller.require(caller.role == O::ROLE) {
        return refused.into_response();
    }
    match owners.owner(&id).await {
        Ok(owner) if owner == caller.subject => next.run(request).await,
        Ok(_) => owners.not_found().into_response(),
        Err(error) => error.into_response(),
    }
}

/// Paths anyone may read: health, the API documents, Swagger UI and the console's page (its
/// data comes from `/api/console`, which is the admin's).
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/" | "/liveness" | "/readiness" | "/openapi.json" | "/asyncapi.json"
    ) || ["/swagger-ui", "/console"].iter().any(|page| {
        path == *page
            || path
                .strip_prefix(page)
                .is_some_and(|rest| rest.starts_with('/'))
    })
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
/// gRPC is the modules' API to each other (people use REST): the `service` role's, and the
/// admin's.
pub(crate) async fn grpc(State(auth): State<Auth>, mut request: Request, next: Next) -> Response {
    if request.uri().path().starts_with("/grpc.reflection.") {
        return next.run(request).await;
    }
    match auth.caller(request.headers()).await {
        Ok(caller) if caller.is_trusted() => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Ok(caller) => tonic::Status::permission_denied(format!(
            "gRPC is the modules' API: a {} uses REST",
            caller.role.name()
        ))
        .into_http(),
        Err(refused) => tonic::Status::from(refused).into_http(),
    }
}
