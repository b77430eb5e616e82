//! Event destinations.
//!
//! A [`Sink`] receives batches of events from the [`Pipeline`](crate::pipeline::Pipeline)'s own
//! worker thread, never from a request. Writes are async and batched; an `Err` means the whole
//! batch is retried (with backoff) and finally counted as dropped, so a sink that can make
//! inserts idempotent should key them on [`Event::id`](crate::Event::id).
//!
//! Built in:
//!
//! | sink | what |
//! |---|---|
//! | [`JsonlSink`] | one JSON object per line in a local file, with size-capped rotation |
//! | [`TracingSink`] | one `tracing` event per security event (`target: "tower_siem::event"`) |
//! | `WebhookSink` (feature `webhook`) | posts alerts (entities newly stepped up, throttled or blocked), optionally Slack-formatted |
//! | [`SqliteSink`] | the embedded store: a SQLite file, queried with [`sqlite::SqliteStore`] (feature `sqlite`) |
//! | `PostgresSink` | batched, idempotent inserts into a PostgreSQL table (feature `postgres`) |
//! | `NatsSink` | one JetStream message per event, de-duplicated by event id (feature `nats`) |
//!
//! `Box<S>` and `Arc<S>` implement `Sink` whenever `S` does (also for `S = dyn Sink`), so a sink
//! chosen at run time has the same type as one chosen at compile time.
//!
//! # Writing a sink
//!
//! ```
//! use tower_siem::event::SharedEvent;
//! use tower_siem::sink::{BoxFuture, Sink, SinkError};
//!
//! struct Stdout;
//!
//! impl Sink for Stdout {
//!     fn name(&self) -> &str {
//!         "stdout"
//!     }
//!
//!     fn write<'a>(&'a self, batch: &'a [SharedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
//!         Box::pin(async move {
//!             for event in batch {
//!                 let line = serde_json::to_string(&**event).map_err(SinkError::encode)?;
//!                 println!("{line}");
//!             }
//!             Ok(())
//!         })
//!     }
//! }
//! ```

mod jsonl;
#[cfg(feature = "nats")]
pub(crate) mod nats;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "postgres", feature = "nats", feature = "redis"))]
pub(crate) mod runtime;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;
mod tracing;
#[cfg(feature = "webhook")]
mod webhook;

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::event::{EventName, SharedEvent};

pub use self::jsonl::JsonlSink;
#[cfg(feature = "nats")]
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
pub use self::nats::NatsSink;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use self::postgres::PostgresSink;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use self::sqlite::SqliteSink;
pub use self::tracing::TracingSink;
#[cfg(feature = "webhook")]
#[cfg_attr(docsrs, doc(cfg(feature = "webhook")))]
pub use self::webhook::{WebhookError, WebhookSink};

/// A boxed, `Send` future: what [`Sink`] methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A boxed error source, as kept inside [`SinkError`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// An event destination.
///
/// Called from the pipeline's own worker thread (one task per sink on a current-thread tokio
/// runtime), never from a request. A sink that does blocking work (file or database I/O through
/// a synchronous API) should move it to `tokio::task::spawn_blocking`, or it stalls the other
/// sinks sharing that thread.
pub trait Sink: Send + Sync + 'static {
    /// A short name for stats and logs, such as `"jsonl"`.
    fn name(&self) -> &str;

    /// Writes a whole batch.
    ///
    /// # Errors
    ///
    /// An error means none of the batch may be assumed written: the pipeline retries the whole
    /// batch, so a sink that can should deduplicate by [`Event::id`](crate::Event::id).
    fn write<'a>(&'a self, batch: &'a [SharedEvent]) -> BoxFuture<'a, Result<(), SinkError>>;

    /// Makes everything written so far durable (or at least handed to the OS / the server).
    ///
    /// Called when the application asks the pipeline to flush and at shutdown. The default does
    /// nothing.
    ///
    /// # Errors
    ///
    /// When the data could not be made durable; the pipeline counts it as a write error.
    fn flush(&self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async { Ok(()) })
    }

    /// Which events this sink is handed; asked once, when the pipeline starts. Events it does
    /// not take are not counted in its stats at all. The default is every event.
    fn interest(&self) -> Interest {
        Interest::All
    }

    /// How many batches the pipeline may have in [`write`](Sink::write) at once; asked once,
    /// when the pipeline starts (at most 8 are used). The default, 1, writes batches strictly
    /// one after another.
    ///
    /// With more, the next batch is handed over while earlier ones are still being written
    /// (or retried), so batches may land out of order. A sink that prepares a batch in `write`
    /// and writes it elsewhere (a thread, a server) overlaps the two this way. Flushes still
    /// wait for every batch before them.
    fn max_in_flight(&self) -> usize {
        1
    }
}

