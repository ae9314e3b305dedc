//! Team chat through the HTTP API and real WebSockets, with accounts signed
//! up, verified and invited as the dashboard does it.

mod access;
mod calls;
mod chats;
mod live;

use crate::accounts::{Session, add_member, create_project, signup};
use crate::common::smtp::SmtpServer;
use crate::common::{TestApp, json};
use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use voxplane::config::Settings;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One access-token secret for every node of a test (tokens work on all).
const JWT_SECRET: &str = "chat-tests-secret-of-at-least-32-characters";

/// Settings of chat tests: a shared token secret, a short presence grace.
pub fn chat_settings(s: &mut Settings) {
    s.accounts.jwt_secret = Some(JWT_SECRET.into());
    s.chat.presence_grace_ms = 300;
    s.chat.messages_per_second = 1000;
    s.chat.message_burst = 1000;
    s.plans.free.team_members = 10;
    s.rate_limits.account = 10_000;
    s.rate_limits.free = 10_000;
}

/// An app, a project owned by `people[0]`, and `n - 1` more members.
pub struct Team {
    pub app: TestApp,
    pub smtp: SmtpServer,
    pub project: i64,
    pub people: Vec<Session>,
}

/// A team of `n` accounts in one project (`f` adjusts the settings).
pub async fn team_with(n: usize, f: impl FnOnce(&mut Settings)) -> Team {
    let (app, smtp) = crate::accounts::spawn_with(|s| {
        chat_settings(s);
        f(s)
    })
    .await;
    let owner = signup(&app, &smtp, "owner@example.com").await;
    let project = create_project(&app, &owner, "Ops").await;
    let mut people = vec![owner];
    for i in 1..n {
        let s = signup(&app, &smtp, &format!("member{i}@example.com")).await;
        add_member(&app, &smtp, &people[0], project, &s, "member").await;
        people.push(s);
    }
    Team {
        app,
        smtp,
        project,
        people,
    }
}

/// [`team_with`] default settings.
pub async fn team(n: usize) -> Team {
    team_with(n, |_| {}).await
}

/// POST a chat route as `s` in `project`.
pub async fn post(app: &TestApp, s: &Session, project: i64, route: &str, body: Value) -> Response {
    app.anon(Method::POST, &format!("/api/v1/chat/{route}"))
        .bearer_auth(&s.access)
        .header("X-Project-Id", project)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// [`post`], expecting `status`; the body.
pub async fn ok(
    app: &TestApp,
    s: &Session,
    project: i64,
    route: &str,
    body: Value,
    status: u16,
) -> Value {
    let (got, body) = json(post(app, s, project, route, body).await).await;
    assert_eq!(got, status, "{route}: {body}");
    body
}

impl Team {
    /// [`ok`] in the team's project on the first node, expecting 200.
    pub async fn call(&self, who: usize, route: &str, body: Value) -> Value {
        ok(&self.app, &self.people[who], self.project, route, body, 200).await
    }

    /// A group of the given members created by `people[by]`; its id.
    pub async fn group(&self, by: usize, name: &str, members: &[usize]) -> i64 {
        let ids: Vec<i64> = members.iter().map(|m| self.people[*m].id).collect();
        let body = ok(
            &self.app,
            &self.people[by],
            self.project,
            "create-group",
            json!({"name": name, "account_ids": ids}),
            201,
        )
        .await;
        body["chat"]["id"].as_i64().unwrap()
    }

    /// Sends a text over HTTP; the message.
    pub async fn say(&self, who: usize, chat: i64, text: &str) -> Value {
        let body = ok(
            &self.app,
            &self.people[who],
            self.project,
            "send-message",
            json!({"chat_id": chat, "content": text}),
            201,
        )
        .await;
        body["message"].clone()
    }
}

/// Opens `/ws/chat` (or another socket path) without authenticating.
pub async fn open(app: &TestApp, path: &str) -> Ws {
    let url = format!("{}{path}", app.base.replace("http://", "ws://"));
    tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade")
        .0
}

/// Sends a JSON frame.
pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// An authenticated socket at `path` (its `authenticated` frame read).
pub async fn socket_at(app: &TestApp, s: &Session, path: &str) -> Ws {
    let mut ws = open(app, path).await;
    send(&mut ws, json!({"type": "authenticate", "token": s.access})).await;
    let hello = next_of(&mut ws, "authenticated").await;
    assert_eq!(hello["account_id"], s.id);
    ws
}

/// An authenticated `/ws/chat` that joined `chats`.
pub async fn chat_socket(app: &TestApp, s: &Session, chats: &[i64]) -> Ws {
    let mut ws = socket_at(app, s, "/ws/chat").await;
    for chat in chats {
        send(&mut ws, json!({"type": "join_chat", "chat_id": chat})).await;
        let joined = next_of(&mut ws, "joined").await;
        assert_eq!(joined["chat_id"], *chat);
    }
    ws
}

/// The next JSON frame within `wait`: `Ok(frame)`, `Err(Some(code))` on a
/// close, `Err(None)` when nothing came.
pub async fn next_within(ws: &mut Ws, wait: Duration) -> Result<Value, Option<u16>> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Err(None),
            Ok(Some(Ok(Message::Text(t)))) => return Ok(serde_json::from_str(&t).unwrap()),
            Ok(Some(Ok(Message::Close(frame)))) => {
                return Err(Some(frame.map_or(1005, |f| u16::from(f.code))));
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_)) | None) => return Err(Some(1006)),
        }
    }
}

/// The next frame of a type (others skipped), within 10 s.
pub async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        match next_within(ws, Duration::from_secs(10)).await {
            Ok(m) if m["type"] == kind => return m,
            Ok(_) => continue,
            Err(code) => panic!("no {kind} frame (closed or silent: {code:?})"),
        }
    }
}

/// The frames of the given types arriving within `wait` (others skipped).
pub async fn collect(ws: &mut Ws, kinds: &[&str], wait: Duration) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next_within(ws, left).await {
            Ok(m) if kinds.iter().any(|k| m["type"] == *k) => out.push(m),
            Ok(_) => continue,
            Err(_) => return out,
        }
    }
}

/// The close code of a socket (frames before it skipped), within `wait`.
pub async fn closed_with(ws: &mut Ws, wait: Duration) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next_within(ws, left).await {
            Ok(_) => continue,
            Err(code) => return code,
        }
    }
}
