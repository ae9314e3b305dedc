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
        owner_account_id -> Nullable<Int8>,
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
        created_by -> Nullable<Int8>,
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
    connection_token_uses (project_id, jti_hash) {
        project_id -> Int8,
        jti_hash -> Bytea,
        expires_at -> Timestamptz,
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

diesel::table! {
    events (id) {
        id -> Int8,
        public_id -> Text,
        project_id -> Int8,
        event_type -> Text,
        data -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> Int8,
        project_id -> Int8,
        url -> Text,
        description -> Text,
        event_types -> Array<Text>,
        is_active -> Bool,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<Timestamptz>,
        disabled_reason -> Nullable<Text>,
        failing_since -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Int8,
        project_id -> Int8,
        endpoint_id -> Int8,
        event_id -> Int8,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        locked_until -> Nullable<Timestamptz>,
        last_status_code -> Nullable<Int4>,
        last_error -> Nullable<Text>,
        delivered_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        cycle_attempts -> Int4,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> Int8,
        delivery_id -> Int8,
        attempt -> Int4,
        status_code -> Nullable<Int4>,
        latency_ms -> Int4,
        response_body -> Nullable<Text>,
        error -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    knowledge_bases (id) {
        id -> Int8,
        project_id -> Int8,
        name -> Text,
        description -> Nullable<Text>,
        chunk_size -> Int4,
        chunk_overlap -> Int4,
        indexing_status -> Text,
        indexing_error -> Nullable<Text>,
        last_indexed_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql_types::{Tsvector, Vector};

    kb_chunks (id) {
        id -> Int8,
        project_id -> Int8,
        knowledge_base_id -> Int8,
        source -> Text,
        chunk_index -> Int4,
        content -> Text,
        embedding -> Vector,
        tsv -> Nullable<Tsvector>,
        is_active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        hnsw_pending -> Bool,
        page -> Nullable<Int4>,
        heading_path -> Array<Text>,
        url -> Nullable<Text>,
        heading_tsv -> Tsvector,
    }
}

diesel::table! {
    kb_documents (id) {
        id -> Int8,
        project_id -> Int8,
        knowledge_base_id -> Int8,
        name -> Text,
        kind -> Text,
        origin -> Text,
        source_id -> Nullable<Int8>,
        url -> Nullable<Text>,
        title -> Nullable<Text>,
        status -> Text,
        error -> Nullable<Text>,
        page_count -> Nullable<Int4>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    kb_sources (id) {
        id -> Int8,
        project_id -> Int8,
        knowledge_base_id -> Int8,
        url -> Text,
        mode -> Text,
        max_depth -> Int4,
        max_pages -> Int4,
        use_sitemap -> Bool,
        refresh_hours -> Nullable<Int4>,
        status -> Text,
        last_error -> Nullable<Text>,
        last_crawled_at -> Nullable<Timestamptz>,
        next_crawl_at -> Nullable<Timestamptz>,
        lease_until -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    kb_source_pages (id) {
        id -> Int8,
        source_id -> Int8,
        url -> Text,
        depth -> Int4,
        status -> Text,
        http_status -> Nullable<Int4>,
        last_error -> Nullable<Text>,
        etag -> Nullable<Text>,
        last_modified -> Nullable<Text>,
        content_sha256 -> Nullable<Text>,
        title -> Nullable<Text>,
        chunk_count -> Int4,
        fetched_at -> Nullable<Timestamptz>,
        indexed_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    kb_index_jobs (id) {
        id -> Int8,
        project_id -> Int8,
        knowledge_base_id -> Int8,
        source -> Text,
        kind -> Text,
        origin -> Text,
        content -> Text,
        attempts -> Int4,
        run_after -> Timestamptz,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(knowledge_bases -> projects (project_id));
diesel::joinable!(kb_chunks -> knowledge_bases (knowledge_base_id));
diesel::joinable!(kb_index_jobs -> knowledge_bases (knowledge_base_id));
diesel::joinable!(kb_documents -> knowledge_bases (knowledge_base_id));
diesel::joinable!(kb_sources -> knowledge_bases (knowledge_base_id));
diesel::joinable!(kb_source_pages -> kb_sources (source_id));
diesel::table! {
    sessions (id) {
        id -> Int8,
        project_id -> Int8,
        room_name -> Text,
        agent_config_id -> Nullable<Int8>,
        caller_identity -> Nullable<Text>,
        session_type -> Text,
        status -> Text,
        metadata -> Jsonb,
        summary -> Nullable<Text>,
        duration_seconds -> Nullable<Int4>,
        started_at -> Timestamptz,
        ended_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        room_sid -> Nullable<Text>,
        disposition -> Nullable<Text>,
        tags -> Array<Text>,
        notes -> Nullable<Text>,
        rating -> Nullable<Int2>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql_types::Tsvector;

    transcripts (id) {
        id -> Int8,
        project_id -> Int8,
        session_id -> Int8,
        speaker -> Text,
        content -> Text,
        timestamp_ms -> Int8,
        is_final -> Bool,
        created_at -> Timestamptz,
        search -> Nullable<Tsvector>,
    }
}

diesel::table! {
    usage_events (id) {
        id -> Int8,
        project_id -> Int8,
        session_id -> Nullable<Int8>,
        agent_config_id -> Nullable<Int8>,
        service -> Text,
        provider -> Text,
        model -> Text,
        input_tokens -> Int8,
        output_tokens -> Int8,
        audio_seconds -> Numeric,
        characters -> Int8,
        cost_usd -> Numeric,
        priced -> Bool,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    api_usage_daily (project_id, day) {
        project_id -> Int8,
        day -> Date,
        calls -> Int8,
    }
}

diesel::joinable!(sessions -> projects (project_id));
diesel::joinable!(sessions -> agents (agent_config_id));
diesel::joinable!(transcripts -> sessions (session_id));
diesel::joinable!(events -> projects (project_id));
diesel::joinable!(webhook_endpoints -> projects (project_id));
diesel::joinable!(webhook_deliveries -> webhook_endpoints (endpoint_id));
diesel::joinable!(webhook_deliveries -> events (event_id));
diesel::joinable!(webhook_attempts -> webhook_deliveries (delivery_id));
diesel::table! {
    accounts (id) {
        id -> Int8,
        email -> Text,
        name -> Text,
        password_hash -> Text,
        plan -> Text,
        email_verified_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    account_sessions (id) {
        id -> Int8,
        account_id -> Int8,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    auth_tokens (id) {
        id -> Int8,
        account_id -> Int8,
        kind -> Text,
        token_hash -> Bytea,
        session_id -> Nullable<Int8>,
        email -> Nullable<Text>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        password_hash -> Nullable<Text>,
        name -> Nullable<Text>,
    }
}

diesel::table! {
    project_members (project_id, account_id) {
        project_id -> Int8,
        account_id -> Int8,
        role -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    invitations (id) {
        id -> Int8,
        project_id -> Int8,
        email -> Text,
        role -> Text,
        token_hash -> Bytea,
        invited_by -> Nullable<Int8>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        accepted_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    background_jobs (id) {
        id -> Int8,
        job_type -> Text,
        data -> Jsonb,
        priority -> Int2,
        run_at -> Timestamptz,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        locked_until -> Nullable<Timestamptz>,
        locked_by -> Nullable<Text>,
        failed_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    outbound_emails (id) {
        id -> Int8,
        kind -> Text,
        to_address -> Text,
        subject -> Text,
        body_text -> Nullable<Text>,
        body_html -> Nullable<Text>,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        locked_until -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        sent_at -> Nullable<Timestamptz>,
        failed_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(agents -> projects (project_id));
diesel::joinable!(account_sessions -> accounts (account_id));
diesel::joinable!(auth_tokens -> accounts (account_id));
diesel::joinable!(project_members -> accounts (account_id));
diesel::joinable!(project_members -> projects (project_id));
diesel::joinable!(invitations -> projects (project_id));
diesel::joinable!(rooms -> projects (project_id));
diesel::joinable!(participants -> rooms (room_id));
diesel::joinable!(connection_secrets -> projects (project_id));
diesel::joinable!(connection_token_uses -> projects (project_id));
diesel::table! {
    recordings (id) {
        id -> Int8,
        project_id -> Int8,
        room_name -> Text,
        egress_id -> Text,
        format -> Text,
        status -> Text,
        file_path -> Text,
        size_bytes -> Nullable<Int8>,
        duration_seconds -> Nullable<Float8>,
        error -> Nullable<Text>,
        started_at -> Timestamptz,
        ended_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    sip_trunks (id) {
        id -> Int8,
        project_id -> Int8,
        name -> Text,
        phone_number -> Text,
        address -> Text,
        auth_username -> Nullable<Text>,
        inbound_trunk_id -> Nullable<Text>,
        outbound_trunk_id -> Nullable<Text>,
        dispatch_rule_id -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    sip_configs (id) {
        id -> Int8,
        project_id -> Int8,
        name -> Text,
        phone_number -> Text,
        agent_config_id -> Nullable<Int8>,
        dtmf_enabled -> Bool,
        max_call_duration -> Int4,
        trunk_id -> Nullable<Int8>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(api_keys -> projects (project_id));
diesel::joinable!(idempotency_keys -> projects (project_id));

diesel::table! {
    sip_calls (id) {
        id -> Int8,
        project_id -> Int8,
        session_id -> Nullable<Int8>,
        room_name -> Text,
        participant_identity -> Text,
        phone_number -> Text,
        direction -> Text,
        status -> Text,
        reason -> Nullable<Text>,
        max_call_duration -> Int4,
        deadline -> Timestamptz,
        answered_at -> Nullable<Timestamptz>,
        ended_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    chat_chats (id) {
        id -> Int8,
        project_id -> Int8,
        kind -> Text,
        name -> Nullable<Text>,
        direct_key -> Nullable<Text>,
        created_by -> Nullable<Int8>,
        last_seq -> Int8,
        last_message_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    chat_members (chat_id, account_id) {
        chat_id -> Int8,
        account_id -> Int8,
        role -> Text,
        archived -> Bool,
        read_seq -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    chat_calls (id) {
        id -> Int8,
        chat_id -> Int8,
        project_id -> Int8,
        room_name -> Text,
        started_by -> Nullable<Int8>,
        status -> Text,
        end_reason -> Nullable<Text>,
        version -> Int8,
        created_at -> Timestamptz,
        answered_at -> Nullable<Timestamptz>,
        ended_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    chat_call_participants (call_id, identity) {
        call_id -> Int8,
        identity -> Text,
        account_id -> Nullable<Int8>,
        joined_at -> Timestamptz,
        left_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::sql_types::Tsvector;

    chat_messages (id) {
        id -> Int8,
        chat_id -> Int8,
        seq -> Int8,
        sender_account_id -> Nullable<Int8>,
        kind -> Text,
        content -> Text,
        client_id -> Nullable<Text>,
        session_id -> Nullable<Int8>,
        call_id -> Nullable<Int8>,
        created_at -> Timestamptz,
        search -> Nullable<Tsvector>,
    }
}

diesel::table! {
    chat_nodes (node_id) {
        node_id -> Text,
        heartbeat_at -> Timestamptz,
    }
}

diesel::table! {
    chat_presence (account_id, node_id) {
        node_id -> Text,
        account_id -> Int8,
        since -> Timestamptz,
    }
}

diesel::table! {
    project_dispositions (project_id) {
        project_id -> Int8,
        names -> Array<Text>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    supervisions (id) {
        id -> Int8,
        project_id -> Int8,
        session_id -> Int8,
        room_name -> Text,
        identity -> Text,
        mode -> Text,
        target_identity -> Nullable<Text>,
        started_at -> Timestamptz,
        ended_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    /// Plan usage per project, resource and period (kept by triggers).
    quota_counters (project_id, resource, period) {
        project_id -> Int8,
        resource -> Text,
        period -> Date,
        used -> Int8,
    }
}

diesel::joinable!(supervisions -> sessions (session_id));
diesel::joinable!(chat_chats -> projects (project_id));
diesel::joinable!(chat_members -> chat_chats (chat_id));
diesel::joinable!(chat_members -> accounts (account_id));
diesel::joinable!(chat_calls -> chat_chats (chat_id));
diesel::joinable!(chat_call_participants -> chat_calls (call_id));
diesel::joinable!(chat_messages -> chat_chats (chat_id));
diesel::joinable!(chat_presence -> chat_nodes (node_id));

diesel::allow_tables_to_appear_in_same_query!(
    projects,
    project_dispositions,
    supervisions,
    accounts,
    account_sessions,
    auth_tokens,
    project_members,
    invitations,
    outbound_emails,
    background_jobs,
    api_keys,
    idempotency_keys,
    agents,
    rooms,
    participants,
    livekit_webhook_events,
    connection_secrets,
    connection_token_uses,
    knowledge_bases,
    kb_chunks,
    kb_index_jobs,
    kb_documents,
    kb_sources,
    kb_source_pages,
    events,
    webhook_endpoints,
    webhook_deliveries,
    webhook_attempts,
    sessions,
    transcripts,
    usage_events,
    api_usage_daily,
    recordings,
    sip_trunks,
    sip_configs,
    sip_calls,
    chat_chats,
    chat_members,
    chat_calls,
    chat_call_participants,
    chat_messages,
    chat_nodes,
    chat_presence,
    quota_counters,
);
