//! The features, against the whole mall in this process, once per backend: open on loopback
//! (the book's way), and requiring tokens (every request carries an admin's).

use db::Backend;
use testkit::{spawn_app, spawn_app_with, tokens};

db::backend_tests!(every_feature_holds, every_feature_holds_with_tokens);

async fn every_feature_holds(backend: Backend) {
    let app = spawn_app(&["all"], backend).await;
    e2e::run(app.api.clone(), &format!("the monolith on {backend}")).await;
}

async fn every_feature_holds_with_tokens(backend: Backend) {
    let app = spawn_app_with(&["all"], backend, |c| c.auth = tokens::config()).await;
    let admin = app.bearer(&tokens::token(tokens::Role::Admin, "features"));
    e2e::run(admin, &format!("the monolith on {backend}, with tokens")).await;
}
