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

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::engine::{Action, Verdict};
    use crate::event::HttpInfo;
    use crate::Event;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn one_tracing_event_per_security_event_with_fields() {
        let out = Buffer::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(::tracing::Level::INFO)
            .finish();
        let mut event = Event::new("auth.failure")
            .user("alice")
            .ip([203, 0, 113, 9].into());
        event.http = Some(HttpInfo {
            method: "POST".into(),
            path: "/login".into(),
            status: Some(401),
            ..HttpInfo::default()
        });
        event.verdict = Some(Verdict {
            action: Action::StepUp,
            reasons: vec!["brute_force.user".into(), "new_device".into()],
            ..Verdict::default()
        });
        let batch: Vec<SharedEvent> = vec![Arc::new(event), Arc::new(Event::new("auth.logout"))];
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        ::tracing::subscriber::with_default(subscriber, || {
            runtime.block_on(TracingSink::new().write(&batch)).unwrap();
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        for needle in [
            "tower_siem::event",
            "name=auth.failure",
            "ip=203.0.113.9",
            "user=\"alice\"",
            "action=\"step_up\"",
            "reasons=\"brute_force.user,new_device\"",
            "method=\"POST\"",
            "path=\"/login\"",
            "status=401",
        ] {
            assert!(
                lines[0].contains(needle),
                "{needle} missing in {}",
                lines[0]
            );
        }
        assert!(lines[0].contains(&format!("id={}", batch[0].id)));
        assert!(
            lines[1].contains("name=auth.logout") && !lines[1].contains("user="),
            "{}",
            lines[1]
        );
    }
}
