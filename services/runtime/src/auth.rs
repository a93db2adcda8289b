//! Bearer authentication as a tower layer: every request of the wrapped gRPC service must carry
//! `authorization: Bearer <secret>`. The [`Authenticate`] implementation turns the secret into a
//! principal, which handlers read from the request extensions; a failure answers with its status
//! before the service sees the request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use sha2::{Digest, Sha256};
use tonic::Status;
use tonic::server::NamedService;

/// Checks a bearer secret.
pub trait Authenticate: Clone + Send + Sync + 'static {
    /// Who the secret belongs to; inserted into the request extensions.
    type Principal: Clone + Send + Sync + 'static;

    /// The principal of `secret`, or the status to answer with (UNAUTHENTICATED,
    /// PERMISSION_DENIED, UNAVAILABLE...).
    fn authenticate(
        &self,
        secret: &str,
    ) -> impl Future<Output = Result<Self::Principal, Status>> + Send;
}

/// Failed authentications one peer address may make in a burst.
pub const FAILED_AUTH_BURST: u32 = 20;
/// Failed authentications one peer address may make per second after its burst.
pub const FAILED_AUTH_PER_SECOND: f64 = 2.0;
/// Peer addresses remembered; past it, those with a full budget are forgotten.
const FAILED_AUTH_PEERS: usize = 100_000;

/// Failed authentications per peer address: a token bucket each, spent by a failure. A peer
/// with an empty bucket is refused (RESOURCE_EXHAUSTED) before its secret is even looked at,
/// so guessing API keys or the organizer token costs the server nothing and goes nowhere.
#[derive(Debug, Default)]
pub struct FailedAuthLimiter {
    peers: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (f64, std::time::Instant)>>,
}

impl FailedAuthLimiter {
    fn refill(tokens: f64, since: std::time::Instant, now: std::time::Instant) -> f64 {
        (tokens + now.duration_since(since).as_secs_f64() * FAILED_AUTH_PER_SECOND)
            .min(f64::from(FAILED_AUTH_BURST))
    }

    /// Refuses a peer that has spent its failures: the status to answer with.
    ///
    /// # Errors
    /// RESOURCE_EXHAUSTED while `peer` has no failure left to spend.
    pub fn check(&self, peer: Option<std::net::IpAddr>) -> Result<(), Status> {
        match peer {
            Some(ip) if !self.allowed(ip) => Err(Status::resource_exhausted(format!(
                "too many failed authentications from {ip}; wait a few seconds and check the secret"
            ))),
            _ => Ok(()),
        }
    }

    /// Records a failed authentication of `peer` on `path` and logs it (never the secret).
    pub fn record(&self, peer: Option<std::net::IpAddr>, path: &str, code: tonic::Code) {
        if let Some(ip) = peer {
            let blocked = self.failed(ip);
            tracing::warn!(peer = %ip, path, ?code, blocked, "authentication failed");
        }
    }

    /// Whether `peer` still has failures to spend.
    #[must_use]
    pub fn allowed(&self, peer: std::net::IpAddr) -> bool {
        let now = std::time::Instant::now();
        let peers = self
            .peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        peers
            .get(&peer)
            .is_none_or(|(tokens, since)| Self::refill(*tokens, *since, now) >= 1.0)
    }

    /// Spends one failure of `peer`; true when that emptied its budget.
    pub fn failed(&self, peer: std::net::IpAddr) -> bool {
        let now = std::time::Instant::now();
        let mut peers = self
            .peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if peers.len() >= FAILED_AUTH_PEERS {
            peers.retain(|_, (tokens, since)| {
                Self::refill(*tokens, *since, now) < f64::from(FAILED_AUTH_BURST)
            });
        }
        let (tokens, since) = peers
            .entry(peer)
            .or_insert((f64::from(FAILED_AUTH_BURST), now));
        *tokens = (Self::refill(*tokens, *since, now) - 1.0).max(0.0);
        *since = now;
        *tokens < 1.0
    }
}

