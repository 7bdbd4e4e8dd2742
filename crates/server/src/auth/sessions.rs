//! Browser sessions: axum-login over tower-sessions. The session cookie (HttpOnly,
//! SameSite=Lax, `Secure` over HTTPS) names a record kept in the configured database, or in
//! Redis when `REDIS_URL` is set, so a session made through one instance works on every other.
//!
//! A session is bound to the user's token version (its `session_auth_hash`): a password change
//! or a deactivation bumps the version and so ends every earlier session; the session that
//! changed the password is logged in again, renewed.
//!
//! A session also keeps when its user logged in and an id for the tokens it hands out (see
//! [`grant`]): those tokens name it (`sid`), and a logout ends them with it.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum_login::{AuthManagerLayer, AuthManagerLayerBuilder, AuthUser, AuthnBackend};
use conduit_domain::User;
use conduit_domain::model::UserId;
use conduit_domain::token::{Grant, SESSION_TOKEN_MAX_TTL_DAYS};
use conduit_store::Store;
use tower_sessions::cookie::SameSite;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_redis_store::RedisStore;

use crate::auth::login::{Login, check_login};
use crate::error::ApiError;
use crate::ops::redis::Redis;
use crate::state::AppState;

pub const COOKIE: &str = "conduit_session";
/// The console's session cookie (see [`console_layer`]).
pub const CONSOLE_COOKIE: &str = "conduit_admin";
/// Sessions end after two weeks without use; so do the tokens they hand out, at the latest.
const IDLE_DAYS: i64 = SESSION_TOKEN_MAX_TTL_DAYS;
/// Session keys: when the user logged in (Unix seconds), and the id of the session's tokens.
const AUTH_TIME: &str = "conduit.auth_time";
const TOKEN_SESSION: &str = "conduit.sid";

fn session_error(e: tower_sessions::session::Error) -> ApiError {
    tracing::warn!(error = %e, "session store failed");
    ApiError::SessionUnavailable
}

/// Records a login (or a password confirmed again) in `session`, at `auth_time`. A `fresh` login
/// also gets a new token id, so no token handed out before it belongs to it.
pub async fn record_login(session: &tower_sessions::Session, auth_time: i64, fresh: bool) -> Result<(), ApiError> {
    session.insert(AUTH_TIME, auth_time).await.map_err(session_error)?;
    if fresh || session.get::<String>(TOKEN_SESSION).await.map_err(session_error)?.is_none() {
        let id = format!("{:032x}", rand::random::<u128>());
        session.insert(TOKEN_SESSION, id).await.map_err(session_error)?;
    }
    Ok(())
}

/// The token id of `session`, if it has one: a logout ends the tokens that name it.
pub async fn token_session(session: &tower_sessions::Session) -> Result<Option<String>, ApiError> {
    session.get::<String>(TOKEN_SESSION).await.map_err(session_error)
}

/// What the tokens handed out to a logged-in `session` grant: its login time and its token id.
/// A session logged in before these were kept gets a token id now, and counts as an old login.
pub async fn grant(session: &tower_sessions::Session) -> Result<Grant, ApiError> {
    let auth_time = session.get::<i64>(AUTH_TIME).await.map_err(session_error)?.unwrap_or(0);
    let id = match session.get::<String>(TOKEN_SESSION).await.map_err(session_error)? {
        Some(id) => id,
        None => {
            record_login(session, auth_time, false).await?;
            session.get::<String>(TOKEN_SESSION).await.map_err(session_error)?.unwrap_or_default()
        }
    };
    Ok(Grant { auth_time, session: Some(id) })
}

/// A logged-in user as the session layer knows them.
#[derive(Clone, Debug)]
pub struct SessionUser {
    pub user: User,
    auth_hash: Vec<u8>,
}

impl SessionUser {
    pub fn new(user: User) -> Self {
        let auth_hash = format!("{}:{}", user.id, user.token_version).into_bytes();
        Self { user, auth_hash }
    }
}

impl AuthUser for SessionUser {
    type Id = UserId;

    fn id(&self) -> UserId {
        self.user.id
    }

    fn session_auth_hash(&self) -> &[u8] {
        &self.auth_hash
    }
}

/// Checks credentials (with the same rules, rate limits and timing as token logins) and loads
/// session users; deactivated users have no session.
#[derive(Clone)]
pub struct Accounts {
    state: AppState,
}

impl AuthnBackend for Accounts {
    type User = SessionUser;
    type Credentials = (IpAddr, Login, crate::limits::hash_queue::Admission);
    type Error = ApiError;

    async fn authenticate(&self, (ip, login, admission): Self::Credentials) -> Result<Option<SessionUser>, ApiError> {
        check_login(&self.state, ip, login, admission).await.map(|user| Some(SessionUser::new(user)))
    }

    async fn get_user(&self, id: &UserId) -> Result<Option<SessionUser>, ApiError> {
        Ok(self.state.store.user_by_id(*id).await?.filter(|u| u.active).map(SessionUser::new))
    }
}

pub type AuthSession = axum_login::AuthSession<Accounts>;

/// Where session records live.
#[derive(Clone)]
pub enum Sessions {
    Database(Arc<dyn Store>),
    Redis(RedisStore<Redis>),
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sessions::Database(store) => write!(f, "Sessions::Database({})", store.backend()),
            Sessions::Redis(_) => f.write_str("Sessions::Redis"),
        }
    }
}

