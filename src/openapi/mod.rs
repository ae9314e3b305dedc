//! The OpenAPI document, generated from the handlers' annotations, and the
//! Postman collection (workflows over its operations) and environment
//! generated from it. Both are committed under `openapi/`
//! and `postman/`; a test fails when the committed files drift from the code
//! (`make openapi` rewrites them).

use serde_json::{Map, Value, json};
use std::sync::OnceLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

pub mod fields;
mod links;
mod postman;
mod standard;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Voxplane API",
        description = "Multi-tenant control plane for LiveKit voice: tokens, rooms, agents, sessions, \
                       recordings, SIP, knowledge bases, webhooks, live monitoring and team chat.",
        license(name = "Apache-2.0")
    ),
    paths(
        crate::routes::ops::health,
        crate::routes::ops::ready,
        crate::routes::project::get_project,
        crate::routes::auth::signup::register,
        crate::routes::auth::signup::verify_email,
        crate::routes::auth::signup::resend_verification,
        crate::routes::auth::login::login,
        crate::routes::auth::login::refresh,
        crate::routes::auth::login::logout,
        crate::routes::auth::login::logout_all,
        crate::routes::auth::password::reset_password_request,
        crate::routes::auth::password::reset_password,
        crate::routes::auth::password::change_password,
        crate::routes::auth::me::get_me,
        crate::routes::auth::me::update_me,
        crate::routes::projects::crud::create_project,
        crate::routes::projects::crud::list_projects,
        crate::routes::projects::crud::get_project,
        crate::routes::projects::crud::update_project,
        crate::routes::projects::crud::delete_project,
        crate::routes::projects::members::list_members,
        crate::routes::projects::members::invite_member,
        crate::routes::projects::members::update_member,
        crate::routes::projects::members::remove_member,
        crate::routes::projects::members::list_invitations,
        crate::routes::projects::members::revoke_invitation,
        crate::routes::projects::members::accept_invitation,
        crate::routes::projects::keys::create_key,
        crate::routes::projects::keys::list_keys,
        crate::routes::projects::keys::delete_key,
        crate::routes::projects::keys::create_test_token,
        crate::routes::quota::get_quota,
        crate::routes::agents::list_agents,
        crate::routes::agents::create_agent,
        crate::routes::agents::get_agent,
        crate::routes::agents::update_agent,
        crate::routes::agents::delete_agent,
        crate::routes::agents::get_agent_tools,
        crate::routes::token::create_token,
        crate::rooms::http::create_room,
        crate::rooms::http::list_rooms,
        crate::rooms::http::get_room,
        crate::rooms::http::list_participants,
        crate::rooms::http::delete_room,
        crate::rooms::http::kick_participant,
        crate::recordings::http::start,
        crate::recordings::http::stop,
        crate::recordings::http::list,
        crate::recordings::http::detail,
        crate::recordings::http::download,
        crate::recordings::http::delete,
        crate::sip::http::list_trunks,
        crate::sip::http::create_trunk,
        crate::sip::http::update_trunk,
        crate::sip::http::delete_trunk,
        crate::sip::http::list_configs,
        crate::sip::http::create_config,
        crate::sip::http::update_config,
        crate::sip::http::delete_config,
        crate::sip::dial::dial,
        crate::routes::call_control::send_data,
        crate::routes::call_control::update_participant,
        crate::routes::call_control::mute_participant,
        crate::routes::connection_details::get_connection_details,
        crate::routes::connection_details::post_connection_details,
        crate::routes::connection_details::rotate_connection_secret,
        crate::routes::connection_details::get_connection_secret,
        crate::webhooks::http::create_webhook,
        crate::webhooks::http::list_webhooks,
        crate::webhooks::http::get_webhook,
        crate::webhooks::http::update_webhook,
        crate::webhooks::http::delete_webhook,
        crate::webhooks::http::rotate_secret,
        crate::webhooks::http::test_webhook,
        crate::webhooks::http::list_deliveries,
        crate::webhooks::http::get_delivery,
        crate::webhooks::http::redeliver,
        crate::webhooks::http::recover,
        crate::routes::sessions::create_session,
        crate::routes::sessions::list_sessions,
        crate::routes::sessions::get_session_detail,
        crate::routes::sessions::add_transcript,
        crate::routes::sessions::get_transcript,
        crate::routes::sessions::get_transcript_text,
        crate::routes::sessions::end_session,
        crate::supervisor::http::start_supervision,
        crate::supervisor::http::change_supervision,
        crate::supervisor::http::release_supervision,
        crate::transcripts::http::search_transcripts,
        crate::transcripts::http::export_sessions,
        crate::outcomes::http::update_session_outcome,
        crate::outcomes::http::get_dispositions,
        crate::outcomes::http::set_dispositions,
        crate::routes::usage::record_usage,
        crate::routes::usage::get_usage,
        crate::routes::livekit_webhook::receive_livekit_webhook,
        crate::routes::knowledge::bases::create_knowledge_base,
        crate::routes::knowledge::bases::list_knowledge_bases,
        crate::routes::knowledge::bases::get_knowledge_base,
        crate::routes::knowledge::bases::delete_knowledge_base,
        crate::routes::knowledge::documents::upload_document,
        crate::routes::knowledge::documents::ingest_text,
        crate::routes::knowledge::documents::reindex_knowledge_base,
        crate::routes::knowledge::chunks::list_chunks,
        crate::routes::knowledge::chunks::update_chunk,
        crate::routes::knowledge::chunks::delete_chunk,
        crate::routes::knowledge::search::search_knowledge,
        crate::knowledge::documents::http::list_documents,
        crate::knowledge::documents::http::get_document,
        crate::knowledge::documents::http::delete_document,
        crate::knowledge::sources::http::create_source,
        crate::knowledge::sources::http::list_sources,
        crate::knowledge::sources::http::get_source,
        crate::knowledge::sources::http::list_source_pages,
        crate::knowledge::sources::http::refresh_source,
        crate::knowledge::sources::http::delete_source,
        crate::chat::http::chats::fetch_chats,
        crate::chat::http::chats::fetch_archived,
        crate::chat::http::chats::create_chat,
        crate::chat::http::chats::create_group,
        crate::chat::http::chats::add_members,
        crate::chat::http::chats::remove_members,
        crate::chat::http::chats::rename_group,
        crate::chat::http::chats::get_members,
        crate::chat::http::chats::archive_chat,
        crate::chat::http::chats::unarchive_chat,
        crate::chat::http::messages::list_messages,
        crate::chat::http::messages::send_message,
        crate::chat::http::messages::mark_read,
        crate::chat::http::messages::search_messages,
        crate::chat::http::calls::start_call,
        crate::chat::http::calls::join_call,
        crate::chat::http::calls::end_call,
    ),
    components(schemas(
        crate::error::ErrorBody,
        crate::routes::usage::UsagePeriod,
        crate::routes::usage::UsageGroupBy,
        crate::knowledge::documents::http::KbDocumentStatus,
        crate::recordings::http::RecordingStatusFilter,
        crate::webhooks::http::DeliveryStatusFilter,
        crate::routes::sessions::SessionStatus,
        crate::routes::sessions::SessionType,
        crate::routes::sessions::Speaker,
        crate::routes::connection_details::ConnectionRole,
        crate::routes::connection_details::ConnectionAuth,
        crate::routes::knowledge::search::KbSearchMode,
        crate::supervisor::http::SupervisionMode,
        crate::routes::agents::AgentTool,
        crate::transcripts::http::TranscriptFormat,
        crate::transcripts::http::SessionExportFormat,
    )),
    modifiers(&Security),
    tags(
        (name = "Operations", description = "Liveness, readiness, metrics"),
        (name = "Project", description = "The project behind the API key"),
        (name = "Accounts", description = "Dashboard accounts: registration, e-mail verification, login with rotating refresh tokens, password reset"),
        (name = "Projects", description = "Projects of a signed-in account: members, invitations, API keys, test tokens"),
        (name = "Quota & Usage", description = "Plan limits, usage and costs"),
        (name = "Tokens", description = "LiveKit access tokens with agent dispatch"),
        (name = "Rooms", description = "LiveKit rooms of the project"),
        (name = "Agents", description = "AI agent configurations"),
        (name = "Recordings", description = "Audio recordings of rooms through LiveKit Egress"),
        (name = "SIP", description = "Telephony: SIP trunks, line configurations, outbound calls"),
        (name = "Sessions", description = "Call sessions, transcripts and costs"),
        (name = "Call Control", description = "Whisper/broadcast data, participant updates, mute"),
        (name = "Connection Details", description = "Connection details for users described by an integrator"),
        (name = "Webhooks", description = "Signed, retried event delivery to your endpoints"),
        (name = "LiveKit", description = "Inbound LiveKit webhooks"),
        (name = "Knowledge Bases", description = "Documents chunked and embedded in-process for semantic (RAG) search"),
        (name = "Team Chat", description = "Chats of a project's signed-in members (1:1 and group) with live delivery over /ws/chat, and voice calls in a chat (docs/CHAT.md)"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "Project API key (`pk_…`). `Authorization: Bearer pk_…` is accepted too.",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An account's access token (from /api/v1/auth/login). On the project API \
                         it needs `X-Project-Id` and acts with the member's role.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as pretty JSON (built once).
pub fn document_json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").into();
        let mut doc = serde_json::to_value(&doc).unwrap_or(Value::Null);
        standard::apply(&mut doc);
        links::apply(&mut doc);
        let mut s = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into());
        s.push('\n');
        s
    })
}

