// Diesel table definitions, kept in step with `migrations/` (checked by the
// `db_schema` integration test).

diesel::table! {
    projects (id) {
        id -> Int8,
        name -> Text,
        slug -> Text,
        room_prefix -> Text,
        plan -> Text,
        rate_limit_per_minute -> Nullable<Int4>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Int8,
        project_id -> Int8,
        name -> Text,
        key_hash -> Bytea,
        key_prefix -> Text,
        key_last4 -> Text,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
        expires_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    idempotency_keys (project_id, key) {
        project_id -> Int8,
        key -> Text,
        request_hash -> Bytea,
        status_code -> Nullable<Int4>,
        response_body -> Nullable<Bytea>,
        response_content_type -> Nullable<Text>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    agents (id) {
        id -> Int8,
        project_id -> Int8,
        name -> Text,
        agent_type -> Text,
        dispatch_name -> Text,
        llm_provider -> Nullable<Text>,
        llm_model -> Nullable<Text>,
        stt_provider -> Nullable<Text>,
        stt_model -> Nullable<Text>,
        tts_provider -> Nullable<Text>,
        tts_model -> Nullable<Text>,
        tts_voice -> Nullable<Text>,
        instructions -> Nullable<Text>,
        greeting -> Nullable<Text>,
        tools -> Jsonb,
        knowledge_base_ids -> Array<Int8>,
        is_active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    rooms (id) {
        id -> Int8,
        project_id -> Int8,
        name -> Text,
        full_name -> Text,
        sid -> Nullable<Text>,
        status -> Text,
        empty_timeout -> Int4,
        max_participants -> Int4,
        metadata -> Text,
        created_at -> Timestamptz,
        closed_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    participants (id) {
        id -> Int8,
        project_id -> Int8,
        room_id -> Int8,
        sid -> Text,
        identity -> Text,
        name -> Text,
        kind -> Text,
        metadata -> Text,
        attributes -> Jsonb,
        joined_at -> Nullable<Timestamptz>,
        left_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    livekit_webhook_events (event_id) {
        event_id -> Text,
        event -> Text,
        room_name -> Text,
        received_at -> Timestamptz,
    }
}

diesel::table! {
    connection_secrets (id) {
        id -> Int8,
        project_id -> Int8,
        key_id -> Text,
        secret -> Text,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(agents -> projects (project_id));
diesel::joinable!(rooms -> projects (project_id));
diesel::joinable!(participants -> rooms (room_id));
diesel::joinable!(connection_secrets -> projects (project_id));
diesel::joinable!(api_keys -> projects (project_id));
diesel::joinable!(idempotency_keys -> projects (project_id));

diesel::allow_tables_to_appear_in_same_query!(
    projects,
    api_keys,
    idempotency_keys,
    agents,
    rooms,
    participants,
    livekit_webhook_events,
    connection_secrets,
);
