//! The services in-process, each on `127.0.0.1:0`, over a fresh database: the `spawn_app`
//! shape. Clients carry `authorization: Bearer <secret>` through an interceptor.

use std::net::SocketAddr;
use std::sync::Arc;

use saleboard::suite::{Running, Suite, SuiteConfig};
use saleboard_aggregator::AggregatorConfig;
use saleboard_ingest::IngestConfig;
use saleboard_leaderboard::LeaderboardConfig;
use saleboard_proto::v1::admin_service_client::AdminServiceClient;
use saleboard_proto::v1::ingest_service_client::IngestServiceClient;
use saleboard_proto::v1::leaderboard_service_client::LeaderboardServiceClient;
use saleboard_proto::v1::{CreateApiKeyRequest, CreateOrganizerRequest, CreateSiteRequest};
use saleboard_storage::Store;
use tokio::sync::watch;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::{Backend, TestDb};

/// Adds a bearer secret to every request (the CLI's interceptor).
pub use saleboard_runtime::auth::BearerInterceptor as Bearer;

/// Admin client with a bearer secret.
pub type AdminClient = AdminServiceClient<InterceptedService<Channel, Bearer>>;
/// Ingest client with a bearer secret.
pub type IngestClient = IngestServiceClient<InterceptedService<Channel, Bearer>>;

/// A channel to `addr`.
///
/// # Panics
/// When the server does not answer.
pub async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("valid URI")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"))
}

/// An ingest client for `addr` authenticating with `secret`.
pub async fn ingest_client(addr: SocketAddr, secret: Option<&str>) -> IngestClient {
    IngestServiceClient::with_interceptor(
        channel(addr).await,
        Bearer::new(secret).expect("ASCII secret"),
    )
    .max_decoding_message_size(64 * 1024 * 1024)
}

/// An admin client for `addr` authenticating with `secret`.
pub async fn admin_client(addr: SocketAddr, secret: Option<&str>) -> AdminClient {
    AdminServiceClient::with_interceptor(
        channel(addr).await,
        Bearer::new(secret).expect("ASCII secret"),
    )
}

/// The settings of the suite in tests: every service on `127.0.0.1:0` over `url`, the organizer
/// `token`, and an aggregator that folds at once (no batching delay).
///
/// # Panics
/// When the built-in settings do not parse (a build defect).
#[must_use]
pub fn suite_config(url: &str, token: &str) -> SuiteConfig {
    let localhost: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
    let mut config = SuiteConfig {
        ingest: IngestConfig::built_in(),
        leaderboard: LeaderboardConfig::built_in(token).expect("default settings"),
        aggregator: AggregatorConfig::built_in(),
    };
    config.ingest.listen = localhost;
    config.ingest.database.url = url.to_owned();
    config.leaderboard.listen = localhost;
    config.leaderboard.admin_listen = localhost;
    config.leaderboard.database.url = url.to_owned();
    config.aggregator.listen = localhost;
    config.aggregator.database.url = url.to_owned();
    config.aggregator.idle_poll_ms = 5;
    config.aggregator.min_apply_ms = 0;
    config
}

/// A suite serving in this process: stopped gracefully by [`Serving::stop`], told to stop
/// when dropped.
#[derive(Debug)]
pub struct Serving {
    stop: watch::Sender<bool>,
    running: Option<Running>,
}

impl Serving {
    /// Starts `suite`.
    #[must_use]
    pub fn start(suite: Suite) -> Self {
        let (stop, rx) = watch::channel(false);
        let running = Some(suite.start(&rx));
        Self { stop, running }
    }

