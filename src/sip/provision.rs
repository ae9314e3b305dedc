//! Provisioning SIP trunks in LiveKit: an outbound trunk (address, number,
//! auth), an inbound trunk for the number and its dispatch rule
//! ([`super::rules`]), made and replaced with no transaction open.
//!
//! Reserve → commit → call → confirm: the trunk row takes its number (the
//! unique index answers concurrent duplicates) in a short transaction with
//! its LiveKit ids unset (listed by no one), LiveKit is called with no
//! transaction or pooled connection held, and the ids are recorded in a
//! second short transaction. A failure in LiveKit undoes what was made
//! there and drops the reservation (or, for a change, puts the row back).
//! A settle job committed with a new trunk's reservation ([`settle`])
//! drops it when the process creating it dies between the steps.

use super::lines::line_agent;
use super::rules;
use super::store::{self, Trunk, TrunkFields};
use crate::auth::ProjectInfo;
use crate::db::agents::Agent;
use crate::error::{ApiError, ApiResult};
use crate::events::ssrf;
use crate::jobs::{self, Job};
use crate::livekit::LiveKit;
use crate::state::AppState;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use livekit_api::services::sip::{
    CreateSIPInboundTrunkOptions, CreateSIPOutboundTrunkOptions, ListSIPDispatchRuleFilter,
    ListSIPInboundTrunkFilter, ListSIPOutboundTrunkFilter,
};
use serde_json::json;
use std::net::IpAddr;

/// The number in E.164, or 400 `Invalid phone number format`.
///
/// Parsed with libphonenumber's metadata (the `phonenumber` crate): it must
/// be `+` and digits, its country calling code must be assigned, and its
/// national number must have a length possible in that country.
pub fn e164(field: &str, input: &str) -> ApiResult<String> {
    let bad = || ApiError::BadRequest {
        message: "Invalid phone number format".into(),
        details: Some(json!({ "field": field, "expected": "E.164, e.g. +17751234567" })),
    };
    let s = input.trim();
    let digits = s.strip_prefix('+').ok_or_else(bad)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 15 {
        return Err(bad());
    }
    let number = phonenumber::parse(None, s).map_err(|_| bad())?;
    // The regions of the country calling code (none: unassigned code).
    let regions = phonenumber::metadata::DATABASE
        .by_code(&number.code().value())
        .ok_or_else(bad)?;
    let national = number.national().to_string();
    let len = u16::try_from(national.len()).map_err(|_| bad())?;
    // Possible lengths are kept per number type (fixed line, mobile, …).
    let possible = regions.iter().any(|m| {
        let d = m.descriptors();
        std::iter::once(Some(d.general()))
            .chain([
                d.fixed_line(),
                d.mobile(),
                d.toll_free(),
                d.premium_rate(),
                d.shared_cost(),
                d.personal_number(),
                d.voip(),
                d.pager(),
                d.uan(),
                d.voicemail(),
            ])
            .flatten()
            .any(|desc| desc.possible_length().contains(&len))
    });
    if !possible {
        return Err(bad());
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// A trunk or config name: 1 to 100 characters, trimmed.
pub fn name_field(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid_field(
            "name",
            "name must be 1 to 100 characters",
        ));
    }
    Ok(name.to_owned())
}

/// A SIP host name, optionally with `:port`.
pub fn address_field(address: &str) -> ApiResult<String> {
    let a = address;
    let ok = !a.is_empty()
        && a.len() <= 255
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:_".contains(&b));
    if !ok {
        return Err(ApiError::invalid_field(
            "address",
            "address must be a SIP host name (optionally with :port)",
        ));
    }
    Ok(a.to_owned())
}

/// 400 when a trunk's address points into the server's own networks
/// (loopback, private, link-local and metadata, … as for webhooks) outside
/// `sip_allowed_networks`. An IP literal is checked as it is; a host name by
/// what it resolves to now, if anything (SIP hosts may resolve through SRV
/// records only, which LiveKit looks up itself).
pub async fn check_address(state: &AppState, address: &str) -> ApiResult<()> {
    let host = match address.parse::<IpAddr>() {
        Ok(_) => address,
        Err(_) => match address.rsplit_once(':') {
            Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => address,
        },
    };
    let ips: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => ssrf::lookup(host, 5060)
            .await
            .map(|a| a.iter().map(std::net::SocketAddr::ip).collect())
            .unwrap_or_default(),
    };
    let allowed: Vec<ssrf::Cidr> = state
        .settings
        .sip_allowed_networks
        .iter()
        .filter_map(|c| ssrf::Cidr::parse(c))
        .collect();
    for ip in ips {
        if allowed.iter().any(|net| net.contains(ip)) {
            continue;
        }
        if let Some(why) = ssrf::refusal(ip, ssrf::Allow::default()) {
            return Err(ApiError::invalid_field(
                "address",
                format!(
                    "address points to a {why} address ({ip}); SIP trunks may not point into \
                     internal networks unless the operator allows them (sip_allowed_networks)"
                ),
            ));
        }
    }
    Ok(())
}

