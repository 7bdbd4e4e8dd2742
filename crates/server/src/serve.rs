//! Running the app on a listener until a shutdown signal, then draining.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Serves until `shutdown` completes, then stops accepting and waits for in-flight requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// What [`serve_until_signal`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Every in-flight request finished.
    Drained,
    /// The grace period ran out with requests still running; they were abandoned.
    GraceExpired,
}

/// Serves `app` (and `metrics`, on its own listener, when given) until SIGINT or SIGTERM.
/// Then both stop accepting at once, in-flight requests get up to `grace` to finish.
pub async fn serve_until_signal(
    listener: TcpListener,
    app: Router,
    metrics: Option<(TcpListener, Router)>,
    grace: Duration,
) -> std::io::Result<Stopped> {
    let (stop, stopped) = watch::channel(false);
    let signal = async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    };
    tokio::spawn(signal);
    let when_stopping = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stopping| *stopping).await;
    };
    if let Some((listener, router)) = metrics {
        tokio::spawn(serve(listener, router, when_stopping(stopped.clone())));
    }
    let server = serve(listener, app, when_stopping(stopped.clone()));
    let deadline = async {
        when_stopping(stopped).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result.map(|()| Stopped::Drained),
        () = deadline => Ok(Stopped::GraceExpired),
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}
