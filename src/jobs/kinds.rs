//! The kinds of background jobs and what each does when it runs.
//!
//! The settle jobs finish or undo a create that calls LiveKit (reserve →
//! commit → call → confirm, issue 19). Each is enqueued in the
//! reservation's transaction to run once the create can no longer answer
//! ([`Job::grace`]); the create's confirmation or its own compensation
//! cancels it, and a settle job that runs anyway finds nothing to do. When
//! it runs, the process that made the reservation died between its steps
//! (or could not record the outcome), and the job settles the reservation
//! the way the create would have: adopting what LiveKit made, else
//! dropping the reservation, emitting the create's events once.

use crate::state::AppState;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// Margin added to the longest time a create can take before its settle
/// job runs.
pub const MARGIN: Duration = Duration::from_secs(2);

/// A background job: its type (the `job_type` column) and its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum Job {
    /// Settles a room reservation (`POST /rooms`): the room LiveKit has is
    /// recorded as its `room_started` webhook would (`room_recorded`),
    /// else the reservation is dropped (`room_released`).
    SettleRoom {
        /// `rooms.id` of the reservation.
        room_id: i64,
    },
    /// Settles a recording reservation (`starting`): the egress writing
    /// its file is adopted with `recording.started` (`recording_adopted`),
    /// else the reservation is dropped (`recording_released`).
    SettleRecording {
        /// `recordings.id` of the reservation.
        recording_id: i64,
    },
    /// Settles a SIP trunk reservation whose LiveKit ids were never
    /// recorded: what LiveKit made for it is deleted and the reservation
    /// dropped (`trunk_released`).
    SettleTrunk {
        /// `sip_trunks.id` of the reservation.
        trunk_id: i64,
    },
    /// Settles a SIP trunk change that recreates its LiveKit side (number,
    /// address or auth) whose new LiveKit ids were never recorded: what
    /// LiveKit made for the new values is deleted and the row put back as
    /// it was, on its old LiveKit trunks (`trunk_restored`).
    SettleRelink {
        /// `sip_trunks.id` of the trunk.
        trunk_id: i64,
        /// The trunk before the change.
        before: crate::sip::store::TrunkFields,
    },
    /// Settles a dial reservation (`reserved`): the call LiveKit placed is
    /// adopted as the dial would have confirmed it (`dial_adopted`), else
    /// the reservation is dropped with its session (`dial_released`).
    SettleDial {
        /// `sip_calls.id` of the reservation.
        call_id: i64,
    },
}

/// The job types this build knows.
pub const TYPES: &[&str] = &[
    "settle_room",
    "settle_recording",
    "settle_trunk",
    "settle_relink",
    "settle_dial",
];

/// A stored job this build cannot run.
#[derive(Debug)]
pub enum Unreadable {
    /// A type this build does not know (left for a build that does).
    UnknownType,
    /// A known type whose data does not fit.
    BadData(String),
}

impl Job {
    /// The `job_type` column.
    pub fn job_type(&self) -> &'static str {
        match self {
            Self::SettleRoom { .. } => "settle_room",
            Self::SettleRecording { .. } => "settle_recording",
            Self::SettleTrunk { .. } => "settle_trunk",
            Self::SettleRelink { .. } => "settle_relink",
            Self::SettleDial { .. } => "settle_dial",
        }
    }

    /// The `data` column.
    pub fn data(&self) -> Value {
        serde_json::to_value(self)
            .ok()
            .and_then(|mut v| v.get_mut("data").map(Value::take))
            .unwrap_or(Value::Null)
    }

    /// A stored job.
    pub fn parse(job_type: &str, data: &Value) -> Result<Self, Unreadable> {
        if !TYPES.contains(&job_type) {
            return Err(Unreadable::UnknownType);
        }
        let tagged = serde_json::json!({ "type": job_type, "data": data });
        serde_json::from_value(tagged).map_err(|e| Unreadable::BadData(e.to_string()))
    }

    /// How long after its reservation a settle job runs: when the create
    /// that made it can no longer be waiting for LiveKit (the reconciler's
    /// grace before, issue 19).
    pub fn grace(&self, settings: &crate::config::Settings) -> Duration {
        let lk = Duration::from_millis(settings.livekit_timeout_ms);
        MARGIN
            + match self {
                // CreateRoom.
                Self::SettleRoom { .. } => lk,
                // The start, then StopEgress when it could not be recorded.
                Self::SettleRecording { .. } => lk * 2,
                // Two trunks and a dispatch rule, the line's agent.
                Self::SettleTrunk { .. } | Self::SettleRelink { .. } => lk * 4,
                // ListRooms, CreateRoom, CreateDispatch, then the placing.
                Self::SettleDial { .. } => crate::sip::dialing::PLACE_TIMEOUT + lk * 4,
            }
    }

    /// Runs the job, with no transaction open; `Ok(Some(kind))` names what
    /// it repaired (`Ok(None)`: nothing left to do). An error is retried.
    pub async fn run(&self, state: &AppState) -> anyhow::Result<Option<&'static str>> {
        match self {
            Self::SettleRoom { room_id } => crate::rooms::service::settle(state, *room_id).await,
            Self::SettleRecording { recording_id } => {
                crate::recordings::service::settle(state, *recording_id).await
            }
            Self::SettleTrunk { trunk_id } => crate::sip::provision::settle(state, *trunk_id).await,
            Self::SettleRelink { trunk_id, before } => {
                crate::sip::provision::settle_relink(state, *trunk_id, before).await
            }
            Self::SettleDial { call_id } => crate::sip::dialing::settle(state, *call_id).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_round_trip_through_their_columns() {
        for job in [
            Job::SettleRoom { room_id: 1 },
            Job::SettleRecording { recording_id: 2 },
            Job::SettleTrunk { trunk_id: 3 },
            Job::SettleRelink {
                trunk_id: 5,
                before: crate::sip::store::TrunkFields {
                    project_id: 1,
                    name: "line".into(),
                    phone_number: "+17755550100".into(),
                    address: "sip.example.com".into(),
                    auth_username: None,
                    inbound_trunk_id: Some("ST_in".into()),
                    outbound_trunk_id: Some("ST_out".into()),
                    dispatch_rule_id: None,
                },
            },
            Job::SettleDial { call_id: 4 },
        ] {
            assert!(TYPES.contains(&job.job_type()));
            let parsed = Job::parse(job.job_type(), &job.data()).unwrap();
            assert_eq!(parsed, job);
        }
        assert_eq!(
            Job::SettleDial { call_id: 4 }.data(),
            serde_json::json!({"call_id": 4})
        );
        assert!(matches!(
            Job::parse("send_fax", &serde_json::json!({})),
            Err(Unreadable::UnknownType)
        ));
        assert!(matches!(
            Job::parse("settle_room", &serde_json::json!({"room": "x"})),
            Err(Unreadable::BadData(_))
        ));
    }
}
