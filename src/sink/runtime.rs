//! The I/O runtime that the network sinks run their connections on.
//!
//! The pipeline drives sinks from a current-thread runtime with timers only, and an application
//! may call [`Sink::write`](super::Sink::write) from any runtime (or several). Connections to a
//! database or a broker, though, belong to the runtime that opened them: they live in tasks of
//! that runtime and die with it. So every network sink hands its I/O to one small runtime of its
//! own, `tower-siem-io`, started on first use and kept for the life of the process: the caller
//! only awaits a join handle, which works from any runtime.

use std::future::Future;
use std::sync::OnceLock;

#[cfg(any(feature = "postgres", feature = "nats"))]
use super::SinkError;

static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();

fn runtime() -> Result<&'static tokio::runtime::Runtime, String> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("tower-siem-io")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| format!("cannot start the I/O runtime: {e}"))
}

/// Starts a long-lived task on the I/O runtime (a store's connection to its server).
#[cfg(feature = "redis")]
pub(crate) fn spawn<F>(task: F) -> Result<(), String>
where
    F: Future<Output = ()> + Send + 'static,
{
    runtime()?.spawn(task);
    Ok(())
}

/// Runs `task` on the I/O runtime and waits for it from whatever context the caller is in.
#[cfg(any(feature = "postgres", feature = "nats"))]
pub(crate) async fn run<T, F>(task: F) -> Result<T, SinkError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, SinkError>> + Send + 'static,
{
    let runtime = runtime().map_err(SinkError::other)?;
    runtime
        .spawn(task)
        .await
        .unwrap_or_else(|e| Err(SinkError::other(format!("network sink task failed: {e}"))))
}
