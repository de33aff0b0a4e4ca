//! The REST error contract: grpc-gateway's `{"code","message","details"}` body, with the HTTP
//! status it derives from the gRPC code. Module errors are mapped to an [`ApiError`] once, in
//! their REST adapter; nothing else in the process writes an error response.

use axum::{
    extract::{FromRequest, Request},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::de::DeserializeOwned;
use tonic::Code;

/// The error body every REST error has (grpc-gateway's `google.rpc.Status` in JSON), for
/// OpenAPI descriptions.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The gRPC status code (3 InvalidArgument, 5 NotFound, 9 FailedPrecondition, …).
    pub code: i32,
    /// What went wrong.
    pub message: String,
    /// Always empty.
    pub details: Vec<serde_json::Value>,
}

/// An error as REST clients of the book see it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The gRPC code, which decides the HTTP status.
    pub code: Code,
    /// The message clients read (and the book's e2e suite compares verbatim).
    pub message: String,
    status: Option<StatusCode>,
    /// Seconds after which the request may be sent again (`Retry-After`).
    retry_after: Option<u32>,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            status: None,
            retry_after: None,
        }
    }

    /// 503, Unavailable, with `Retry-After`: a dependency is down; the same request may
    /// succeed shortly.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(Code::Unavailable, message)
        }
    }

    /// 400, InvalidArgument: the request is malformed or a value is invalid.
    pub fn invalid_argument(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::InvalidArgument, message)
    }

    /// 404, NotFound.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::NotFound, message)
    }

    /// 400, FailedPrecondition: the state does not allow it.
    pub fn failed_precondition(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::FailedPrecondition, message)
    }

    /// 409, Aborted: a concurrent change won; the client may retry.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::Aborted, message)
    }

    /// 500 with a generic message; logs `cause`, which clients never see. When the cause is
    /// the database being out of reach (a restart, say), 503 with `Retry-After` instead.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> ApiError {
        if db::unavailable(cause) {
            tracing::warn!(error = %ErrorChain(cause), "the database is unavailable");
            return ApiError::unavailable("the database is unavailable; try again shortly");
        }
        tracing::error!(error = %ErrorChain(cause), "internal error");
        ApiError::new(Code::Internal, "internal error")
    }

    /// Another module's gRPC call failed: its own answer (not found, refused, a bad request)
    /// passes through; a call that broke off (a replica killed under it: `Unknown`), timed out
    /// or failed inside the peer is `Unavailable` (503) — worth trying again, and not the
    /// caller's fault.
    pub fn from_peer(status: &tonic::Status, message: impl Into<String>) -> ApiError {
        use Code::{Cancelled, DataLoss, DeadlineExceeded, Internal, Unavailable, Unknown};
        let code = match status.code() {
            Unknown | Internal | Cancelled | DataLoss | DeadlineExceeded | Unavailable => {
                Unavailable
            }
            answered => answered,
        };
        ApiError::new(code, message)
    }

    /// The HTTP status clients receive.
    pub fn status(&self) -> StatusCode {
        self.status.unwrap_or_else(|| http_status(self.code))
    }

    fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = Some(status);
        self
    }
}

/// grpc-gateway's mapping from gRPC codes to HTTP statuses.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            serde_json::json!({ "code": self.code as i32, "message": self.message, "details": [] });
        let mut response = (self.status(), axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// The same error for a gRPC caller: one mapping serves both edges.
impl From<ApiError> for tonic::Status {
    fn from(error: ApiError) -> tonic::Status {
        tonic::Status::new(error.code, error.message)
    }
}

/// `{"id": …}`: the answer of every create route.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct IdReply {
    /// The new resource's id.
    pub id: String,
}

/// `{}`: the answer of every command route.
#[derive(Debug, Default, serde::Serialize, utoipa::ToSchema)]
pub struct Empty {}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> ApiError {
        ApiError::new(status.code(), status.message())
    }
}

/// A JSON request body, read the way grpc-gateway reads one: any content type, an empty body
/// (or `null`) means `{}`, `2.0` is a whole number, unknown fields are ignored, and a malformed body is a 400 with the JSON error
/// body (axum's own extractor answers 415/422 with plain text).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = bytes::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                let status = rejection.status();
                let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    Code::ResourceExhausted
                } else {
                    Code::InvalidArgument
                };
                ApiError::new(code, rejection.body_text()).with_status(status)
            })?;
        let body: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        let mut value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| ApiError::invalid_argument(e.to_string()))?;
        if value.is_null() {
            value = serde_json::json!({});
        }
        crate::input::check_json(&value)?;
        crate::input::whole_numbers_as_integers(&mut value);
        serde_json::from_value(value)
            .map(Json)
            .map_err(|e| ApiError::invalid_argument(e.to_string()))
    }
}

/// Displays an error with its causes: `outer: inner: root`.
pub(crate) struct ErrorChain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// The preamble of a module's gRPC service, the same in every module: `server(app)` serving
/// `Grpc(app)` through the generated `$server`, the module's `$error` answered as a `Status`
/// the way [`ApiError`] maps it (one mapping for REST and gRPC), and `Reply<T>`.
#[macro_export]
macro_rules! grpc_service {
    ($server:ident, $app:ty, $error:ty) => {
        pub(crate) fn server(app: $app) -> $server<Grpc> {
            $server::new(Grpc(app))
        }

        pub(crate) struct Grpc($app);

        impl From<$error> for ::tonic::Status {
            fn from(error: $error) -> ::tonic::Status {
                $crate::ApiError::from(error).into()
            }
        }

        type Reply<T> = Result<::tonic::Response<T>, ::tonic::Status>;
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_that_broke_off_is_unavailable_and_its_own_answers_pass_through() {
        let status =
            |peer: tonic::Status| ApiError::from_peer(&peer, "payments unavailable").status();
        let broke = tonic::Status::unknown("connection closed before message completed");
        assert_eq!(status(broke), StatusCode::SERVICE_UNAVAILABLE);
        let down = tonic::Status::unavailable("connection refused");
        assert_eq!(status(down), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            status(tonic::Status::permission_denied("no token")),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(tonic::Status::not_found("no such payment")),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn statuses_follow_grpc_gateway() {
        assert_eq!(http_status(Code::InvalidArgument), StatusCode::BAD_REQUEST);
        assert_eq!(
            http_status(Code::FailedPrecondition),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(http_status(Code::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(http_status(Code::Aborted), StatusCode::CONFLICT);
        assert_eq!(http_status(Code::Unauthenticated), StatusCode::UNAUTHORIZED);
        assert_eq!(
            http_status(Code::Unknown),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(http_status(Code::Cancelled).as_u16(), 499);
        assert_eq!(
            http_status(Code::DeadlineExceeded),
            StatusCode::GATEWAY_TIMEOUT
        );
    }
}
