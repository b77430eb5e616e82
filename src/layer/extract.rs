use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, Method, StatusCode, Uri};
use parking_lot::Mutex;

use crate::engine::{Action, Verdict};
use crate::event::{assign, assign_opt, Event, HttpInfo, Subject};
use crate::signature::Hit;
use crate::Siem;

/// What the layer learned about a request; shared by the extractor and the response future.
pub(crate) struct RequestCtx {
    pub(crate) siem: Siem,
    pub(crate) subject: Subject,
    /// Kept as the header value (a reference-counted slice of the request head): it becomes a
    /// `String` only when an event is built.
    pub(crate) user_agent: Option<HeaderValue>,
    pub(crate) method: Method,
    /// Cloning a `Uri` shares its bytes; the path is copied only when an event is built.
    pub(crate) uri: Uri,
    /// Redacted, and only when events leave through a sink.
    pub(crate) query: Option<String>,
    pub(crate) route: Option<MatchedPath>,
    /// A client-supplied `X-Request-Id` that passed the checks in `service::request_id`.
    pub(crate) request_id: Option<HeaderValue>,
    /// When the layer first saw the request (ms since the epoch, from the SIEM's clock).
    pub(crate) started_ms: i64,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) gate: Verdict,
    pub(crate) hits: Vec<Hit>,
    /// The strongest suspicious verdict a handler got back from `fire`.
    pub(crate) fired: Mutex<Option<Verdict>>,
}

impl RequestCtx {
    /// The user agent as text (invalid UTF-8 replaced).
    pub(crate) fn user_agent(&self) -> Option<String> {
        let mut ua = None;
        self.fill_user_agent(&mut ua);
        ua
    }

    /// The request's side of the HTTP exchange (no status, latency or size yet).
    pub(crate) fn http_info(&self) -> HttpInfo {
        let mut http = HttpInfo::default();
        self.fill_http_info(&mut http, None);
        http
    }

    /// Writes the user agent into `slot`, reusing the `String` already there.
    pub(crate) fn fill_user_agent(&self, slot: &mut Option<String>) {
        match self.user_agent.as_ref() {
            None => *slot = None,
            // A reused event often held the same user agent (one client, or one browser
            // build, sends many requests): equal bytes are already valid text, so neither the
            // UTF-8 check nor the copy is needed.
            Some(v)
                if slot
                    .as_deref()
                    .is_some_and(|s| s.as_bytes() == v.as_bytes()) => {}
            Some(v) => match std::str::from_utf8(v.as_bytes()) {
                // The common case, checked word by word; the lossy path walks byte by byte.
                Ok(ua) => assign_opt(slot, Some(ua)),
                Err(_) => *slot = Some(String::from_utf8_lossy(v.as_bytes()).into_owned()),
            },
        }
    }

    /// Writes the request's side of the exchange into `http`, reusing its buffers; status,
    /// latency and size are cleared, and the request id is the client's (when it passed the
    /// checks) or else `own_id`. Every field is named, so none is left from an earlier request.
    pub(crate) fn fill_http_info(&self, http: &mut HttpInfo, own_id: Option<&str>) {
        let HttpInfo {
            method,
            route,
            path,
            query,
            status,
            latency_us,
            bytes,
            request_id,
            headers,
        } = http;
        assign(method, self.method.as_str());
        assign_opt(route, self.route.as_ref().map(|r| r.as_str()));
        // Reset, verify and invite links carry their token in the path.
        assign(path, &self.siem.redactor().path(self.uri.path()));
        assign_opt(query, self.query.as_deref());
        *status = None;
        *latency_us = None;
        *bytes = None;
        let given = self.request_id.as_ref().and_then(|v| v.to_str().ok());
        assign_opt(request_id, given.or(own_id));
        headers.clone_from(&self.headers);
    }
}