/// The LiveKit ids of a trunk's three resources.
pub struct LkIds {
    /// The inbound trunk.
    pub inbound: String,
    /// The outbound trunk.
    pub outbound: String,
    /// The dispatch rule.
    pub rule: String,
}

/// Creates the LiveKit side of a trunk (undoing what was made on failure).
async fn create_lk(
    lk: &LiveKit,
    project: &ProjectInfo,
    f: &TrunkFields,
    password: &str,
    agent: Option<&Agent>,
) -> ApiResult<LkIds> {
    let outbound = lk
        .call(lk.sip.create_sip_outbound_trunk(
            f.name.clone(),
            f.address.clone(),
            vec![f.phone_number.clone()],
            CreateSIPOutboundTrunkOptions {
                metadata: json!({ "project_id": project.id }).to_string(),
                auth_username: f.auth_username.clone().unwrap_or_default(),
                auth_password: password.to_owned(),
                ..Default::default()
            },
        ))
        .await?;
    let inbound = match lk
        .call(lk.sip.create_sip_inbound_trunk(
            f.name.clone(),
            vec![f.phone_number.clone()],
            CreateSIPInboundTrunkOptions {
                metadata: Some(json!({ "project_id": project.id }).to_string()),
                ..Default::default()
            },
        ))
        .await
    {
        Ok(t) => t,
        Err(e) => {
            drop_lk(lk, Some(&outbound.sip_trunk_id), None, None).await;
            return Err(e);
        }
    };
    let rule = rules::create_rule(lk, project, &f.name, &inbound.sip_trunk_id, agent).await;
    match rule {
        Ok(rule) => Ok(LkIds {
            inbound: inbound.sip_trunk_id,
            outbound: outbound.sip_trunk_id,
            rule,
        }),
        Err(e) => {
            drop_lk(
                lk,
                Some(&outbound.sip_trunk_id),
                Some(&inbound.sip_trunk_id),
                None,
            )
            .await;
            Err(e)
        }
    }
}

/// Deletes LiveKit SIP resources, best effort (already gone is fine).
pub async fn drop_lk(
    lk: &LiveKit,
    outbound: Option<&str>,
    inbound: Option<&str>,
    rule: Option<&str>,
) {
    if let Some(rule) = rule
        && let Err(e) = lk.call(lk.sip.delete_sip_dispatch_rule(rule)).await
    {
        tracing::warn!(rule, error = %e, "could not delete a SIP dispatch rule");
    }
    for id in [outbound, inbound].into_iter().flatten() {
        if let Err(e) = lk.call(lk.sip.delete_sip_trunk(id)).await {
            tracing::warn!(trunk = id, error = %e, "could not delete a SIP trunk");
        }
    }
}

/// 409 when another trunk (than `except`), of any project, has the number:
/// a number is live on one trunk of the installation. The answer does not
/// say whose it is. (A unique index holds the rule under concurrency.)
pub async fn number_free(
    conn: &mut AsyncPgConnection,
    except: Option<i64>,
    phone_number: &str,
) -> ApiResult<()> {
    if store::number_taken(conn, phone_number, except).await? {
        return Err(number_in_use(phone_number));
    }
    Ok(())
}

/// A unique violation (a concurrent trunk took the number) as the 409 of
/// [`number_in_use`]; any other error as it is.
fn taken_or(e: diesel::result::Error, phone_number: &str) -> ApiError {
    match ApiError::from(e) {
        ApiError::Conflict { .. } => number_in_use(phone_number),
        other => other,
    }
}

/// The 409 of a number that is live on another trunk.
fn number_in_use(phone_number: &str) -> ApiError {
    ApiError::conflict(format!(
        "The number {phone_number} is already in use by a SIP trunk"
    ))
}

