//! The web dashboard: a small application of plain ES modules (no build
//! step, no framework) embedded in the binary, served under `/dashboard`,
//! that signs in with the account flows and drives Voxplane through its own
//! `/api/v1` (see docs/ARCHITECTURE.md, "The dashboard"). The pages the
//! e-mailed links open (`/verify-email`, `/confirm-email`, `/reset-password`,
//! `/accept-invitation`, `/sign-in`) are pages of the same application.
//! Sessions are cookies the page scripts cannot read ([`session`]).

pub mod session;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

/// The Content-Security-Policy of every dashboard response: only our own
/// scripts, styles, images, media and connections; no inline script.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; font-src 'self'; \
manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The pages e-mailed links (and bookmarks) open outside `/dashboard`.
pub const LINK_PAGES: &[&str] = &[
    "sign-in",
    "register",
    "verify-email",
    "confirm-email",
    "reset-password",
    "accept-invitation",
];

macro_rules! assets {
    ($($name:literal => $mime:literal),* $(,)?) => {
        /// Every embedded asset: name, content type, bytes.
        pub const ASSETS: &[(&str, &str, &[u8])] = &[
            $(($name, $mime, include_bytes!(concat!("assets/", $name))),)*
        ];
    };
}

assets! {
    "app.css" => "text/css; charset=utf-8",
    "app.js" => "text/javascript; charset=utf-8",
    "api.js" => "text/javascript; charset=utf-8",
    "ui.js" => "text/javascript; charset=utf-8",
    "icon.svg" => "image/svg+xml",
    "pages/auth.js" => "text/javascript; charset=utf-8",
    "pages/account.js" => "text/javascript; charset=utf-8",
    "pages/overview.js" => "text/javascript; charset=utf-8",
    "pages/keys.js" => "text/javascript; charset=utf-8",
    "pages/agents.js" => "text/javascript; charset=utf-8",
    "pages/team.js" => "text/javascript; charset=utf-8",
    "pages/live.js" => "text/javascript; charset=utf-8",
    "pages/supervise.js" => "text/javascript; charset=utf-8",
    "pages/sessions.js" => "text/javascript; charset=utf-8",
    "pages/webhooks.js" => "text/javascript; charset=utf-8",
    "pages/projects.js" => "text/javascript; charset=utf-8",
    "pages/knowledge.js" => "text/javascript; charset=utf-8",
    "pages/kb_sources.js" => "text/javascript; charset=utf-8",
    "pages/sip.js" => "text/javascript; charset=utf-8",
    "pages/sip_edit.js" => "text/javascript; charset=utf-8",
    "pages/chat.js" => "text/javascript; charset=utf-8",
}

const INDEX: &str = include_str!("assets/index.html");

fn secured(mut res: HttpResponse) -> HttpResponse {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Links carry one-time tokens in their query: never send them on.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// The application's one HTML page (every dashboard path); sets the CSRF
/// cookie when the browser has none yet.
pub async fn index(req: HttpRequest, state: web::Data<crate::state::AppState>) -> HttpResponse {
    let mut res = HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(INDEX);
    if session::cookie(req.headers(), session::CSRF_COOKIE).is_none() {
        let tls = session::secure(&req, &state);
        let c = session::set_cookie(
            session::CSRF_COOKIE,
            &session::new_csrf(),
            "/",
            false,
            tls,
            None,
        );
        if let Ok(v) = HeaderValue::from_str(&c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    secured(res)
}

/// An embedded asset, or the envelope's 404.
pub async fn asset(path: web::Path<String>) -> HttpResponse {
    let name = path.into_inner();
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, mime, bytes)) => secured(
            HttpResponse::Ok()
                .content_type(*mime)
                // Assets change with the binary; revalidate cheaply.
                .insert_header((header::CACHE_CONTROL, "no-cache"))
                .insert_header((header::ETAG, etag()))
                .body(*bytes),
        ),
        None => secured(
            HttpResponse::NotFound()
                .content_type("text/plain; charset=utf-8")
                .body("No such dashboard file"),
        ),
    }
}

fn etag() -> String {
    format!("\"{}\"", env!("CARGO_PKG_VERSION"))
}

async fn to_dashboard() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, "/dashboard"))
        .finish()
}

/// Registers `/`, `/dashboard…`, the link pages and the session endpoints.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(to_dashboard))
        .route("/dashboard/assets/{file:.+}", web::get().to(asset))
        .service(
            web::scope("/dashboard/session")
                .route("/login", web::post().to(session::login))
                .route("/refresh", web::post().to(session::refresh))
                .route("/logout", web::post().to(session::logout)),
        )
        .route("/dashboard", web::get().to(index))
        .route("/dashboard/{page:.*}", web::get().to(index));
    for page in LINK_PAGES {
        cfg.route(&format!("/{page}"), web::get().to(index));
    }
}