/// Layer adding [`BearerAuth`] to a service.
#[derive(Debug, Clone)]
pub struct BearerAuthLayer<A> {
    auth: A,
    failures: Arc<FailedAuthLimiter>,
}

impl<A> BearerAuthLayer<A> {
    /// A layer checking secrets with `auth`, with its own failed-authentication limits.
    pub fn new(auth: A) -> Self {
        Self::with_limiter(auth, Arc::default())
    }

    /// A layer checking secrets with `auth`, counting failures in `failures` (shared with
    /// whatever else checks the same secrets, so guesses cannot go around the limit).
    pub fn with_limiter(auth: A, failures: Arc<FailedAuthLimiter>) -> Self {
        Self { auth, failures }
    }
}

impl<S, A: Clone> tower::Layer<S> for BearerAuthLayer<A> {
    type Service = BearerAuth<S, A>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerAuth {
            inner,
            auth: self.auth.clone(),
            failures: self.failures.clone(),
        }
    }
}

/// The service wrapped by [`BearerAuthLayer`].
#[derive(Debug, Clone)]
pub struct BearerAuth<S, A> {
    inner: S,
    auth: A,
    failures: Arc<FailedAuthLimiter>,
}

/// The address a request came from (tonic puts the connection's address in the extensions).
#[must_use]
pub fn peer_ip<B>(req: &http::Request<B>) -> Option<std::net::IpAddr> {
    req.extensions()
        .get::<tonic::transport::server::TcpConnectInfo>()
        .and_then(tonic::transport::server::TcpConnectInfo::remote_addr)
        .map(|a| a.ip())
}

impl<S: NamedService, A> NamedService for BearerAuth<S, A> {
    const NAME: &'static str = S::NAME;
}

/// The secret of an `authorization: Bearer <secret>` header.
///
/// # Errors
/// UNAUTHENTICATED saying what is missing or malformed.
pub fn bearer_secret(headers: &http::HeaderMap) -> Result<&str, Status> {
    let value = headers.get(http::header::AUTHORIZATION).ok_or_else(|| {
        Status::unauthenticated("missing metadata \"authorization: Bearer <secret>\"")
    })?;
    let text = value
        .to_str()
        .map_err(|_| Status::unauthenticated("authorization metadata is not ASCII text"))?;
    let (scheme, secret) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || secret.trim().is_empty() {
        return Err(Status::unauthenticated(
            "authorization metadata must be \"Bearer <secret>\"",
        ));
    }
    Ok(secret.trim())
}

/// Response future of [`BearerAuth`].
pub type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, A, B> tower::Service<http::Request<B>> for BearerAuth<S, A>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    A: Authenticate,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        // The clone is not ready; keep the ready service for this call (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        let failures = self.failures.clone();
        Box::pin(async move {
            let peer = peer_ip(&req);
            if let Err(status) = failures.check(peer) {
                return Ok(status.into_http());
            }
            let principal = match bearer_secret(req.headers()) {
                Ok(secret) => auth.authenticate(secret).await,
                Err(status) => Err(status),
            };
            match principal {
                Ok(p) => {
                    req.extensions_mut().insert(p);
                    inner.call(req).await
                }
                Err(status) => {
                    if matches!(
                        status.code(),
                        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
                    ) {
                        failures.record(peer, req.uri().path(), status.code());
                    }
                    Ok(status.into_http())
                }
            }
        })
    }
}

/// An organizer, by name: the principal of every AdminService call and organizer-only read.
/// The token given to the server at start is the organizer named
/// [`saleboard_domain::audit::BOOTSTRAP`]; the others are named organizers with secrets of
/// their own (`sbo_...`). Its `Debug` and `Display` show the name, never a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Organizer {
    name: Arc<str>,
    /// The hash of a named organizer's secret (to see whether it was revoked since); `None`
    /// for `bootstrap`, which cannot be revoked.
    secret_hash: Option<Arc<str>>,
}

