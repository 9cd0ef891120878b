//! The conformance kit: checks any implementation of the cafe24-oauth contract — this
//! runtime or an app in any language — black-box, over real HTTP and a real PostgreSQL.
//!
//! A run starts a sandbox (the local Cafe24) in-process and a throwaway PostgreSQL (or a fresh
//! database in a given cluster), starts the implementation (`COMMAND`, N copies, and an
//! optional background command) with the contract's environment, runs every case, stops all
//! it started and reports: a table closing with `N passed, N failed`, JSON, JUnit XML.
//!
//! The contract's formats (the signed state, the launch `hmac`, tokens at rest) are written
//! again in [`contract`] from their description, so the kit does not agree with the runtime
//! by construction. `cafe24-oauth conformance` is the command; see docs/conformance.md.

pub mod args;
pub mod cases;
pub mod check;
pub mod contract;
pub mod db;
pub mod env;
pub mod error;
pub mod fleet;
pub mod flow;
pub mod postgres;
pub mod report;
pub mod run;
pub mod start;
pub mod world;

pub use args::{CommandLine, ConformanceArgs};
pub use error::KitError;
pub use report::Report;
pub use run::{run, usage_problem};
