//! The OpenAPI 3.1 document, generated from the code.
//!
//! Each service's `routes()` registers its handlers with `utoipa_axum::routes!`, which adds the
//! axum route and the handler's `#[utoipa::path]` operation together: a route cannot be served
//! without being documented, nor documented without being served. Request and response schemas
//! are derived (`ToSchema`) from the very types the handlers parse and answer.

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use super::AppState;
use super::error::ApiError;

/// The path the document is served on.
pub const PATH: &str = "/openapi.json";

/// The security scheme every write names: `Authorization: Bearer <token>`.
pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "fab",
        description = "APC, FDC and central specs of a wafer fab. Writes need `Authorization: Bearer <token>` and an `Idempotency-Key` (or `X-Request-Id`) header; a retry with the same key gets the original answer.",
    ),
    modifiers(&Bearer),
    components(schemas(ApiError)),
)]
struct Base;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token of FAB_TOKENS; its role (tool, engineer, admin) decides which writes it may make",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document of `routes`.
pub(super) fn document(routes: OpenApiRouter<AppState>) -> Document {
    split(routes).1
}

/// The axum router of `routes` with `GET /openapi.json` serving their document, and that document.
pub(super) fn split(routes: OpenApiRouter<AppState>) -> (Router<AppState>, Document) {
    let (router, document) = OpenApiRouter::with_openapi(Base::openapi())
        .merge(routes)
        .split_for_parts();
    let json: Arc<str> = match document.to_json() {
        Ok(json) => json.into(),
        // Serialising a document of plain maps and strings cannot fail; say so if it ever does.
        Err(e) => {
            serde_json::json!({ "error": format!("cannot encode the OpenAPI document: {e}") })
                .to_string()
                .into()
        }
    };
    let router = router.route(
        PATH,
        get(move || {
            let json = Arc::clone(&json);
            async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    json.to_string(),
                )
                    .into_response()
            }
        }),
    );
    (router, document)
}
