//! The big screen, over HTTP/1.1 on the leaderboard's gRPC port (one port, one process): `GET /`
//! (the page, embedded in the binary: HTML, CSS and JS written by hand, no external request),
//! `GET /events/leaderboard` (Server-Sent Events of the snapshots that feed `WatchLeaderboard`,
//! with what the screen shows beside them), and read-only JSON (`/api/v1/leaderboard`,
//! `/api/v1/national`, `/api/v1/events`, `/api/v1/breakdown/{dimension}`) with the gRPC
//! answers' figures: every handler calls the gRPC service itself.
//!
//! Every JSON answer is the gRPC answer's message in the proto3 JSON mapping, written by
//! `saleboard_proto::json` (the one mapping, the command line's too): `.proto` field names,
//! 64-bit integers as strings (money in minor units stays exact in a browser), timestamps
//! RFC 3339, enums by name, every field. A screen message is the leaderboard's mapping with what
//! the page shows beside it: `reporting_exponent`, `event` (the event's mapping and
//! `baseline_display_name`), `categories` and `origin` (breakdowns) and `hourly` (the national
//! curve's `NationalHour`s), each a message in the mapping.
//! These routes sit outside the gRPC services' load-shed and auth layers; the server's request
//! timeout bounds the time to the response head only, so an SSE stream lives on.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use saleboard_domain::{Currency, Dimension, UnixNanos};
use saleboard_proto::json::{self, JsonMessage};
use saleboard_proto::openapi::{Body as OpenBody, In, Param, Route};
use saleboard_proto::v1::leaderboard_service_server::LeaderboardService as LeaderboardApi;
use saleboard_proto::v1::{
    Dimension as DimensionMsg, GetBreakdownRequest, GetLeaderboardRequest,
    GetNationalTotalsRequest, ListEventsRequest,
};

use serde_json::json;
use tonic::{Code, Request, Status};

use crate::board::Board;
use crate::grpc::LeaderboardService;

/// The page.
const INDEX: &str = include_str!("web/index.html");
/// Its style.
const CSS: &str = include_str!("web/screen.css");
/// Its script.
const JS: &str = include_str!("web/screen.js");

/// Fewest milliseconds between two messages of one SSE stream.
pub const SSE_INTERVAL: Duration = Duration::from_millis(250);
/// Categories the screen shows.
const TOP_CATEGORIES: u32 = 5;

/// What the web routes share.
#[derive(Clone)]
pub struct Web {
    service: LeaderboardService,
    board: Arc<Board>,
    /// Screen messages already built, by (event asked for, limit, snapshot generation): one
    /// build per change however many screens watch.
    screens: Arc<Mutex<VecDeque<ScreenEntry>>>,
    /// The official reports, for `/report/{event}`.
    reports: Arc<crate::report::Reports>,
}

type ScreenKey = (String, u32, u64);
/// A built screen message and what it was built for.
type ScreenEntry = (ScreenKey, Bytes);

impl std::fmt::Debug for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Web").finish_non_exhaustive()
    }
}

/// The routes of the screen and the JSON API.
pub fn router(
    service: LeaderboardService,
    board: Arc<Board>,
    reports: Arc<crate::report::Reports>,
) -> axum::Router {
    let web = Web {
        service,
        board,
        screens: Arc::default(),
        reports,
    };
    axum::Router::new()
        .route("/", get(index))
        .route(
            "/screen.css",
            get(|| async { static_file("text/css; charset=utf-8", CSS) }),
        )
        .route(
            "/screen.js",
            get(|| async { static_file("text/javascript; charset=utf-8", JS) }),
        )
        .route("/events/leaderboard", get(sse))
        .route("/api/v1/leaderboard", get(api_leaderboard))
        .route("/api/v1/national", get(api_national))
        .route("/api/v1/events", get(api_events))
        .route("/api/v1/breakdown/{dimension}", get(api_breakdown))
        .route("/report/{event}", get(report_page))
        .route(
            saleboard_proto::openapi::OPENAPI_ROUTE.path,
            get(|| async { static_file("application/json", openapi()) }),
        )
        .with_state(web)
}

