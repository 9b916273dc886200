//! What the OTLP receiver hands tests: spans and metrics flattened from the OTLP protobuf
//! messages (resource and scope folded into each), with attribute lookups.

use std::collections::BTreeMap;
use std::fmt;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{NumberDataPoint, metric, number_data_point};
use opentelemetry_proto::tonic::trace::v1::span;

/// An attribute value, flattened from OTLP's `AnyValue`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AttrValue {
    Str(String),
    Int(i64),
    Bool(bool),
    Double(f64),
    Array(Vec<AttrValue>),
    /// Bytes, key-value lists and dictionary references, in their debug form.
    Other(String),
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Str(s) | AttrValue::Other(s) => f.write_str(s),
            AttrValue::Int(i) => write!(f, "{i}"),
            AttrValue::Bool(b) => write!(f, "{b}"),
            AttrValue::Double(d) => write!(f, "{d}"),
            AttrValue::Array(items) => {
                let items: Vec<String> = items.iter().map(ToString::to_string).collect();
                f.write_str(&items.join(","))
            }
        }
    }
}

/// Attributes by key (the last value wins should a key repeat).
pub(crate) type Attrs = BTreeMap<String, AttrValue>;

/// A span's kind, as OTLP names it without the `SPAN_KIND_` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpanKind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl fmt::Display for SpanKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpanKind::Unspecified => "UNSPECIFIED",
            SpanKind::Internal => "INTERNAL",
            SpanKind::Server => "SERVER",
            SpanKind::Client => "CLIENT",
            SpanKind::Producer => "PRODUCER",
            SpanKind::Consumer => "CONSUMER",
        })
    }
}

/// A span's status code (the message is [`SpanView::status_message`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpanStatus {
    Unset,
    Ok,
    Error,
}

/// A link to another span.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LinkView {
    pub(crate) trace_id: String,
    pub(crate) span_id: String,
    pub(crate) attributes: Attrs,
}

/// One received span, flattened with its resource and scope. Ids are lowercase hex.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SpanView {
    pub(crate) trace_id: String,
    pub(crate) span_id: String,
    /// Empty for a root span.
    pub(crate) parent_span_id: String,
    pub(crate) trace_state: String,
    pub(crate) name: String,
    pub(crate) kind: SpanKind,
    pub(crate) attributes: Attrs,
    pub(crate) status: SpanStatus,
    pub(crate) status_message: String,
    pub(crate) links: Vec<LinkView>,
    /// Event names, in order.
    pub(crate) events: Vec<String>,
    pub(crate) start_unix_nano: u64,
    pub(crate) end_unix_nano: u64,
    pub(crate) resource: Attrs,
    /// The instrumentation scope's name.
    pub(crate) scope: String,
}

impl SpanView {
    pub(crate) fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attributes.get(key)
    }

    /// A string attribute (`None` when absent or not a string).
    pub(crate) fn attr_str(&self, key: &str) -> Option<&str> {
        as_str(self.attributes.get(key))
    }

    /// An integer attribute (`None` when absent or not an integer).
    pub(crate) fn attr_i64(&self, key: &str) -> Option<i64> {
        match self.attributes.get(key) {
            Some(AttrValue::Int(i)) => Some(*i),
            _ => None,
        }
    }

    /// A string resource attribute, e.g. `service.name`.
    pub(crate) fn resource_str(&self, key: &str) -> Option<&str> {
        as_str(self.resource.get(key))
    }

    pub(crate) fn is_root(&self) -> bool {
        self.parent_span_id.is_empty()
    }

    /// Whether `other` is this span's parent (same trace, parent id matches).
    pub(crate) fn is_child_of(&self, other: &SpanView) -> bool {
        self.trace_id == other.trace_id && self.parent_span_id == other.span_id
    }
}

/// A data point's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PointValue {
    Int(i64),
    Double(f64),
    Histogram {
        count: u64,
        sum: Option<f64>,
        bounds: Vec<f64>,
        bucket_counts: Vec<u64>,
    },
    /// Exponential histograms and summaries: only their count.
    Count(u64),
}

/// One data point with its attributes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PointView {
    pub(crate) attributes: Attrs,
    pub(crate) value: PointValue,
}

impl PointView {
    pub(crate) fn attr_str(&self, key: &str) -> Option<&str> {
        as_str(self.attributes.get(key))
    }
}

/// The kind of a metric's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetricKind {
    Gauge,
    Sum { monotonic: bool },
    Histogram,
    ExponentialHistogram,
    Summary,
    Empty,
}

/// One received metric (one per export: cumulative metrics arrive again at every push).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MetricView {
    pub(crate) name: String,
    pub(crate) unit: String,
    pub(crate) kind: MetricKind,
    pub(crate) points: Vec<PointView>,
    pub(crate) resource: Attrs,
    pub(crate) scope: String,
}

impl MetricView {
    /// The first data point whose string attributes include every `(key, value)` pair.
    pub(crate) fn point_with(&self, attrs: &[(&str, &str)]) -> Option<&PointView> {
        self.points
            .iter()
            .find(|p| attrs.iter().all(|(k, v)| p.attr_str(k) == Some(*v)))
    }
}

