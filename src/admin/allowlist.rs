//! `GET`, `POST` and `DELETE /api/allowlist`: networks never acted against, changed at run
//! time.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;

use super::{ok, Admin, ApiError, Caller, MAX_DURATION, MIN_DURATION};
use crate::engine::{AllowListError, Dur};
use crate::event::Event;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    cidr: String,
    #[serde(rename = "for", default)]
    dur: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RemoveQuery {
    cidr: String,
}

fn refused(e: &AllowListError) -> ApiError {
    let status = match e {
        AllowListError::Invalid(_) | AllowListError::TooBroad(_) => StatusCode::BAD_REQUEST,
        AllowListError::Full | AllowListError::Configured(_) => StatusCode::CONFLICT,
        AllowListError::NotFound(_) => StatusCode::NOT_FOUND,
    };
    ApiError::new(status, e.to_string())
}

impl Admin {
    /// Records an allow-list change: no subject (a network), the network as `cidr`.
    fn record_network(&self, name: &'static str, cidr: &str, dur: Option<Dur>, caller: Caller) {
        let mut event = Event::new(name).attr("cidr", cidr);
        if let Some(d) = dur {
            event = event.attr("for", d.to_string());
        }
        if let Some(addr) = caller.client {
            event = event.attr("client", addr.to_string());
        }
        event = event.attr("operator", &*self.operator);
        self.siem.fire_prepared(event);
    }
}

pub(super) async fn allowlist(State(admin): State<Admin>) -> Response {
    ok(serde_json::json!({ "networks": admin.siem.allowed_networks() }))
}

pub(super) async fn allowlist_add(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|r| ApiError::new(r.status(), r.body_text()))?;
    let parsed: AddBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "expected a JSON body such as {{\"cidr\": \"198.51.100.0/24\", \"for\": \"1h\"}} \
                 (\"for\" optional: until removed): {e}"
            ),
        )
    })?;
    if let Some(d) = parsed.dur {
        if d.0 < MIN_DURATION || d.0 > MAX_DURATION {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("duration {d} out of range: from 1s to 365d"),
            ));
        }
    }
    let added = admin
        .siem
        .allow_network(&parsed.cidr, parsed.dur.map(|d| d.0))
        .map_err(|e| refused(&e))?;
    admin.record_network(
        "admin.allowlist.add",
        &added.net.to_string(),
        parsed.dur,
        caller,
    );
    Ok(ok(added))
}

pub(super) async fn allowlist_remove(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<RemoveQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("expected ?cidr=198.51.100.0/24 (percent-encode the slash or not): {e}"),
        )
    })?;
    let net = crate::engine::allowlist_parse(&q.cidr).map_err(|e| refused(&e))?;
    admin
        .siem
        .disallow_network(&net.to_string())
        .map_err(|e| refused(&e))?;
    admin.record_network("admin.allowlist.remove", &net.to_string(), None, caller);
    Ok(ok(serde_json::json!({ "removed": net.to_string() })))
}
