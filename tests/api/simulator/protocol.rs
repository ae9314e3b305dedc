//! The simulator's agent dispatch, Twirp authentication and routing, webhooks (signed like LiveKit's, in order, retried, switchable) and test controls.

use super::*;

#[tokio::test]
async fn agent_dispatch_create_list_get_delete() {
    let sim = start();
    let client = dispatches(&sim);
    let created = client
        .create_dispatch(proto::CreateAgentDispatchRequest {
            agent_name: "voice-agent".into(),
            room: "fresh".into(),
            metadata: "{\"a\":1}".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(created.id.starts_with("AD_"), "{}", created.id);
    assert_eq!(created.agent_name, "voice-agent");
    assert_eq!(created.room, "fresh");
    assert!(created.state.as_ref().unwrap().created_at > 1_600_000_000_000_000_000);
    // The room was created.
    assert_eq!(sim.rooms().len(), 1);
    assert_eq!(sim.rooms()[0].name, "fresh");

    let second = client
        .create_dispatch(proto::CreateAgentDispatchRequest {
            agent_name: "other".into(),
            room: "fresh".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let listed = client.list_dispatch("fresh").await.unwrap();
    let ids: Vec<_> = listed.iter().map(|d| d.id.clone()).collect();
    assert_eq!(ids, [created.id.clone(), second.id.clone()]);
    let one = client.get_dispatch(&created.id, "fresh").await.unwrap();
    assert_eq!(one.unwrap().metadata, "{\"a\":1}");
    assert!(
        client
            .get_dispatch("AD_nope", "fresh")
            .await
            .unwrap()
            .is_none()
    );

    let deleted = client.delete_dispatch(&created.id, "fresh").await.unwrap();
    assert_eq!(deleted.id, created.id);
    assert_eq!(sim.dispatches("fresh").len(), 1);
    assert_eq!(sim.dispatches("fresh")[0].id, second.id);
}

#[tokio::test]
async fn bad_tokens_get_a_plain_text_401() {
    let sim = start();
    let wrong_secret = RoomClient::with_api_key(&sim.url(), sim.api_key(), "not-the-secret");
    assert!(is_request_error(&wrong_secret.list_rooms(vec![]).await));

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expired = jwt(
        sim.api_secret(),
        &serde_json::json!({"iss": sim.api_key(), "nbf": now - 7200, "exp": now - 3600, "video": {"roomList": true}}),
    );
    let client = RoomClient::with_token(&sim.url(), &expired);
    assert!(is_request_error(&client.list_rooms(vec![]).await));

    let path = "/twirp/livekit.RoomService/ListRooms";
    let ct = Some("application/protobuf");
    let res = raw(
        &sim,
        reqwest::Method::POST,
        path,
        ct,
        Some(&format!("Bearer {expired}")),
        vec![],
    )
    .await;
    assert_eq!(res.status().as_u16(), 401);
    let text = res.text().await.unwrap();
    assert!(text.starts_with("invalid token: "), "{text}");
    assert!(text.contains("ExpiredSignature"), "{text}");

    let no_exp = jwt(
        sim.api_secret(),
        &serde_json::json!({"iss": sim.api_key(), "video": {"roomList": true}}),
    );
    let res = raw(
        &sim,
        reqwest::Method::POST,
        path,
        ct,
        Some(&format!("Bearer {no_exp}")),
        vec![],
    )
    .await;
    assert_eq!(res.status().as_u16(), 401, "exp is required");
    assert!(res.text().await.unwrap().starts_with("invalid token: "));
    // Within the 60 s leeway an expired token still passes.
    let recent = jwt(
        sim.api_secret(),
        &serde_json::json!({"iss": sim.api_key(), "exp": now - 30, "video": {"roomList": true}}),
    );
    let res = raw(
        &sim,
        reqwest::Method::POST,
        path,
        ct,
        Some(&format!("Bearer {recent}")),
        vec![],
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);

    let other_key = AccessToken::with_api_key("otherkey", sim.api_secret())
        .with_grants(VideoGrants {
            room_list: true,
            ..Default::default()
        })
        .to_jwt()
        .unwrap();
    let res = raw(
        &sim,
        reqwest::Method::POST,
        path,
        ct,
        Some(&format!("Bearer {other_key}")),
        vec![],
    )
    .await;
    assert_eq!(res.status().as_u16(), 401);
    assert_eq!(res.text().await.unwrap(), "invalid API key: otherkey");

    let good = token(
        &sim,
        VideoGrants {
            room_list: true,
            ..Default::default()
        },
    );
    let res = raw(&sim, reqwest::Method::POST, path, ct, Some(&good), vec![]).await;
    assert_eq!(res.status().as_u16(), 401, "no Bearer prefix");
    assert_eq!(
        res.text().await.unwrap(),
        "invalid authorization header. Must start with Bearer "
    );
    let res = raw(
        &sim,
        reqwest::Method::POST,
        path,
        ct,
        Some("Bearer garbage"),
        vec![],
    )
    .await;
    assert_eq!(res.status().as_u16(), 401);
    assert_eq!(res.text().await.unwrap(), "invalid authorization token");
}

#[tokio::test]
async fn missing_grants_are_twirp_unauthenticated() {
    let sim = start();
    sim.join("a", SimParticipant::new("alice")).await.unwrap();
    let denied = (
        "unauthenticated".to_owned(),
        "permissions denied".to_owned(),
    );

    // An admin token for room "a" neither lists rooms nor creates them.
    let room_a = RoomClient::with_token(&sim.url(), &token(&sim, admin("a")));
    assert_eq!(twirp(room_a.list_rooms(vec![]).await), denied);
    assert_eq!(
        twirp(room_a.create_room("x", Default::default()).await),
        denied
    );
    assert_eq!(twirp(room_a.delete_room("a").await), denied);
    // It acts on room "a" only: the room must match exactly.
    assert_eq!(room_a.list_participants("a").await.unwrap().len(), 1);
    assert_eq!(twirp(room_a.list_participants("b").await), denied);
    assert_eq!(twirp(room_a.get_participant("A", "alice").await), denied);
    let dispatch_a = AgentDispatchClient::with_token(&sim.url(), &token(&sim, admin("a")));
    assert_eq!(twirp(dispatch_a.list_dispatch("b").await), denied);
    assert!(dispatch_a.list_dispatch("a").await.unwrap().is_empty());

    // A list token cannot administer a room.
    let lister = RoomClient::with_token(
        &sim.url(),
        &token(
            &sim,
            VideoGrants {
                room_list: true,
                ..Default::default()
            },
        ),
    );
    assert_eq!(lister.list_rooms(vec![]).await.unwrap().len(), 1);
    assert_eq!(twirp(lister.remove_participant("a", "alice").await), denied);
    assert_eq!(sim.participants("a").len(), 1, "nothing was removed");

    // No token at all: no grants.
    let res = raw(
        &sim,
        reqwest::Method::POST,
        "/twirp/livekit.RoomService/ListRooms",
        Some("application/protobuf"),
        None,
        vec![],
    )
    .await;
    let (status, ct, body) = json_body(res).await;
    assert_eq!(status, 401);
    assert!(ct.starts_with("application/json"), "{ct}");
    assert_eq!(
        body,
        serde_json::json!({"code": "unauthenticated", "msg": "permissions denied"})
    );
}

#[tokio::test]
async fn twirp_routing_follows_the_generated_router() {
    let sim = start();
    let auth = format!(
        "Bearer {}",
        token(
            &sim,
            VideoGrants {
                room_list: true,
                room_create: true,
                ..Default::default()
            }
        )
    );
    let auth = Some(auth.as_str());
    let pb = Some("application/protobuf");
    let list = "/twirp/livekit.RoomService/ListRooms";

    let res = raw(&sim, reqwest::Method::GET, list, None, auth, vec![]).await;
    let (status, _, body) = json_body(res).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "bad_route");
    assert_eq!(
        body["msg"],
        "unsupported method \"GET\" (only POST is allowed)"
    );
    assert_eq!(body["meta"]["twirp_invalid_route"], format!("GET {list}"));

    for path in [
        "/twirp/livekit.RoomService/Nope",
        "/twirp/livekit.Nope/ListRooms",
        "/twirp/livekit.RoomService/ListRooms/extra",
        "/",
    ] {
        let res = raw(&sim, reqwest::Method::POST, path, pb, auth, vec![]).await;
        let (status, _, body) = json_body(res).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["code"], "bad_route", "{path}");
        assert_eq!(body["msg"], format!("no handler for path \"{path}\""));
    }

    let res = raw(
        &sim,
        reqwest::Method::POST,
        list,
        Some("text/plain"),
        auth,
        vec![],
    )
    .await;
    let (status, _, body) = json_body(res).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("bad_route")));
    assert_eq!(body["msg"], "unexpected Content-Type: \"text/plain\"");
    let res = raw(&sim, reqwest::Method::POST, list, None, auth, vec![]).await;
    assert_eq!(
        json_body(res).await.2["msg"],
        "unexpected Content-Type: \"\""
    );

    let res = raw(
        &sim,
        reqwest::Method::POST,
        list,
        pb,
        auth,
        vec![0xff, 0xff, 0xff],
    )
    .await;
    let (status, _, body) = json_body(res).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "malformed");
    assert_eq!(body["msg"], "the protobuf request could not be decoded");

    // Parameters after ';' are ignored; an empty body is the default message.
    let res = raw(
        &sim,
        reqwest::Method::POST,
        list,
        Some("Application/Protobuf; charset=utf-8"),
        auth,
        vec![],
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["content-type"], "application/protobuf");
    let decoded =
        <proto::ListRoomsResponse as prost::Message>::decode(res.bytes().await.unwrap()).unwrap();
    assert!(decoded.rooms.is_empty());

    // JSON in, JSON out.
    let create = "/twirp/livekit.RoomService/CreateRoom";
    let body = br#"{"name":"json-room","emptyTimeout":42,"unknownField":true}"#.to_vec();
    let res = raw(
        &sim,
        reqwest::Method::POST,
        create,
        Some("application/json"),
        auth,
        body,
    )
    .await;
    let (status, ct, body) = json_body(res).await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("application/json"), "{ct}");
    assert_eq!(body["name"], "json-room");
    assert_eq!(body["emptyTimeout"], 42);
    assert!(body["sid"].as_str().unwrap().starts_with("RM_"));
    assert_eq!(sim.rooms()[0].empty_timeout, 42);

    let res = raw(
        &sim,
        reqwest::Method::POST,
        create,
        Some("application/json"),
        auth,
        b"{nope".to_vec(),
    )
    .await;
    let (status, _, body) = json_body(res).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("malformed")));
    assert_eq!(body["msg"], "the json request could not be decoded");
}

