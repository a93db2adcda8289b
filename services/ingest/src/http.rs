//! JSON over HTTP on the ingest port (issue 31), beside gRPC: `POST /api/v1/transactions` takes
//! the proto3 JSON of `SubmitTransactionsRequest` and answers the proto3 JSON of
//! `SubmitTransactionsResponse`; `GET /api/v1/whoami` answers `WhoAmIResponse`. Both call the
//! gRPC service's own handlers (`SubmitTransactions`, `WhoAmI`): the same validation, limits,
//! idempotency, group commit and metrics, not a second implementation. They sit behind the same
//! tower layers as gRPC (telemetry, load shedding, bearer authentication with its limit on
//! failed attempts, the site's rate limit); a refusal by a layer, a gRPC status, is answered
//! here as an HTTP status with a JSON body ([`JsonStatus`]).
//!
//! Statuses: 200 with per-transaction outcomes; 400 for a body that is not JSON (with the byte
//! offset) or not the message's JSON (naming the field); 401; 409 with no event set;
//! 413 past the size bound, told by `Content-Length` before the body is read, or while it is
//! read; 415 for another content type; 429 with `Retry-After` for the site's rate limit,
//! load shedding and a full writer queue; 503 while draining or with the database down.
//!
//! Besides `amount_minor` (a string or a number, as proto3 JSON allows), a transaction may
//! give `amount` in major units (`"15.99"`), converted exactly by its currency's decimals, as
//! the command line's files allow (never both).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use saleboard_proto::json;
use saleboard_proto::openapi::{Body as OpenBody, Route};
use saleboard_proto::v1::ingest_service_server::IngestService as IngestApi;
use saleboard_proto::v1::{SubmitTransactionsRequest, Transaction, WhoAmIRequest};
use serde_json::Value;
use tokio::sync::watch;
use tonic::{Code, Status};

use crate::directory::Retailer;
use crate::grpc::IngestService;

/// Largest JSON of one transaction the bound allows for: every field at its widest (ids of 64
/// characters, slugs of 40, a timestamp with nanoseconds, an amount of 19 digits) with both
/// name spellings' worth of room and white space.
pub const MAX_TRANSACTION_JSON_BYTES: usize = 1_024;

/// The body bound of `POST /api/v1/transactions` for a `--max-batch` of `max_batch`: a full
/// batch of the widest transactions, and room for the envelope.
#[must_use]
pub fn max_body_bytes(max_batch: usize) -> usize {
    max_batch
        .saturating_mul(MAX_TRANSACTION_JSON_BYTES)
        .saturating_add(4_096)
}

/// What the JSON routes need.
#[derive(Clone)]
pub struct JsonApi {
    service: IngestService,
    max_body: usize,
    draining: watch::Receiver<bool>,
}

impl JsonApi {
    /// The routes' state: the gRPC service they call, the body bound, and the drain signal.
    #[must_use]
    pub fn new(service: IngestService, max_body: usize, draining: watch::Receiver<bool>) -> Self {
        Self {
            service,
            max_body,
            draining,
        }
    }
}

/// Where transactions are posted.
pub const TRANSACTIONS_PATH: &str = "/api/v1/transactions";
/// Where a key finds its site.
pub const WHOAMI_PATH: &str = "/api/v1/whoami";

