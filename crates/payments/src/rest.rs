//! The book's REST routes under `/api/payments`, plus `GET /api/payments/invoices/{id}`.

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
    domain::{invoice, payment},
};

pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/api/payments", post(authorize_payment))
        .route("/api/payments/invoices/{id}", get(invoice))
        .route("/api/payments/invoices/{id}/pay", put(pay_invoice))
        .with_state(app)
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        let message = error.to_string();
        match error {
            Error::Payment(payment::Error::BlankCustomer | payment::Error::NonPositiveAmount)
            | Error::Invoice(invoice::Error::NonPositiveAmount) => {
                ApiError::invalid_argument(message)
            }
            Error::UnknownCustomer
            | Error::Payment(payment::Error::NotFound)
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

type Reply = Result<axum::Json<Value>, Error>;

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct AuthorizePayment {
    #[serde(alias = "customer_id")]
    customer_id: String,
    amount: f64,
}

async fn authorize_payment(State(app): State<App>, Json(body): Json<AuthorizePayment>) -> Reply {
    let id = app.authorize_payment(body.customer_id, body.amount).await?;
    Ok(axum::Json(json!({ "id": id })))
}

async fn pay_invoice(State(app): State<App>, Path(id): Path<String>) -> Reply {
    app.pay_invoice(&id).await?;
    Ok(axum::Json(json!({})))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InvoiceJson {
    id: String,
    order_id: String,
    amount: f64,
    status: &'static str,
}

async fn invoice(State(app): State<App>, Path(id): Path<String>) -> Reply {
    let invoice = app.invoice(&id).await?;
    let invoice = InvoiceJson {
        id: invoice.id,
        order_id: invoice.order_id,
        amount: invoice.amount,
        status: invoice.status.as_str(),
    };
    Ok(axum::Json(json!({ "invoice": invoice })))
}