pub(super) fn flatten_spans(req: ExportTraceServiceRequest) -> Vec<SpanView> {
    let mut out = Vec::new();
    for rs in req.resource_spans {
        let resource = attrs(rs.resource.map(|r| r.attributes).unwrap_or_default());
        for ss in rs.scope_spans {
            let scope = ss.scope.map(|s| s.name).unwrap_or_default();
            for s in ss.spans {
                let status = s.status.unwrap_or_default();
                out.push(SpanView {
                    trace_id: hex::encode(&s.trace_id),
                    span_id: hex::encode(&s.span_id),
                    parent_span_id: hex::encode(&s.parent_span_id),
                    trace_state: s.trace_state,
                    name: s.name,
                    kind: span_kind(s.kind),
                    attributes: attrs(s.attributes),
                    status: match status.code {
                        1 => SpanStatus::Ok,
                        2 => SpanStatus::Error,
                        _ => SpanStatus::Unset,
                    },
                    status_message: status.message,
                    links: s.links.into_iter().map(link).collect(),
                    events: s.events.into_iter().map(|e| e.name).collect(),
                    start_unix_nano: s.start_time_unix_nano,
                    end_unix_nano: s.end_time_unix_nano,
                    resource: resource.clone(),
                    scope: scope.clone(),
                });
            }
        }
    }
    out
}

fn span_kind(kind: i32) -> SpanKind {
    match span::SpanKind::try_from(kind) {
        Ok(span::SpanKind::Internal) => SpanKind::Internal,
        Ok(span::SpanKind::Server) => SpanKind::Server,
        Ok(span::SpanKind::Client) => SpanKind::Client,
        Ok(span::SpanKind::Producer) => SpanKind::Producer,
        Ok(span::SpanKind::Consumer) => SpanKind::Consumer,
        Ok(span::SpanKind::Unspecified) | Err(_) => SpanKind::Unspecified,
    }
}

fn link(l: span::Link) -> LinkView {
    LinkView {
        trace_id: hex::encode(&l.trace_id),
        span_id: hex::encode(&l.span_id),
        attributes: attrs(l.attributes),
    }
}

pub(super) fn flatten_metrics(req: ExportMetricsServiceRequest) -> Vec<MetricView> {
    let mut out = Vec::new();
    for rm in req.resource_metrics {
        let resource = attrs(rm.resource.map(|r| r.attributes).unwrap_or_default());
        for sm in rm.scope_metrics {
            let scope = sm.scope.map(|s| s.name).unwrap_or_default();
            for m in sm.metrics {
                let (kind, points) = metric_points(m.data);
                out.push(MetricView {
                    name: m.name,
                    unit: m.unit,
                    kind,
                    points,
                    resource: resource.clone(),
                    scope: scope.clone(),
                });
            }
        }
    }
    out
}

fn metric_points(data: Option<metric::Data>) -> (MetricKind, Vec<PointView>) {
    let number = |p: NumberDataPoint| PointView {
        attributes: attrs(p.attributes),
        value: match p.value {
            Some(number_data_point::Value::AsInt(i)) => PointValue::Int(i),
            Some(number_data_point::Value::AsDouble(d)) => PointValue::Double(d),
            None => PointValue::Count(0),
        },
    };
    match data {
        Some(metric::Data::Gauge(g)) => (
            MetricKind::Gauge,
            g.data_points.into_iter().map(number).collect(),
        ),
        Some(metric::Data::Sum(s)) => (
            MetricKind::Sum {
                monotonic: s.is_monotonic,
            },
            s.data_points.into_iter().map(number).collect(),
        ),
        Some(metric::Data::Histogram(h)) => (
            MetricKind::Histogram,
            h.data_points
                .into_iter()
                .map(|p| PointView {
                    attributes: attrs(p.attributes),
                    value: PointValue::Histogram {
                        count: p.count,
                        sum: p.sum,
                        bounds: p.explicit_bounds,
                        bucket_counts: p.bucket_counts,
                    },
                })
                .collect(),
        ),
        Some(metric::Data::ExponentialHistogram(h)) => (
            MetricKind::ExponentialHistogram,
            h.data_points
                .into_iter()
                .map(|p| PointView {
                    attributes: attrs(p.attributes),
                    value: PointValue::Count(p.count),
                })
                .collect(),
        ),
        Some(metric::Data::Summary(s)) => (
            MetricKind::Summary,
            s.data_points
                .into_iter()
                .map(|p| PointView {
                    attributes: attrs(p.attributes),
                    value: PointValue::Count(p.count),
                })
                .collect(),
        ),
        None => (MetricKind::Empty, Vec::new()),
    }
}

fn attrs(kvs: Vec<KeyValue>) -> Attrs {
    kvs.into_iter()
        .map(|kv| {
            (
                kv.key,
                kv.value.map_or(AttrValue::Other(String::new()), value),
            )
        })
        .collect()
}

fn value(v: AnyValue) -> AttrValue {
    match v.value {
        Some(any_value::Value::StringValue(s)) => AttrValue::Str(s),
        Some(any_value::Value::IntValue(i)) => AttrValue::Int(i),
        Some(any_value::Value::BoolValue(b)) => AttrValue::Bool(b),
        Some(any_value::Value::DoubleValue(d)) => AttrValue::Double(d),
        Some(any_value::Value::ArrayValue(a)) => {
            AttrValue::Array(a.values.into_iter().map(value).collect())
        }
        other => AttrValue::Other(format!("{other:?}")),
    }
}

fn as_str(v: Option<&AttrValue>) -> Option<&str> {
    match v {
        Some(AttrValue::Str(s)) => Some(s),
        _ => None,
    }
}