/// The JSON routes of the ingest port, as its OpenAPI document states them.
pub const ROUTES: &[Route] = &[
    Route {
        method: "post",
        path: TRANSACTIONS_PATH,
        summary: "Submit transactions (SubmitTransactions): one result per transaction.",
        bearer: true,
        request: Some("saleboard.v1.SubmitTransactionsRequest"),
        params: &[],
        answers: &[
            (
                200,
                OpenBody::Message("saleboard.v1.SubmitTransactionsResponse"),
                "one result per transaction, in order: ACCEPTED, DUPLICATE or REJECTED with its reason",
            ),
            (
                400,
                OpenBody::Error,
                "not JSON (the byte offset), not the message's JSON (the field), or more than --max-batch transactions",
            ),
            (401, OpenBody::Error, "no valid API key"),
            (409, OpenBody::Error, "no event is set"),
            (
                413,
                OpenBody::Error,
                "the body is larger than --max-batch x 1 KiB + 4 KiB",
            ),
            (415, OpenBody::Error, "the body is not application/json"),
            (
                429,
                OpenBody::Error,
                "the site's rate limit, load shedding, or the writer's queue is full",
            ),
            (
                500,
                OpenBody::Error,
                "a bug: the operators have it in their logs",
            ),
            (
                503,
                OpenBody::Error,
                "the server is shutting down, or the database is down",
            ),
        ],
    },
    Route {
        method: "get",
        path: WHOAMI_PATH,
        summary: "The key's site, the event window and the limits (WhoAmI).",
        bearer: true,
        request: None,
        params: &[],
        answers: &[
            (
                200,
                OpenBody::Message("saleboard.v1.WhoAmIResponse"),
                "the key's site",
            ),
            (401, OpenBody::Error, "no valid API key"),
            (
                429,
                OpenBody::Error,
                "the site's rate limit or load shedding",
            ),
            (
                500,
                OpenBody::Error,
                "a bug: the operators have it in their logs",
            ),
            (
                503,
                OpenBody::Error,
                "the server is shutting down, or the database is down",
            ),
        ],
    },
];

/// The ingest port's OpenAPI 3.1 document, as served at `/api/v1/openapi.json`.
#[must_use]
pub fn openapi() -> &'static str {
    static DOCUMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let mut doc = saleboard_proto::openapi::document(
            "Saleboard ingest: JSON over HTTP",
            "Retailers push transactions with their site's API key. The same handlers as \
             gRPC's saleboard.v1.IngestService (SubmitTransactions, WhoAmI) on the same port.",
            ROUTES,
        );
        // What this port reads beside the message's own fields.
        doc["components"]["schemas"]["saleboard.v1.Transaction"]["properties"]["amount"] = serde_json::json!({
            "anyOf": [
                {"type": "string", "pattern": "^[+-]?[0-9]+(\\.[0-9]+)?$"},
                {"type": "number"},
            ],
            "description": "instead of amount_minor (never both): the amount in major units as \
                the shop shows it (\"15.99\"), converted exactly by the currency's decimals; \
                a JSON number of at most 15 digits, else a string",
        });
        doc.to_string()
    });
    &DOCUMENT
}

/// `GET /api/v1/openapi.json`: the document (public, outside the auth layers).
pub async fn openapi_route() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], openapi()).into_response()
}

/// The JSON routes, answering with the gRPC status of each answer in a `grpc-status` header
/// (for the telemetry layer; [`JsonStatus`] takes it off).
pub fn router(api: JsonApi) -> axum::Router {
    axum::Router::new()
        .route(
            TRANSACTIONS_PATH,
            axum::routing::post(submit).fallback(method_not_allowed),
        )
        .route(
            WHOAMI_PATH,
            axum::routing::get(who_am_i).fallback(method_not_allowed),
        )
        .with_state(api)
}

async fn method_not_allowed(request: Request) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        Code::InvalidArgument,
        &format!(
            "{} {} is not served: POST /api/v1/transactions, GET /api/v1/whoami",
            request.method(),
            saleboard_domain::ids::excerpt(request.uri().path())
        ),
        None,
    )
}

/// The HTTP status for a gRPC status.
#[must_use]
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound | Code::Unimplemented => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted | Code::FailedPrecondition => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded | Code::Cancelled => StatusCode::GATEWAY_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A JSON error: `{"code": "INVALID_ARGUMENT", "message": "...", "field": "..."}` (the field
/// when one is at fault), with `Retry-After` on 429 and 503.
fn error(status: StatusCode, code: Code, message: &str, field: Option<&str>) -> Response {
    let mut body = serde_json::json!({
        "code": saleboard_runtime::status::code_name(code),
        "message": message,
    });
    if let Some(field) = field {
        body["field"] = Value::from(field);
    }
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    if matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    telemetry_code(&mut response, code);
    response
}

/// The JSON error of a gRPC status, naming the field of its `BadRequest` detail.
fn status_error(status: &Status) -> Response {
    use tonic_types::StatusExt as _;
    let field = status
        .get_details_bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()));
    error(
        http_status(status.code()),
        status.code(),
        status.message(),
        field.as_deref(),
    )
}