const EVENT: Param = Param {
    name: "event",
    place: In::Query,
    schema: r#"{"type": "string"}"#,
    description: "the event (default: the current one)",
};
const LIMIT: Param = Param {
    name: "limit",
    place: In::Query,
    schema: r#"{"type": "integer", "minimum": 0, "maximum": 1000}"#,
    description: "entries per page, at most 1,000 (0: the default)",
};
const PAGE_TOKEN: Param = Param {
    name: "page_token",
    place: In::Query,
    schema: r#"{"type": "string"}"#,
    description: "the next_page_token of the previous page",
};
const BASELINE: Param = Param {
    name: "baseline",
    place: In::Query,
    schema: r#"{"type": "string"}"#,
    description: "the event to compare with (default: the event's own baseline)",
};

/// The refusals every JSON route of the public port may answer.
macro_rules! refusals {
    ($($extra:expr),* $(,)?) => {
        &[
            $($extra,)*
            (400, OpenBody::Error, "a parameter out of its range or a page token not of this snapshot"),
            (404, OpenBody::Error, "no such event"),
            (409, OpenBody::Error, "no event is configured"),
            (429, OpenBody::Error, "too many requests or screens from this address"),
            (500, OpenBody::Error, "a bug: the operators have it in their logs"),
            (503, OpenBody::Error, "the figures cannot be read"),
        ]
    };
}

/// The HTTP routes of the public port, as its OpenAPI document states them.
pub const ROUTES: &[Route] = &[
    Route {
        method: "get",
        path: "/",
        summary: "The big screen (HTML, nothing fetched from another host).",
        bearer: false,
        request: None,
        params: &[EVENT, LIMIT],
        answers: &[(200, OpenBody::Other("text/html"), "the page")],
    },
    Route {
        method: "get",
        path: "/screen.css",
        summary: "The big screen's stylesheet.",
        bearer: false,
        request: None,
        params: &[],
        answers: &[(200, OpenBody::Other("text/css"), "the stylesheet")],
    },
    Route {
        method: "get",
        path: "/screen.js",
        summary: "The big screen's script.",
        bearer: false,
        request: None,
        params: &[],
        answers: &[(200, OpenBody::Other("text/javascript"), "the script")],
    },
    Route {
        method: "get",
        path: "/events/leaderboard",
        summary: "Server-Sent Events: what the screen shows, at most every 250 ms.",
        bearer: false,
        request: None,
        params: &[EVENT, LIMIT],
        answers: refusals![(200, OpenBody::Other("text/event-stream"), "the stream")],
    },
    Route {
        method: "get",
        path: "/api/v1/leaderboard",
        summary: "The ranking (GetLeaderboard).",
        bearer: false,
        request: None,
        params: &[EVENT, LIMIT, PAGE_TOKEN, BASELINE],
        answers: refusals![(
            200,
            OpenBody::Message("saleboard.v1.Leaderboard"),
            "a page of the ranking"
        )],
    },
    Route {
        method: "get",
        path: "/api/v1/national",
        summary: "The national figures (GetNationalTotals).",
        bearer: false,
        request: None,
        params: &[EVENT, BASELINE],
        answers: refusals![(
            200,
            OpenBody::Message("saleboard.v1.NationalTotals"),
            "the national figures"
        )],
    },
    Route {
        method: "get",
        path: "/api/v1/events",
        summary: "The events (ListEvents).",
        bearer: false,
        request: None,
        params: &[],
        answers: refusals![(
            200,
            OpenBody::Message("saleboard.v1.ListEventsResponse"),
            "every event"
        )],
    },
    Route {
        method: "get",
        path: "/api/v1/breakdown/{dimension}",
        summary: "A national breakdown (GetBreakdown): brands, categories or origin.",
        bearer: false,
        request: None,
        params: &[
            Param {
                name: "dimension",
                place: In::Path,
                schema: r#"{"type": "string", "enum": ["brand", "category", "origin"]}"#,
                description: "the dimension",
            },
            EVENT,
            LIMIT,
            PAGE_TOKEN,
            Param {
                name: "site",
                place: In::Query,
                schema: r#"{"type": "string"}"#,
                description: "empty: the national breakdown (a site's is refused here: 403)",
            },
        ],
        answers: refusals![
            (
                200,
                OpenBody::Message("saleboard.v1.Breakdown"),
                "a page of the breakdown"
            ),
            (
                403,
                OpenBody::Error,
                "a site's breakdown (site=) is its detail: over gRPC, with a credential"
            ),
        ],
    },
    Route {
        method: "get",
        path: "/report/{event}",
        summary: "An event's official report as a printable page (HTML, nothing fetched): PROVISIONAL until the event closes, FINAL after.",
        bearer: false,
        request: None,
        params: &[Param {
            name: "event",
            place: In::Path,
            schema: r#"{"type": "string", "examples": ["current"]}"#,
            description: "the event (`current`: the current one)",
        }],
        answers: &[
            (200, OpenBody::Other("text/html"), "the report"),
            (404, OpenBody::Other("text/plain"), "no such event"),
            (429, OpenBody::Error, "too many requests from this address"),
            (
                500,
                OpenBody::Other("text/plain"),
                "a bug: the operators have it in their logs",
            ),
            (
                503,
                OpenBody::Other("text/plain"),
                "the ledger cannot be read just now",
            ),
        ],
    },
];

