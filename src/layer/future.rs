use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use pin_project_lite::pin_project;

use super::extract::RequestCtx;
use super::{SiemBody, STEP_UP_HEADER};
use crate::engine::Action;
use crate::event::{Event, EventName, HttpInfo};

pin_project! {
    /// The response future of [`SiemService`](super::SiemService).
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Passthrough { #[pin] fut: F },
        Call { #[pin] fut: F, ctx: Arc<RequestCtx>, start: Instant, echo_step_up: Option<bool> },
        Deny { response: Option<Response<Bytes>> },
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn passthrough(fut: F) -> Self {
        ResponseFuture {
            kind: Kind::Passthrough { fut },
        }
    }

    pub(crate) fn call(
        fut: F,
        ctx: Arc<RequestCtx>,
        start: Instant,
        echo_step_up: Option<bool>,
    ) -> Self {
        ResponseFuture {
            kind: Kind::Call {
                fut,
                ctx,
                start,
                echo_step_up,
            },
        }
    }

    pub(crate) fn deny(response: Response<Bytes>) -> Self {
        ResponseFuture {
            kind: Kind::Deny {
                response: Some(response),
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body<Data = Bytes>,
{
    type Output = Result<Response<SiemBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Passthrough { fut } => {
                let res = ready!(fut.poll(cx))?;
                Poll::Ready(Ok(res.map(SiemBody::inner)))
            }
            KindProj::Call {
                fut,
                ctx,
                start,
                echo_step_up,
            } => {
                let out = ready!(fut.poll(cx));
                let start = *start;
                match out {
                    Ok(mut res) => {
                        if let Some(reasons) = *echo_step_up {
                            let mut v = ctx.gate.clone();
                            if let Some(f) = ctx.fired.lock().as_ref() {
                                v = v.merge(f.clone());
                            }
                            if v.action >= Action::StepUp {
                                // The client learns that a step-up is needed, not which rule
                                // to tune against (unless the layer was told otherwise).
                                let h = if reasons {
                                    HeaderValue::from_str(&v.reasons_header()).ok()
                                } else {
                                    Some(HeaderValue::from_static("required"))
                                };
                                if let Some(h) = h {
                                    res.headers_mut().insert(STEP_UP_HEADER, h);
                                }
                            }
                        }
                        record(ctx, Some(res.status()), || response_bytes(&res), start);
                        Poll::Ready(Ok(res.map(SiemBody::inner)))
                    }
                    Err(e) => {
                        record(ctx, None, || None, start);
                        Poll::Ready(Err(e))
                    }
                }
            }
            KindProj::Deny { response } => {
                let res = response
                    .take()
                    .expect("ResponseFuture polled after completion");
                Poll::Ready(Ok(res.map(SiemBody::full)))
            }
        }
    }
}

/// The response's size, when it says: `Content-Length`, else an exact size hint.
fn response_bytes<B: http_body::Body>(res: &Response<B>) -> Option<u64> {
    // A response carries few headers, and most leave the length to the body's size hint:
    // walking them is cheaper than hashing the name for a lookup.
    res.headers()
        .iter()
        .find(|(k, _)| *k == http::header::CONTENT_LENGTH)
        .and_then(|(_, v)| v.to_str().ok()?.parse().ok())
        .or_else(|| http_body::Body::size_hint(res.body()).exact())
}

/// Applies and emits the request's `http.request` event. A blocked request is not applied to
/// the rules (it never reached the application, and its own 403 must not count as probing);
/// a throttled one is, so a client that ignores 429s escalates.
pub(crate) fn record(
    ctx: &RequestCtx,
    status: Option<StatusCode>,
    bytes: impl FnOnce() -> Option<u64>,
    start: Instant,
) {
    let siem = &ctx.siem;
    siem.engine().count_verdict(ctx.gate.action);
    #[cfg(feature = "metrics")]
    crate::metrics::event(EventName::HTTP_REQUEST.as_str(), ctx.gate.action);
    let apply = ctx.gate.action != Action::Block
        && siem
            .engine()
            .wants_request(status.map(|s| s.as_u16()), ctx.gate.action);
    if !apply && !siem.records_requests() {
        // Neither a rule nor a sink would read it: count it and skip building it.
        siem.engine().count_event();
        return;
    }
    // Read the clock only for an event that is built.
    let latency = start.elapsed();
    // The response time, from the request's start on the SIEM's clock: no second clock read.
    let latency_ms = i64::try_from(latency.as_millis()).unwrap_or(i64::MAX);
    let at = jiff::Timestamp::from_millisecond(ctx.started_ms.saturating_add(latency_ms))
        .unwrap_or_else(|_| siem.now());
    let records = siem.records_requests();
    // An event for the sinks is filled into a spent one from the pipeline's pool when there is
    // one: its strings keep their buffers, so the request's thread allocates nothing for it
    // (and the allocations are not freed on the pipeline's thread, which glibc makes costly).
    let mut local;
    let mut shared = None;
    let e: &mut Event = if records {
        let spent = shared.insert(
            siem.take_spent()
                .unwrap_or_else(|| Arc::new(Event::unfilled())),
        );
        // Unshared (the pool only keeps events no sink holds): this never clones.
        Arc::make_mut(spent)
    } else {
        local = Event::unfilled();
        &mut local
    };
    let (id, subject, user_agent, http, verdict) = e.reuse_as(EventName::HTTP_REQUEST, at);
    // `Subject` and `Verdict` clone into an existing value keeping its buffers.
    subject.clone_from(&ctx.subject);
    ctx.fill_user_agent(user_agent);
    // A request without an id of its own gets the event's, formatted into a stack buffer
    // (`to_string` goes through `fmt` machinery).
    let mut buf = [0; 36];
    let own_id = records.then(|| crate::event::id::hyphenated_str(&id, &mut buf));
    let http = http.get_or_insert_with(HttpInfo::default);
    ctx.fill_http_info(http, own_id);
    http.status = status.map(|s| s.as_u16());
    http.latency_us = Some(latency.as_micros().min(u64::MAX as u128) as u64);
    http.bytes = bytes();
    match verdict {
        Some(v) => v.clone_from(&ctx.gate),
        None => *verdict = Some(ctx.gate.clone()),
    }
    if apply {
        siem.engine().ingest_only(e);
    } else {
        siem.engine().count_event();
    }
    if let Some(event) = shared {
        siem.emit_shared(event);
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body_util::{Full, StreamBody};

    use super::*;

    fn response<B>(body: B, length: Option<&'static str>) -> Response<B> {
        let mut res = Response::new(body);
        res.headers_mut()
            .insert(http::header::CONTENT_TYPE, "text/plain".parse().unwrap());
        if let Some(l) = length {
            res.headers_mut()
                .insert(http::header::CONTENT_LENGTH, l.parse().unwrap());
        }
        res
    }

    #[test]
    fn a_response_size_comes_from_its_content_length_else_its_body() {
        let full = || Full::new(Bytes::from_static(b"ok"));
        assert_eq!(response_bytes(&response(full(), None)), Some(2));
        // The header wins (a HEAD response says how long the body would be).
        assert_eq!(response_bytes(&response(full(), Some("1234"))), Some(1234));
        // A header that is not a number is ignored.
        assert_eq!(response_bytes(&response(full(), Some("many"))), Some(2));
        // A body of unknown size, and no header: unknown.
        let stream = || {
            StreamBody::new(futures_util::stream::empty::<
                Result<http_body::Frame<Bytes>, std::convert::Infallible>,
            >())
        };
        assert_eq!(response_bytes(&response(stream(), None)), None);
        assert_eq!(response_bytes(&response(stream(), Some("7"))), Some(7));
    }
}
