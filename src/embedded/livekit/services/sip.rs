//! `livekit.SIP` (contract §4.3, §6.2 point 8): trunks, dispatch rules and
//! outbound calls.
//!
//! - Create/List/Delete of inbound and outbound trunks and dispatch rules,
//!   with `sip.admin`; an outbound trunk needs numbers and an address
//!   (`invalid_argument`).
//! - CreateSIPParticipant (`sip.call`): the trunk must exist (`not_found`
//!   `requested sip trunk does not exist`), then the request is validated,
//!   then the call is placed as LiveKit SIP does without
//!   `wait_until_answered`: a participant of kind `SIP` joins the room
//!   (created when missing) with the `sip.*` attributes and
//!   `sip.callStatus = dialing` (`participant_joined`), and the RPC answers.
//!   The call then progresses on its own ([`CallProgress`]): `ringing` after
//!   `ring_after`, `active` after `answer_after` more (never, when unset:
//!   the call waits for a control). Attribute changes send no webhook, as
//!   in LiveKit.
//! - Outcomes ([`CallAction`], also `/_sim/sip/calls/{call_id}/{action}`):
//!   answer; busy, no-answer and fail make the participant leave with
//!   `USER_REJECTED`, `USER_UNAVAILABLE` and `SIP_TRUNK_FAILURE`
//!   (`participant_left`, `sip.callStatus = hangup`); hang-up makes it leave
//!   with `CLIENT_INITIATED`. A participant removed or a room deleted ends
//!   its call too.
//! - A failure armed with
//!   [`LiveKitSim::fail_next_call`](crate::embedded::livekit::LiveKitSim::fail_next_call)
//!   rejects the next CreateSIPParticipant itself with the SIP status, as
//!   the real server does for a call that waits for the answer (§3.3): 486
//!   Busy Here (`failed_precondition`), 408 Request Timeout for no answer
//!   (`deadline_exceeded`), 503 Service Unavailable (`unavailable`), with
//!   `meta.sip_status_code` and `meta.sip_status`; no participant joins.
//! - `max_call_duration` is recorded but not enforced (the control plane's
//!   own enforcement is what the tests look at).

use super::{Call, Handler};
use crate::embedded::livekit::auth::Grant;
use crate::embedded::livekit::state::{Events, Shared, SimState, new_id, now_millis};
use crate::embedded::livekit::twirp::TwirpError;
use actix_web::HttpResponse;
use livekit_protocol as proto;
use proto::DisconnectReason;
use proto::participant_info::{Kind, State};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

type Reply = Result<HttpResponse, TwirpError>;

/// How the next outbound call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallFailure {
    /// 486 Busy Here.
    Busy,
    /// 408 Request Timeout: nobody answered.
    NoAnswer,
    /// 503 Service Unavailable: the carrier failed.
    Failed,
}

impl CallFailure {
    fn error(self) -> TwirpError {
        let (code, status, twirp) = match self {
            Self::Busy => (486, "Busy Here", "failed_precondition"),
            Self::NoAnswer => (408, "Request Timeout", "deadline_exceeded"),
            Self::Failed => (503, "Service Unavailable", "unavailable"),
        };
        let mut err = TwirpError::new(twirp, format!("sip status: {code}: {status}"));
        err.meta.insert("sip_status_code".into(), code.to_string());
        err.meta.insert("sip_status".into(), status.to_owned());
        err
    }
}

/// The SIP part of the simulated world.
#[derive(Debug, Default)]
pub struct SipState {
    /// Outbound trunks by id.
    pub outbound: BTreeMap<String, proto::SipOutboundTrunkInfo>,
    /// Inbound trunks by id.
    pub inbound: BTreeMap<String, proto::SipInboundTrunkInfo>,
    /// Dispatch rules by id.
    pub rules: BTreeMap<String, proto::SipDispatchRuleInfo>,
    /// Every CreateSIPParticipant request that placed a call, in order.
    pub calls: Vec<proto::CreateSipParticipantRequest>,
    /// The failure armed for the next call.
    pub next_failure: Option<CallFailure>,
    /// How placed calls progress on their own.
    pub progress: CallProgress,
    /// Every placed call by `sip_call_id`, with its current status.
    pub placed: BTreeMap<String, SimCall>,
}

/// How a placed call progresses without a control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallProgress {
    /// From dialing to ringing.
    pub ring_after: Duration,
    /// From ringing to active; `None`: rings until a control answers it.
    pub answer_after: Option<Duration>,
}

impl Default for CallProgress {
    fn default() -> Self {
        Self {
            ring_after: Duration::from_secs(1),
            answer_after: Some(Duration::from_secs(2)),
        }
    }
}

