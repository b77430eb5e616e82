//! The tower middleware: identify, inspect, gate, and record every request.
//!
//! [`SiemLayer`] wraps any `Service<http::Request<B>>` whose response body yields [`Bytes`]:
//! an axum `Router`, a single handler service, or a plain hyper service.
//!
//! For every request, before the inner service runs:
//!
//! 1. **identify**: the client IP (socket peer by default; forwarding headers only from
//!    [trusted proxies](SiemLayer::trusted_proxies)), the session (a keyed hash of the
//!    [session cookie](SiemLayer::session_cookie)), the device and, when configured, the user;
//! 2. **inspect**: signature packs over path, query and user agent: a request that carries an
//!    attack tool's user agent is blocked on the spot;
//! 3. **gate**: the verdicts of those entities, read synchronously from the risk store:
//!    - `Block` → `403` with a small JSON body; the inner service is not called;
//!    - `Throttle` → `429` with `Retry-After`;
//!    - `StepUp` → the request goes on with `X-Step-Up-Required: <rule ids>` and the
//!      [`Verdict`] in its extensions; the response carries `X-Step-Up-Required: required`
//!      (no rule ids, which would tell an attacker what to tune against, unless
//!      [`SiemLayer::step_up_header_reasons`] is on);
//!    - `Allow` → the request goes on.
//!
//! Any `X-Step-Up-Required` the client sent, in any letter case, is removed first. After the
//! response head, one `http.request` event (method, route, path, status, latency, bytes,
//! client, user agent, request id, gate verdict) is applied to the engine and handed to the
//! pipeline. Nothing on this path waits for I/O.
//!
//! # Example
//!
//! ```
//! use axum::{routing::get, Router};
//! use tower_siem::{SecurityContext, Siem};
//!
//! async fn account(ctx: SecurityContext) -> &'static str {
//!     if ctx.verdict().is_suspicious() { "please confirm it's you" } else { "welcome back" }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let siem = Siem::builder().build()?;
//! let app: Router = Router::new()
//!     .route("/account", get(account))
//!     .layer(siem.layer().exclude("/healthz"));
//! # Ok(()) }
//! ```
//!
//! # Deployment caveat
//!
//! Behind a load balancer or reverse proxy, every request's socket peer is the proxy. Name the
//! proxies' addresses with [`SiemLayer::trusted_proxies`], or the proxy itself gets blocked.
//! Never trust forwarding headers from anywhere: the layer refuses a `/0` network.

mod body;
mod extract;
mod future;
mod service;

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use tower_layer::Layer;

pub use body::SiemBody;
pub use extract::{MissingSiemLayer, SecurityContext};
pub use future::ResponseFuture;
pub use service::SiemService;

use crate::engine::{Action, Verdict};
use crate::identify::{ForwardedHeader, IdentifyError, IpResolver};
use crate::Siem;

/// The header that tells the application to ask for stronger authentication.
pub const STEP_UP_HEADER: HeaderName = HeaderName::from_static("x-step-up-required");

/// The socket peer of a connection, for plain hyper services: insert it in each request's
/// extensions (axum's `ConnectInfo<SocketAddr>` is read too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// How the layer treats requests under a path prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoutePolicy {
    /// Inspect, gate and record (the default).
    Enforce,
    /// Inspect and record, tag step-ups, but never deny (partner webhooks, for instance).
    MonitorOnly,
    /// Deny anything suspicious: a step-up is answered like a block (admin consoles).
    Strict,
    /// Leave alone entirely: no inspection, no gate, no event (health checks).
    Exclude,
}

/// Names the user of a request before the handler runs (see [`SiemLayer::user_from`]).
pub type UserFn = Arc<dyn Fn(&http::HeaderMap, &http::Extensions) -> Option<String> + Send + Sync>;

/// Writes the response for a denied request.
pub type Responder = Arc<dyn Fn(&Verdict) -> Response<Bytes> + Send + Sync>;

pub(crate) struct LayerConfig {
    pub(crate) resolver: IpResolver,
    pub(crate) session_cookie: Option<String>,
    pub(crate) device_cookie: Option<String>,
    pub(crate) device_header: Option<HeaderName>,
    pub(crate) user_from: Option<UserFn>,
    pub(crate) routes: Vec<(String, RoutePolicy)>,
    pub(crate) step_up_on_response: bool,
    pub(crate) step_up_reasons: bool,
    pub(crate) responder: Responder,
}

impl Clone for LayerConfig {
    fn clone(&self) -> Self {
        LayerConfig {
            resolver: self.resolver.clone(),
            session_cookie: self.session_cookie.clone(),
            device_cookie: self.device_cookie.clone(),
            device_header: self.device_header.clone(),
            user_from: self.user_from.clone(),
            routes: self.routes.clone(),
            step_up_on_response: self.step_up_on_response,
            step_up_reasons: self.step_up_reasons,
            responder: self.responder.clone(),
        }
    }
}

impl LayerConfig {
    pub(crate) fn policy(&self, path: &str) -> RoutePolicy {
        let mut best: Option<&(String, RoutePolicy)> = None;
        for r in &self.routes {
            if path_has_prefix(path, &r.0) && best.is_none_or(|b| r.0.len() > b.0.len()) {
                best = Some(r);
            }
        }
        best.map_or(RoutePolicy::Enforce, |b| b.1)
    }
}

fn path_has_prefix(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/'),
        None => false,
    }
}