/// An example value for a schema: its `example`, else one built from its parts.
fn example_for(doc: &Value, schema: &Value, depth: usize) -> Value {
    if depth > 8 {
        return Value::Null;
    }
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap_or("");
        return example_for(doc, &doc["components"]["schemas"][name], depth + 1);
    }
    if let Some(e) = schema.get("example") {
        return e.clone();
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(first) = schema[key]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["type"] != "null"))
        {
            return example_for(doc, first, depth + 1);
        }
    }
    if let Some(first) = schema["enum"].as_array().and_then(|a| a.first()) {
        return first.clone();
    }
    let ty = match &schema["type"] {
        Value::Array(types) => types
            .iter()
            .find(|t| *t != "null")
            .cloned()
            .unwrap_or(Value::Null),
        t => t.clone(),
    };
    match ty.as_str() {
        Some("object") | None if schema.get("properties").is_some() => {
            let mut out = Map::new();
            for (k, v) in schema["properties"].as_object().unwrap_or(&Map::new()) {
                out.insert(k.clone(), example_for(doc, v, depth + 1));
            }
            Value::Object(out)
        }
        Some("array") => json!([example_for(doc, &schema["items"], depth + 1)]),
        Some("string") => json!("string"),
        Some("integer") => json!(0),
        Some("number") => json!(0.0),
        Some("boolean") => json!(true),
        Some("object") => json!({}),
        _ => Value::Null,
    }
}

/// The collection as pretty JSON, as committed.
pub fn postman_json() -> String {
    let doc: Value = serde_json::from_str(document_json()).unwrap_or(Value::Null);
    let mut s = serde_json::to_string_pretty(&postman::collection(&doc)).unwrap_or_default();
    s.push('\n');
    s
}

/// The Postman environment as pretty JSON, as committed.
pub fn postman_environment_json() -> String {
    let mut s = serde_json::to_string_pretty(&postman::environment()).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests;
