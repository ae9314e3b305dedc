//! Knowledge bases (contract section 11): CRUD, documents and raw-text
//! ingest, reindex, chunks, and semantic search.

pub mod bases;
pub mod chunks;
pub mod documents;
pub mod search;

use super::allow;
use crate::error::ApiError;
use actix_web::web;

/// Largest document (upload or ingest), in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 10 * 1024 * 1024;
/// Largest request body under `/knowledge-bases`: a document and its form
/// or JSON envelope.
pub const BODY_LIMIT: usize = MAX_DOCUMENT_BYTES + 64 * 1024;

/// 404 for a knowledge base outside the caller's project.
pub fn kb_missing(e: diesel::result::Error) -> ApiError {
    match e {
        diesel::result::Error::NotFound => ApiError::not_found("Knowledge base"),
        other => other.into(),
    }
}

/// Registers the `/knowledge-bases` routes (inside its scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    // Ingest takes documents as large as uploads.
    let ingest_json = web::JsonConfig::default()
        .limit(BODY_LIMIT)
        .error_handler(|err, _| ApiError::from(err).into());
    cfg.service(
        web::resource("")
            .route(web::get().to(bases::list_knowledge_bases))
            .route(web::post().to(bases::create_knowledge_base))
            .default_service(allow(&["GET", "POST"])),
    )
    .service(
        web::resource("/{kb_id}")
            .route(web::get().to(bases::get_knowledge_base))
            .route(web::delete().to(bases::delete_knowledge_base))
            .default_service(allow(&["GET", "DELETE"])),
    )
    .service(
        web::resource("/{kb_id}/documents")
            .route(web::get().to(crate::knowledge::documents::http::list_documents))
            .route(web::post().to(documents::upload_document))
            .default_service(allow(&["GET", "POST"])),
    )
    .service(
        web::resource("/{kb_id}/ingest")
            .app_data(ingest_json)
            .route(web::post().to(documents::ingest_text))
            .default_service(allow(&["POST"])),
    )
    .service(
        web::resource("/{kb_id}/reindex")
            .route(web::post().to(documents::reindex_knowledge_base))
            .default_service(allow(&["POST"])),
    )
    .service(
        web::resource("/{kb_id}/chunks")
            .route(web::get().to(chunks::list_chunks))
            .default_service(allow(&["GET"])),
    )
    .service(
        web::resource("/{kb_id}/chunks/{chunk_id}")
            .route(web::put().to(chunks::update_chunk))
            .route(web::delete().to(chunks::delete_chunk))
            .default_service(allow(&["PUT", "DELETE"])),
    )
    .configure(crate::knowledge::configure);
}

/// Registers `/knowledge/search` (outside the `/knowledge-bases` scope).
pub fn configure_search(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/knowledge/search")
            .route(web::post().to(search::search_knowledge))
            .default_service(allow(&["POST"])),
    );
}