/// The default response for a denied request: `403 {"error":"forbidden"}`, or `429
/// {"error":"too_many_requests"}` with `Retry-After`. The reasons are not sent to the client
/// (they would teach an attacker the rules); they are in the response's extensions.
pub fn default_responder(v: &Verdict) -> Response<Bytes> {
    let (status, body) = match v.action {
        Action::Throttle => (
            StatusCode::TOO_MANY_REQUESTS,
            &b"{\"error\":\"too_many_requests\"}"[..],
        ),
        _ => (StatusCode::FORBIDDEN, &b"{\"error\":\"forbidden\"}"[..]),
    };
    let mut res = Response::new(Bytes::from_static(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    if let Some(secs) = v.retry_after_secs {
        res.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    res
}

/// The SIEM as a tower [`Layer`]. Cheap to clone; configure with the consuming setters.
#[derive(Clone)]
#[must_use]
pub struct SiemLayer {
    pub(crate) siem: Siem,
    pub(crate) config: Arc<LayerConfig>,
}

impl fmt::Debug for SiemLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SiemLayer")
            .field("resolver", &self.config.resolver)
            .field(
                "session_cookie",
                &self.config.session_cookie.as_ref().map(|_| "<set>"),
            )
            .field("routes", &self.config.routes)
            .field("step_up_on_response", &self.config.step_up_on_response)
            .field("step_up_reasons", &self.config.step_up_reasons)
            .finish_non_exhaustive()
    }
}

impl SiemLayer {
    /// A layer for this SIEM with the defaults: client IP is the socket peer, no session or
    /// device keys, step-ups echoed on the response.
    pub fn new(siem: Siem) -> Self {
        SiemLayer {
            siem,
            config: Arc::new(LayerConfig {
                resolver: IpResolver::peer_only(),
                session_cookie: None,
                device_cookie: None,
                device_header: None,
                user_from: None,
                routes: Vec::new(),
                step_up_on_response: true,
                step_up_reasons: false,
                responder: Arc::new(default_responder),
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut LayerConfig)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// Reads `X-Forwarded-For` only from peers inside these networks, walking from the right.
    ///
    /// # Errors
    /// A network that does not parse, or one that trusts everyone (`0.0.0.0/0`, `::/0`).
    pub fn trusted_proxies<I, S>(self, cidrs: I) -> Result<Self, IdentifyError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let header = ForwardedHeader::default();
        let resolver = IpResolver::trusting_proxies(cidrs)?.header(header);
        Ok(self.edit(|c| c.resolver = resolver))
    }

    /// Uses a fully configured resolver (forwarding header, prefixes).
    pub fn ip_resolver(self, resolver: IpResolver) -> Self {
        self.edit(|c| c.resolver = resolver)
    }

    /// The session cookie: its value, hashed, keys the session entity.
    pub fn session_cookie(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.edit(|c| c.session_cookie = Some(name))
    }

    /// A device cookie: its value, hashed, keys the device entity.
    pub fn device_cookie(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.edit(|c| c.device_cookie = Some(name))
    }

    /// A device header (for native apps): its value, hashed, keys the device entity.
    pub fn device_header(self, name: HeaderName) -> Self {
        self.edit(|c| c.device_header = Some(name))
    }

    /// Tells the layer who the user is before the handler runs (from a JWT subject your auth
    /// layer put in the extensions, for instance), so a user's verdict gates their requests.
    pub fn user_from<F>(self, f: F) -> Self
    where
        F: Fn(&http::HeaderMap, &http::Extensions) -> Option<String> + Send + Sync + 'static,
    {
        self.edit(|c| c.user_from = Some(Arc::new(f)))
    }

    /// Sets the policy for requests whose path starts with `prefix` (on a segment boundary);
    /// the longest matching prefix wins.
    pub fn route(self, prefix: impl Into<String>, policy: RoutePolicy) -> Self {
        let prefix = prefix.into();
        self.edit(|c| {
            c.routes.retain(|r| r.0 != prefix);
            c.routes.push((prefix, policy));
        })
    }

    /// Leaves requests under `prefix` alone ([`RoutePolicy::Exclude`]).
    pub fn exclude(self, prefix: impl Into<String>) -> Self {
        self.route(prefix, RoutePolicy::Exclude)
    }

    /// Whether a stepped-up request's response carries `X-Step-Up-Required` too (default on).
    pub fn step_up_on_response(self, yes: bool) -> Self {
        self.edit(|c| c.step_up_on_response = yes)
    }

    /// Whether the `X-Step-Up-Required` header on the *response* names the rules that fired
    /// (default off: it says `required`). The handler always sees the rule ids, in the
    /// request's `X-Step-Up-Required` header and in its [`Verdict`].
    ///
    /// # Deployment caveat
    ///
    /// Rule ids on the response tell an attacker exactly which detection to tune a payload
    /// against. Turn this on only where the client is trusted (an internal service, tests).
    pub fn step_up_header_reasons(self, yes: bool) -> Self {
        self.edit(|c| c.step_up_reasons = yes)
    }

    /// Replaces the response written for blocked and throttled requests.
    pub fn responder<F>(self, f: F) -> Self
    where
        F: Fn(&Verdict) -> Response<Bytes> + Send + Sync + 'static,
    {
        self.edit(|c| c.responder = Arc::new(f))
    }

    /// The SIEM behind this layer.
    pub fn siem(&self) -> &Siem {
        &self.siem
    }
}

impl<S> Layer<S> for SiemLayer {
    type Service = SiemService<S>;

    fn layer(&self, inner: S) -> SiemService<S> {
        SiemService::new(inner, self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        assert!(path_has_prefix("/health", "/health"));
        assert!(path_has_prefix("/health/live", "/health"));
        assert!(!path_has_prefix("/healthy", "/health"));
        assert!(path_has_prefix("/admin/x", "/admin/"));
    }
}