/// A placed call as the simulator sees it.
#[derive(Debug, Clone, Serialize)]
pub struct SimCall {
    /// `SCL_…`.
    pub call_id: String,
    /// The room the SIP participant is in.
    pub room: String,
    /// The SIP participant.
    pub identity: String,
    /// The number called.
    pub phone_number: String,
    /// dialing, ringing, active, hangup (ended) or failed.
    pub status: String,
    /// Why it failed or ended (the control's reason).
    pub reason: Option<String>,
    #[serde(skip)]
    since: Instant,
}

impl SimCall {
    fn live(&self) -> bool {
        matches!(self.status.as_str(), "dialing" | "ringing" | "active")
    }
}

/// What a control does to a placed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallAction {
    /// The callee answers (dialing or ringing → active).
    Answer,
    /// The callee is busy (before the answer): `USER_REJECTED`.
    Busy,
    /// Nobody answers (before the answer): `USER_UNAVAILABLE`.
    NoAnswer,
    /// The call fails, with a reason: `SIP_TRUNK_FAILURE`.
    Fail(Option<String>),
    /// The callee hangs up: `CLIENT_INITIATED`.
    Hangup,
}

/// Sets the SIP participant's `sip.callStatus` (no webhook, as in LiveKit).
fn set_status(s: &mut SimState, call: &mut SimCall, status: &str) {
    call.status = status.to_owned();
    call.since = Instant::now();
    if let Some(p) = s
        .room_mut(&call.room)
        .and_then(|r| r.participant_mut(&call.identity))
    {
        p.attributes
            .insert("sip.callStatus".into(), status.to_owned());
    }
}

/// The participant of a call leaves, with `reason`; the call ends as
/// `status` (hangup or failed).
fn end_call(
    s: &mut SimState,
    call: &mut SimCall,
    status: &str,
    why: DisconnectReason,
    reason: Option<String>,
    ev: &mut Events,
) {
    set_status(s, call, "hangup");
    call.status = status.to_owned();
    call.reason = reason;
    s.remove_participant(&call.room, &call.identity, why, ev);
}

/// Applies a control to a placed call; the call as it is after, or why
/// the control does not apply.
pub fn act(
    s: &mut SimState,
    call_id: &str,
    action: &CallAction,
    ev: &mut Events,
) -> Result<SimCall, ActError> {
    let mut call = s
        .sip
        .placed
        .get(call_id)
        .cloned()
        .ok_or(ActError::Unknown)?;
    let answered = call.status == "active";
    if !call.live()
        || (answered
            && matches!(
                action,
                CallAction::Answer | CallAction::Busy | CallAction::NoAnswer
            ))
    {
        return Err(ActError::NotApplicable(call.status));
    }
    match action {
        CallAction::Answer => set_status(s, &mut call, "active"),
        CallAction::Busy => end_call(
            s,
            &mut call,
            "failed",
            DisconnectReason::UserRejected,
            Some("busy".into()),
            ev,
        ),
        CallAction::NoAnswer => end_call(
            s,
            &mut call,
            "failed",
            DisconnectReason::UserUnavailable,
            Some("no-answer".into()),
            ev,
        ),
        CallAction::Fail(reason) => end_call(
            s,
            &mut call,
            "failed",
            DisconnectReason::SipTrunkFailure,
            Some(reason.clone().unwrap_or_else(|| "failed".into())),
            ev,
        ),
        CallAction::Hangup => end_call(
            s,
            &mut call,
            "hangup",
            DisconnectReason::ClientInitiated,
            Some("hangup".into()),
            ev,
        ),
    }
    s.sip.placed.insert(call.call_id.clone(), call.clone());
    Ok(call)
}

/// Why a control did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActError {
    /// No such call.
    Unknown,
    /// The call's status does not allow it (the status).
    NotApplicable(String),
}

/// Moves calls on by [`CallProgress`]; a call whose participant went
/// (removed, room deleted) ends.
pub fn advance(s: &mut SimState, now: Instant) {
    let progress = s.sip.progress;
    let ids: Vec<String> = s
        .sip
        .placed
        .values()
        .filter(|c| c.live())
        .map(|c| c.call_id.clone())
        .collect();
    for id in ids {
        let Some(mut call) = s.sip.placed.get(&id).cloned() else {
            continue;
        };
        let present = s
            .room(&call.room)
            .and_then(|r| r.participant(&call.identity))
            .is_some();
        let due = |after: Duration| now >= call.since + after;
        if !present {
            call.status = "hangup".into();
            call.reason.get_or_insert_with(|| "disconnected".into());
        } else if call.status == "dialing" && due(progress.ring_after) {
            set_status(s, &mut call, "ringing");
        } else if call.status == "ringing" && progress.answer_after.is_some_and(due) {
            set_status(s, &mut call, "active");
        } else {
            continue;
        }
        s.sip.placed.insert(id, call);
    }
}