/// Tells the telemetry layer the call's gRPC code (taken off by [`JsonStatus`]).
fn telemetry_code(response: &mut Response, code: Code) {
    response.headers_mut().insert(
        "grpc-status",
        HeaderValue::from_str(&(code as i32).to_string()).unwrap_or(HeaderValue::from_static("2")),
    );
}

/// A 200 answer: the message's proto3 JSON.
fn answer<M: json::JsonMessage>(message: &M) -> Response {
    match json::to_string(message) {
        Ok(text) => {
            let mut response = (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                text,
            )
                .into_response();
            telemetry_code(&mut response, Code::Ok);
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "an answer does not map to JSON");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::Internal,
                "the answer could not be written as JSON; the operators have it in their logs",
                None,
            )
        }
    }
}

/// The request as the gRPC handler takes it: the message, and the authenticated retailer the
/// auth layer put in the extensions (`None` would be a request past no auth layer: a bug).
fn grpc_request<T>(extensions: &http::Extensions, message: T) -> Option<tonic::Request<T>> {
    let retailer = extensions.get::<Retailer>().cloned()?;
    let mut grpc = tonic::Request::new(message);
    grpc.extensions_mut().insert(retailer);
    Some(grpc)
}

/// The answer to a request that reached a handler without authentication.
fn unauthenticated_bug() -> Response {
    tracing::error!("a JSON request reached ingest without authentication");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        Code::Internal,
        "request reached ingest without authentication",
        None,
    )
}

fn draining(api: &JsonApi) -> Option<Response> {
    (*api.draining.borrow()).then(|| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::Unavailable,
            "the server is shutting down; retry (another instance, or this one once restarted)",
            None,
        )
    })
}

async fn who_am_i(State(api): State<JsonApi>, request: Request) -> Response {
    if let Some(refused) = draining(&api) {
        return refused;
    }
    let Some(grpc) = grpc_request(request.extensions(), WhoAmIRequest {}) else {
        return unauthenticated_bug();
    };
    match api.service.who_am_i(grpc).await {
        Ok(response) => answer(response.get_ref()),
        Err(status) => status_error(&status),
    }
}

async fn submit(State(api): State<JsonApi>, request: Request) -> Response {
    if let Some(refused) = draining(&api) {
        return refused;
    }
    let json_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|t| t.to_str().ok())
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::InvalidArgument,
            "send the body as Content-Type: application/json (the proto3 JSON of \
             SubmitTransactionsRequest)",
            None,
        );
    }
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::ResourceExhausted,
            &format!(
                "the body is larger than {} bytes (--max-batch transactions of at most {} \
                 bytes each): send fewer transactions per request",
                api.max_body, MAX_TRANSACTION_JSON_BYTES
            ),
            None,
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > api.max_body as u64) {
        return too_large();
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, api.max_body).await {
        Ok(bytes) => bytes,
        Err(e) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(err) = source {
                if err.is::<http_body_util::LengthLimitError>() {
                    return too_large();
                }
                source = err.source();
            }
            return error(
                StatusCode::BAD_REQUEST,
                Code::InvalidArgument,
                &format!("the body could not be read: {e}"),
                None,
            );
        }
    };
    let message = match parse(&bytes) {
        Ok(message) => message,
        Err((message, field)) => {
            return error(
                StatusCode::BAD_REQUEST,
                Code::InvalidArgument,
                &message,
                field.as_deref(),
            );
        }
    };
    let Some(grpc) = grpc_request(&parts.extensions, message) else {
        return unauthenticated_bug();
    };
    match api.service.submit_transactions(grpc).await {
        Ok(response) => answer(response.get_ref()),
        Err(status) => status_error(&status),
    }
}

