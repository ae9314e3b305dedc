//! Starting calls: which agents a call dispatches ([`dispatch`]) and the
//! session every dispatched call starts, written in batches with its quota
//! check and its `session.started` event ([`starts`]). Used by
//! `POST /api/v1/token` (the contract's default path: agents are dispatched
//! unless `no_agent`), `POST /api/v1/sessions` and SIP.

pub mod dispatch;
pub mod starts;
