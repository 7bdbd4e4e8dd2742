//! A stream as it goes out: Server-Sent Events text, written once per notification and handed
//! to every open stream of its recipients as the same bytes.
//!
//! Not axum's `Sse`: that takes an `Event` per stream and writes its text again for each, and
//! resets a keep-alive timer after every event. With 10,000 streams open, building the event
//! per stream and the timer's reset were a third of what delivering a notification cost the
//! server (BENCHMARKS.md, "Notifications"). Here an event's text is built once, where the tail
//! reads it ([`frame`]), a stream hands on a shared copy of it, and the keep-alive is a comment
//! every `CONDUIT_NOTIFICATIONS_KEEP_ALIVE` whatever was sent meanwhile (one comment line on a
//! busy stream is nothing; a timer reset per event on every stream was not).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use conduit_store::notifications::Notification;
use conduit_store::{DbError, Store};
use futures::Stream;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::hub::Subscription;
use super::view;

/// A person's own notifications read when a stream resumes: more than are ever kept
/// (`conduit_store::notifications::KEEP_PER_USER` and the few the trim lets stand).
pub const REPLAY_LIMIT: i64 = 2 * conduit_store::notifications::KEEP_PER_USER;

const KEEP_ALIVE_COMMENT: &[u8] = b":\n\n";

/// One event's text: `event:`, `id:` when it has one, and `data:` (one line per line of
/// `data`, so a line break in it cannot end the event or start a field).
pub fn frame(event: &str, id: Option<i64>, data: &str) -> Bytes {
    let mut text = String::with_capacity(event.len() + data.len() + 40);
    text.push_str("event: ");
    text.push_str(event);
    text.push('\n');
    if let Some(id) = id {
        text.push_str("id: ");
        text.push_str(itoa::Buffer::new().format(id));
        text.push('\n');
    }
    for line in data.split('\n') {
        for line in line.strip_suffix('\r').unwrap_or(line).split('\r') {
            text.push_str("data: ");
            text.push_str(line);
            text.push('\n');
        }
    }
    text.push('\n');
    Bytes::from(text)
}

/// A `notification` event.
pub fn notification(id: i64, n: Notification) -> Bytes {
    frame("notification", Some(id), &view::json(n))
}

/// The response: `first` (what was missed, `ready`), then what the hub hands `sub` after
/// `from`, until the hub closes or drops it, and a comment line every `keep_alive`.
///
/// The default keep-alive, 30 s, is under the 60 s after which nginx (`proxy_read_timeout`)
/// and most load balancers give up on a silent response, and no oftener, since each one wakes
/// every idle stream (10,000 of them: 333 writes a second).
pub fn response(
    first: Vec<Bytes>,
    sub: Subscription,
    store: Arc<dyn Store>,
    from: i64,
    keep_alive: Duration,
) -> Response {
    let live =
        Live { pending: first.into(), sub, store, sent: from, replay: None, keep_alive: keep_alive_every(keep_alive) };
    let mut response = Response::new(Body::from_stream(live));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Proxies that buffer responses (nginx) must pass this one through as it is written.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

fn keep_alive_every(period: Duration) -> Interval {
    let mut every = tokio::time::interval_at(Instant::now() + period, period);
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    every
}

type Missed = Result<(Option<Vec<(i64, Option<Notification>)>>, i64), DbError>;

/// A stream after its first events: what the hub hands it, and what it missed while it lagged
/// (read from the database once it has sent its queue: see `notify::hub`).
struct Live {
    sub: Subscription,
    store: Arc<dyn Store>,
    /// The newest id sent (or passed over by a `reset`).
    sent: i64,
    pending: VecDeque<Bytes>,
    /// The read of what a lagging stream missed, while it runs.
    replay: Option<Pin<Box<dyn Future<Output = Missed> + Send>>>,
    keep_alive: Interval,
}

impl Stream for Live {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let live = self.get_mut();
        loop {
            if let Some(next) = live.pending.pop_front() {
                return Poll::Ready(Some(Ok(next)));
            }
            if let Some(replay) = &mut live.replay {
                let missed = ready!(replay.as_mut().poll(cx));
                live.replay = None;
                match missed {
                    Ok((Some(missed), _)) => {
                        let after = live.sent;
                        for (id, n) in missed.into_iter().filter(|(id, _)| *id > after) {
                            live.pending.extend(n.map(|n| notification(id, n)));
                            live.sent = id;
                        }
                    }
                    Ok((None, through)) => {
                        live.pending.push_back(frame("reset", Some(through), "{}"));
                        live.sent = through;
                    }
                    // The client resumes from its last id.
                    Err(_) => return Poll::Ready(None),
                }
                continue;
            }
            if live.sub.events.is_empty() && live.sub.lagging() {
                let (store, user, after) = (live.store.clone(), live.sub.user, live.sent);
                let through = live.sub.hub().delivered();
                live.replay = Some(Box::pin(async move {
                    Ok((store.notifications_replay(user, after, through, REPLAY_LIMIT).await?, through))
                }));
                continue;
            }
            match live.sub.events.poll_recv(cx) {
                Poll::Ready(Some(handed)) if handed.id <= live.sent => continue,
                Poll::Ready(Some(handed)) => {
                    live.sent = handed.id;
                    return Poll::Ready(Some(Ok(handed.frame.clone())));
                }
                // The hub closed (shutdown), or dropped this stream for not reading: the client
                // resumes from its last id.
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => {}
            }
            ready!(live.keep_alive.poll_tick(cx));
            return Poll::Ready(Some(Ok(Bytes::from_static(KEEP_ALIVE_COMMENT))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::frame;

    #[test]
    fn an_event_is_one_field_per_line_and_a_blank_line() {
        assert_eq!(
            &frame("ready", Some(7), "{\"unreadCount\":2}")[..],
            b"event: ready\nid: 7\ndata: {\"unreadCount\":2}\n\n"
        );
        assert_eq!(&frame("reset", None, "{}")[..], b"event: reset\ndata: {}\n\n");
    }

    #[test]
    fn a_line_break_in_the_data_cannot_start_a_field_or_end_the_event() {
        assert_eq!(
            &frame("x", None, "a\n\nid: 9\rb\r\nc")[..],
            b"event: x\ndata: a\ndata: \ndata: id: 9\ndata: b\ndata: c\n\n"
        );
    }
}
