//! The HTTP edge: module routes plus health and metrics, a request timeout, a body limit,
//! request spans and metrics, authentication, and JSON errors for unknown routes.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use tonic::Code;

use crate::{ApiError, Check, Config};

/// The document modules' descriptions are merged into.
pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    let info = utoipa::openapi::InfoBuilder::new()
        .title("MallBots")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "The REST API of the MallBots modules this process runs (the book's routes and JSON).",
        ))
        .build();
    let mut doc = utoipa::openapi::OpenApiBuilder::new().info(info).build();
    let error = <crate::ErrorBody as utoipa::PartialSchema>::schema();
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.insert("ErrorBody".into(), error);
    // Every route wants a bearer token when auth is on (ADR 18); Swagger UI's Authorize takes it.
    use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            Http::builder()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    doc.security = Some(vec![SecurityRequirement::new(
        "bearer",
        Vec::<String>::new(),
    )]);
    doc
}

pub(crate) fn router(
    rest: Router,
    openapi: utoipa::openapi::OpenApi,
    checks: Vec<(&'static str, Check)>,
    queues: Option<Arc<crate::queues::Queues>>,
    config: &Config,
    auth: crate::auth::Auth,
) -> Router {
    // Swagger UI's assets are vendored in the crate: nothing is fetched at build or run time.
    let docs: Router = utoipa_swagger_ui::SwaggerUi::new("/swagger-ui")
        .external_url_unchecked("/openapi.json", crate::openapi::with_the_edge(&openapi))
        .into();
    rest.merge(docs)
        .route(
            "/",
            get(|| async { axum::response::Redirect::temporary("/swagger-ui/") }),
        )
        .route("/liveness", get(|| async { "." }))
        .route("/readiness", get(readiness).with_state(Arc::new(checks)))
        .route("/metrics", get(crate::observe::scrape).with_state(queues))
        .fallback(|| async { ApiError::not_found("Not Found") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(Code::Unimplemented, "Method Not Allowed").into_response()
        })
        .layer(middleware::from_fn(crate::input::check_uri))
        .layer(middleware::from_fn_with_state(auth, crate::auth::http))
        .layer(DefaultBodyLimit::max(config.request_body_limit))
        .layer(middleware::from_fn_with_state(
            config.request_timeout,
            timeout,
        ))
        .layer(middleware::from_fn(crate::observe::http))
        // A panicking handler answers 500 with the book's body; the server carries on.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                tracing::error!("a request handler panicked");
                ApiError::new(Code::Internal, "internal error").into_response()
            },
        ))
}

/// 200 with each check's result when all pass; 503 naming what failed otherwise.
async fn readiness(State(checks): State<Arc<Vec<(&'static str, Check)>>>) -> Response {
    let results = futures::future::join_all(checks.iter().map(|(name, check)| {
        let check = check.clone();
        async move { (*name, check().await) }
    }))
    .await;
    let ready = results.iter().all(|(_, result)| result.is_ok());
    let checks: serde_json::Map<_, _> = results
        .into_iter()
        .map(|(name, result)| {
            (
                name.to_owned(),
                result.err().unwrap_or_else(|| "ok".to_owned()).into(),
            )
        })
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({ "status": if ready { "ready" } else { "unavailable" }, "checks": checks });
    (status, axum::Json(body)).into_response()
}

async fn timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(Code::DeadlineExceeded, "request timed out").into_response(),
    }
}