/// The body as a request: JSON (else the byte offset of the fault), `amount` converted, then
/// the message's JSON (else the field at fault). The error: a message and the field.
fn parse(bytes: &[u8]) -> Result<SubmitTransactionsRequest, (String, Option<String>)> {
    let mut value: Value = serde_json::from_slice(bytes).map_err(|e| {
        (
            format!(
                "the body is not JSON: {} (at byte offset {})",
                e,
                offset(bytes, e.line(), e.column())
            ),
            None,
        )
    })?;
    let Some(object) = value.as_object_mut() else {
        return Err((
            "the body must be a JSON object: {\"transactions\": [...]}".to_owned(),
            None,
        ));
    };
    if let Some(unknown) = object.keys().find(|k| *k != "transactions") {
        return Err((
            format!(
                "{:?} is not a field of SubmitTransactionsRequest (its one field is \"transactions\")",
                saleboard_domain::ids::excerpt(unknown)
            ),
            Some(unknown.clone()),
        ));
    }
    let mut transactions = Vec::new();
    match object.get_mut("transactions") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter_mut().enumerate() {
                transactions.push(transaction(i, std::mem::take(item))?);
            }
        }
        Some(_) => {
            return Err((
                "transactions must be an array of transactions".to_owned(),
                Some("transactions".to_owned()),
            ));
        }
    }
    Ok(SubmitTransactionsRequest { transactions })
}

/// The byte offset of a 1-based (line, column) in `bytes`.
fn offset(bytes: &[u8], line: usize, column: usize) -> usize {
    let start: usize = bytes
        .split(|b| *b == b'\n')
        .take(line.saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum();
    start + column.saturating_sub(1)
}

/// One transaction of the body (`amount` converted), naming `transactions[i].FIELD` at fault.
fn transaction(i: usize, mut item: Value) -> Result<Transaction, (String, Option<String>)> {
    let at = |field: &str| format!("transactions[{i}].{field}");
    let Some(object) = item.as_object_mut() else {
        return Err((
            format!("transactions[{i}] must be a JSON object"),
            Some(format!("transactions[{i}]")),
        ));
    };
    if let Some(amount) = object.remove("amount") {
        if object.contains_key("amount_minor") || object.contains_key("amountMinor") {
            return Err((
                format!(
                    "{}: give amount (major units) or amount_minor, not both",
                    at("amount")
                ),
                Some(at("amount")),
            ));
        }
        let text = match &amount {
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
            // A fraction as a JSON number is a binary float: kept when it shows no more
            // digits than a float holds exactly, else refused (send it as a string).
            Value::Number(n) => {
                let shown = n.to_string();
                if shown.chars().filter(char::is_ascii_digit).count() > 15 || shown.contains('e') {
                    return Err((
                        format!(
                            "{}: {shown} has more digits than a JSON number holds exactly; \
                             send it as a string (\"{shown}\")",
                            at("amount")
                        ),
                        Some(at("amount")),
                    ));
                }
                shown
            }
            _ => {
                return Err((
                    format!(
                        "{}: must be a decimal string such as \"15.99\"",
                        at("amount")
                    ),
                    Some(at("amount")),
                ));
            }
        };
        let currency = object
            .get("currency")
            .and_then(Value::as_str)
            .and_then(|c| saleboard_domain::Currency::parse(c).ok())
            .ok_or_else(|| {
                (
                    format!(
                        "{}: a valid currency is needed to convert amount {text:?} to minor units",
                        at("currency")
                    ),
                    Some(at("currency")),
                )
            })?;
        let minor = currency
            .parse_major(&text)
            .map_err(|e| (format!("{}: {e}", at("amount")), Some(at("amount"))))?;
        object.insert("amount_minor".to_owned(), Value::from(minor.to_string()));
    }
    json::from_value::<Transaction>(&item).map_err(|e| {
        // The field at fault: the first that does not map on its own (only on this path is
        // anything copied).
        let field = item.as_object().into_iter().flatten().find_map(|(k, v)| {
            let alone = Value::Object([(k.clone(), v.clone())].into_iter().collect());
            json::from_value::<Transaction>(&alone)
                .err()
                .map(|_| k.clone())
        });
        let cause = match &e {
            json::JsonError::Json { source, .. } => source.to_string(),
            other => other.to_string(),
        };
        match field {
            Some(k) => (format!("{}: {cause}", at(&k)), Some(at(&k))),
            None => (
                format!("transactions[{i}]: {cause}"),
                Some(format!("transactions[{i}]")),
            ),
        }
    })
}

/// The outermost layer of the JSON routes: a refusal by a layer inside it (load shedding,
/// authentication, the rate limit: a gRPC status) becomes the JSON error with its HTTP status;
/// the `grpc-status` the handlers set for the telemetry layer is taken off.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonStatusLayer;

impl<S> tower::Layer<S> for JsonStatusLayer {
    type Service = JsonStatus<S>;

    fn layer(&self, inner: S) -> Self::Service {
        JsonStatus { inner }
    }
}

/// See [`JsonStatusLayer`].
#[derive(Debug, Clone)]
pub struct JsonStatus<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, Infallible>> + Send>>;

impl<S, B> tower::Service<axum::http::Request<B>> for JsonStatus<S>
where
    S: tower::Service<
            axum::http::Request<B>,
            Response = axum::http::Response<tonic::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = inner.call(request).await?;
            let grpc = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|t| t.to_str().ok())
                .is_some_and(|t| t.starts_with("application/grpc"));
            if grpc {
                let status = Status::from_header_map(response.headers())
                    .unwrap_or_else(|| Status::internal("a refusal without a status"));
                return Ok(strip(status_error(&status)));
            }
            Ok(strip(response.map(Body::new)))
        })
    }
}

