//! Validates the `telemetry:` section: OTLP endpoint (from the file or the standard
//! `OTEL_EXPORTER_OTLP_*` variables), span queue, metrics and payload opt-ins.

use std::collections::BTreeMap;
use std::time::Duration;

use super::raw::{RawOtlp, RawTelemetry};
use super::validate::{Env, Errors, expand, http_header_name_invalid};
use super::{
    MetricsConfig, OtlpConfig, OtlpProtocol, PayloadRule, Secret, TelemetryConfig, TraceConfig,
};

const DEFAULT_QUEUE: u64 = 4096;
const DEFAULT_BATCH: u64 = 512;

pub(super) fn validate(t: RawTelemetry, env: &Env, errs: &mut Errors) -> TelemetryConfig {
    let otlp = match t.otlp {
        Some(o) => otlp(o, env, errs),
        None => otlp_from_env(env, errs),
    };
    let tr = t.traces;
    let sample_ratio = tr.sample_ratio.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&sample_ratio) {
        errs.push("telemetry.traces.sample_ratio", "must be between 0 and 1");
    }
    let queue = tr.queue.unwrap_or(DEFAULT_QUEUE);
    let batch = tr.batch.unwrap_or(DEFAULT_BATCH);
    if queue == 0 {
        errs.push("telemetry.traces.queue", "must be greater than zero");
    }
    if batch == 0 || batch > queue {
        errs.push(
            "telemetry.traces.batch",
            "must be greater than zero and at most telemetry.traces.queue",
        );
    }
    let interval = tr.interval.unwrap_or(Duration::from_secs(1));
    let otlp_interval = t.metrics.otlp_interval.unwrap_or(Duration::from_secs(10));
    for (field, d) in [
        ("telemetry.traces.interval", interval),
        ("telemetry.metrics.otlp_interval", otlp_interval),
    ] {
        if d.is_zero() {
            errs.push(field, "must be greater than zero");
        }
    }
    let payloads = t
        .payloads
        .into_iter()
        .enumerate()
        .filter_map(|(i, p)| match p.backend {
            Some(backend) if !backend.is_empty() => Some(PayloadRule {
                backend,
                tools: p.tools,
            }),
            _ => {
                errs.push(format!("telemetry.payloads[{i}].backend"), "is required");
                None
            }
        })
        .collect();
    let prometheus = t.metrics.prometheus.unwrap_or(true);
    let otlp_metrics = t.metrics.otlp.unwrap_or(!prometheus) && otlp.is_some();
    if t.metrics.otlp == Some(true) && otlp.is_none() {
        errs.push(
            "telemetry.metrics.otlp",
            "needs an OTLP endpoint (telemetry.otlp or OTEL_EXPORTER_OTLP_ENDPOINT)",
        );
    }
    TelemetryConfig {
        service_name: t.service_name.unwrap_or_else(|| "switchboard".into()),
        instance_id: t.instance_id,
        traces: TraceConfig {
            enabled: tr.enabled.unwrap_or(true) && otlp.is_some(),
            sample_ratio,
            queue: usize::try_from(queue).unwrap_or(usize::MAX),
            batch: usize::try_from(batch).unwrap_or(usize::MAX),
            interval,
        },
        otlp,
        metrics: MetricsConfig {
            prometheus,
            otlp: otlp_metrics,
            otlp_interval,
            tool_labels: t.metrics.tool_labels.unwrap_or(true),
        },
        payloads,
    }
}

fn protocol(p: Option<&str>, field: &str, errs: &mut Errors) -> OtlpProtocol {
    match p {
        // The OpenTelemetry specification's default.
        None | Some("http/protobuf") => OtlpProtocol::HttpProtobuf,
        Some("grpc") => OtlpProtocol::Grpc,
        Some(other) => {
            errs.push(
                field,
                format!("expected \"grpc\" or \"http/protobuf\", got {other:?}"),
            );
            OtlpProtocol::HttpProtobuf
        }
    }
}

fn endpoint_ok(e: &str, field: &str, errs: &mut Errors) -> bool {
    match url::Url::parse(e) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => true,
        _ => {
            errs.push(field, "must be an http:// or https:// URL");
            false
        }
    }
}

