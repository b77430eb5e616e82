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
use crate::event::Subject;

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

/// Headers HTTP allows once per request.
const SINGLETONS: [http::HeaderName; 6] = [
    http::header::HOST,
    http::header::USER_AGENT,
    http::header::CONTENT_LENGTH,
    http::header::AUTHORIZATION,
    http::header::REFERER,
    http::header::ORIGIN,
];

/// Inspects every value of a repeated `User-Agent` (the first one already was), and reports
/// any singleton header given more than once.
fn repeated_headers(
    siem: &crate::Siem,
    subject: &Subject,
    headers: &HeaderMap,
    now: i64,
    hits: &mut Vec<crate::signature::Hit>,
) {
    let mut repeated = String::new();
    for name in &SINGLETONS {
        let mut values = headers.get_all(name).iter();
        let (Some(_), Some(second)) = (values.next(), values.next()) else {
            continue;
        };
        if !repeated.is_empty() {
            repeated.push(',');
        }
        repeated.push_str(name.as_str());
        if *name == http::header::USER_AGENT {
            for v in std::iter::once(second).chain(values) {
                for h in siem.engine().inspect_user_agent(subject, v.as_bytes(), now) {
                    if !hits.iter().any(|x| x.pack == h.pack) {
                        hits.push(h);
                    }
                }
            }
        }
    }
    if !repeated.is_empty() {
        hits.extend(
            siem.engine()
                .report_duplicate_headers(subject, &repeated, now),
        );
    }
}

/// A client-supplied request id worth keeping: 1 to 128 visible ASCII characters.
fn request_id(headers: &HeaderMap) -> Option<HeaderValue> {
    const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");
    // Most requests have no id: scanning the few names a request carries (comparing only those
    // of the right length) is cheaper than hashing the name for a lookup, and the lookup runs
    // only for a request that has one.
    let len = X_REQUEST_ID.as_str().len();
    if !headers
        .keys()
        .any(|k| k.as_str().len() == len && *k == X_REQUEST_ID)
    {
        return None;
    }
    let v = headers.get(X_REQUEST_ID)?;
    let b = v.as_bytes();
    (!b.is_empty() && b.len() <= 128 && b.iter().all(|b| b.is_ascii_graphic())).then(|| v.clone())
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

        let mut hits = siem.engine().inspect_request(
            &subject,
            path,
            raw_query,
            user_agent.as_ref().map(HeaderValue::as_bytes),
            now,
        );
        // A header name given twice: rare, and a way to hide a second value. Counting values
        // against names costs nothing when no name repeats.
        if headers.len() != headers.keys_len() {
            repeated_headers(siem, &subject, headers, now, &mut hits);
        }
        let mut gate = siem.engine().verdict_at(&subject, now);
        match policy {
            RoutePolicy::MonitorOnly => gate.action = gate.action.min(Action::StepUp),
            RoutePolicy::Strict if gate.action == Action::StepUp => gate.action = Action::Block,
            _ => {}
        }

        let recording = siem.records_requests();
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
            // Only events that leave through a sink carry them; the rules never read them.
            request_id: if recording { request_id(headers) } else { None },
            headers: if recording {
                siem.redactor().headers(headers)
            } else {
                Vec::new()
            },
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
        ResponseFuture::call(
            self.inner.call(req),
            ctx,
            start,
            cfg.step_up_on_response.then_some(cfg.step_up_reasons),
        )
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
    fn a_request_id_is_kept_only_when_sound() {
        let with = |v: &[u8]| {
            let mut h = HeaderMap::new();
            h.append(http::header::HOST, HeaderValue::from_static("shop.example"));
            h.append("x-request-id", HeaderValue::from_bytes(v).unwrap());
            request_id(&h)
        };
        let mut h = HeaderMap::new();
        h.append(http::header::HOST, HeaderValue::from_static("shop.example"));
        assert_eq!(request_id(&h), None);
        assert_eq!(with(b"req-42").unwrap(), "req-42");
        // Too long, empty, or not visible ASCII: the event's own id is used instead.
        let long = [b'a'; 129];
        for bad in [&long[..], b"", b"two words", b"caf\xe9"] {
            assert_eq!(with(bad), None, "{bad:?}");
        }
        assert_eq!(with(&long[..128]).unwrap().len(), 128);
        // Other names of the same length are not it; the id is found among them.
        h.append(http::header::CONTENT_TYPE, HeaderValue::from_static("a/b"));
        h.append("x-request-ie", HeaderValue::from_static("nope"));
        assert_eq!(request_id(&h), None);
        h.append("x-request-id", HeaderValue::from_static("req-7"));
        assert_eq!(request_id(&h).unwrap(), "req-7");
    }
}
