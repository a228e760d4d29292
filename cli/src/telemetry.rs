//! Logging and traces: JSON in containers (`LOG_FORMAT=json`), readable
//! lines otherwise; spans over OTLP when the `OTEL_*` variables ask
//! (`pipeline::trace`).

use pipeline::trace::{Telemetry, Tracing};

/// The log filter unless `RUST_LOG` sets one.
const DEFAULT_FILTER: &str = "info,sqlx=warn,aws_config=warn,aws_smithy_runtime=warn,tower_http=info";

/// Installs the global subscriber; the tracer it returns flushes at exit.
pub fn init() -> Tracing {
    match Telemetry::from_env(DEFAULT_FILTER).init() {
        Ok(tracing) => tracing,
        Err(err) => {
            // Logs are still wanted when the exporter can't be built.
            eprintln!("warning: {err}; logging without traces");
            let _ = Telemetry { export: pipeline::trace::Export::Off, ..Telemetry::from_env(DEFAULT_FILTER) }.init();
            Tracing::default()
        }
    }
}