fn otlp(o: RawOtlp, env: &Env, errs: &mut Errors) -> Option<OtlpConfig> {
    let Some(endpoint) = o.endpoint.filter(|e| !e.trim().is_empty()) else {
        errs.push(
            "telemetry.otlp.endpoint",
            "is required when otlp is present",
        );
        return None;
    };
    let endpoint = expand(&endpoint, env, "telemetry.otlp.endpoint", errs);
    let ok = endpoint_ok(&endpoint, "telemetry.otlp.endpoint", errs);
    let protocol = protocol(o.protocol.as_deref(), "telemetry.otlp.protocol", errs);
    let mut headers = BTreeMap::new();
    for (k, v) in o.headers {
        let field = format!("telemetry.otlp.headers.{k}");
        if http_header_name_invalid(&k) {
            errs.push(field.clone(), "is not a valid HTTP header name");
        }
        headers.insert(
            k.to_ascii_lowercase(),
            Secret::new(expand(&v, env, &field, errs)),
        );
    }
    ok.then(|| OtlpConfig {
        endpoint: endpoint.trim_end_matches('/').to_string(),
        protocol,
        headers,
        timeout: o.timeout.unwrap_or(Duration::from_secs(10)),
    })
}

/// `OTEL_EXPORTER_OTLP_ENDPOINT` / `_PROTOCOL` / `_HEADERS` / `_TIMEOUT` (milliseconds) when the
/// file has no `otlp:`.
fn otlp_from_env(env: &Env, errs: &mut Errors) -> Option<OtlpConfig> {
    let endpoint = env.var("OTEL_EXPORTER_OTLP_ENDPOINT")?;
    if !endpoint_ok(endpoint, "OTEL_EXPORTER_OTLP_ENDPOINT", errs) {
        return None;
    }
    let mut headers = BTreeMap::new();
    for pair in env
        .var("OTEL_EXPORTER_OTLP_HEADERS")
        .unwrap_or("")
        .split(',')
    {
        if let Some((k, v)) = pair.split_once('=') {
            let k = k.trim().to_ascii_lowercase();
            let v = percent_encoding::percent_decode_str(v.trim()).decode_utf8_lossy();
            if http_header_name_invalid(&k) {
                errs.push("OTEL_EXPORTER_OTLP_HEADERS", "holds an invalid header name");
            } else {
                headers.insert(k, Secret::new(v));
            }
        }
    }
    let timeout = env
        .var("OTEL_EXPORTER_OTLP_TIMEOUT")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(Duration::from_secs(10), Duration::from_millis);
    Some(OtlpConfig {
        endpoint: endpoint.trim_end_matches('/').to_string(),
        protocol: protocol(
            env.var("OTEL_EXPORTER_OTLP_PROTOCOL"),
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            errs,
        ),
        headers,
        timeout,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::config::validate::{Env, validate};

    fn load(yaml: &str, env: &[(&str, &str)]) -> Result<Config, String> {
        let raw = serde_norway::from_str(yaml).map_err(|e| e.to_string())?;
        validate(raw, &Env::fixed(env)).map_err(|e| e.to_string())
    }

    const BACKEND: &str = "backends: [{name: a, transport: stdio, command: /bin/true}]\n";

    #[test]
    fn without_an_endpoint_nothing_is_exported_but_metrics_are_served() {
        let c = load(BACKEND, &[]).unwrap();
        assert!(c.telemetry.otlp.is_none());
        assert!(!c.telemetry.traces.enabled);
        assert!(c.telemetry.metrics.prometheus);
    }

    #[test]
    fn the_standard_variables_configure_export_and_headers_stay_secret() {
        let c = load(
            BACKEND,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317/"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s3cr%3Dt,other=1"),
            ],
        )
        .unwrap();
        let o = c.telemetry.otlp.as_ref().unwrap();
        assert_eq!(o.endpoint, "http://127.0.0.1:4317");
        assert_eq!(o.protocol, crate::config::OtlpProtocol::Grpc);
        assert_eq!(o.headers["x-api-key"].expose(), "s3cr=t");
        assert!(c.telemetry.traces.enabled);
        // Metrics go one way by default: the scrape endpoint, not also OTLP.
        assert!(c.telemetry.metrics.prometheus && !c.telemetry.metrics.otlp);
        assert!(!format!("{c:?}").contains("s3cr"));
    }

    #[test]
    fn bad_values_are_named() {
        let yaml = format!(
            "{BACKEND}telemetry:\n  otlp: {{endpoint: 'ftp://x', protocol: udp}}\n  traces: {{sample_ratio: 2, queue: 0}}\n  payloads: [{{tools: [a]}}]\n"
        );
        let e = load(&yaml, &[]).unwrap_err();
        for field in [
            "telemetry.otlp.endpoint",
            "telemetry.otlp.protocol",
            "telemetry.traces.sample_ratio",
            "telemetry.traces.queue",
            "telemetry.payloads[0].backend",
        ] {
            assert!(e.contains(field), "{field} not named in: {e}");
        }
    }
}