/// Creates a trunk: its row and, in LiveKit, its two trunks and rule (see
/// the module documentation).
pub async fn create_trunk(
    state: &AppState,
    project: &ProjectInfo,
    fields: TrunkFields,
    password: &str,
) -> ApiResult<Trunk> {
    let lk = state.livekit()?;
    let mut conn = state.pool.get().await?;
    let (reserved, job) = conn
        .transaction::<_, ApiError, _>(async |conn| {
            number_free(conn, None, &fields.phone_number).await?;
            let row = store::insert_trunk(conn, &fields)
                .await
                .map_err(|e| taken_or(e, &fields.phone_number))?;
            let settle = Job::SettleTrunk { trunk_id: row.id };
            let job = jobs::enqueue(conn, &settle, settle.grace(&state.settings)).await?;
            Ok((row, job))
        })
        .await?;
    // The line's agent, dispatched into each inbound call's room.
    let agent = line_agent(&mut conn, project.id, &fields.phone_number).await;
    drop(conn);
    let made = match agent {
        Ok(agent) => create_lk(lk, project, &fields, password, agent.as_ref()).await,
        Err(e) => Err(e.into()),
    };
    let ids = match made {
        Ok(ids) => ids,
        Err(e) => {
            forget_trunk(state, reserved.id, job).await;
            return Err(e);
        }
    };
    let confirmed = match state.pool.get().await {
        Ok(mut conn) => {
            let set = store::set_lk_ids(&mut conn, reserved.id, &ids).await;
            if let Err(e) = jobs::cancel(&mut conn, job).await {
                tracing::debug!(job, error = %e, "settle job not cancelled; it will find nothing to do");
            }
            set.map_err(ApiError::from)
        }
        Err(e) => Err(e.into()),
    };
    let row = match confirmed {
        Ok(Some(row)) => row,
        // Deleted meanwhile, or not recorded: LiveKit's side goes too.
        Ok(None) | Err(_) => {
            drop_lk(lk, Some(&ids.outbound), Some(&ids.inbound), Some(&ids.rule)).await;
            forget_trunk(state, reserved.id, job).await;
            return Err(confirmed
                .err()
                .unwrap_or_else(|| ApiError::not_found("SIP trunk")));
        }
    };
    // A config or agent change while LiveKit answered skipped this trunk.
    rules::resync(state, project).await;
    Ok(row)
}

/// Changes a trunk. `relink` (number, address or auth changed) recreates
/// its LiveKit side, then removes the old one.
pub async fn update_trunk(
    state: &AppState,
    project: &ProjectInfo,
    current: &Trunk,
    fields: TrunkFields,
    relink: bool,
    password: &str,
) -> ApiResult<Trunk> {
    let mut conn = state.pool.get().await?;
    // Checked first: no LiveKit resource is made for a number in use; the
    // row takes the new number at once (the unique index holds it), with
    // the job that puts it back if this process dies before the new
    // LiveKit ids are recorded.
    let (updated, job) = conn
        .transaction::<_, ApiError, _>(async |conn| {
            number_free(conn, Some(current.id), &fields.phone_number).await?;
            let row = store::update_trunk(conn, current.id, &fields)
                .await
                .map_err(|e| taken_or(e, &fields.phone_number))?;
            let job = if relink {
                let settle = Job::SettleRelink {
                    trunk_id: current.id,
                    before: fields_of(current),
                };
                Some(jobs::enqueue(conn, &settle, settle.grace(&state.settings)).await?)
            } else {
                None
            };
            Ok((row, job))
        })
        .await?;
    let Some(job) = job else {
        return Ok(updated);
    };
    let lk = state.livekit()?;
    let agent = line_agent(&mut conn, project.id, &fields.phone_number).await;
    drop(conn);
    let made = match agent {
        Ok(agent) => create_lk(lk, project, &fields, password, agent.as_ref()).await,
        Err(e) => Err(e.into()),
    };
    let ids = match made {
        Ok(ids) => ids,
        Err(e) => {
            restore_trunk(state, current, job).await;
            return Err(e);
        }
    };
    let confirmed = match state.pool.get().await {
        Ok(mut conn) => {
            conn.transaction::<_, ApiError, _>(async |conn| {
                let row = store::set_lk_ids(conn, current.id, &ids).await?;
                jobs::cancel(conn, job).await?;
                Ok(row)
            })
            .await
        }
        Err(e) => Err(e.into()),
    };
    let row = match confirmed {
        Ok(Some(row)) => row,
        Ok(None) | Err(_) => {
            drop_lk(lk, Some(&ids.outbound), Some(&ids.inbound), Some(&ids.rule)).await;
            return Err(confirmed
                .err()
                .unwrap_or_else(|| ApiError::not_found("SIP trunk")));
        }
    };
    drop_lk(
        lk,
        current.outbound_trunk_id.as_deref(),
        current.inbound_trunk_id.as_deref(),
        current.dispatch_rule_id.as_deref(),
    )
    .await;
    rules::resync(state, project).await;
    Ok(row)
}