/// The public port's OpenAPI 3.1 document, as served at `/api/v1/openapi.json`.
#[must_use]
pub fn openapi() -> &'static str {
    static DOCUMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        saleboard_proto::openapi::document(
            "Saleboard leaderboard: the big screen and its JSON",
            "Public, read-only: every JSON answer is the gRPC answer's message \
             (saleboard.v1.LeaderboardService) in the proto3 JSON mapping.",
            ROUTES,
        )
        .to_string()
    });
    &DOCUMENT
}

/// What the public port answers for a path nothing serves: a gRPC client gets UNIMPLEMENTED as
/// gRPC says it (status 12 in a 200 response), a browser or curl a plain `404 Not Found` that
/// says where the screen, the JSON and the stream are.
pub async fn unknown_path(request: axum::extract::Request) -> Response {
    let grpc = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|t| t.to_str().ok())
        .is_some_and(|t| t.starts_with("application/grpc"));
    if grpc {
        return Status::unimplemented(format!(
            "{} is not served here",
            saleboard_domain::ids::excerpt(request.uri().path())
        ))
        .into_http::<Body>();
    }
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!(
            "not found: {}\nThe big screen is at /, its JSON under /api/v1/ (leaderboard, \
             national, events, breakdown/{{brand,category,origin}}) and its stream at \
             /events/leaderboard.\n",
            saleboard_domain::ids::excerpt(request.uri().path())
        ),
    )
        .into_response()
}

fn static_file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `/report/{event}`: the event's official report as a printable page (`current`: the
/// current event's). Made from one snapshot and one pass over the event's ledger rows, kept
/// (see [`crate::report::Kept`]).
async fn report_page(State(web): State<Web>, Path(event): Path<String>) -> Response {
    let event = if event == "current" {
        String::new()
    } else {
        event
    };
    match web
        .reports
        .get(
            &event,
            "",
            crate::report::Asker::Public,
            Duration::from_secs(2),
        )
        .await
    {
        Ok((_, page)) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
                // The page is one file: its style inline, its chart inline SVG, no script.
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'",
                ),
            ],
            page,
        )
            .into_response(),
        Err(e) => {
            let status = crate::admin::report_status(&e);
            let code = match status.code() {
                tonic::Code::NotFound => StatusCode::NOT_FOUND,
                tonic::Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let mut response = (
                code,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{}\n", status.message()),
            )
                .into_response();
            if code == StatusCode::SERVICE_UNAVAILABLE {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
            }
            response
        }
    }
}

async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            // Nothing leaves the machine: every resource is this server's own.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'",
            ),
        ],
        INDEX,
    )
        .into_response()
}

/// Query parameters of the screen and the API (all optional).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Params {
    event: Option<String>,
    limit: Option<u32>,
    page_token: Option<String>,
    baseline: Option<String>,
    site: Option<String>,
}

impl Params {
    /// From the query string's pairs; a `limit` that is not a number is refused (400, naming
    /// it). Other parameters are any text: the gRPC method judges them.
    fn from_query(mut q: HashMap<String, String>) -> Result<Self, Status> {
        let limit = match q.remove("limit").filter(|l| !l.is_empty()) {
            None => None,
            Some(l) => Some(l.parse::<u32>().map_err(|_| {
                Status::invalid_argument(format!(
                    "limit {:?} is not a whole number",
                    saleboard_domain::ids::excerpt(&l)
                ))
            })?),
        };
        Ok(Self {
            event: q.remove("event"),
            limit,
            page_token: q.remove("page_token"),
            baseline: q.remove("baseline"),
            site: q.remove("site"),
        })
    }
}

