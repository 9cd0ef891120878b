//! Helpers for the cli crate's integration tests.

pub mod webdriver;
