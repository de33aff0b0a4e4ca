//! Who may call, tried from the outside: with `AUTH_HS256_SECRET` set, every route of the
//! OpenAPI document and every gRPC method refuses a caller without a valid token (401 with
//! the book's error body, `Unauthenticated` on gRPC); health and the API documents stay
//! public; `/metrics` is the admin's; an order goes all the way with tokens, the modules
//! presenting their own `service` token to each other.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::time::Duration;

use host::auth::{AuthConfig, Role};
use testkit::{Backend, TestApp, spawn_app_with};

db::backend_tests!(an_order_goes_all_the_way_with_tokens);

use testkit::tokens::{config, token};

async fn app(backend: Backend) -> TestApp {
    spawn_app_with(&["all"], backend, |c| c.auth = config()).await
}

/// Every operation of the OpenAPI document, path parameters filled in, with the statuses the
/// document says it answers.
async fn operations(app: &TestApp) -> Vec<(reqwest::Method, String, Vec<u16>)> {
    let (status, doc) = app
        .json(
            reqwest::Method::GET,
            "/openapi.json",
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(status, 200, "the OpenAPI document is public");
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete: String = path
            .split('/')
            .map(|part| {
                if part.starts_with('{') {
                    "some-id"
                } else {
                    part
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for (method, operation) in item.as_object().unwrap() {
            if let Ok(method) = method.to_uppercase().parse::<reqwest::Method>() {
                let documented = operation["responses"]
                    .as_object()
                    .map(|r| r.keys().filter_map(|code| code.parse().ok()).collect())
                    .unwrap_or_default();
                found.push((method, concrete.clone(), documented));
            }
        }
    }
    assert!(found.len() > 30, "the whole mall's routes: {found:?}");
    found
}

#[tokio::test]
async fn every_route_refuses_a_caller_without_a_valid_token() {
    let app = app(Backend::Sqlite).await;
    // Expired two minutes ago: past the verifier's leeway for clock skew.
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"sub": "a", "role": "admin",
            "exp": jsonwebtoken::get_current_timestamp() - 120}),
        &jsonwebtoken::EncodingKey::from_secret(config().auth_hs256_secret.unwrap().as_bytes())
            .unwrap(),
    )
    .unwrap();
    let forged = {
        let other = AuthConfig {
            auth_hs256_secret: Some("not the mall's secret, but as long".into()),
            ..AuthConfig::default()
        };
        host::auth::mint(&other, Role::Admin, "a", Duration::from_secs(600))
            .unwrap()
            .token
    };
    let callers = [
        ("no token", app.api.clone()),
        ("an expired token", app.bearer(&expired)),
        ("a forged token", app.bearer(&forged)),
    ];
    let admin = app.bearer(&token(Role::Admin, "operator"));
    let strangers = [
        (
            Role::Customer,
            app.bearer(&token(Role::Customer, "stranger")),
        ),
        (
            Role::StoreOwner,
            app.bearer(&token(Role::StoreOwner, "nobody")),
        ),
        (Role::Bot, app.bearer(&token(Role::Bot, "bot-9"))),
    ];
    for (method, path, documented) in operations(&app).await {
        for (who, api) in &callers {
            let response = api.send(method.clone(), &path, "{}").await;
            assert_eq!(response.status(), 401, "{method} {path} with {who}");
            assert_eq!(
                response.headers()["www-authenticate"],
                "Bearer",
                "{method} {path}"
            );
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["code"], 16, "{method} {path} with {who}: {body}");
        }
        let answer = admin.send(method.clone(), &path, "{}").await.status();
        assert!(
            documented.contains(&answer.as_u16()) && answer != 403,
            "{method} {path} as admin: {answer}, documented {documented:?}"
        );
        // Callers of the wrong role or owner: refused (403), or told there is nothing (404),
        // except where the route is theirs too.
        for (role, api) in &strangers {
            let answer = api.send(method.clone(), &path, "{}").await.status();
            if !open_to(*role, &method, &path) {
                assert!(
                    answer == 403 || answer == 404,
                    "{method} {path} as a stranger {role:?}: {answer}"
                );
            }
        }
    }
}

/// Routes a signed-in caller of `role` may use on what is not anyone's in particular: the
/// mall's listings, a customer registering itself or searching its own orders, a store owner
/// opening a store, a bot listing the depot.
fn open_to(role: Role, method: &reqwest::Method, path: &str) -> bool {
    let read = *method == reqwest::Method::GET;
    let mall = read && matches!(path, "/api/stores" | "/api/stores/participating");
    mall || match role {
        Role::Customer => {
            matches!(
                (method.as_str(), path),
                ("POST", "/api/customers" | "/api/search/orders") | ("GET", "/api/notifications")
            )
        }
        Role::StoreOwner => *method == reqwest::Method::POST && path == "/api/stores",
        Role::Bot => read && path == "/api/depot/shopping",
        Role::Admin | Role::Service => true,
    }
}