/// The query string, read as [`Params`].
type Q = Query<HashMap<String, String>>;

macro_rules! params {
    ($q:expr) => {
        match Params::from_query($q.0) {
            Ok(p) => p,
            Err(refused) => return failure(&refused),
        }
    };
}

/// Seconds a refused client is asked to wait (`Retry-After` on every 429): a screen slot or a
/// request permit frees as others finish.
const RETRY_AFTER_SECS: &str = "10";

/// A gRPC status as an HTTP answer: the status's code and message as JSON (429 with
/// `Retry-After`).
fn failure(status: &Status) -> Response {
    let http = match status.code() {
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::FailedPrecondition => StatusCode::CONFLICT,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut response = (
        http,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"code": format!("{:?}", status.code()), "message": status.message()}).to_string(),
    )
        .into_response();
    if http == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from_static(RETRY_AFTER_SECS),
        );
    }
    response
}

/// A gRPC answer as the HTTP answer: the message in the proto3 JSON mapping (`json`), the one
/// the command line's `--output json` writes too.
fn ok_json(message: &impl JsonMessage) -> Response {
    match json::to_string(message) {
        Ok(text) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            text,
        )
            .into_response(),
        Err(e) => failure(&unwritable(&e)),
    }
}

/// A message the JSON mapping could not write (a broken build, or a timestamp past the year
/// 9999).
fn unwritable(e: &json::JsonError) -> Status {
    Status::internal(format!("the answer cannot be written as JSON: {e}"))
}

/// Digits after the point of a currency (ISO 4217), for the page to place it.
fn exponent(code: &str) -> u8 {
    Currency::parse(code).map_or(0, |c| c.exponent())
}

fn leaderboard_request(p: &Params) -> GetLeaderboardRequest {
    GetLeaderboardRequest {
        limit: p.limit.unwrap_or(0),
        page_token: p.page_token.clone().unwrap_or_default(),
        event_id: p.event.clone().unwrap_or_default(),
        baseline_event_id: p.baseline.clone().unwrap_or_default(),
    }
}

async fn api_leaderboard(State(web): State<Web>, q: Q) -> Response {
    let p = params!(q);
    match web
        .service
        .get_leaderboard(Request::new(leaderboard_request(&p)))
        .await
    {
        Ok(b) => ok_json(b.get_ref()),
        Err(status) => failure(&status),
    }
}

async fn api_national(State(web): State<Web>, q: Q) -> Response {
    let p = params!(q);
    let request = GetNationalTotalsRequest {
        event_id: p.event.unwrap_or_default(),
        baseline_event_id: p.baseline.unwrap_or_default(),
    };
    match web.service.get_national_totals(Request::new(request)).await {
        Ok(n) => ok_json(n.get_ref()),
        Err(status) => failure(&status),
    }
}

async fn api_events(State(web): State<Web>) -> Response {
    match web
        .service
        .list_events(Request::new(ListEventsRequest {}))
        .await
    {
        Ok(r) => ok_json(r.get_ref()),
        Err(status) => failure(&status),
    }
}

/// The dimension `/api/v1/breakdown/{dimension}` names: `brand`, `category` or `origin`.
fn dimension_of(path: &str) -> Result<DimensionMsg, Status> {
    match path {
        "brand" => Ok(DimensionMsg::Brand),
        "category" => Ok(DimensionMsg::Category),
        "origin" => Ok(DimensionMsg::Origin),
        other => Err(Status::invalid_argument(format!(
            "dimension {:?} is not brand, category or origin",
            saleboard_domain::ids::excerpt(other)
        ))),
    }
}

/// Sites a screen shows: `limit` (10 when not given), at most a page.
fn screen_limit(limit: Option<u32>) -> Result<u32, Status> {
    match limit.unwrap_or(10) {
        limit if limit > crate::grpc::MAX_LIMIT => Err(Status::invalid_argument(format!(
            "limit is {limit}; at most {}",
            crate::grpc::MAX_LIMIT
        ))),
        limit => Ok(limit),
    }
}

