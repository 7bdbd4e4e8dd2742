//! The one error type of the API. Every failure becomes a status and a body of the spec's
//! shape, `{"errors":{"<field>":["<message>"]}}`; internal detail is logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use conduit_domain::{Errors, Field};
use conduit_store::DbError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 422: the request was understood but its content breaks a rule.
    #[error("invalid request: {0}")]
    Invalid(Errors),
    /// 401 on `token`: missing, malformed, expired, or naming a user who no longer exists.
    #[error("token {0}")]
    Token(&'static str),
    /// 401 on `credentials`: wrong email or password (never saying which).
    #[error("invalid credentials")]
    Credentials,
    /// 403 on `origin`: a cookie-authenticated change from a page of another site (CSRF).
    #[error("origin not allowed")]
    OriginNotAllowed,
    /// 403 on `user`: the right password, but the account is deactivated.
    #[error("account deactivated")]
    Deactivated,
    /// 403 on `user`: a moderator suspended the account until this time (RFC 3339), for this
    /// reason; it may log in, read and export, not write.
    #[error("account suspended")]
    Suspended { until: String, reason: String },
    /// 403 on `user`: only moderators and admins may do this (the message says what).
    #[error("not a moderator")]
    NotModerator(&'static str),
    /// 403 on `profile`: a block stands between the caller and this user (the message says
    /// which way).
    #[error("blocked")]
    Blocked(&'static str),
    /// 409 on `report`: the reporter already has an open report of this target.
    #[error("report already open")]
    ReportOpen,
    /// 409 on `report`: another moderator answered this report first; nothing was changed.
    #[error("report already answered")]
    ReportClosed,
    /// 403 on `email`: the account's address is not verified, and `CONDUIT_UNVERIFIED_USERS`
    /// does not allow this until it is.
    #[error("email not verified")]
    Unverified,
    /// 403: authenticated, but not the owner of the named resource.
    #[error("{0} forbidden")]
    Forbidden(Field),
    /// 404 on the named resource.
    #[error("{0} not found")]
    NotFound(Field),
    /// 409: a unique field is taken.
    #[error("{0} has already been taken")]
    Taken(Field),
    /// 413: the body is over the configured limit.
    #[error("request body too large")]
    TooLarge,
    /// 429 on `rate`: too many failed attempts; retry after this many seconds.
    #[error("too many attempts")]
    TooManyAttempts { retry_after: u64 },
    /// 429 on `rate`: the client's address has the most requests in flight allowed
    /// (`CONDUIT_MAX_REQUESTS_PER_ADDRESS`); retry in a moment.
    #[error("too many requests in flight from one address")]
    AddressBusy,
    /// 429 on `stream`: the account already holds the most notification streams one instance
    /// keeps for it (`notify::hub::STREAMS_PER_USER`).
    #[error("too many notification streams")]
    TooManyStreams,
    /// 415 on `body`: a body that is not declared `Content-Type: application/json`.
    #[error("unsupported media type")]
    NotJson,
    /// 408 on `body`: the body did not arrive within the configured time.
    #[error("request body too slow")]
    BodyTimeout,
    /// 403 on `currentPassword`: changing the password or email needs the current password or
    /// a recent login; the message says which is missing.
    #[error("current password {0}")]
    CurrentPassword(&'static str),
    /// 409 on `user`: the change would leave no active admin.
    #[error("last active admin")]
    LastAdmin,
    /// 503: as many exports as may stream at once are streaming; retry in a moment.
    #[error("exports busy")]
    ExportsBusy,
    /// 503 on `q`: searches at once have waited their turn too long; retry in a moment.
    #[error("search busy")]
    SearchBusy,
    /// 503: too many password hashes waiting already; retry in a moment.
    #[error("password hashing busy")]
    HashingBusy,
    /// 405 on a known path.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 503: the request ran past the configured timeout.
    #[error("request timed out")]
    Timeout,
    /// 503: too many requests at once; shed before any work was done.
    #[error("overloaded")]
    Overloaded,
    /// 503 on `session`: the session store (Redis, say) is unreachable.
    #[error("session store unavailable")]
    SessionUnavailable,
    /// 503: the database did not answer in time.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// 500: a bug or a broken dependency. The text is logged only.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The error shape of every 4xx and 5xx: `{"errors":{"<field>":["<message>"]}}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = GenericErrorModel, example = json!({"errors": {"title": ["can't be blank"]}}))]
pub struct ErrorBody {
    pub errors: std::collections::BTreeMap<String, Vec<String>>,
}

impl ApiError {
    pub fn invalid(field: Field, message: impl Into<String>) -> Self {
        ApiError::Invalid(Errors::single(field, message))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Token(_) | ApiError::Credentials => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_)
            | ApiError::Deactivated
            | ApiError::Suspended { .. }
            | ApiError::Blocked(_)
            | ApiError::NotModerator(_)
            | ApiError::Unverified
            | ApiError::OriginNotAllowed
            | ApiError::CurrentPassword(_) => StatusCode::FORBIDDEN,
            ApiError::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::LastAdmin | ApiError::ReportOpen | ApiError::ReportClosed => StatusCode::CONFLICT,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Taken(_) => StatusCode::CONFLICT,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooManyAttempts { .. } | ApiError::AddressBusy | ApiError::TooManyStreams => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Unavailable(_)
            | ApiError::Timeout
            | ApiError::Overloaded
            | ApiError::SessionUnavailable
            | ApiError::HashingBusy
            | ApiError::ExportsBusy
            | ApiError::SearchBusy => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body's `errors` object.
    pub fn errors(&self) -> Errors {
        match self {
            ApiError::Invalid(errors) => errors.clone(),
            ApiError::Token(message) => Errors::single("token", *message),
            ApiError::Credentials => Errors::single("credentials", "invalid"),
            ApiError::Forbidden(field) => Errors::single(field, "forbidden"),
            ApiError::Deactivated => Errors::single("user", "is deactivated"),
            ApiError::Suspended { until, reason } => Errors::single(
                "user",
                format!("is suspended until {until}: {reason} (reading and exporting still work)"),
            ),
            ApiError::Blocked(message) => Errors::single("profile", *message),
            ApiError::NotModerator(message) => Errors::single("user", *message),
            ApiError::ReportOpen => Errors::single(
                "report",
                "is already open for this target: one open report per reporter and target (see GET /api/user/reports)",
            ),
            ApiError::ReportClosed => Errors::single(
                "report",
                "was already answered by another moderator; nothing was changed (see GET /api/moderation/log)",
            ),
            ApiError::Unverified => Errors::single(
                "email",
                "is not verified: open the link mailed to it, or ask for a new one (POST /api/users/verify/resend)",
            ),
            ApiError::OriginNotAllowed => Errors::single("origin", "not allowed"),
            ApiError::NotFound(field) => Errors::single(field, "not found"),
            ApiError::Taken(field) => Errors::single(field, conduit_domain::validation::TAKEN),
            ApiError::TooLarge => Errors::single("body", "is too large for this server"),
            ApiError::MethodNotAllowed => Errors::single("method", "not allowed"),
            ApiError::NotJson => Errors::single("body", "must be JSON sent with Content-Type: application/json"),
            ApiError::BodyTimeout => Errors::single("body", "did not arrive in time"),
            ApiError::CurrentPassword(message) => Errors::single("currentPassword", *message),
            ApiError::LastAdmin => Errors::single("user", "is the last active admin: make another user an admin first"),
            ApiError::HashingBusy => {
                Errors::single("server", "too many logins and registrations at once, retry shortly")
            }
            ApiError::ExportsBusy => Errors::single("server", "too many exports at once, retry shortly"),
            ApiError::SearchBusy => Errors::single("q", "too many searches at once, retry shortly"),
            ApiError::TooManyAttempts { .. } => Errors::single("rate", "too many attempts"),
            ApiError::AddressBusy => {
                Errors::single("rate", "too many requests at once from your address, retry when one has finished")
            }
            ApiError::TooManyStreams => Errors::single(
                "stream",
                "this account holds the most notification streams allowed: close one (a browser needs one for all its tabs' events)",
            ),
            ApiError::Unavailable(_) => Errors::single("server", "temporarily unavailable, retry shortly"),
            ApiError::Timeout => Errors::single("server", "request timed out"),
            ApiError::SessionUnavailable => Errors::single("session", "store unavailable"),
            ApiError::Overloaded => Errors::single("server", "too many requests at once, retry shortly"),
            ApiError::Internal(_) => Errors::single("server", "internal error"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            // This runs inside the request's span, so the log line carries its context.
            ApiError::Internal(detail) => tracing::error!(%detail, "internal error"),
            ApiError::Unavailable(detail) => tracing::warn!(%detail, "dependency unavailable"),
            ApiError::SessionUnavailable => tracing::warn!("session store unavailable"),
            _ => {}
        }
        let body = serde_json::json!({ "errors": self.errors() });
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Token"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE || matches!(self, ApiError::AddressBusy) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let ApiError::TooManyAttempts { retry_after } = self {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
        }
        response
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict("report") => ApiError::ReportOpen,
            DbError::Conflict(field) => ApiError::Taken(field),
            DbError::LastAdmin => ApiError::LastAdmin,
            DbError::TooBroad => ApiError::Invalid(Errors::single(
                "filters",
                format!(
                    "each match more than {} articles, too many to combine: list by one of them and page on with the cursor",
                    conduit_store::MAX_COMBINED_SCAN
                ),
            )),
            DbError::Unavailable(detail) => ApiError::Unavailable(detail),
            DbError::Other(detail) => ApiError::Internal(detail),
        }
    }
}

impl From<Errors> for ApiError {
    fn from(errors: Errors) -> Self {
        ApiError::Invalid(errors)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