    /// Stops the services gracefully and waits for them.
    ///
    /// # Panics
    /// When a service task failed.
    pub async fn stop(mut self) {
        self.stop.send_replace(true);
        if let Some(running) = self.running.take() {
            running.wait().await.expect("the services stop cleanly");
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// The suite running in this process.
#[derive(Debug)]
pub struct TestApp {
    /// Its database.
    pub db: TestDb,
    /// A store on that database, for checks that look at the ledger directly.
    pub store: Arc<dyn Store>,
    /// Where IngestService listens.
    pub ingest_addr: SocketAddr,
    /// Where LeaderboardService, the big screen and its JSON listen (the public port).
    pub leaderboard_addr: SocketAddr,
    /// Where AdminService listens (its own listener).
    pub admin_addr: SocketAddr,
    /// Where AggregatorService listens.
    pub aggregator_addr: SocketAddr,
    /// The organizer token.
    pub token: String,
    serving: Serving,
}

impl TestApp {
    /// `saleboard loadgen`'s defaults against this suite (a test sets what it changes).
    #[must_use]
    pub fn loadgen_args(&self) -> saleboard::loadgen::LoadgenArgs {
        saleboard::loadgen::LoadgenArgs::against(
            &format!("http://{}", self.ingest_addr),
            &format!("http://{}", self.leaderboard_addr),
            &format!("http://{}", self.admin_addr),
            &self.token,
        )
    }

    /// Starts the services with default settings; `None` when Postgres tests are skipped.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Starts the services, letting the test adjust the ingest settings.
    ///
    /// # Panics
    /// When a service cannot start.
    pub async fn spawn_with(
        backend: Backend,
        configure: impl FnOnce(&mut IngestConfig),
    ) -> Option<Self> {
        Self::spawn_configured(backend, configure, |_| {}).await
    }

    /// Starts the services, letting the test adjust the ingest and the leaderboard settings.
    ///
    /// # Panics
    /// When a service cannot start.
    pub async fn spawn_configured(
        backend: Backend,
        configure: impl FnOnce(&mut IngestConfig),
        configure_board: impl FnOnce(&mut LeaderboardConfig),
    ) -> Option<Self> {
        if std::env::var_os("TEST_LOG").is_some() {
            drop(saleboard_runtime::telemetry::init(
                "saleboard-tests",
                &saleboard_runtime::telemetry::TelemetryArgs::default(),
            ));
        }
        let db = TestDb::create(backend).await?;
        Some(Self::spawn_on_configured(db, configure, configure_board).await)
    }

    /// Starts the services with default settings on a database that exists already (a
    /// restored one, say).
    ///
    /// # Panics
    /// When a service cannot start.
    pub async fn spawn_on(db: TestDb) -> Self {
        Self::spawn_on_configured(db, |_| {}, |_| {}).await
    }

    async fn spawn_on_configured(
        db: TestDb,
        configure: impl FnOnce(&mut IngestConfig),
        configure_board: impl FnOnce(&mut LeaderboardConfig),
    ) -> Self {
        let store = db.store().await;
        let token = "organizer-test-token".to_owned();
        let mut config = suite_config(&db.url, &token);
        configure(&mut config.ingest);
        configure_board(&mut config.leaderboard);
        let suite = Suite::build(config, store.clone())
            .await
            .expect("the suite starts");
        let (ingest_addr, leaderboard_addr, admin_addr, aggregator_addr) = (
            suite.ingest_addr(),
            suite.leaderboard_addr(),
            suite.admin_addr(),
            suite.aggregator_addr(),
        );
        let serving = Serving::start(suite);
        Self {
            db,
            store,
            ingest_addr,
            leaderboard_addr,
            admin_addr,
            aggregator_addr,
            token,
            serving,
        }
    }

    /// An admin client with the organizer token.
    pub async fn admin(&self) -> AdminClient {
        admin_client(self.admin_addr, Some(&self.token)).await
    }

    /// A LeaderboardService client (no authentication).
    pub async fn leaderboard(&self) -> LeaderboardServiceClient<Channel> {
        LeaderboardServiceClient::new(channel(self.leaderboard_addr).await)
    }

    /// A LeaderboardService client authenticating with `secret` (the organizer token or an
    /// API key), for what is not public.
    pub async fn leaderboard_as(
        &self,
        secret: &str,
    ) -> LeaderboardServiceClient<tonic::service::interceptor::InterceptedService<Channel, Bearer>>
    {
        LeaderboardServiceClient::with_interceptor(
            channel(self.leaderboard_addr).await,
            Bearer::new(Some(secret)).expect("ASCII secret"),
        )
    }

    /// Waits (at most 10 s) until the leaderboard's figures include the whole ledger, its
    /// breakdowns too (they carry their own watermark, which may trail while the aggregator
    /// defers their writes), and returns that watermark.
    ///
    /// # Panics
    /// When it does not happen in time.
    pub async fn settle(&self) -> u64 {
        let head = self.store.ledger_head().await.expect("ledger head");
        let mut client = self.leaderboard().await;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let national = client
                .get_national_totals(saleboard_proto::v1::GetNationalTotalsRequest::default())
                .await
                .expect("GetNationalTotals")
                .into_inner();
            // Without an event there is no breakdown to wait for.
            let breakdown = client
                .get_breakdown(saleboard_proto::v1::GetBreakdownRequest {
                    dimension: saleboard_proto::v1::Dimension::Origin.into(),
                    limit: 1,
                    ..Default::default()
                })
                .await
                .map_or(u64::MAX, |b| b.into_inner().watermark);
            if national.watermark >= head && breakdown >= head {
                return national.watermark;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "watermark {} never reached head {head}",
                national.watermark
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// An ingest client with a retailer secret.
    pub async fn ingest(&self, secret: &str) -> IngestClient {
        ingest_client(self.ingest_addr, Some(secret)).await
    }

    /// Sets the standard test event (see [`crate::data::event`]).
    ///
    /// # Panics
    /// When the admin call fails.
    pub async fn set_event(&self) {
        self.admin()
            .await
            .set_event(crate::data::event())
            .await
            .expect("SetEvent");
    }

    /// Adds a named organizer (as `bootstrap`) and returns its secret.
    ///
    /// # Panics
    /// When the admin call fails.
    pub async fn create_organizer(&self, name: &str) -> String {
        self.admin()
            .await
            .create_organizer(CreateOrganizerRequest {
                name: name.to_owned(),
            })
            .await
            .expect("CreateOrganizer")
            .into_inner()
            .secret
    }

    /// The first word (the status code's name) of the outcome of every audit entry of
    /// `organizer` for `rpc`, oldest first.
    ///
    /// # Panics
    /// When the admin call fails.
    pub async fn audit_codes(&self, organizer: &str, rpc: &str) -> Vec<String> {
        self.admin()
            .await
            .list_audit_log(saleboard_proto::v1::ListAuditLogRequest {
                limit: 1_000,
                organizer: organizer.to_owned(),
                ..Default::default()
            })
            .await
            .expect("ListAuditLog")
            .into_inner()
            .entries
            .iter()
            .filter(|e| e.rpc == rpc)
            .map(|e| e.outcome.split(' ').next().unwrap_or_default().to_owned())
            .collect()
    }

    /// Registers a site and returns (key_id, secret) of a new key for it.
    ///
    /// # Panics
    /// When an admin call fails.
    pub async fn site_with_key(&self, site_id: &str) -> (String, String) {
        let mut admin = self.admin().await;
        admin
            .create_site(CreateSiteRequest {
                site_id: site_id.to_owned(),
                display_name: format!("Site {site_id}"),
            })
            .await
            .expect("CreateSite");
        let key = admin
            .create_api_key(CreateApiKeyRequest {
                site_id: site_id.to_owned(),
            })
            .await
            .expect("CreateApiKey")
            .into_inner();
        (key.key_id, key.secret)
    }

    /// Stops the services gracefully and waits for them.
    ///
    /// # Panics
    /// When a service task failed.
    pub async fn stop(self) {
        self.serving.stop().await;
    }
}
