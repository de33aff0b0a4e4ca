//! The book's REST routes under `/api/customers`.

use axum::{
    Router,
    extract::{Path, State},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use host::{ApiError, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    app::{App, Error},
    domain::customer::{self, Customer},
};

pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/api/customers", post(register))
        .route("/api/customers/{id}", get(customer))
        .route("/api/customers/{id}/enable", put(enable))
        .route("/api/customers/{id}/disable", put(disable))
        .route("/api/customers/{id}/change-sms", put(change_sms_number))
        .with_state(app)
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        let message = error.to_string();
        match error {
            Error::Customer(customer::Error::BlankName | customer::Error::BlankSmsNumber) => {
                ApiError::invalid_argument(message)
            }
            Error::Customer(customer::Error::NotFound) => ApiError::not_found(message),
            Error::Customer(customer::Error::AlreadyEnabled | customer::Error::AlreadyDisabled) => {
                ApiError::failed_precondition(message)
            }
            Error::Customer(customer::Error::NotAuthorized) => {
                ApiError::new(tonic::Code::Unauthenticated, message)
            }
            Error::Unexpected(cause) => ApiError::internal(cause.as_ref()),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

type Reply = Result<axum::Json<Value>, Error>;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CustomerJson {
    id: String,
    name: String,
    sms_number: String,
    enabled: bool,
}

impl From<Customer> for CustomerJson {
    fn from(c: Customer) -> CustomerJson {
        CustomerJson {
            id: c.id,
            name: c.name,
            sms_number: c.sms_number,
            enabled: c.enabled,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Register {
    name: String,
    #[serde(alias = "sms_number")]
    sms_number: String,
}

async fn register(State(app): State<App>, Json(body): Json<Register>) -> Reply {
    let id = app.register(body.name, body.sms_number).await?;
    Ok(axum::Json(json!({ "id": id })))
}

async fn customer(State(app): State<App>, Path(id): Path<String>) -> Reply {
    let customer = CustomerJson::from(app.customer(&id).await?);
    Ok(axum::Json(json!({ "customer": customer })))
}

async fn enable(State(app): State<App>, Path(id): Path<String>) -> Reply {
    app.enable(&id).await?;
    Ok(axum::Json(json!({})))
}

async fn disable(State(app): State<App>, Path(id): Path<String>) -> Reply {
    app.disable(&id).await?;
    Ok(axum::Json(json!({})))
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ChangeSms {
    #[serde(alias = "sms_number")]
    sms_number: String,
}

async fn change_sms_number(
    State(app): State<App>,
    Path(id): Path<String>,
    Json(body): Json<ChangeSms>,
) -> Reply {
    app.change_sms_number(&id, body.sms_number).await?;
    Ok(axum::Json(json!({})))
}
