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

use super::SinkError;

static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();

/// Runs `task` on the I/O runtime and waits for it from whatever context the caller is in.
pub(crate) async fn run<T, F>(task: F) -> Result<T, SinkError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, SinkError>> + Send + 'static,
{
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tower-siem-io")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });
    let runtime = runtime.as_ref().map_err(|e| {
        SinkError::other(format!("cannot start the network sinks' I/O runtime: {e}"))
    })?;
    runtime
        .spawn(task)
        .await
        .unwrap_or_else(|e| Err(SinkError::other(format!("network sink task failed: {e}"))))
}
