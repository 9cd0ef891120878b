//! The cafe24-oauth command.
fn main() {}
