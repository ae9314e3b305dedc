//! `livekit.SIP` (contract §4.3, §6.2 point 8): trunks, dispatch rules and
//! outbound calls.
//!
//! - Create/List/Delete of inbound and outbound trunks and dispatch rules,
//!   with `sip.admin`; an outbound trunk needs numbers and an address
//!   (`invalid_argument`).
//! - CreateSIPParticipant (`sip.call`): the trunk must exist (`not_found`
//!   `requested sip trunk does not exist`), then the request is validated,
//!   then the call is placed: a participant of kind `SIP` joins the room
//!   (created when missing) with the `sip.*` attributes and
//!   `sip.callStatus = active` (`participant_joined`). A failure armed with
//!   [`LiveKitSim::fail_next_call`](crate::embedded::livekit::LiveKitSim::fail_next_call)
//!   answers the SIP status as the real server does (§3.3): 486 Busy Here
//!   (`failed_precondition`), 408 Request Timeout for no answer
//!   (`deadline_exceeded`), 503 Service Unavailable (`unavailable`), with
//!   `meta.sip_status_code` and `meta.sip_status`; no participant joins.
//!   Hang-up is [`LiveKitSim::leave`](crate::embedded::livekit::LiveKitSim::leave).

use super::{Call, Handler};
use crate::embedded::livekit::auth::Grant;
use crate::embedded::livekit::state::{new_id, now_millis};
use crate::embedded::livekit::twirp::TwirpError;
use actix_web::HttpResponse;
use livekit_protocol as proto;
use proto::participant_info::{Kind, State};
use std::collections::BTreeMap;

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
        attributes.insert("sip.callStatus".into(), "active".into());
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
        Ok(proto::SipParticipantInfo {
            participant_id: p.sid,
            participant_identity: identity,
            room_name: req.room_name.clone(),
            sip_call_id: call_id,
        })
    })?;
    call.reply(&info)
}
