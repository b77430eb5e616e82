//! A sink that re-emits every security event through `tracing`.

use super::{BoxFuture, Sink, SinkError};
use crate::event::SharedEvent;

/// Emits one `tracing` event at `INFO` level per security event, with target
/// `tower_siem::event` and structured fields: `id`, `name`, `ip`, `user`, `action`, `reasons`,
/// `method`, `path`, `status` (fields the event lacks are left out).
///
/// The fields are formatted on the pipeline's worker thread, never on the request path; filter
/// on the target to route them (`tower_siem::event=info`).
///
/// ```
/// use tower_siem::pipeline::{Pipeline, PipelineConfig};
/// use tower_siem::sink::TracingSink;
///
/// let pipeline = Pipeline::new(vec![Box::new(TracingSink::new())], PipelineConfig::default());
/// # pipeline.shutdown(std::time::Duration::from_secs(1));
/// ```
#[derive(Clone, Debug, Default)]
pub struct TracingSink {
    _private: (),
}

impl TracingSink {
    /// A new tracing sink.
    pub fn new() -> Self {
        TracingSink::default()
    }
}

impl Sink for TracingSink {
    fn name(&self) -> &str {
        "tracing"
    }

    fn write<'a>(&'a self, batch: &'a [SharedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            for event in batch {
                let http = event.http.as_ref();
                let verdict = event.verdict.as_ref();
                let reasons = verdict
                    .filter(|v| !v.reasons.is_empty())
                    .map(|v| v.reasons.join(","));
                ::tracing::info!(
                    target: "tower_siem::event",
                    id = %event.id,
                    name = %event.name,
                    ip = event.subject.ip.map(::tracing::field::display),
                    user = event.subject.user.as_deref(),
                    action = verdict.map(|v| v.action.as_str()),
                    reasons = reasons.as_deref(),
                    method = http.map(|h| h.method.as_str()),
                    path = http.map(|h| h.path.as_str()),
                    status = http.and_then(|h| h.status),
                    "security event"
                );
            }
            Ok(())
        })
    }
}