/// The request's security context, for handlers: the gate's [`Verdict`], and a
/// [`fire`](SecurityContext::fire) that fills in client IP, user agent, session and route.
///
/// ```
/// use axum::Json;
/// use tower_siem::{Event, SecurityContext};
///
/// async fn login(ctx: SecurityContext, Json(form): Json<serde_json::Value>) -> &'static str {
///     let user = form["username"].as_str().unwrap_or_default();
///     let password_ok = false; // check it
///     if !password_ok {
///         ctx.fire(Event::new("auth.failure").user(user));
///         return "no";
///     }
///     if ctx.fire(Event::new("auth.success").user(user)).is_suspicious() {
///         return "second factor, please";
///     }
///     "welcome"
/// }
/// ```
///
/// Extracting it without [`SiemLayer`](crate::SiemLayer) in front fails with
/// [`MissingSiemLayer`], a 500 that says so.
#[derive(Clone)]
pub struct SecurityContext(pub(crate) Arc<RequestCtx>);

impl fmt::Debug for SecurityContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecurityContext")
            .field("ip", &self.0.subject.ip)
            .field("user", &self.0.subject.user)
            .field("verdict", &self.0.gate)
            .finish_non_exhaustive()
    }
}

impl SecurityContext {
    /// The verdict the gate applied to this request.
    pub fn verdict(&self) -> &Verdict {
        &self.0.gate
    }

    /// Whether the request was tagged for step-up, by the gate or by an event fired since.
    pub fn step_up_required(&self) -> bool {
        self.0.gate.action >= Action::StepUp
            || self
                .0
                .fired
                .lock()
                .as_ref()
                .is_some_and(|v| v.action >= Action::StepUp)
    }

    /// The client address (after trusted-proxy resolution).
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.0.subject.ip
    }

    /// Who the request is from, as far as the layer knows.
    pub fn subject(&self) -> &Subject {
        &self.0.subject
    }

    /// Signature matches on this request.
    pub fn signature_hits(&self) -> &[Hit] {
        &self.0.hits
    }

    /// The SIEM handle.
    pub fn siem(&self) -> &Siem {
        &self.0.siem
    }

    /// Fires an event about this request: client IP, session, device, user agent, method,
    /// path, route and request id are filled in where the event leaves them empty. Returns
    /// the verdict after the event was applied. A suspicious verdict is also echoed on the
    /// response as `X-Step-Up-Required` (when the layer is configured to).
    pub fn fire(&self, mut event: Event) -> Verdict {
        let c = &self.0;
        let s = &mut event.subject;
        if s.ip.is_none() {
            s.ip = c.subject.ip;
        }
        if s.session.is_none() {
            s.session.clone_from(&c.subject.session);
        }
        if s.device.is_none() {
            s.device.clone_from(&c.subject.device);
        }
        // The layer's user is already in stored form (hashed when so configured); the caller's
        // is not.
        match s.user.take() {
            Some(u) => s.user = Some(c.siem.redactor().user_id_owned(u)),
            None => s.user.clone_from(&c.subject.user),
        }
        if event.user_agent.is_none() {
            event.user_agent = c.user_agent();
        }
        if event.http.is_none() {
            event.http = Some(c.http_info());
        }
        let v = c.siem.fire_prepared(event);
        if v.action >= Action::StepUp {
            let mut slot = c.fired.lock();
            *slot = Some(match slot.take() {
                Some(prev) => prev.merge(v.clone()),
                None => v.clone(),
            });
        }
        v
    }
}

/// The rejection when [`SecurityContext`] is extracted without the layer.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct MissingSiemLayer;

impl fmt::Display for MissingSiemLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "SecurityContext needs tower_siem::SiemLayer: add `.layer(siem.layer())` to the router",
        )
    }
}

impl std::error::Error for MissingSiemLayer {}

impl IntoResponse for MissingSiemLayer {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SecurityContext {
    type Rejection = MissingSiemLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<SecurityContext>()
            .cloned()
            .ok_or(MissingSiemLayer)
    }
}