fn backend_error(e: impl fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

fn encode(record: &Record) -> session_store::Result<String> {
    serde_json::to_string(record).map_err(|e| session_store::Error::Encode(e.to_string()))
}

#[async_trait]
impl SessionStore for Sessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            Sessions::Database(store) => loop {
                let data = encode(record)?;
                let id = record.id.to_string();
                if store.session_create(&id, &data, record.expiry_date.unix_timestamp()).await.map_err(backend_error)? {
                    return Ok(());
                }
                // A 128-bit random id collided: draw another.
                record.id = Id::default();
            },
            Sessions::Redis(redis) => redis.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            Sessions::Database(store) => {
                let data = encode(record)?;
                let expires = record.expiry_date.unix_timestamp();
                store.session_save(&record.id.to_string(), &data, expires).await.map_err(backend_error)
            }
            Sessions::Redis(redis) => redis.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            Sessions::Database(store) => {
                let now = chrono::Utc::now().timestamp();
                match store.session_load(&id.to_string(), now).await.map_err(backend_error)? {
                    Some(data) => {
                        serde_json::from_str(&data).map(Some).map_err(|e| session_store::Error::Decode(e.to_string()))
                    }
                    None => Ok(None),
                }
            }
            Sessions::Redis(redis) => redis.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            Sessions::Database(store) => store.session_delete(&id.to_string()).await.map_err(backend_error),
            Sessions::Redis(redis) => redis.delete(id).await,
        }
    }
}

/// The session and auth layers for `state`: sessions in Redis when it is configured, else in
/// the database (where expired ones are swept every minute by a background task).
pub fn layer(state: &AppState) -> AuthManagerLayer<Accounts, Sessions> {
    layer_for(state, COOKIE, "/", SameSite::Lax)
}

/// The operator's console's own session (`crate::console`): a cookie sent only to `/admin`, and
/// never on a request another site starts (`SameSite=Strict`), kept where the API's are.
pub fn console_layer(state: &AppState) -> AuthManagerLayer<Accounts, Sessions> {
    layer_for(state, CONSOLE_COOKIE, "/admin", SameSite::Strict)
}

fn layer_for(
    state: &AppState,
    cookie: &'static str,
    path: &'static str,
    same_site: SameSite,
) -> AuthManagerLayer<Accounts, Sessions> {
    let sessions = match &state.redis {
        Some(redis) => Sessions::Redis(RedisStore::new(redis.clone())),
        None => Sessions::Database(state.store.clone()),
    };
    let manager = SessionManagerLayer::new(sessions)
        .with_name(cookie)
        .with_http_only(true)
        .with_same_site(same_site)
        .with_secure(state.http.secure_cookies)
        .with_path(path)
        .with_expiry(Expiry::OnInactivity(tower_sessions::cookie::time::Duration::days(IDLE_DAYS)));
    AuthManagerLayerBuilder::new(Accounts { state: state.clone() }, manager).build()
}

/// Deletes expired database sessions every `period`, until the process ends.
pub fn sweep_expired(store: Arc<dyn Store>, period: Duration) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        loop {
            ticks.tick().await;
            match store.session_delete_expired(chrono::Utc::now().timestamp()).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(deleted = n, "expired sessions swept"),
                Err(e) => tracing::warn!(error = %e, "cannot sweep expired sessions"),
            }
        }
    });
}

/// The session layers, only for the requests that can use them: every request carrying a
/// cookie, and every request but a read (a login, a logout, a password change and an account
/// deletion start or end sessions). A `GET` or `HEAD` without a cookie has no session to load
/// and starts none, so it skips the layers and their cost (BENCHMARKS.md, the framework
/// ceiling). No handler of a read takes [`AuthSession`]; one that did would fail to extract it
/// here, loudly, rather than see no session.
#[derive(Clone)]
pub struct WhenNeededLayer<L>(pub L);

impl<L: tower::Layer<S>, S: Clone> tower::Layer<S> for WhenNeededLayer<L> {
    type Service = WhenNeeded<S, L::Service>;

    fn layer(&self, inner: S) -> Self::Service {
        WhenNeeded { without: inner.clone(), with: Arc::new(self.0.layer(inner)) }
    }
}

/// The route without the session layers, and with them. The router clones a route's service
/// for every request; the session stack (its settings, the app state) is cloned only for the
/// requests that go through it.
#[derive(Clone)]
pub struct WhenNeeded<P, W> {
    without: P,
    with: Arc<W>,
}

impl<B, P, W, R, E> tower::Service<axum::http::Request<B>> for WhenNeeded<P, W>
where
    P: tower::Service<axum::http::Request<B>, Response = R, Error = E>,
    W: tower::Service<axum::http::Request<B>, Response = R, Error = E> + Clone + Send + 'static,
    W::Future: Send,
    B: Send + 'static,
{
    type Response = R;
    type Error = E;
    /// The session layers' future is large; boxed, it does not make every request's future
    /// as large (and as costly to move).
    type Future = futures::future::Either<P::Future, futures::future::BoxFuture<'static, Result<R, E>>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), E>> {
        self.without.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let read = matches!(*request.method(), axum::http::Method::GET | axum::http::Method::HEAD);
        if read && !request.headers().contains_key(axum::http::header::COOKIE) {
            futures::future::Either::Left(self.without.call(request))
        } else {
            let mut with = W::clone(&self.with);
            futures::future::Either::Right(Box::pin(async move {
                std::future::poll_fn(|cx| with.poll_ready(cx)).await?;
                with.call(request).await
            }))
        }
    }
}
