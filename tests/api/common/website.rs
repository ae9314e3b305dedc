//! A small website for crawl tests: a real HTTP server on 127.0.0.1 serving
//! pages the test defines (and changes), answering conditional requests by
//! ETag when a page has one, redirecting where told, and logging every
//! request with its conditional headers.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A page of the site.
#[derive(Debug, Clone)]
pub struct SitePage {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    /// Sent as `ETag`; a matching `If-None-Match` is answered 304.
    pub etag: Option<String>,
    /// Sent as `Location` (with a 3xx status).
    pub location: Option<String>,
}

impl SitePage {
    /// A 200 HTML page.
    pub fn html(body: &str) -> Self {
        Self {
            status: 200,
            content_type: "text/html; charset=utf-8".into(),
            body: body.as_bytes().to_vec(),
            etag: None,
            location: None,
        }
    }

    /// A 200 plain-text body (robots.txt).
    pub fn text(body: &str) -> Self {
        Self {
            content_type: "text/plain".into(),
            ..Self::html(body)
        }
    }

    /// With an ETag.
    pub fn with_etag(mut self, etag: &str) -> Self {
        self.etag = Some(etag.into());
        self
    }

    /// A redirect to `location`.
    pub fn redirect(status: u16, location: &str) -> Self {
        Self {
            status,
            location: Some(location.into()),
            ..Self::html("")
        }
    }

    /// A bare status.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            ..Self::html("")
        }
    }
}

/// A request the site received.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub if_none_match: Option<String>,
    pub user_agent: Option<String>,
    /// What was answered.
    pub status: u16,
}

#[derive(Default)]
struct Shared {
    pages: Mutex<HashMap<String, SitePage>>,
    hits: Mutex<Vec<Hit>>,
}

/// A running site.
pub struct Website {
    /// `http://127.0.0.1:<port>`
    pub base: String,
    shared: Arc<Shared>,
    handle: actix_web::dev::ServerHandle,
}

async fn serve(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let page = shared.pages.lock().unwrap().get(req.path()).cloned();
    let if_none_match = header("if-none-match");
    let (status, res) = match page {
        None => (404, HttpResponse::NotFound().body("not found")),
        Some(p) if p.etag.is_some() && p.etag == if_none_match => (
            304,
            HttpResponse::NotModified()
                .insert_header(("ETag", p.etag.clone().unwrap_or_default()))
                .finish(),
        ),
        Some(p) => {
            let mut b =
                HttpResponse::build(actix_web::http::StatusCode::from_u16(p.status).unwrap());
            b.insert_header(("Content-Type", p.content_type.clone()));
            if let Some(e) = &p.etag {
                b.insert_header(("ETag", e.clone()));
            }
            if let Some(l) = &p.location {
                b.insert_header(("Location", l.clone()));
            }
            (p.status, b.body(p.body.clone()))
        }
    };
    shared.hits.lock().unwrap().push(Hit {
        path: req.path().to_owned(),
        if_none_match,
        user_agent: header("user-agent"),
        status,
    });
    res
}

impl Website {
    /// Starts an empty site.
    pub fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let data = web::Data::from(shared.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .default_service(web::to(serve))
                })
                .workers(1)
                .bind(("127.0.0.1", 0))
                .expect("bind website");
                let addr = server.addrs()[0];
                let server = server.run();
                tx.send((addr, server.handle())).unwrap();
                let _ = server.await;
            });
        });
        let (addr, handle) = rx.recv().unwrap();
        Website {
            base: format!("http://{addr}"),
            shared,
            handle,
        }
    }

    /// Serves (or replaces) a page at a path.
    pub fn set(&self, path: &str, page: SitePage) {
        self.shared
            .pages
            .lock()
            .unwrap()
            .insert(path.to_owned(), page);
    }

    /// Removes a page (404 from then on).
    pub fn remove(&self, path: &str) {
        self.shared.pages.lock().unwrap().remove(path);
    }

    /// `base + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Every request so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().unwrap().clone()
    }

    /// Forgets the requests so far.
    pub fn clear_hits(&self) {
        self.shared.hits.lock().unwrap().clear();
    }
}

impl Drop for Website {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}
