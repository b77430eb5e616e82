use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use parking_lot::Mutex;
use tower_service::Service;

use super::extract::{RequestCtx, SecurityContext};
use super::future::{record, ResponseFuture};
use super::{PeerAddr, RoutePolicy, SiemBody, SiemLayer, STEP_UP_HEADER};
use crate::engine::{Action, Verdict};
use crate::event::{Redactor, Subject};

/// The service [`SiemLayer`] produces. See the [module docs](crate::layer).
#[derive(Clone, Debug)]
pub struct SiemService<S> {
    inner: S,
    layer: SiemLayer,
}

impl<S> SiemService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, layer: SiemLayer) -> Self {
        SiemService { inner, layer }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

fn peer_ip(ext: &http::Extensions) -> Option<IpAddr> {
    if let Some(ConnectInfo(addr)) = ext.get::<ConnectInfo<SocketAddr>>() {
        return Some(addr.ip());
    }
    let peer = ext.get::<PeerAddr>().map(|p| p.0.ip());
    if peer.is_none() {
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            tracing::warn!(
                "tower-siem: a request without a peer address; client-IP rules are off for such \
                 requests. Serve with `into_make_service_with_connect_info::<SocketAddr>()`, or \
                 insert `tower_siem::PeerAddr` into request extensions"
            );
        });
    }
    peer
}

/// The value of cookie `name`, from any `Cookie` header.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    for h in headers.get_all(http::header::COOKIE) {
        let Ok(s) = h.to_str() else { continue };
        for pair in s.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=') {
                if k == name && !v.is_empty() {
                    return Some(v.trim_matches('"'));
                }
            }
        }
    }
    None
}