impl Organizer {
    /// The organizer of the token from configuration.
    #[must_use]
    pub fn bootstrap() -> Self {
        Self {
            name: saleboard_domain::audit::BOOTSTRAP.into(),
            secret_hash: None,
        }
    }

    /// Its name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it still authenticates: false once a named organizer was revoked. An error
    /// when storage cannot say.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn still_active(
        &self,
        store: &dyn saleboard_storage::Store,
    ) -> Result<bool, saleboard_storage::StorageError> {
        match &self.secret_hash {
            None => Ok(true),
            Some(hash) => Ok(store.find_active_organizer(hash).await?.is_some()),
        }
    }
}

impl std::fmt::Debug for Organizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Organizer").field(&self.name).finish()
    }
}

impl std::fmt::Display for Organizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// The prefix of a named organizer's secret.
pub const ORGANIZER_SECRET_PREFIX: &str = "sbo_";

/// Checks the organizer token. Compares SHA-256 digests, so the time taken says nothing about
/// how much of a guess was right.
#[derive(Clone)]
pub struct OrganizerToken {
    digest: Arc<[u8; 32]>,
}

impl std::fmt::Debug for OrganizerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OrganizerToken(<redacted>)")
    }
}

impl OrganizerToken {
    /// A checker for `token`.
    #[must_use]
    pub fn new(token: &str) -> Self {
        Self {
            digest: Arc::new(Sha256::digest(token.as_bytes()).into()),
        }
    }

    /// Whether `secret` is the token.
    #[must_use]
    pub fn matches(&self, secret: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        digest == *self.digest
    }
}

impl Authenticate for OrganizerToken {
    type Principal = Organizer;

    async fn authenticate(&self, secret: &str) -> Result<Organizer, Status> {
        if self.matches(secret) {
            Ok(Organizer::bootstrap())
        } else {
            Err(Status::permission_denied(
                "this secret is not the organizer token; AdminService needs the organizer token",
            ))
        }
    }
}

/// Checks organizers' secrets: the token from configuration (`bootstrap`), or a named
/// organizer's own `sbo_` secret, looked up by its hash on every call (so a revocation holds
/// from the next call on, in every process).
#[derive(Clone)]
pub struct Organizers {
    token: OrganizerToken,
    store: Arc<dyn saleboard_storage::Store>,
}

impl std::fmt::Debug for Organizers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Organizers").finish_non_exhaustive()
    }
}

impl Organizers {
    /// Organizers of `token` and of `store`'s organizers table.
    #[must_use]
    pub fn new(token: OrganizerToken, store: Arc<dyn saleboard_storage::Store>) -> Self {
        Self { token, store }
    }
}

impl Authenticate for Organizers {
    type Principal = Organizer;

