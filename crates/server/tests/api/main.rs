//! HTTP behaviour of the server over real loopback HTTP, on PostgreSQL and SQLite.

mod callback;
mod health;
mod helpers;
mod install;
mod openapi;
