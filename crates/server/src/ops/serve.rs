//! Running the app on a listener until a shutdown signal, then draining.
//!
//! This is hyper's HTTP/1 connection builder rather than `axum::serve`, because only the
//! builder can bound how long a client may take to send its request headers. Without that
//! bound, slowloris clients (one header byte at a time) each hold a connection for ever.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::config::{IpNet, is_trusted_proxy};
use crate::ops::per_address::PerAddress;

/// How many connections one peer address may hold open. Trusted proxies are exempt: behind
/// one, every client shares its address, and the edge counts each client's requests instead.
#[derive(Clone)]
pub struct ConnectionCap {
    pub per_address: Arc<PerAddress>,
    pub trusted_proxies: Arc<[IpNet]>,
}

/// The most a connection buffers of what it writes (and of a request's head): past it, the
/// response waits for the client to read. hyper's default, about 400 KiB, let a notification
/// stream whose client stopped reading hold that much before its queue filled and it was
/// dropped (`notify::hub`); a request head this large is refused anyway.
const CONNECTION_BUFFER: usize = 64 * 1024;

/// Serves until `shutdown` completes, then stops accepting and waits for in-flight requests.
///
/// A client gets `header_read_timeout` to send each request's headers, counted from when the
/// server is ready for them. That includes the wait on an idle keep-alive connection, so it is
/// also the keep-alive idle timeout.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_read_timeout: Duration,
    cap: Option<ConnectionCap>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(header_read_timeout).max_buf_size(CONNECTION_BUFFER);
    let connections = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // A peer past its connections is closed before anything is read from it.
        let held = match &cap {
            Some(cap) if !is_trusted_proxy(&cap.trusted_proxies, peer.ip()) => match cap.per_address.take(peer.ip()) {
                Some(held) => Some(held),
                None => {
                    tracing::debug!(%peer, "connection refused: its address holds the most connections allowed");
                    continue;
                }
            },
            _ => None,
        };
        // Responses are written whole; waiting to coalesce them only adds latency.
        let _ = stream.set_nodelay(true);
        let app = app.clone().map_request(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            let _held = held;
            if let Err(e) = connection.await {
                // Clients that vanish or dawdle over their headers end up here; not our fault.
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.shutdown().await;
    Ok(())
}

/// Out of file descriptors or similar: wait a little for connections to close rather than
/// spinning on `accept`. Errors that belong to one connection only are skipped at once.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(error.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!(error = %error, "cannot accept connections; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// What [`serve_until`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Every in-flight request finished.
    Drained,
    /// The grace period ran out with requests still running; they were abandoned.
    GraceExpired,
}

/// Serves `app` (and `metrics`, on its own listener, when given) until `shutdown` completes
/// (for `conduit serve`, [`shutdown_signal`]). Then both stop accepting at once, and in-flight
/// requests get up to `grace` to finish.
pub async fn serve_until(
    listener: TcpListener,
    app: Router,
    metrics: Option<(TcpListener, Router)>,
    header_read_timeout: Duration,
    cap: ConnectionCap,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<Stopped> {
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let when_stopping = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stopping| *stopping).await;
    };
    if let Some((listener, router)) = metrics {
        tokio::spawn(serve(listener, router, header_read_timeout, None, when_stopping(stopped.clone())));
    }
    let server = serve(listener, app, header_read_timeout, Some(cap), when_stopping(stopped.clone()));
    let deadline = async {
        when_stopping(stopped).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result.map(|()| Stopped::Drained),
        () = deadline => Ok(Stopped::GraceExpired),
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM. The handlers are registered when this is called,
/// not when the future is first polled: a SIGTERM that arrives between the two would otherwise
/// take the default action and kill the process without draining.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            let (mut interrupt, mut terminate) = match (interrupt, terminate) {
                (Ok(interrupt), Ok(terminate)) => (interrupt, terminate),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::error!(error = %e, "cannot listen for SIGINT and SIGTERM");
                    return std::future::pending().await;
                }
            };
            tokio::select! {
                _ = interrupt.recv() => tracing::info!("SIGINT received, shutting down"),
                _ = terminate.recv() => tracing::info!("SIGTERM received, shutting down"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("Ctrl-C received, shutting down");
    }
}