/// Which events a [`Sink`] takes (see [`Sink::interest`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Interest {
    /// Every event.
    #[default]
    All,
    /// Only events with one of these names (an alert sink takes `siem.alert` only).
    Names(Vec<EventName>),
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn write<'a>(&'a self, batch: &'a [SharedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        (**self).write(batch)
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), SinkError>> {
        (**self).flush()
    }

    fn interest(&self) -> Interest {
        (**self).interest()
    }

    fn max_in_flight(&self) -> usize {
        (**self).max_in_flight()
    }
}

impl<S: Sink + ?Sized> Sink for Arc<S> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn write<'a>(&'a self, batch: &'a [SharedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        (**self).write(batch)
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), SinkError>> {
        (**self).flush()
    }

    fn interest(&self) -> Interest {
        (**self).interest()
    }

    fn max_in_flight(&self) -> usize {
        (**self).max_in_flight()
    }
}

/// What kind of failure a [`SinkError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SinkErrorKind {
    /// Local I/O failed (file, socket).
    Io,
    /// An event could not be encoded.
    Encode,
    /// The destination is down or refused the batch; worth retrying.
    Unavailable,
    /// Anything else, including a sink that panicked.
    Other,
}

impl SinkErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            SinkErrorKind::Io => "sink I/O error",
            SinkErrorKind::Encode => "sink encoding error",
            SinkErrorKind::Unavailable => "sink unavailable",
            SinkErrorKind::Other => "sink error",
        }
    }
}

impl fmt::Display for SinkErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed sink write or flush. Keeps its source error.
///
/// ```
/// use tower_siem::sink::{SinkError, SinkErrorKind};
/// let e = SinkError::io(std::io::Error::other("disk full"));
/// assert_eq!(e.kind(), SinkErrorKind::Io);
/// assert_eq!(e.to_string(), "sink I/O error: disk full");
/// assert!(std::error::Error::source(&e).is_some());
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct SinkError {
    kind: SinkErrorKind,
    source: BoxError,
}

impl SinkError {
    /// An error of the given kind with its cause (an error, or a message as `&str`/`String`).
    pub fn new(kind: SinkErrorKind, source: impl Into<BoxError>) -> Self {
        SinkError {
            kind,
            source: source.into(),
        }
    }

    /// A local I/O failure.
    pub fn io(error: std::io::Error) -> Self {
        SinkError::new(SinkErrorKind::Io, error)
    }

    /// An encoding failure.
    pub fn encode(error: impl Into<BoxError>) -> Self {
        SinkError::new(SinkErrorKind::Encode, error)
    }

    /// The destination is unreachable or refused the batch.
    pub fn unavailable(error: impl Into<BoxError>) -> Self {
        SinkError::new(SinkErrorKind::Unavailable, error)
    }

    /// Any other failure.
    pub fn other(error: impl Into<BoxError>) -> Self {
        SinkError::new(SinkErrorKind::Other, error)
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> SinkErrorKind {
        self.kind
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.source)
    }
}

impl StdError for SinkError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

impl From<std::io::Error> for SinkError {
    fn from(error: std::io::Error) -> Self {
        SinkError::io(error)
    }
}

impl From<serde_json::Error> for SinkError {
    fn from(error: serde_json::Error) -> Self {
        if error.is_io() {
            SinkError::new(SinkErrorKind::Io, error)
        } else {
            SinkError::encode(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + 'static>() {}

    #[test]
    fn error_is_send_sync_and_keeps_kind() {
        assert_send_sync::<SinkError>();
        let e = SinkError::other("boom");
        assert_eq!(e.kind(), SinkErrorKind::Other);
        assert_eq!(e.to_string(), "sink error: boom");
        assert_eq!(
            SinkError::unavailable(String::from("x")).kind(),
            SinkErrorKind::Unavailable
        );
    }

    #[test]
    fn boxed_and_arced_sinks_are_sinks() {
        fn is_sink<S: Sink>(_: &S) {}
        let b: Box<dyn Sink> = Box::new(TracingSink::new());
        is_sink(&b);
        let a: Arc<dyn Sink> = Arc::new(TracingSink::new());
        is_sink(&a);
        assert_eq!(a.name(), "tracing");
    }
}
