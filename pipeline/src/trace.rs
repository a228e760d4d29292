//! Traces: the process's logging and OpenTelemetry set-up, and the W3C trace
//! context that carries one job's trace from the upload to its event.
//!
//! Tracing is off unless the standard variables ask for it:
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
//! set, or `OTEL_TRACES_EXPORTER=otlp`; `OTEL_TRACES_EXPORTER=none` and
//! `OTEL_SDK_DISABLED=true` keep it off. The exporter speaks OTLP/HTTP with
//! protobuf bodies and reads the rest of its settings itself
//! (`OTEL_EXPORTER_OTLP_HEADERS`, `_TIMEOUT`, `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and `_ARG`,
//! `OTEL_BSP_*`). Off, no OpenTelemetry layer is installed at all, and every
//! function here that reads a span's context finds none.
//!
//! The context travels as a `traceparent` string (W3C Trace Context,
//! version 00):
//! - the API's request span takes the caller's `traceparent` header as its
//!   parent;
//! - a job row records the context it was created in (`jobs.trace_parent`),
//!   which the presigned path needs, since S3's `ObjectCreated` event cannot
//!   carry it;
//! - a job's message carries it beside the body: an SQS message attribute,
//!   a column of the queue table;
//! - the worker's spans continue it, and so does the publish: an SNS message
//!   attribute, the webhook's `traceparent` header, and `trace_id` in the
//!   event body and the job resource.
//!
//! A replay is a new job with a new trace, linked to its original's.

use std::collections::HashMap;

use opentelemetry::Context;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The header and attribute name of the W3C trace context.
pub const TRACEPARENT: &str = "traceparent";

/// Where spans go, if anywhere.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Export {
    /// Nowhere: no OpenTelemetry layer (the default).
    #[default]
    Off,
    /// OTLP/HTTP; the endpoint from the `OTEL_EXPORTER_OTLP_*` variables.
    OtlpFromEnv,
    /// OTLP/HTTP to this traces endpoint (`…/v1/traces`), whatever the
    /// environment says.
    OtlpTo(String),
}

impl Export {
    /// What the standard `OTEL_*` variables ask for.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return Self::Off;
        }
        match var("OTEL_TRACES_EXPORTER").map(|v| v.trim().to_ascii_lowercase()) {
            Some(exporter) if exporter == "otlp" => Self::OtlpFromEnv,
            Some(_) => Self::Off,
            None if var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
                || var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some() =>
            {
                Self::OtlpFromEnv
            }
            None => Self::Off,
        }
    }
}

/// The installed tracer, to flush before the process exits.
#[derive(Debug, Default)]
#[must_use = "spans still buffered are lost unless it is shut down"]
pub struct Tracing {
    provider: Option<SdkTracerProvider>,
}

impl Tracing {
    /// Whether spans are exported.
    pub fn is_on(&self) -> bool {
        self.provider.is_some()
    }

    /// Sends every finished span now.
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(err) = provider.force_flush()
        {
            tracing::warn!(error = %err, "could not flush the trace exporter");
        }
    }

    /// Flushes and stops the exporter.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(err) = provider.shutdown()
        {
            tracing::warn!(error = %err, "could not shut the trace exporter down");
        }
    }
}

/// How the process logs and traces.
#[derive(Debug)]
pub struct Telemetry {
    /// The log filter (`RUST_LOG`'s syntax); it decides which spans are
    /// exported too.
    pub filter: EnvFilter,
    /// One JSON object per log line (`LOG_FORMAT=json`), with the trace and
    /// span ids of the span it is in.
    pub json: bool,
    /// Where spans go.
    pub export: Export,
}

impl Telemetry {
    /// The settings of a process: `RUST_LOG` or `default_filter`,
    /// `LOG_FORMAT`, and the `OTEL_*` variables.
    pub fn from_env(default_filter: &str) -> Self {
        Self {
            filter: EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
            json: std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")),
            export: Export::from_env(),
        }
    }

    /// Installs the global subscriber (and, with an exporter, the global
    /// propagator); logs to stderr.
    ///
    /// # Errors
    /// The exporter could not be built, or a subscriber is already installed.
    pub fn init(self) -> Result<Tracing, TelemetryError> {
        let provider = match &self.export {
            Export::Off => None,
            export => Some(provider(export)?),
        };
        // What every span costs, sampled or not, is kept to building it:
        // nothing else in the process reads OpenTelemetry's current context
        // (the carriers read the span's own), so entering a span need not
        // activate it, and busy/idle timings and thread attributes would
        // add clock reads and allocations to every poll and every span.
        let otel = provider.as_ref().map(|p| {
            tracing_opentelemetry::layer()
                .with_tracer(p.tracer("image-service"))
                .with_location(false)
                .with_context_activation(false)
                .with_tracked_inactivity(false)
                .with_threads(false)
        });
        let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
        let registry = tracing_subscriber::registry().with(self.filter).with(otel);
        let installed = if self.json {
            registry.with(fmt.json().event_format(json::WithTraceIds::new())).try_init()
        } else {
            registry.with(fmt).try_init()
        };
        installed.map_err(|e| TelemetryError(e.to_string()))?;
        if provider.is_some() {
            opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        }
        Ok(Tracing { provider })
    }
}

/// Telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("telemetry: {0}")]
pub struct TelemetryError(String);

fn provider(export: &Export) -> Result<SdkTracerProvider, TelemetryError> {
    let builder = opentelemetry_otlp::SpanExporter::builder().with_http();
    let builder = match export {
        Export::OtlpTo(endpoint) => {
            use opentelemetry_otlp::WithExportConfig;
            builder.with_endpoint(endpoint)
        }
        _ => builder,
    };
    let exporter = builder.build().map_err(|e| TelemetryError(e.to_string()))?;
    // The environment's `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`
    // win; without them the service is `image-service`.
    let resource = if std::env::var_os("OTEL_SERVICE_NAME").is_some() {
        opentelemetry_sdk::Resource::builder().build()
    } else {
        opentelemetry_sdk::Resource::builder().with_service_name("image-service").build()
    };
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}

/// The JSON log lines' `trace_id` and `span_id`.
mod json {
    use std::fmt;

    use opentelemetry::trace::TraceContextExt;
    use tracing::{Event, Subscriber};
    use tracing_opentelemetry::get_otel_context;
    use tracing_subscriber::fmt::format::{Format, Json, JsonFields, Writer};
    use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
    use tracing_subscriber::registry::LookupSpan;

    /// The JSON format, with the OpenTelemetry ids of the event's span added
    /// to each line that has one.
    pub struct WithTraceIds {
        inner: Format<Json>,
    }

    impl WithTraceIds {
        pub fn new() -> Self {
            Self { inner: tracing_subscriber::fmt::format().json().flatten_event(true).with_current_span(true) }
        }
    }

    impl<S> FormatEvent<S, JsonFields> for WithTraceIds
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        fn format_event(
            &self,
            ctx: &FmtContext<'_, S, JsonFields>,
            mut writer: Writer<'_>,
            event: &Event<'_>,
        ) -> fmt::Result
        where
            JsonFields: FormatFields<'static>,
        {
            let mut line = String::new();
            self.inner.format_event(ctx, Writer::new(&mut line), event)?;
            // After the inner format, which holds the span's extensions
            // while it writes; the context lookup locks them again.
            let ids = ctx.lookup_current().map(|span| span.id()).and_then(|id| {
                let context = tracing::dispatcher::get_default(|dispatch| get_otel_context(&id, dispatch))?;
                let span = context.span();
                let span_context = span.span_context();
                span_context.is_valid().then(|| (span_context.trace_id(), span_context.span_id()))
            });
            match (ids, line.trim_end().strip_suffix('}')) {
                (Some((trace_id, span_id)), Some(open)) => {
                    writeln!(writer, r#"{open},"trace_id":"{trace_id}","span_id":"{span_id}"}}"#)
                }
                _ => writer.write_str(&line),
            }
        }
    }
}

/// The `traceparent` of `span`, if it belongs to a trace (tracing is on).
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// The `traceparent` of the current span.
pub fn current() -> Option<String> {
    traceparent_of(&tracing::Span::current())
}

/// The context a `traceparent` names, if it is a valid one.
fn context_of(traceparent: &str) -> Option<Context> {
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    context.span().span_context().is_valid().then_some(context)
}

/// Makes `span` a child of the span `traceparent` names. Returns whether it
/// did: not when the value is absent or malformed, or tracing is off.
pub fn continue_from(span: &tracing::Span, traceparent: Option<&str>) -> bool {
    let Some(context) = traceparent.and_then(context_of) else { return false };
    span.set_parent(context).is_ok()
}

/// Links `span` to the span `traceparent` names (a replay to its original).
pub fn link_to(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(context) = traceparent.and_then(context_of) {
        span.add_link(context.span().span_context().clone());
    }
}

/// The trace id (32 hex digits) in a `traceparent`.
pub fn trace_id(traceparent: &str) -> Option<String> {
    context_of(traceparent).map(|context| context.span().span_context().trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracing_is_off_unless_the_standard_variables_ask() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        };
        assert_eq!(Export::from_vars(vars(&[])), Export::Off);
        assert_eq!(Export::from_vars(vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")])), Export::OtlpFromEnv);
        assert_eq!(Export::from_vars(vars(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c")])), Export::OtlpFromEnv);
        assert_eq!(Export::from_vars(vars(&[("OTEL_TRACES_EXPORTER", "otlp")])), Export::OtlpFromEnv);
        const OFF: &[(&str, &str)] =
            &[("OTEL_TRACES_EXPORTER", "none"), ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")];
        assert_eq!(Export::from_vars(vars(OFF)), Export::Off);
        const DISABLED: &[(&str, &str)] = &[("OTEL_SDK_DISABLED", "true"), ("OTEL_TRACES_EXPORTER", "otlp")];
        assert_eq!(Export::from_vars(vars(DISABLED)), Export::Off);
    }

    #[test]
    fn a_traceparent_names_its_trace() {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(trace_id(traceparent).as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(
            trace_id("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None,
            "an all-zero id is invalid"
        );
        assert_eq!(trace_id("not a traceparent"), None);
    }

    #[test]
    fn without_an_exporter_nothing_has_a_trace() {
        let span = tracing::info_span!("job");
        assert_eq!(traceparent_of(&span), None);
        assert!(!continue_from(&span, Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")));
    }
}
