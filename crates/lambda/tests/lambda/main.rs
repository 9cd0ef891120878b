//! The real `bootstrap` binary, run as Lambda runs it: a child process polling a local Runtime
//! API, fed API Gateway (REST v1, HTTP v2) and EventBridge events, checked by its answers and
//! by the rows in PostgreSQL.

#[path = "../support/mod.rs"]
mod support;

mod callback;
mod connections;
mod init;
mod jobs;