/// The response without the `grpc-status` header meant for the telemetry layer.
fn strip(mut response: Response) -> Response {
    response.headers_mut().remove("grpc-status");
    response
}

/// Any other path: UNIMPLEMENTED for a gRPC client, 404 for everyone else.
pub async fn unknown_path(request: Request) -> Response {
    let grpc = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|t| t.to_str().ok())
        .is_some_and(|t| t.starts_with("application/grpc"));
    let path = saleboard_domain::ids::excerpt(request.uri().path());
    if grpc {
        return Status::unimplemented(format!("{path} is not served here")).into_http::<Body>();
    }
    strip(error(
        StatusCode::NOT_FOUND,
        Code::NotFound,
        &format!(
            "not found: {path}; this port takes gRPC (saleboard.v1.IngestService) and JSON at \
             POST /api/v1/transactions and GET /api/v1/whoami"
        ),
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_grpc_code_has_its_http_status() {
        for (code, want) in [
            (Code::Ok, 200),
            (Code::InvalidArgument, 400),
            (Code::OutOfRange, 400),
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::NotFound, 404),
            (Code::Unimplemented, 404),
            (Code::FailedPrecondition, 409),
            (Code::AlreadyExists, 409),
            (Code::Aborted, 409),
            (Code::ResourceExhausted, 429),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
            (Code::Cancelled, 504),
            (Code::Internal, 500),
            (Code::Unknown, 500),
            (Code::DataLoss, 500),
        ] {
            assert_eq!(http_status(code).as_u16(), want, "{code:?}");
        }
        // Busy and down say when to come back.
        for status in [
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::SERVICE_UNAVAILABLE,
        ] {
            let response = error(status, Code::Unavailable, "later", None);
            assert_eq!(
                response.headers().get(header::RETRY_AFTER),
                Some(&HeaderValue::from_static("1"))
            );
        }
    }

    #[test]
    fn a_body_is_checked_field_by_field() {
        let parsed = parse(
            br#"{"transactions":[{"transaction_id":"a","currency":"USD","amount":"15.99"}]}"#,
        )
        .expect("parses");
        assert_eq!(parsed.transactions[0].amount_minor, 1_599);
        let (message, field) = parse(b"[1]").expect_err("not an object");
        assert!(message.contains("JSON object"), "{message}");
        assert_eq!(field, None);
        let (_, field) =
            parse(br#"{"transactions":[{"kind":"TRANSACTION_KIND_NOPE"}]}"#).expect_err("enum");
        assert_eq!(field.as_deref(), Some("transactions[0].kind"));
        let (message, field) =
            parse(br#"{"transactions":[{"currency":"USD","amount":1.23456789012345678}]}"#)
                .expect_err("too many digits for a JSON number");
        assert_eq!(field.as_deref(), Some("transactions[0].amount"));
        assert!(message.contains("as a string"), "{message}");
        assert_eq!(offset(b"{\n  \"a\": x}", 2, 8), 9);
    }
}
