//! Renders gathered Prometheus metric families as OpenMetrics 1.0 text (what Prometheus asks
//! `/metrics` for first); the Prometheus 0.0.4 text format comes from the `prometheus` crate.

use std::fmt::Write as _;

use prometheus::proto::{MetricFamily, MetricType};

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub fn encode(families: &[MetricFamily]) -> String {
    let mut out = String::with_capacity(4096);
    for f in families {
        let name = f.name();
        let (kind, family) = match f.get_field_type() {
            MetricType::COUNTER => ("counter", name.strip_suffix("_total").unwrap_or(name)),
            MetricType::GAUGE => ("gauge", name),
            MetricType::HISTOGRAM => ("histogram", name),
            MetricType::SUMMARY => ("summary", name),
            MetricType::UNTYPED => ("unknown", name),
        };
        let _ = writeln!(out, "# TYPE {family} {kind}");
        if !f.help().is_empty() {
            let _ = writeln!(out, "# HELP {family} {}", escape(f.help()));
        }
        for m in f.get_metric() {
            let labels: Vec<(&str, &str)> = m
                .get_label()
                .iter()
                .map(|l| (l.name(), l.value()))
                .collect();
            match f.get_field_type() {
                MetricType::COUNTER => sample(
                    &mut out,
                    &format!("{family}_total"),
                    &labels,
                    None,
                    m.get_counter().get_value(),
                ),
                MetricType::GAUGE => {
                    sample(&mut out, family, &labels, None, m.get_gauge().get_value())
                }
                // Not produced by the OpenTelemetry exporter.
                MetricType::UNTYPED => {}
                MetricType::HISTOGRAM => {
                    let h = m.get_histogram();
                    let bucket = format!("{family}_bucket");
                    let mut saw_inf = false;
                    for b in h.get_bucket() {
                        saw_inf |= b.upper_bound().is_infinite();
                        let le = float(b.upper_bound());
                        sample(
                            &mut out,
                            &bucket,
                            &labels,
                            Some(&le),
                            b.cumulative_count() as f64,
                        );
                    }
                    if !saw_inf {
                        sample(
                            &mut out,
                            &bucket,
                            &labels,
                            Some("+Inf"),
                            h.get_sample_count() as f64,
                        );
                    }
                    sample(
                        &mut out,
                        &format!("{family}_sum"),
                        &labels,
                        None,
                        h.get_sample_sum(),
                    );
                    sample(
                        &mut out,
                        &format!("{family}_count"),
                        &labels,
                        None,
                        h.get_sample_count() as f64,
                    );
                }
                MetricType::SUMMARY => {
                    let s = m.get_summary();
                    sample(
                        &mut out,
                        &format!("{family}_sum"),
                        &labels,
                        None,
                        s.sample_sum(),
                    );
                    sample(
                        &mut out,
                        &format!("{family}_count"),
                        &labels,
                        None,
                        s.sample_count() as f64,
                    );
                }
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], le: Option<&str>, v: f64) {
    out.push_str(name);
    if !labels.is_empty() || le.is_some() {
        out.push('{');
        let mut first = true;
        for (k, val) in labels.iter().copied().chain(le.map(|l| ("le", l))) {
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(out, "{k}=\"{}\"", escape(val));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {}", float(v));
}

fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{CounterVec, HistogramOpts, HistogramVec, Opts, Registry};

    #[test]
    fn counters_histograms_and_escapes_follow_openmetrics() {
        let r = Registry::new();
        let c = CounterVec::new(Opts::new("calls_total", "Calls"), &["tool"]).unwrap();
        let h = HistogramVec::new(
            HistogramOpts::new("op_seconds", "Op").buckets(vec![0.1, 1.0]),
            &["m"],
        )
        .unwrap();
        r.register(Box::new(c.clone())).unwrap();
        r.register(Box::new(h.clone())).unwrap();
        c.with_label_values(&["a\"b\\c\nd"]).inc_by(2.0);
        h.with_label_values(&["x"]).observe(0.5);
        let text = encode(&r.gather());
        assert!(text.contains("# TYPE calls counter\n"), "{text}");
        assert!(
            text.contains("calls_total{tool=\"a\\\"b\\\\c\\nd\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("op_seconds_bucket{m=\"x\",le=\"0.1\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("op_seconds_bucket{m=\"x\",le=\"1\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("op_seconds_bucket{m=\"x\",le=\"+Inf\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("op_seconds_count{m=\"x\"} 1\n"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