/// Advances calls every 20 ms while the simulator runs.
pub async fn ticker(shared: std::sync::Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        shared.update(|s, _| advance(s, Instant::now()));
    }
}

/// The handler of a SIP method.
pub fn handler(method: &str) -> Option<Handler> {
    Some(match method {
        "CreateSIPInboundTrunk" => create_inbound,
        "CreateSIPOutboundTrunk" => create_outbound,
        "ListSIPInboundTrunk" => list_inbound,
        "ListSIPOutboundTrunk" => list_outbound,
        "DeleteSIPTrunk" => delete_trunk,
        "CreateSIPDispatchRule" => create_rule,
        "ListSIPDispatchRule" => list_rules,
        "DeleteSIPDispatchRule" => delete_rule,
        "CreateSIPParticipant" => create_participant,
        _ => return None,
    })
}

fn trunk_not_found() -> TwirpError {
    TwirpError::not_found("requested sip trunk does not exist")
}

fn create_inbound(call: &Call<'_>) -> Reply {
    let req: proto::CreateSipInboundTrunkRequest = call.decode()?;
    call.require(Grant::SipAdmin)?;
    let mut trunk = req
        .trunk
        .ok_or_else(|| TwirpError::invalid_argument("missing trunk"))?;
    if !trunk.sip_trunk_id.is_empty() {
        return Err(TwirpError::invalid_argument("trunk ID must not be set"));
    }
    trunk.sip_trunk_id = new_id("ST_");
    call.shared.update(|s, _| {
        s.sip
            .inbound
            .insert(trunk.sip_trunk_id.clone(), trunk.clone())
    });
    call.reply(&trunk)
}

fn create_outbound(call: &Call<'_>) -> Reply {
    let req: proto::CreateSipOutboundTrunkRequest = call.decode()?;
    call.require(Grant::SipAdmin)?;
    let mut trunk = req
        .trunk
        .ok_or_else(|| TwirpError::invalid_argument("missing trunk"))?;
    if !trunk.sip_trunk_id.is_empty() {
        return Err(TwirpError::invalid_argument("trunk ID must not be set"));
    }
    if trunk.numbers.is_empty() {
        return Err(TwirpError::invalid_argument("no trunk numbers specified"));
    }
    if trunk.address.is_empty() {
        return Err(TwirpError::invalid_argument(
            "no outbound address specified",
        ));
    }
    trunk.sip_trunk_id = new_id("ST_");
    call.shared.update(|s, _| {
        s.sip
            .outbound
            .insert(trunk.sip_trunk_id.clone(), trunk.clone())
    });
    call.reply(&trunk)
}

fn list_inbound(call: &Call<'_>) -> Reply {
    let _: proto::ListSipInboundTrunkRequest = call.decode()?;
    call.require(Grant::SipAdmin)?;
    let items = call
        .shared
        .read(|s| s.sip.inbound.values().cloned().collect());
    call.reply(&proto::ListSipInboundTrunkResponse { items })
}

fn list_outbound(call: &Call<'_>) -> Reply {
    let _: proto::ListSipOutboundTrunkRequest = call.decode()?;
    call.require(Grant::SipAdmin)?;
    let items = call
        .shared
        .read(|s| s.sip.outbound.values().cloned().collect());
    call.reply(&proto::ListSipOutboundTrunkResponse { items })
}

/// Deletes an inbound or outbound trunk and answers with its summary.
#[allow(deprecated)] // SipTrunkInfo is what DeleteSIPTrunk still returns
fn delete_trunk(call: &Call<'_>) -> Reply {
    let req: proto::DeleteSipTrunkRequest = call.decode()?;
    call.require(Grant::SipAdmin)?;
    let info = call.shared.update(|s, _| {
        if let Some(t) = s.sip.outbound.remove(&req.sip_trunk_id) {
            return Ok(proto::SipTrunkInfo {
                sip_trunk_id: t.sip_trunk_id,
                kind: proto::sip_trunk_info::TrunkKind::TrunkOutbound as i32,
                name: t.name,
                outbound_address: t.address,
                ..Default::default()
            });
        }
        if let Some(t) = s.sip.inbound.remove(&req.sip_trunk_id) {
            return Ok(proto::SipTrunkInfo {
                sip_trunk_id: t.sip_trunk_id,
                kind: proto::sip_trunk_info::TrunkKind::TrunkInbound as i32,
                name: t.name,
                ..Default::default()
            });
        }
        Err(trunk_not_found())
    })?;
    call.reply(&info)
}

