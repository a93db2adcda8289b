//! The whole suite in one process: ingest, leaderboard (with AdminService) and aggregator over
//! one store, built from one configuration. The one composition root of `saleboard dev` and the
//! black-box tests' `TestApp`.

use std::net::SocketAddr;
use std::sync::Arc;

use saleboard_aggregator::{AggregatorConfig, AggregatorServer};
use saleboard_ingest::{IngestConfig, IngestServer};
use saleboard_leaderboard::{LeaderboardConfig, LeaderboardServer};
use saleboard_storage::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The settings of the three services.
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    /// Ingest.
    pub ingest: IngestConfig,
    /// Leaderboard and AdminService.
    pub leaderboard: LeaderboardConfig,
    /// Aggregator.
    pub aggregator: AggregatorConfig,
}

/// Why the suite could not start or a service failed.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// The ingest service.
    #[error("ingest")]
    Ingest(#[from] saleboard_ingest::server::ServerError),
    /// The leaderboard service.
    #[error("leaderboard")]
    Leaderboard(#[from] saleboard_leaderboard::server::ServerError),
    /// The aggregator.
    #[error("aggregator")]
    Aggregator(#[from] saleboard_aggregator::server::ServerError),
    /// A service task panicked.
    #[error("a service task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// The three services, bound and loaded, not yet serving.
#[derive(Debug)]
pub struct Suite {
    ingest: IngestServer,
    leaderboard: LeaderboardServer,
    aggregator: AggregatorServer,
}

/// The three services serving; see [`Running::wait`].
#[derive(Debug)]
pub struct Running {
    tasks: Vec<JoinHandle<Result<(), SuiteError>>>,
}

impl Suite {
    /// Binds the three listen addresses and loads what each service needs. `store` must be
    /// migrated.
    ///
    /// # Errors
    /// When an address cannot be bound, the token is too weak, or storage cannot be read.
    pub async fn build(config: SuiteConfig, store: Arc<dyn Store>) -> Result<Self, SuiteError> {
        Ok(Self {
            ingest: IngestServer::build(config.ingest, store.clone()).await?,
            leaderboard: LeaderboardServer::build(config.leaderboard, store.clone()).await?,
            aggregator: AggregatorServer::build(config.aggregator, store).await?,
        })
    }

    /// Where ingest listens.
    #[must_use]
    pub fn ingest_addr(&self) -> SocketAddr {
        self.ingest.local_addr()
    }

    /// Where the leaderboard's public port listens (LeaderboardService, the big screen).
    #[must_use]
    pub fn leaderboard_addr(&self) -> SocketAddr {
        self.leaderboard.local_addr()
    }

    /// Where AdminService listens (the leaderboard's admin listener).
    #[must_use]
    pub fn admin_addr(&self) -> SocketAddr {
        self.leaderboard.admin_addr()
    }

    /// Where the aggregator's status service listens.
    #[must_use]
    pub fn aggregator_addr(&self) -> SocketAddr {
        self.aggregator.local_addr()
    }

    /// Serves until `stop` turns true (or its sender is gone), each service draining as it
    /// does alone.
    #[must_use]
    pub fn start(self, stop: &watch::Receiver<bool>) -> Running {
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            // Err only when the sender is gone, which also means stop.
            drop(rx.wait_for(|s| *s).await);
        };
        let (ingest, leaderboard, aggregator) = (self.ingest, self.leaderboard, self.aggregator);
        let (a, b, c) = (
            stopped(stop.clone()),
            stopped(stop.clone()),
            stopped(stop.clone()),
        );
        Running {
            tasks: vec![
                tokio::spawn(async move { Ok(ingest.run_until_stopped(a).await?) }),
                tokio::spawn(async move { Ok(leaderboard.run_until_stopped(b).await?) }),
                tokio::spawn(async move { Ok(aggregator.run_until_stopped(c).await?) }),
            ],
        }
    }
}

impl Running {
    /// Waits for every service to stop; the first failure, if any.
    ///
    /// # Errors
    /// When a service failed or its task panicked.
    pub async fn wait(self) -> Result<(), SuiteError> {
        let mut first = Ok(());
        for task in self.tasks {
            let result = task.await.map_err(SuiteError::from).and_then(|r| r);
            if first.is_ok() {
                first = result;
            }
        }
        first
    }
}
