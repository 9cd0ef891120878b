//! Conformance of the sandbox to shared/CAFE24.md, over real HTTP on loopback.
//! One test binary; each test starts its own sandbox on a free port.

mod admin;
mod authorize;
mod control;
mod faults;
mod helpers;
mod launch;
mod ratelimit;
mod token;
mod unanswered;
mod webhooks;
