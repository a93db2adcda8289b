//! The stop signal of a service process.

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
pub async fn signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received, shutting down"),
        () = term => tracing::info!("SIGTERM received, shutting down"),
    }
}

/// How long a stopping service may take.
#[derive(Debug, Clone, clap::Args)]
pub struct ShutdownArgs {
    /// After SIGTERM or Ctrl-C, how long in-flight requests and open streams get to finish
    /// before the process exits anyway, in milliseconds.
    #[arg(long = "shutdown-deadline-ms", env = "SALEBOARD_SHUTDOWN_DEADLINE_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub deadline_ms: u64,
}

impl ShutdownArgs {
    /// The deadline as a duration.
    #[must_use]
    pub fn deadline(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.deadline_ms)
    }
}

/// A future the server stops on.
pub type StopSignal = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Runs `serve(stop)`, where `stop` resolves on SIGTERM or Ctrl-C, until it returns, or until
/// `deadline` has passed since the signal (then whatever is still in flight is abandoned: the
/// caller returns and the process exits).
///
/// # Errors
/// The error `serve` returned.
pub async fn serve_until_signal<F, Fut, E>(deadline: std::time::Duration, serve: F) -> Result<(), E>
where
    F: FnOnce(StopSignal) -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
{
    let (stopped, _) = tokio::sync::watch::channel(false);
    let mut for_server = stopped.subscribe();
    let mut for_deadline = stopped.subscribe();
    let listener = tokio::spawn(async move {
        signal().await;
        stopped.send_replace(true);
        // Keep the sender alive so the receivers never see it closed.
        std::future::pending::<()>().await;
    });
    let serving = serve(Box::pin(async move {
        if for_server.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    }));
    let expired = async move {
        if for_deadline.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(deadline).await;
    };
    let result = tokio::select! {
        result = serving => result,
        () = expired => {
            tracing::warn!(
                deadline_ms = u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
                "shutdown deadline passed with work still in flight; exiting anyway"
            );
            Ok(())
        }
    };
    listener.abort();
    result
}