async fn api_breakdown(State(web): State<Web>, Path(dimension): Path<String>, q: Q) -> Response {
    let p = params!(q);
    let dimension = match dimension_of(&dimension) {
        Ok(dimension) => dimension,
        Err(refused) => return failure(&refused),
    };
    if p.site.as_deref().is_some_and(|s| !s.is_empty()) {
        // A site's breakdown is its detail, authenticated over gRPC; the public JSON API is
        // national.
        return failure(&Status::permission_denied(
            "a site's breakdown is that site's detail: ask GetBreakdown over gRPC with the \
             organizer token or the site's key",
        ));
    }
    let request = GetBreakdownRequest {
        event_id: p.event.unwrap_or_default(),
        dimension: dimension.into(),
        site_id: String::new(),
        limit: p.limit.unwrap_or(0),
        page_token: p.page_token.unwrap_or_default(),
    };
    match web.service.get_breakdown(Request::new(request)).await {
        Ok(b) => ok_json(b.get_ref()),
        Err(status) => failure(&status),
    }
}

impl Web {
    /// The screen message for (event asked for, limit) at the board's current state: built once
    /// per snapshot generation and shared.
    async fn screen(&self, event: &str, limit: u32) -> Result<Bytes, Status> {
        let snapshot = self
            .board
            .of_event(event)
            .await
            .map_err(|e| saleboard_runtime::status::from_storage(&e))?
            .ok_or_else(|| Status::not_found(format!("event {event:?} does not exist")))?;
        let key = (event.to_owned(), limit, snapshot.generation);
        if let Some(hit) = self
            .screens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
        {
            return Ok(hit);
        }
        // Every part of the message from this one snapshot (one generation, one watermark),
        // by the gRPC service's own code: the screen shows what GetLeaderboard, GetBreakdown
        // and GetNationalTotals answer for it.
        let board = self.service.leaderboard_of(&snapshot, limit, "").await?;
        let categories =
            self.service
                .breakdown_of(&snapshot, Dimension::Category, TOP_CATEGORIES)?;
        let origin = self
            .service
            .breakdown_of(&snapshot, Dimension::Origin, 10)?;
        let events = self.board.events();
        // The leaderboard in the mapping, and beside it what the page shows with it.
        let mut message = json::to_value(&board).map_err(|e| unwritable(&e))?;
        message["reporting_exponent"] = json!(exponent(&board.reporting_currency));
        if let Some(e) = events.get(&board.event_id) {
            let baseline_name = events
                .get(&board.baseline_event_id)
                .map_or_else(String::new, |b| b.display_name.clone());
            let mut event = json::to_value(&crate::messages::event_msg(e, UnixNanos::now()))
                .map_err(|e| unwritable(&e))?;
            event["baseline_display_name"] = json!(baseline_name);
            message["event"] = event;
        }
        message["categories"] = json::to_value(&categories).map_err(|e| unwritable(&e))?;
        message["origin"] = json::to_value(&origin).map_err(|e| unwritable(&e))?;
        message["hourly"] = crate::grpc::national_hours(&snapshot.figures)
            .iter()
            .map(json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| unwritable(&e))?
            .into();
        // The whole SSE frame, once: every stream sends this same buffer (no copy per screen).
        let built = Bytes::from(format!("data: {message}\n\n"));
        let mut screens = self
            .screens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        screens.push_back((key, built.clone()));
        while screens.len() > 64 {
            screens.pop_front();
        }
        Ok(built)
    }
}