#[tokio::test]
async fn health_and_documents_are_public_and_metrics_the_admins() {
    let app = app(Backend::Sqlite).await;
    for path in [
        "/liveness",
        "/readiness",
        "/openapi.json",
        "/asyncapi.json",
        "/swagger-ui/",
        "/console",
        "/console/console.js",
    ] {
        assert_eq!(app.get(path).await.status(), 200, "{path}");
    }
    assert_eq!(app.get("/metrics").await.status(), 401);
    for data in ["/api/console/board", "/api/console/live", "/consoles"] {
        assert_eq!(app.get(data).await.status(), 401, "{data}");
    }
    let customer = app.bearer(&token(Role::Customer, "c-1"));
    let (status, body) = customer
        .json(reqwest::Method::GET, "/metrics", serde_json::Value::Null)
        .await;
    assert_eq!((status, &body["code"]), (403, &7.into()), "{body}");
    let admin = app.bearer(&token(Role::Admin, "operator"));
    assert_eq!(admin.get("/metrics").await.status(), 200);
}

async fn channel(app: &TestApp) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{}", app.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// Every method of every gRPC service the mall serves, from the descriptors.
fn grpc_methods() -> Vec<String> {
    use prost::Message as _;
    let set = prost_types::FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET).unwrap();
    let methods: Vec<String> = set
        .file
        .iter()
        .flat_map(|file| {
            let package = file.package().to_owned();
            file.service.iter().flat_map(move |service| {
                let service_name = format!("{package}.{}", service.name());
                service
                    .method
                    .iter()
                    .map(move |method| format!("/{service_name}/{}", method.name()))
            })
        })
        .collect();
    assert!(methods.len() > 40, "every module's methods: {methods:?}");
    methods
}

/// Calls `method` with an empty message as `token` (none: anonymous); the status code.
async fn call(
    channel: &tonic::transport::Channel,
    method: &str,
    token: Option<&str>,
) -> tonic::Code {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(());
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let path = method.parse().unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    match grpc.unary(request, path, codec).await {
        Ok(_) => tonic::Code::Ok,
        Err(status) => status.code(),
    }
}

#[tokio::test]
async fn every_grpc_method_asks_who_is_calling() {
    let app = app(Backend::Sqlite).await;
    let channel = channel(&app).await;
    let (customer, service) = (
        token(Role::Customer, "c-1"),
        token(Role::Service, "ordering"),
    );
    for method in grpc_methods() {
        assert_eq!(
            call(&channel, &method, None).await,
            tonic::Code::Unauthenticated,
            "{method} without a token"
        );
        assert_eq!(
            call(&channel, &method, Some("not-a-token")).await,
            tonic::Code::Unauthenticated,
            "{method} with a bad token"
        );
        assert_eq!(
            call(&channel, &method, Some(&customer)).await,
            tonic::Code::PermissionDenied,
            "{method} as a customer"
        );
        let answer = call(&channel, &method, Some(&service)).await;
        assert!(
            !matches!(
                answer,
                tonic::Code::Unauthenticated
                    | tonic::Code::PermissionDenied
                    | tonic::Code::Unimplemented
            ),
            "{method} as a module: {answer:?}"
        );
    }
}

#[tokio::test]
async fn grpc_methods_refuse_a_caller_without_a_valid_token() {
    use proto::stores::{GetStoresRequest, stores_service_client::StoresServiceClient};
    let app = app(Backend::Sqlite).await;
    let mut client = StoresServiceClient::new(channel(&app).await);
    let refused = client.get_stores(GetStoresRequest {}).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");

    let mut request = tonic::Request::new(GetStoresRequest {});
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", token(Role::Service, "ordering"))
            .parse()
            .unwrap(),
    );
    client.get_stores(request).await.unwrap();
}

/// Every module is reached (REST, the saga's commands, the caches' gRPC fall-backs) with
/// tokens required: the modules' calls to each other carry their own.
async fn an_order_goes_all_the_way_with_tokens(backend: Backend) {
    let app = app(backend).await;
    let api = app.bearer(&token(Role::Admin, "operator"));
    let mall = api.mall(500.0).await;
    let order = api.checkout(&mall, 2).await;
    api.order_is(&order, "approved").await;
    api.pick(&order).await;
    api.pay(&order).await;
    api.order_is(&order, "completed").await;
}
