//! `GET /api/rules` and `POST /api/rules/reload`: the rules in force, and a reload of the
//! rules file without a restart.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;

use super::{ok, Admin, ApiError, Caller};
use crate::event::Event;

/// The rules in force (id, kind, shadow), the rules file and the last reload.
pub(super) async fn rules(State(admin): State<Admin>) -> Response {
    ok(admin.siem.rules_status())
}

/// Reloads the rules file the SIEM knows; 409 when it knows none, 422 with the error (line,
/// rule, field) when the file is refused and the rules in force stay.
pub(super) async fn rules_reload(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    let Some(file) = admin.siem.rules_file() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no rules file to reload: build the SIEM with `SiemBuilder::rules_file`, or call \
             `Siem::watch_rules` or `Siem::reload_rules_from_file`",
        ));
    };
    // Reading the file and compiling the signature packs may take a while: off the runtime.
    let siem = admin.siem.clone();
    let result = tokio::task::spawn_blocking(move || siem.reload_rules_file())
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "reload failed"))?;
    let mut event = Event::new("admin.rules.reload").attr("file", file.display().to_string());
    let answer = match result {
        Some(Ok(report)) => {
            event = event.attr("outcome", "success");
            Ok(ok(serde_json::json!({
                "outcome": "success",
                "file": file,
                "report": report,
            })))
        }
        Some(Err(e)) => {
            let message: String = e.to_string().chars().take(512).collect();
            event = event
                .attr("outcome", "failure")
                .attr("error", message.clone());
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("rules refused, the rules in force stay: {message}"),
            ))
        }
        // The file was forgotten meanwhile: cannot happen (a path is never unset).
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
            "no rules file to reload",
        )),
    };
    if let Some(addr) = caller.client {
        event = event.attr("client", addr.to_string());
    }
    event = event.attr("operator", &*admin.operator);
    admin.siem.fire_prepared(event);
    answer
}
