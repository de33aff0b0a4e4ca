//! The features, against the whole mall in this process, once per backend: open on loopback
//! (the book's way), and requiring tokens (every request carries an admin's).

use db::Backend;
use testkit::{spawn_app, spawn_app_with};

db::backend_tests!(every_feature_holds, every_feature_holds_with_tokens);

async fn every_feature_holds(backend: Backend) {
    let app = spawn_app(&["all"], backend).await;
    e2e::run(app.api.clone(), &format!("the monolith on {backend}")).await;
}

async fn every_feature_holds_with_tokens(backend: Backend) {
    let auth = host::auth::AuthConfig {
        auth_hs256_secret: Some("the features' secret, 32 bytes long".into()),
        ..host::auth::AuthConfig::default()
    };
    let token = host::auth::mint(
        &auth,
        host::auth::Role::Admin,
        "features",
        std::time::Duration::from_secs(600),
    )
    .expect("a token")
    .token;
    let app = spawn_app_with(&["all"], backend, |c| c.auth = auth).await;
    let mall = format!("the monolith on {backend}, with tokens");
    e2e::run(app.bearer(&token), &mall).await;
}