fn create_rule(call: &Call<'_>) -> Reply {
    let req: proto::CreateSipDispatchRuleRequest = call.decode()?;
    call.require(Grant::SipAdmin)?;
    #[allow(deprecated)] // the flat fields are still what older clients send
    let mut rule = req
        .dispatch_rule
        .clone()
        .unwrap_or_else(|| proto::SipDispatchRuleInfo {
            rule: req.rule.clone(),
            trunk_ids: req.trunk_ids.clone(),
            hide_phone_number: req.hide_phone_number,
            inbound_numbers: req.inbound_numbers.clone(),
            name: req.name.clone(),
            metadata: req.metadata.clone(),
            attributes: req.attributes.clone(),
            room_preset: req.room_preset.clone(),
            room_config: req.room_config.clone(),
            ..Default::default()
        });
    if rule.rule.is_none() {
        return Err(TwirpError::invalid_argument("missing rule"));
    }
    rule.sip_dispatch_rule_id = new_id("SDR_");
    call.shared.update(|s, _| {
        s.sip
            .rules
            .insert(rule.sip_dispatch_rule_id.clone(), rule.clone())
    });
    call.reply(&rule)
}

fn list_rules(call: &Call<'_>) -> Reply {
    let _: proto::ListSipDispatchRuleRequest = call.decode()?;
    call.require(Grant::SipAdmin)?;
    let items = call
        .shared
        .read(|s| s.sip.rules.values().cloned().collect());
    call.reply(&proto::ListSipDispatchRuleResponse { items })
}

fn delete_rule(call: &Call<'_>) -> Reply {
    let req: proto::DeleteSipDispatchRuleRequest = call.decode()?;
    call.require(Grant::SipAdmin)?;
    let rule = call
        .shared
        .update(|s, _| s.sip.rules.remove(&req.sip_dispatch_rule_id))
        .ok_or_else(|| TwirpError::not_found("requested sip dispatch rule does not exist"))?;
    call.reply(&rule)
}

/// Places a call: see the module documentation.
fn create_participant(call: &Call<'_>) -> Reply {
    let req: proto::CreateSipParticipantRequest = call.decode()?;
    call.require(Grant::SipCall)?;
    let info = call.shared.update(|s, ev| {
        let trunk = s
            .sip
            .outbound
            .get(&req.sip_trunk_id)
            .cloned()
            .ok_or_else(trunk_not_found)?;
        if req.sip_call_to.is_empty() || req.sip_call_to.contains('@') {
            return Err(TwirpError::invalid_argument("invalid sip_call_to"));
        }
        if req.room_name.is_empty() {
            return Err(TwirpError::invalid_argument("missing room name"));
        }
        let from = if req.sip_number.is_empty() {
            trunk.numbers.first().cloned().ok_or_else(|| {
                TwirpError::new("failed_precondition", "no numbers on outbound trunk")
            })?
        } else {
            req.sip_number.clone()
        };
        if let Some(failure) = s.sip.next_failure.take() {
            return Err(failure.error());
        }
        let call_id = new_id("SCL_");
        let identity = if req.participant_identity.is_empty() {
            format!("sip_{}", req.sip_call_to)
        } else {
            req.participant_identity.clone()
        };
        let mut attributes: std::collections::HashMap<String, String> =
            req.participant_attributes.clone();
        attributes.insert("sip.callID".into(), call_id.clone());
        attributes.insert("sip.trunkID".into(), trunk.sip_trunk_id.clone());
        if !req.hide_phone_number {
            attributes.insert("sip.phoneNumber".into(), req.sip_call_to.clone());
            attributes.insert("sip.trunkPhoneNumber".into(), from);
            attributes.insert("sip.hostname".into(), trunk.address.clone());
        }
        attributes.insert("sip.callStatus".into(), "dialing".into());
        let p = proto::ParticipantInfo {
            sid: new_id("PA_"),
            identity: identity.clone(),
            name: req.participant_name.clone(),
            metadata: req.participant_metadata.clone(),
            attributes,
            state: State::Active as i32,
            kind: Kind::Sip as i32,
            joined_at: now_millis() / 1000,
            joined_at_ms: now_millis(),
            is_publisher: true,
            ..Default::default()
        };
        let p = s.add_participant(&req.room_name, p, ev);
        s.sip.calls.push(req.clone());
        s.sip.placed.insert(
            call_id.clone(),
            SimCall {
                call_id: call_id.clone(),
                room: req.room_name.clone(),
                identity: identity.clone(),
                phone_number: req.sip_call_to.clone(),
                status: "dialing".into(),
                reason: None,
                since: Instant::now(),
            },
        );
        Ok(proto::SipParticipantInfo {
            participant_id: p.sid,
            participant_identity: identity,
            room_name: req.room_name.clone(),
            sip_call_id: call_id,
        })
    })?;
    call.reply(&info)
}