/// What a recorded request's event takes from its headers: a client-supplied request id worth
/// keeping (1 to 128 visible ASCII characters), and the allow-listed headers, redacted.
///
/// One walk over the few names a request carries finds out whether either is there: cheaper
/// than hashing a name for each lookup, and most requests have neither.
fn recorded_headers(
    headers: &HeaderMap,
    redactor: &Redactor,
) -> (Option<HeaderValue>, Vec<(String, String)>) {
    const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");
    let (mut has_id, mut captured) = (false, false);
    for k in headers.keys() {
        if *k == X_REQUEST_ID {
            has_id = true;
        } else if redactor.captures(k) {
            captured = true;
        }
    }
    let id = has_id
        .then(|| headers.get(X_REQUEST_ID))
        .flatten()
        .filter(|v| {
            let b = v.as_bytes();
            !b.is_empty() && b.len() <= 128 && b.iter().all(|b| b.is_ascii_graphic())
        })
        .cloned();
    let captured = if captured {
        redactor.captured_headers(headers)
    } else {
        Vec::new()
    };
    (id, captured)
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SiemService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes>,
{
    type Response = Response<SiemBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // Whatever the client claims, only the layer decides about step-up. Scanning the names
        // is cheaper than hashing one for a lookup in the few headers most requests carry.
        if req.headers().keys().any(|k| k == STEP_UP_HEADER) {
            req.headers_mut().remove(STEP_UP_HEADER);
        }
        let cfg = &*self.layer.config;
        let policy = cfg.policy(req.uri().path());
        if policy == RoutePolicy::Exclude {
            return ResponseFuture::passthrough(self.inner.call(req));
        }
        let start = Instant::now();
        let siem = &self.layer.siem;
        let now = siem.now_millis();
        let headers = req.headers();

        let subject = Subject {
            ip: peer_ip(req.extensions()).map(|p| cfg.resolver.resolve(p, headers)),
            user: cfg
                .user_from
                .as_ref()
                .and_then(|f| f(headers, req.extensions()))
                .map(|u| siem.redactor().user_id_owned(u)),
            session: cfg
                .session_cookie
                .as_deref()
                .and_then(|n| cookie(headers, n))
                .map(|v| siem.redactor().hash_id(v)),
            device: cfg
                .device_cookie
                .as_deref()
                .and_then(|n| cookie(headers, n))
                .or_else(|| {
                    cfg.device_header
                        .as_ref()
                        .and_then(|h| headers.get(h)?.to_str().ok())
                })
                .map(|v| siem.redactor().hash_id(v)),
        };
        let user_agent = headers.get(http::header::USER_AGENT).cloned();
        let path = req.uri().path();
        let raw_query = req.uri().query();

        let hits = siem.engine().inspect_request(
            &subject,
            path,
            raw_query,
            user_agent.as_ref().map(HeaderValue::as_bytes),
            now,
        );
        let mut gate = siem.engine().verdict_at(&subject, now);
        match policy {
            RoutePolicy::MonitorOnly => gate.action = gate.action.min(Action::StepUp),
            RoutePolicy::Strict if gate.action == Action::StepUp => gate.action = Action::Block,
            _ => {}
        }

        let recording = siem.records_requests();
        // Only events that leave through a sink carry these; the rules never read them.
        let (request_id, captured) = if recording {
            recorded_headers(headers, siem.redactor())
        } else {
            (None, Vec::new())
        };
        let ctx = Arc::new(RequestCtx {
            siem: siem.clone(),
            user_agent,
            method: req.method().clone(),
            uri: req.uri().clone(),
            query: if recording {
                raw_query.and_then(|q| siem.redactor().query(q))
            } else {
                None
            },
            route: req.extensions().get::<MatchedPath>().cloned(),
            request_id,
            headers: captured,
            started_ms: now,
            gate,
            hits,
            fired: Mutex::new(None),
            subject,
        });

        if ctx.gate.action >= Action::Throttle {
            let mut res = (cfg.responder)(&ctx.gate);
            let bytes = res.body().len() as u64;
            record(&ctx, Some(res.status()), || Some(bytes), start);
            res.extensions_mut().insert(ctx.gate.clone());
            return ResponseFuture::deny(res);
        }
        if ctx.gate.action == Action::StepUp {
            if let Ok(v) = HeaderValue::from_str(&ctx.gate.reasons_header()) {
                req.headers_mut().insert(STEP_UP_HEADER, v);
            }
            // Allowed requests carry their (empty) verdict in the `SecurityContext` only.
            req.extensions_mut().insert::<Verdict>(ctx.gate.clone());
        }
        req.extensions_mut().insert(SecurityContext(ctx.clone()));
        ResponseFuture::call(self.inner.call(req), ctx, start, cfg.step_up_on_response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            http::header::COOKIE,
            HeaderValue::from_static("a=1; sid=abc; b=2"),
        );
        assert_eq!(cookie(&h, "sid"), Some("abc"));
        assert_eq!(cookie(&h, "si"), None);
        h.append(
            http::header::COOKIE,
            HeaderValue::from_static("dev=\"xyz\""),
        );
        assert_eq!(cookie(&h, "dev"), Some("xyz"));
    }

    #[test]
    fn recorded_headers_keep_a_sound_request_id_and_the_captured_headers() {
        let r = Redactor::default();
        let with = |pairs: &[(&'static str, &[u8])]| {
            let mut h = HeaderMap::new();
            h.append(http::header::HOST, HeaderValue::from_static("shop.example"));
            for (k, v) in pairs {
                h.append(*k, HeaderValue::from_bytes(v).unwrap());
            }
            recorded_headers(&h, &r)
        };
        assert_eq!(with(&[]), (None, vec![]));
        let (id, captured) = with(&[("x-request-id", b"req-42")]);
        assert_eq!(id.unwrap(), "req-42");
        assert!(captured.is_empty());
        // Too long, empty, or not visible ASCII: the event's own id is used instead.
        let long = [b'a'; 129];
        for bad in [&long[..], b"", b"two words", b"caf\xe9"] {
            assert_eq!(with(&[("x-request-id", bad)]).0, None, "{bad:?}");
        }
        assert_eq!(
            with(&[("x-request-id", &long[..128])]).0.unwrap().len(),
            128
        );
        let (id, captured) = with(&[
            ("referer", b"https://shop.example/cart?token=s3cret"),
            ("x-request-id", b"r-1"),
        ]);
        assert_eq!(id.unwrap(), "r-1");
        assert_eq!(
            captured,
            vec![(
                "referer".to_owned(),
                "https://shop.example/cart?token=[REDACTED]".to_owned()
            )]
        );
        // The same as the public walk over the allow-list.
        let mut h = HeaderMap::new();
        h.append(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain"),
        );
        assert_eq!(recorded_headers(&h, &r).1, r.headers(&h));
    }
}