/// Drops the reservation of a trunk LiveKit did not make, and its settle
/// job (logged when it cannot be: the job drops it).
async fn forget_trunk(state: &AppState, id: i64, job: i64) {
    let deleted = async {
        let mut conn = state.pool.get().await?;
        store::delete_trunk(&mut conn, id).await?;
        jobs::cancel(&mut conn, job).await?;
        Ok::<_, ApiError>(())
    };
    if let Err(e) = deleted.await {
        tracing::warn!(trunk = id, error = %e, "could not drop a SIP trunk reservation");
    }
}

/// The settle job of a trunk reservation ([`Job::SettleTrunk`]): a trunk
/// whose LiveKit ids were never recorded (the process creating it died
/// between its steps) is undone in LiveKit — the trunks made for it (its
/// number, this project's metadata, recorded on no row) and their
/// dispatch rules — then dropped, its number freed (`trunk_released`).
/// LiveKit unreachable: an error, retried.
pub async fn settle(state: &AppState, id: i64) -> anyhow::Result<Option<&'static str>> {
    let trunk = {
        let mut conn = state.pool.get().await?;
        store::reservation(&mut conn, id).await?
    };
    let Some(trunk) = trunk else {
        return Ok(None);
    };
    let made = undo_unrecorded(state, trunk.project_id, &trunk.phone_number).await?;
    let mut conn = state.pool.get().await?;
    let dropped = store::drop_reservation(&mut conn, id).await?;
    if dropped {
        tracing::warn!(
            trunk = id,
            undone_in_livekit = made,
            "dropped a SIP trunk reservation left by a process that died"
        );
    }
    Ok(dropped.then_some("trunk_released"))
}

/// The stored fields of a trunk row.
fn fields_of(t: &Trunk) -> TrunkFields {
    TrunkFields {
        project_id: t.project_id,
        name: t.name.clone(),
        phone_number: t.phone_number.clone(),
        address: t.address.clone(),
        auth_username: t.auth_username.clone(),
        inbound_trunk_id: t.inbound_trunk_id.clone(),
        outbound_trunk_id: t.outbound_trunk_id.clone(),
        dispatch_rule_id: t.dispatch_rule_id.clone(),
    }
}

