//! Regression tests for the attacks of the security review (issue 18), each
//! reproduced over HTTP or WebSocket as an attacker would run it.

mod accounts;
mod network;
mod sockets;
mod tokens;