    async fn authenticate(&self, secret: &str) -> Result<Organizer, Status> {
        if self.token.matches(secret) {
            return Ok(Organizer::bootstrap());
        }
        if !secret.starts_with(ORGANIZER_SECRET_PREFIX) {
            return Err(Status::permission_denied(
                "this secret is not an organizer's; AdminService needs an organizer's secret \
                 (sbo_...) or the organizer token",
            ));
        }
        let hash = secret_hash(secret);
        match self
            .store
            .find_active_organizer(&hash)
            .await
            .map_err(|e| crate::status::from_storage(&e))?
        {
            Some(name) => Ok(Organizer {
                name: name.into(),
                secret_hash: Some(hash.into()),
            }),
            None => Err(Status::unauthenticated(
                "unknown or revoked organizer secret",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_authentications_are_limited_per_peer() {
        let limiter = FailedAuthLimiter::default();
        let (a, b): (std::net::IpAddr, std::net::IpAddr) = (
            "10.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
        );
        let burst = FAILED_AUTH_BURST;
        for i in 0..burst {
            assert!(limiter.allowed(a), "failure {i} allowed");
            assert_eq!(limiter.failed(a), i + 1 == burst);
        }
        assert!(!limiter.allowed(a), "budget spent");
        assert!(limiter.allowed(b), "other peers are not affected");
    }

    fn headers(value: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            value.parse().expect("valid header"),
        );
        h
    }

    #[test]
    fn bearer_secret_parses_the_scheme() {
        assert_eq!(bearer_secret(&headers("Bearer abc")).ok(), Some("abc"));
        assert_eq!(bearer_secret(&headers("bearer  abc ")).ok(), Some("abc"));
        for bad in ["Basic abc", "Bearer", "Bearer ", "abc"] {
            let err = bearer_secret(&headers(bad)).expect_err(bad);
            assert_eq!(err.code(), tonic::Code::Unauthenticated, "{bad}");
        }
        let err = bearer_secret(&http::HeaderMap::new()).expect_err("missing");
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
    }

    #[tokio::test]
    async fn organizer_token_checks_the_whole_secret() {
        let t = OrganizerToken::new("s3cret");
        assert_eq!(
            t.authenticate("s3cret")
                .await
                .ok()
                .map(|o| o.name().to_owned()),
            Some("bootstrap".to_owned())
        );
        for bad in ["s3cre", "s3cret ", "", "S3CRET"] {
            let err = t.authenticate(bad).await.expect_err(bad);
            assert_eq!(err.code(), tonic::Code::PermissionDenied);
        }
        assert!(!format!("{t:?}").contains("s3cret"));
    }
}

/// Hex SHA-256 of a secret: how API keys are stored and looked up. Secrets are 256 random
/// bits, so a fast hash is enough (no dictionary to guess from).
#[must_use]
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A freshly generated API key.
#[derive(Clone)]
pub struct NewApiKey {
    /// Public id, used to list and revoke it.
    pub key_id: String,
    /// The bearer secret, shown once.
    pub secret: String,
    /// What storage keeps of the secret.
    pub secret_hash: String,
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// A random secret with a readable prefix: `prefix` then 2 x `bytes` hex digits.
///
/// # Errors
/// When the operating system has no randomness to give.
pub fn random_secret(prefix: &str, bytes: usize) -> Result<String, getrandom::Error> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)?;
    Ok(format!("{prefix}{}", hex::encode(buf)))
}

/// Generates a named organizer's secret: `sbo_` + 64 hex digits (256 bits); the secret and
/// what storage keeps of it.
///
/// # Errors
/// When the operating system has no randomness to give.
pub fn new_organizer_secret() -> Result<(String, String), getrandom::Error> {
    let secret = random_secret(ORGANIZER_SECRET_PREFIX, 32)?;
    let hash = secret_hash(&secret);
    Ok((secret, hash))
}

/// Generates an organizer action's id: `act-` + 32 hex digits (128 bits).
///
/// # Errors
/// When the operating system has no randomness to give.
pub fn new_action_id() -> Result<String, getrandom::Error> {
    random_secret("act-", 16)
}

/// Generates a key: id `key_` + 16 hex digits, secret `sbk_` + 64 hex digits (256 bits).
///
/// # Errors
/// When the operating system has no randomness to give.
pub fn new_api_key() -> Result<NewApiKey, getrandom::Error> {
    let key_id = random_secret("key_", 8)?;
    let secret = random_secret("sbk_", 32)?;
    let secret_hash = secret_hash(&secret);
    Ok(NewApiKey {
        key_id,
        secret,
        secret_hash,
    })
}

/// Client side: adds `authorization: Bearer <secret>` to every request (or nothing, when there
/// is no secret).
#[derive(Debug, Clone, Default)]
pub struct BearerInterceptor(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl BearerInterceptor {
    /// An interceptor sending `secret`.
    ///
    /// # Errors
    /// When the secret has characters gRPC metadata cannot carry.
    pub fn new(
        secret: Option<&str>,
    ) -> Result<Self, tonic::metadata::errors::InvalidMetadataValue> {
        secret
            .map(|s| format!("Bearer {s}").parse())
            .transpose()
            .map(Self)
    }
}

impl tonic::service::Interceptor for BearerInterceptor {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}
