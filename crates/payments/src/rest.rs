//! The book's REST routes under `/api/payments`, plus `GET /api/payments/invoices/{id}`.

use axum::{
    Router,
    extract::{Path, State},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use host::{ApiError, Empty, IdReply, Json};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::{
    access,
    app::{App, Error},
    domain::{invoice, payment},
};

/// The OpenAPI description of [`router`].
#[derive(OpenApi)]
#[openapi(paths(authorize_payment, pay_invoice, invoice), tags((name = "Payment", description = "Payments"), (name = "Invoice", description = "Invoices")))]
struct Docs;

pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    Docs::openapi()
}

pub(crate) fn router(app: App) -> Router {
    let owned = Router::new()
        .route("/api/payments/invoices/{id}", get(invoice))
        .route("/api/payments/invoices/{id}/pay", put(pay_invoice))
        .route_layer(axum::middleware::from_fn_with_state(
            access::Invoices(app.clone()),
            host::auth::owned::<access::Invoices>,
        ));
    Router::new()
        .route("/api/payments", post(authorize_payment))
        .merge(owned)
        .with_state(app)
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        let message = error.to_string();
        match error {
            Error::Payment(
                payment::Error::BlankCustomer
                | payment::Error::NonPositiveAmount
                | payment::Error::AmountBeyondMaximum,
            )
            | Error::Invoice(invoice::Error::NonPositiveAmount) => {
                ApiError::invalid_argument(message)
            }
            Error::UnknownCustomer
            | Error::Payment(payment::Error::NotFound | payment::Error::PaymentNotFound)
            | Error::Invoice(invoice::Error::NotFound) => ApiError::not_found(message),
            Error::Payment(payment::Error::AmountTooHigh)
            | Error::Invoice(
                invoice::Error::CannotPay
                | invoice::Error::CannotCancel
                | invoice::Error::CannotAdjust,
            ) => ApiError::failed_precondition(message),
            Error::CustomersUnavailable(_) => ApiError::new(tonic::Code::Unavailable, message),
            Error::Unexpected(cause) => ApiError::internal(cause.as_ref()),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

type Reply<T> = Result<axum::Json<T>, Error>;

#[derive(Serialize, ToSchema)]
struct InvoiceReply {
    invoice: InvoiceJson,
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(default, rename_all = "camelCase")]
struct AuthorizePayment {
    #[serde(alias = "customer_id")]
    #[schema(required = true, min_length = 1)]
    customer_id: String,
    #[schema(required = true, exclusive_minimum = 0, maximum = 1e12)]
    amount: f64,
}

#[utoipa::path(post, path = "/api/payments", tag = "Payment", operation_id = "authorizePayment", summary = "Authorize a future payment", request_body = AuthorizePayment, responses((status = 200, body = IdReply), (status = 400, body = host::ErrorBody), (status = 404, body = host::ErrorBody)))]
async fn authorize_payment(
    State(app): State<App>,
    caller: host::auth::Caller,
    Json(body): Json<AuthorizePayment>,
) -> Result<axum::Json<IdReply>, ApiError> {
    access::authorize(&caller, &body.customer_id)?;
    let id = app.authorize_payment(body.customer_id, body.amount).await?;
    Ok(axum::Json(IdReply { id }))
}

#[utoipa::path(put, path = "/api/payments/invoices/{id}/pay", tag = "Invoice", operation_id = "payInvoice", summary = "Pay an invoice", params(("id" = String, Path)), responses((status = 200, body = Empty), (status = 400, body = host::ErrorBody), (status = 404, body = host::ErrorBody)))]
async fn pay_invoice(State(app): State<App>, Path(id): Path<String>) -> Reply<Empty> {
    app.pay_invoice(&id).await?;
    Ok(axum::Json(Empty {}))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct InvoiceJson {
    id: String,
    order_id: String,
    amount: f64,
    status: &'static str,
}

#[utoipa::path(get, path = "/api/payments/invoices/{id}", tag = "Invoice", operation_id = "getInvoice", summary = "Get an invoice", params(("id" = String, Path)), responses((status = 200, body = InvoiceReply), (status = 404, body = host::ErrorBody)))]
async fn invoice(State(app): State<App>, Path(id): Path<String>) -> Reply<InvoiceReply> {
    let invoice = app.invoice(&id).await?;
    let invoice = InvoiceJson {
        id: invoice.id,
        order_id: invoice.order_id,
        amount: invoice.amount,
        status: invoice.status.as_str(),
    };
    Ok(axum::Json(InvoiceReply { invoice }))
}