#[tokio::test]
async fn webhooks_are_signed_like_livekit_and_arrive_in_order() {
    let hooks = Hooks::start(0);
    let sim = LiveKitSim::start(SimConfig {
        webhook_url: Some(hooks.url.clone()),
        ..SimConfig::dev_defaults()
    })
    .unwrap();
    let client = rooms(&sim);

    client.create_room("r", Default::default()).await.unwrap();
    client.create_room("r", Default::default()).await.unwrap(); // exists: no event
    let alice = sim
        .join("r", SimParticipant::new("alice").kind(SimKind::Sip))
        .await
        .unwrap();
    sim.join("r", SimParticipant::new("bob").without_audio())
        .await
        .unwrap();
    sim.leave("r", "bob").await.unwrap();
    assert!(sim.leave("r", "bob").await.is_err());
    client.delete_room("r").await.unwrap();
    dispatches(&sim)
        .create_dispatch(proto::CreateAgentDispatchRequest {
            agent_name: "a".into(),
            room: "auto".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    sim.flush_webhooks().await;

    let got = hooks.received();
    assert_eq!(
        names(&sim, &got),
        [
            "room_started",
            "participant_joined",
            "track_published",
            "participant_joined",
            "participant_left",
            "track_unpublished",
            "participant_left",
            "room_finished",
            "room_started",
        ]
    );
    for hook in &got {
        assert_eq!(hook.content_type, "application/webhook+json");
        assert_eq!(hook.user_agent, "LiveKit");
        assert!(!hook.auth.starts_with("Bearer "), "{}", hook.auth);
    }
    let events: Vec<_> = got.iter().map(|h| verify(&sim, h)).collect();
    assert!(
        events
            .iter()
            .all(|e| e.id.starts_with("EV_") && e.created_at > 0)
    );
    let room_sid = events[0].room.as_ref().unwrap().sid.clone();
    assert!(room_sid.starts_with("RM_"));

    let joined = events[1].participant.as_ref().unwrap();
    assert_eq!(joined.identity, "alice");
    assert_eq!(joined.sid, alice.sid);
    assert_eq!(joined.kind, proto::participant_info::Kind::Sip as i32);
    assert_eq!(events[1].room.as_ref().unwrap().num_participants, 1);
    assert!(got[1].body.contains("\"kind\":\"SIP\""), "{}", got[1].body);

    let published = &events[2];
    assert_eq!(published.track.as_ref().unwrap().sid, alice.tracks[0].sid);
    assert_eq!(published.participant.as_ref().unwrap().identity, "alice");
    assert_eq!(published.room.as_ref().unwrap().sid, room_sid);

    let bob_left = events[4].participant.as_ref().unwrap();
    assert_eq!(bob_left.identity, "bob");
    assert_eq!(
        bob_left.disconnect_reason,
        proto::DisconnectReason::ClientInitiated as i32
    );
    // DeleteRoom disconnects alice (her track first), then finishes the room.
    assert_eq!(events[5].track.as_ref().unwrap().sid, alice.tracks[0].sid);
    let alice_left = events[6].participant.as_ref().unwrap();
    assert_eq!(alice_left.identity, "alice");
    assert_eq!(
        alice_left.disconnect_reason,
        proto::DisconnectReason::RoomDeleted as i32
    );
    assert_eq!(events[7].room.as_ref().unwrap().sid, room_sid);
    assert_eq!(events[7].room.as_ref().unwrap().num_participants, 0);
    assert_eq!(events[8].room.as_ref().unwrap().name, "auto");

    // JSON as protojson writes it: camelCase, int64 as strings.
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert!(body["createdAt"].is_string(), "{body}");
    assert_eq!(body["event"], "room_started");

    // A tampered body fails verification; so does a token for another secret.
    let receiver =
        WebhookReceiver::new(TokenVerifier::with_api_key(sim.api_key(), sim.api_secret()));
    let tampered = got[0].body.replace("room_started", "room_finished");
    assert!(matches!(
        receiver.receive(&tampered, &got[0].auth),
        Err(WebhookError::InvalidSignature)
    ));
    let stranger = WebhookReceiver::new(TokenVerifier::with_api_key(sim.api_key(), "other"));
    assert!(matches!(
        stranger.receive(&got[0].body, &got[0].auth),
        Err(WebhookError::InvalidAuth(_))
    ));
}

#[tokio::test]
async fn webhooks_are_retried_and_can_be_switched_off() {
    let hooks = Hooks::start(2);
    let sim = start();
    sim.join("quiet", SimParticipant::new("nobody-hears"))
        .await
        .unwrap();
    sim.set_webhook_url(Some(hooks.url.clone()));
    sim.join("r", SimParticipant::new("alice").without_audio())
        .await
        .unwrap();
    sim.flush_webhooks().await;
    let got = hooks.received();
    assert_eq!(names(&sim, &got), ["room_started", "participant_joined"]);
    assert_eq!(
        hooks.state.fail_next.load(Ordering::SeqCst),
        0,
        "two attempts were refused"
    );

    sim.set_webhook_url(None);
    sim.leave("r", "alice").await.unwrap();
    sim.flush_webhooks().await;
    assert_eq!(hooks.received().len(), 2);
}

#[tokio::test]
async fn control_endpoints_join_list_and_leave() {
    let sim = start();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = |p: &str| format!("{}/_sim{p}", sim.url());

    let res = http
        .post(url("/rooms/demo/participants"))
        .json(&serde_json::json!({"identity": "+15550100", "kind": "sip", "attributes": {"sip.callID": "SCL_1"}}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = json_body(res).await;
    assert_eq!(status, 200);
    assert_eq!(body["identity"], "+15550100");
    assert_eq!(body["kind"], "SIP");
    assert_eq!(body["tracks"].as_array().unwrap().len(), 1);
    let p = &sim.participants("demo")[0];
    assert_eq!(p.attributes["sip.callID"], "SCL_1");

    let res = http
        .post(url("/rooms/demo/participants"))
        .json(&serde_json::json!({"identity": "x", "kind": "robot"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);

    let (_, _, listed) = json_body(http.get(url("/rooms")).send().await.unwrap()).await;
    assert_eq!(listed[0]["name"], "demo");
    assert_eq!(listed[0]["numParticipants"], 1);
    let (_, _, people) = json_body(
        http.get(url("/rooms/demo/participants"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(people[0]["identity"], "+15550100");

    dispatches(&sim)
        .create_dispatch(proto::CreateAgentDispatchRequest {
            agent_name: "voice".into(),
            room: "demo".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let (_, _, ds) = json_body(
        http.get(url("/rooms/demo/dispatches"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(ds[0]["agentName"], "voice");

    let res = http
        .delete(url("/rooms/demo/participants/%2B15550100"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 204);
    assert!(sim.participants("demo").is_empty());
    let res = http
        .delete(url("/rooms/demo/participants/%2B15550100"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    let res = http.post(url("/webhooks/flush")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 204);
}

#[tokio::test]
async fn stop_closes_the_port() {
    let mut sim = start();
    let client = rooms(&sim);
    assert!(client.list_rooms(vec![]).await.unwrap().is_empty());
    let addr = sim.url().trim_start_matches("http://").to_owned();

    sim.stop();
    let started = Instant::now();
    let res = client.list_rooms(vec![]).await;
    assert!(is_request_error(&res), "{res:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(std::net::TcpStream::connect(&addr).is_err());
    // Flushing a stopped simulator returns at once; stopping twice is fine.
    sim.flush_webhooks().await;
    sim.stop();
}