/// How often a quiet stream sends a comment, so proxies and the browser keep it open.
const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `GET /events/leaderboard?event=ID&limit=N`: the screen message at once, then one per
/// change, at most one per [`SSE_INTERVAL`]; a slow reader gets the latest, never a backlog
/// (the next message is built only when the previous one has been taken). Ends when the
/// server shuts down. Every stream sends the same frame buffers (built once per snapshot).
/// A stream is a watcher: it counts against `--max-watchers` and the per-peer limit like
/// `WatchLeaderboard` for as long as it is open; past them, 429 with `Retry-After`.
async fn sse(
    State(web): State<Web>,
    connection: Option<axum::Extension<tonic::transport::server::TcpConnectInfo>>,
    q: Q,
) -> Response {
    let p = params!(q);
    let peer = connection.and_then(|c| c.0.remote_addr()).map(|a| a.ip());
    let watching = match crate::grpc::Watching::start(&web.service, peer) {
        Ok(watching) => watching,
        Err(status) => return failure(&status),
    };
    let event = p.event.unwrap_or_default();
    let limit = match screen_limit(p.limit) {
        Ok(limit) => limit,
        Err(refused) => return failure(&refused),
    };
    let first = match web.screen(&event, limit).await {
        Ok(first) => first,
        Err(status) => return failure(&status),
    };
    let state = Stream {
        web,
        event,
        limit,
        _watching: watching,
        changes: None,
        first: Some(first),
        last_at: None,
        last: None,
    };
    let frames = futures::stream::unfold(state, |mut s| async move {
        let frame = s.next().await?;
        Some((Ok::<_, std::convert::Infallible>(frame), s))
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(frames),
    )
        .into_response()
}

/// One screen's stream.
struct Stream {
    web: Web,
    event: String,
    limit: u32,
    /// Counted as a watcher until the stream ends or the client goes away.
    _watching: crate::grpc::Watching,
    /// Subscribed at the first message.
    changes: Option<(
        tokio::sync::watch::Receiver<Arc<crate::snapshot::Snapshot>>,
        tokio::sync::watch::Receiver<bool>,
    )>,
    first: Option<Bytes>,
    last_at: Option<tokio::time::Instant>,
    last: Option<Bytes>,
}

impl Stream {
    /// The next frame to send; `None` ends the stream.
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(first) = self.first.take() {
            self.changes = Some((self.web.board.subscribe(), self.web.board.closing()));
            self.last_at = Some(tokio::time::Instant::now());
            self.last = Some(first.clone());
            return Some(first);
        }
        let (changes, closing) = self.changes.as_mut()?;
        loop {
            if *closing.borrow() {
                return None;
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return None; },
                _ = closing.wait_for(|c| *c) => return None,
                () = tokio::time::sleep(SSE_KEEP_ALIVE) => return Some(Bytes::from_static(b":\n\n")),
            }
            if let Some(at) = self.last_at {
                tokio::time::sleep_until(at + SSE_INTERVAL).await;
            }
            changes.borrow_and_update();
            let frame = match self.web.screen(&self.event, self.limit).await {
                Ok(frame) => frame,
                Err(status) => {
                    let text = status.message().replace(['\r', '\n'], " ");
                    return Some(Bytes::from(format!("event: failure\ndata: {text}\n\n")));
                }
            };
            // A closed event's figures do not move: nothing new to send.
            if self.last.as_ref() == Some(&frame) {
                continue;
            }
            self.last_at = Some(tokio::time::Instant::now());
            self.last = Some(frame.clone());
            return Some(frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Uri;
    use proptest::prelude::*;

    use super::*;

    /// A query string as the routes read it: axum's `Query`, then [`Params::from_query`]; a
    /// refusal as the HTTP status and message the client gets.
    fn read(query: &str) -> Result<Params, (StatusCode, String)> {
        let uri: Uri = format!("/api/v1/leaderboard?{query}")
            .parse()
            .map_err(|e| (StatusCode::BAD_REQUEST, format!("{e}")))?;
        let Query(pairs) = Q::try_from_uri(&uri)
            .map_err(|rejection| (rejection.status(), rejection.body_text()))?;
        Params::from_query(pairs).map_err(|s| (failure(&s).status(), s.message().to_owned()))
    }

    /// Every byte but the unreserved ones percent-encoded, as a careful client writes them.
    fn encode(text: &str) -> String {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    #[test]
    fn limits_and_dimensions_as_written() {
        assert_eq!(read("limit=5").map(|p| p.limit), Ok(Some(5)));
        assert_eq!(
            read("limit=").map(|p| p.limit),
            Ok(None),
            "empty: not given"
        );
        assert_eq!(read("").map(|p| p.limit), Ok(None));
        for bad in [
            "limit=-1",
            "limit=ten",
            "limit=4294967296",
            "limit=1.5",
            "limit=%FF",
        ] {
            let (status, message) = read(bad).expect_err(bad);
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
            assert!(message.starts_with("limit "), "{bad}: {message}");
        }
        assert_eq!(dimension_of("origin").ok(), Some(DimensionMsg::Origin));
        let refused = dimension_of("colour").expect_err("not a dimension");
        assert_eq!(failure(&refused).status(), StatusCode::BAD_REQUEST);
        assert_eq!(screen_limit(None).ok(), Some(10));
        assert_eq!(screen_limit(Some(1_000)).ok(), Some(1_000));
        let refused = screen_limit(Some(1_001)).expect_err("past a page");
        assert_eq!(failure(&refused).status(), StatusCode::BAD_REQUEST);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Whatever a client writes after `?` is read, or refused with a 400 that names the
        /// parameter (never a panic, never another status).
        #[test]
        fn any_query_is_read_or_refused_with_a_400(
            query in "[A-Za-z0-9%&=+._~!$'()*,;:@/?-]{0,60}|((limit|event|site|baseline|page_token|x)=[0-9a-z%+-]{0,12}&?){0,6}"
        ) {
            let uri: Uri = format!("/api/v1/leaderboard?{query}").parse().expect("a query of URI characters");
            let pairs = match Q::try_from_uri(&uri) {
                Ok(Query(pairs)) => pairs,
                Err(rejection) => {
                    prop_assert_eq!(rejection.status(), StatusCode::BAD_REQUEST, "{}", query);
                    return Ok(());
                }
            };
            let limit = pairs.get("limit").filter(|l| !l.is_empty()).cloned();
            match (Params::from_query(pairs.clone()), limit.map(|l| l.parse::<u32>())) {
                (Ok(p), None) => prop_assert_eq!(p.limit, None),
                (Ok(p), Some(Ok(n))) => prop_assert_eq!(p.limit, Some(n)),
                (Err(refused), Some(Err(_))) => {
                    prop_assert_eq!(failure(&refused).status(), StatusCode::BAD_REQUEST);
                    prop_assert!(refused.message().starts_with("limit "), "{}", refused.message());
                    return Ok(());
                }
                (got, limit) => prop_assert!(false, "{query}: {got:?} for limit {limit:?}"),
            }
            let p = Params::from_query(pairs.clone()).expect("read above");
            for (value, name) in [
                (&p.event, "event"),
                (&p.page_token, "page_token"),
                (&p.baseline, "baseline"),
                (&p.site, "site"),
            ] {
                prop_assert_eq!(value.as_ref(), pairs.get(name), "{}", name);
            }
        }

        /// Every value a client may send comes back as sent.
        #[test]
        fn parameters_round_trip(
            event in proptest::option::of("\\PC{0,20}"),
            limit in proptest::option::of(any::<u32>()),
            page_token in proptest::option::of("\\PC{0,20}"),
            baseline in proptest::option::of("\\PC{0,20}"),
            site in proptest::option::of("\\PC{0,20}"),
            plus_for_space in any::<bool>(),
        ) {
            let sent = Params { event, limit, page_token, baseline, site };
            let mut pairs = Vec::new();
            for (name, value) in [
                ("event", sent.event.clone()),
                ("limit", sent.limit.map(|l| l.to_string())),
                ("page_token", sent.page_token.clone()),
                ("baseline", sent.baseline.clone()),
                ("site", sent.site.clone()),
            ] {
                if let Some(value) = value {
                    let mut value = encode(&value);
                    if plus_for_space {
                        // A form's encoding of a space.
                        value = value.replace("%20", "+");
                    }
                    pairs.push(format!("{name}={value}"));
                }
            }
            prop_assert_eq!(read(&pairs.join("&")), Ok(sent));
        }

        /// A dimension is one of three names, or a 400; a screen's limit is at most a page, or a
        /// 400.
        #[test]
        fn dimensions_and_screen_limits_are_checked(path in "\\PC{0,12}", limit in any::<u32>()) {
            match dimension_of(&path) {
                Ok(d) => prop_assert_eq!(d.as_str_name().trim_start_matches("DIMENSION_").to_ascii_lowercase(), path),
                Err(refused) => prop_assert_eq!(failure(&refused).status(), StatusCode::BAD_REQUEST),
            }
            match screen_limit(Some(limit)) {
                Ok(l) => prop_assert!(l == limit && l <= crate::grpc::MAX_LIMIT),
                Err(refused) => {
                    prop_assert!(limit > crate::grpc::MAX_LIMIT);
                    prop_assert_eq!(failure(&refused).status(), StatusCode::BAD_REQUEST);
                }
            }
        }
    }
}