/// Deletes the LiveKit trunks made for `number` in the project (its
/// metadata) that no trunk row records, and their dispatch rules; returns
/// how many trunks it deleted. LiveKit unreachable: an error.
async fn undo_unrecorded(state: &AppState, project_id: i64, number: &str) -> anyhow::Result<usize> {
    let lk = state.livekit().map_err(|e| anyhow::anyhow!("{e}"))?;
    let lk_err = |what: &str, e: ApiError| anyhow::anyhow!("{what}: {e}");
    let ours = |numbers: &[String], metadata: &str| {
        numbers.iter().any(|n| n == number)
            && serde_json::from_str::<serde_json::Value>(metadata)
                .is_ok_and(|m| m["project_id"] == project_id)
    };
    let outbound: Vec<String> = lk
        .call(
            lk.sip
                .list_sip_outbound_trunk(ListSIPOutboundTrunkFilter::All),
        )
        .await
        .map_err(|e| lk_err("ListSIPOutboundTrunk", e))?
        .into_iter()
        .filter(|t| ours(&t.numbers, &t.metadata))
        .map(|t| t.sip_trunk_id)
        .collect();
    let inbound: Vec<String> = lk
        .call(
            lk.sip
                .list_sip_inbound_trunk(ListSIPInboundTrunkFilter::All),
        )
        .await
        .map_err(|e| lk_err("ListSIPInboundTrunk", e))?
        .into_iter()
        .filter(|t| ours(&t.numbers, &t.metadata))
        .map(|t| t.sip_trunk_id)
        .collect();
    let made: Vec<String> = outbound.iter().chain(&inbound).cloned().collect();
    let recorded = {
        let mut conn = state.pool.get().await?;
        store::recorded_lk_trunks(&mut conn, &made).await?
    };
    let orphan = |id: &String| !recorded.contains(id);
    let inbound: Vec<&String> = inbound.iter().filter(|i| orphan(i)).collect();
    if !inbound.is_empty() {
        let rules = lk
            .call(
                lk.sip
                    .list_sip_dispatch_rule(ListSIPDispatchRuleFilter::All),
            )
            .await
            .map_err(|e| lk_err("ListSIPDispatchRule", e))?;
        for rule in rules
            .iter()
            .filter(|r| r.trunk_ids.iter().any(|t| inbound.contains(&t)))
        {
            match lk
                .call(lk.sip.delete_sip_dispatch_rule(&rule.sip_dispatch_rule_id))
                .await
            {
                Ok(_) | Err(ApiError::NotFound(_)) => {}
                Err(e) => return Err(lk_err("DeleteSIPDispatchRule", e)),
            }
        }
    }
    let mut deleted = 0;
    for id in outbound.iter().filter(|o| orphan(o)).chain(inbound) {
        match lk.call(lk.sip.delete_sip_trunk(id)).await {
            Ok(_) | Err(ApiError::NotFound(_)) => deleted += 1,
            Err(e) => return Err(lk_err("DeleteSIPTrunk", e)),
        }
    }
    Ok(deleted)
}

/// Puts a trunk back as it was before a change LiveKit refused, and
/// cancels the change's settle job (logged when it cannot: the job puts
/// the trunk back).
async fn restore_trunk(state: &AppState, current: &Trunk, job: i64) {
    let fields = fields_of(current);
    let restored = match state.pool.get().await {
        Ok(mut conn) => {
            conn.transaction::<_, ApiError, _>(async |conn| {
                store::update_trunk(conn, current.id, &fields).await?;
                jobs::cancel(conn, job).await?;
                Ok(())
            })
            .await
        }
        Err(e) => Err(e.into()),
    };
    if let Err(e) = restored {
        tracing::warn!(trunk = current.id, error = %e, "could not restore a SIP trunk");
    }
}

/// The settle job of a trunk change that recreates its LiveKit side
/// ([`Job::SettleRelink`]). Its new LiveKit ids recorded (or the trunk
/// gone, or put back already): nothing to do. Otherwise the process making
/// the change died between its steps (or could not record them): what
/// LiveKit made for the new values is deleted (trunks with the trunk's
/// number and the project's metadata that no row records, and their
/// dispatch rules) and the row put back as it was, on its old LiveKit
/// trunks, which stayed (they are deleted only after the new ids are
/// recorded). LiveKit unreachable: an error, retried.
pub async fn settle_relink(
    state: &AppState,
    id: i64,
    before: &TrunkFields,
) -> anyhow::Result<Option<&'static str>> {
    let trunk = {
        let mut conn = state.pool.get().await?;
        store::by_id(&mut conn, id).await?
    };
    let Some(trunk) = trunk else {
        return Ok(None);
    };
    let now = fields_of(&trunk);
    let same_ids = now.outbound_trunk_id == before.outbound_trunk_id
        && now.inbound_trunk_id == before.inbound_trunk_id;
    if !same_ids || now == *before {
        return Ok(None);
    }
    let undone = undo_unrecorded(state, trunk.project_id, &trunk.phone_number).await?;
    let mut conn = state.pool.get().await?;
    store::update_trunk(&mut conn, id, before).await?;
    tracing::warn!(
        trunk = id,
        undone_in_livekit = undone,
        "put back a SIP trunk change left by a process that died"
    );
    Ok(Some("trunk_restored"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers() {
        assert_eq!(
            e164("p", "+17751234567").ok().as_deref(),
            Some("+17751234567")
        );
        assert_eq!(
            e164("p", "+442071838750").ok().as_deref(),
            Some("+442071838750")
        );
        for bad in [
            "17751234567",
            "+1775abc4567",
            "+1775",
            "+999123456789",
            "+",
            "",
            "+1 (775) 123-4567",
            "+1775123456789012",
        ] {
            assert!(e164("p", bad).is_err(), "{bad}");
        }
    }
}
