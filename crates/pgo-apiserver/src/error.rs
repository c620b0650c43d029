//! Every error the API answers with: a status code and a JSON body whose
//! message names the problem.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use pgo_api::rest::ErrorBody;
use pgo_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not authenticated")]
    Unauthenticated,
    #[error("user {user} (role {role}) does not have permission {permission}")]
    Forbidden {
        user: String,
        role: String,
        permission: &'static str,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// Too many failed logins from one address: wait and try again.
    #[error("too many failed logins; try again in {0}s")]
    Throttled(u64),
    #[error("{0}")]
    Internal(String),
    /// The server answers but is not well (`/livez`).
    #[error("{0}")]
    Unavailable(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            StoreError::AlreadyExists { .. } | StoreError::Conflict { .. } => {
                ApiError::Conflict(e.to_string())
            }
            StoreError::Invalid(_) => ApiError::BadRequest(e.to_string()),
            _ => ApiError::Internal(e.to_string()),
        }
    }
}

/// What the platform could not do is the server's trouble, not the caller's.
impl From<pgo_platform::PlatformError> for ApiError {
    fn from(e: pgo_platform::PlatformError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, "internal error");
        }
        let body = Json(ErrorBody {
            error: self.to_string(),
        });
        if status == StatusCode::UNAUTHORIZED {
            return (status, [(header::WWW_AUTHENTICATE, "Basic realm=\"pgo\"")], body).into_response();
        }
        if let ApiError::Throttled(secs) = self {
            return (status, [(header::RETRY_AFTER, secs.to_string())], body).into_response();
        }
        (status, body).into_response()
    }
}
