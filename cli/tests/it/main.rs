//! Integration tests: the real API, worker, database and AWS emulator.
//!
//! One test binary (modules below) keeps link time down. The services are
//! started by `scripts/test`; a test that cannot reach one fails, it never skips.

mod api_errors;
mod api_product;
mod cli;
mod client;
mod client_fields;
mod dashboards;
mod deletion;
mod delivery;
mod e2e;
mod edge;
mod migrations;
mod notifications;
mod queue;
mod quotas;
mod reliability;
mod replay;
mod retention;
mod support;
mod tenants;
mod tls;
mod traces;
