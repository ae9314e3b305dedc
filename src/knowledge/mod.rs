//! Knowledge bases, the capability's newer parts: documents (adding them,
//! with the rules shared by uploads, ingest and crawled pages; listing and
//! deleting them) and web sources (crawled, refreshed). Parsing, chunking,
//! embedding and the background indexer are in [`crate::rag`]; the original
//! knowledge-base endpoints are in `routes::knowledge`, whose scope mounts
//! these routes with [`configure`].

pub mod documents;
pub mod sources;

use crate::routes::allow;
use actix_web::web;

/// Registers the documents and sources routes (inside the
/// `/knowledge-bases` scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/{kb_id}/documents/{doc_id}")
            .route(web::get().to(documents::http::get_document))
            .route(web::delete().to(documents::http::delete_document))
            .default_service(allow(&["GET", "DELETE"])),
    )
    .service(
        web::resource("/{kb_id}/sources")
            .route(web::get().to(sources::http::list_sources))
            .route(web::post().to(sources::http::create_source))
            .default_service(allow(&["GET", "POST"])),
    )
    .service(
        web::resource("/{kb_id}/sources/{source_id}")
            .route(web::get().to(sources::http::get_source))
            .route(web::delete().to(sources::http::delete_source))
            .default_service(allow(&["GET", "DELETE"])),
    )
    .service(
        web::resource("/{kb_id}/sources/{source_id}/pages")
            .route(web::get().to(sources::http::list_source_pages))
            .default_service(allow(&["GET"])),
    )
    .service(
        web::resource("/{kb_id}/sources/{source_id}/refresh")
            .route(web::post().to(sources::http::refresh_source))
            .default_service(allow(&["POST"])),
    );
}
