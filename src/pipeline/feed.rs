//! The live feed: every event handed to the sinks, after redaction, to whoever subscribed
//! (the admin API's `GET /api/feed`).
//!
//! Free while nobody listens: [`Feed::publish`] loads one atomic and returns. With
//! subscribers, each event is one `Arc` clone into a bounded broadcast channel; a subscriber
//! that falls more than [`FEED_CAPACITY`] events behind skips the oldest and is told how many.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::broadcast;

use crate::event::SharedEvent;

/// Events a subscriber may fall behind before it skips some.
pub const FEED_CAPACITY: usize = 1024;

/// The most subscribers at once.
pub const MAX_FEED_SUBSCRIBERS: usize = 16;

pub(crate) struct Feed {
    tx: broadcast::Sender<SharedEvent>,
    subscribers: AtomicUsize,
}

impl Feed {
    pub(crate) fn new() -> Self {
        Feed {
            tx: broadcast::Sender::new(FEED_CAPACITY),
            subscribers: AtomicUsize::new(0),
        }
    }

    /// Hands `event` to the subscribers, if any.
    #[inline]
    pub(crate) fn publish(&self, event: &SharedEvent) {
        if self.subscribers.load(Ordering::Relaxed) > 0 {
            // An error means no receiver: the last one left meanwhile.
            let _ = self.tx.send(Arc::clone(event));
        }
    }

    /// A new subscriber, unless [`MAX_FEED_SUBSCRIBERS`] are subscribed already.
    pub(crate) fn subscribe(self: &Arc<Self>) -> Option<Subscription> {
        self.subscribers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_FEED_SUBSCRIBERS).then_some(n + 1)
            })
            .ok()?;
        Some(Subscription {
            rx: self.tx.subscribe(),
            feed: Arc::clone(self),
        })
    }
}

/// One subscriber's receiving end; unsubscribes when dropped.
pub struct Subscription {
    rx: broadcast::Receiver<SharedEvent>,
    feed: Arc<Feed>,
}

/// What [`Subscription::recv`] got.
#[derive(Debug)]
pub enum FeedItem {
    /// The next event.
    Event(SharedEvent),
    /// This many events were skipped: the subscriber fell too far behind.
    Lagged(u64),
}

impl Subscription {
    /// The next event, or how many were skipped; `None` once the pipeline is gone.
    pub async fn recv(&mut self) -> Option<FeedItem> {
        match self.rx.recv().await {
            Ok(e) => Some(FeedItem::Event(e)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(FeedItem::Lagged(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.feed.subscribers.fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}
