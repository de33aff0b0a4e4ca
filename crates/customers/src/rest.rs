//! The book's REST routes under `/api/customers`.

use axum::{
    Router,
    extract::{Path, State},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use host::{ApiError, Empty, IdReply, Json, auth::Caller};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::{
    access,
    app::{App, Error},
    domain::customer::{self, Customer},
};

/// The OpenAPI description of [`router`].
#[derive(OpenApi)]
#[openapi(paths(register, customer, erase, enable, disable, change_sms_number), tags((name = "Customer", description = "Customers")))]
struct Docs;

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    Docs::openapi()
}

pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/api/customers", post(register))
        .route("/api/customers/{id}", get(customer).delete(erase))
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
            Error::Customer(customer::Error::AlreadyRegistered) => {
                ApiError::new(tonic::Code::AlreadyExists, message)
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

/// Module errors and refusals alike become the book's error body.
type Reply<T> = Result<axum::Json<T>, ApiError>;

#[derive(Serialize, ToSchema)]
struct CustomerReply {
    customer: CustomerJson,
}

#[derive(Serialize, ToSchema)]
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

#[derive(Deserialize, Default, ToSchema)]
#[serde(default, rename_all = "camelCase")]
struct Register {
    #[schema(required = true, min_length = 1)]
    name: String,
    #[serde(alias = "sms_number")]
    #[schema(required = true, min_length = 1)]
    sms_number: String,
}

#[utoipa::path(post, path = "/api/customers", tag = "Customer", operation_id = "registerCustomer", request_body = Register, responses((status = 200, body = IdReply), (status = 400, body = host::ErrorBody)))]
async fn register(
    State(app): State<App>,
    caller: Caller,
    Json(body): Json<Register>,
) -> Reply<IdReply> {
    let id = access::registration(&caller)?;
    let id = app.register(id, body.name, body.sms_number).await?;
    Ok(axum::Json(IdReply { id }))
}

#[utoipa::path(get, path = "/api/customers/{id}", tag = "Customer", operation_id = "getCustomer", params(("id" = String, Path)), responses((status = 200, body = CustomerReply), (status = 404, body = host::ErrorBody)))]
async fn customer(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Reply<CustomerReply> {
    access::own(&caller, &id)?;
    let customer = CustomerJson::from(app.customer(&id).await?);
    Ok(axum::Json(CustomerReply { customer }))
}

#[utoipa::path(delete, path = "/api/customers/{id}", tag = "Customer", operation_id = "eraseCustomer",
    summary = "Forget a customer: its record, and every module's copies of its name and number",
    params(("id" = String, Path)), responses((status = 200, body = Empty), (status = 403, body = host::ErrorBody), (status = 404, body = host::ErrorBody)))]
async fn erase(State(app): State<App>, caller: Caller, Path(id): Path<String>) -> Reply<Empty> {
    access::own(&caller, &id)?;
    app.erase(&id).await?;
    Ok(axum::Json(Empty {}))
}

#[utoipa::path(put, path = "/api/customers/{id}/enable", tag = "Customer", operation_id = "enableCustomer", params(("id" = String, Path)), responses((status = 200, body = Empty), (status = 400, body = host::ErrorBody), (status = 404, body = host::ErrorBody)))]
async fn enable(State(app): State<App>, caller: Caller, Path(id): Path<String>) -> Reply<Empty> {
    access::operate(&caller)?;
    app.enable(&id).await?;
    Ok(axum::Json(Empty {}))
}

#[utoipa::path(put, path = "/api/customers/{id}/disable", tag = "Customer", operation_id = "DisableCustomer", params(("id" = String, Path)), responses((status = 200, body = Empty), (status = 400, body = host::ErrorBody), (status = 404, body = host::ErrorBody)))]
async fn disable(State(app): State<App>, caller: Caller, Path(id): Path<String>) -> Reply<Empty> {
    access::operate(&caller)?;
    app.disable(&id).await?;
    Ok(axum::Json(Empty {}))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(default, rename_all = "camelCase")]
struct ChangeSms {
    #[serde(alias = "sms_number")]
    #[schema(required = true, min_length = 1)]
    sms_number: String,
}

#[utoipa::path(put, path = "/api/customers/{id}/change-sms", tag = "Customer", operation_id = "changeSmsNumber", params(("id" = String, Path)), request_body = ChangeSms, responses((status = 200, body = Empty), (status = 400, body = host::ErrorBody), (status = 404, body = host::ErrorBody)))]
async fn change_sms_number(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<ChangeSms>,
) -> Reply<Empty> {
    access::own(&caller, &id)?;
    app.change_sms_number(&id, body.sms_number).await?;
    Ok(axum::Json(Empty {}))
}
