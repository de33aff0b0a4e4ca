//! The features, against the whole mall in this process, once per backend.

use db::Backend;
use testkit::spawn_app;

db::backend_tests!(every_feature_holds);

async fn every_feature_holds(backend: Backend) {
    let app = spawn_app(&["all"], backend).await;
    e2e::run(app.api.clone(), &format!("the monolith on {backend}")).await;
}
