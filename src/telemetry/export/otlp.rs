//! OTLP/protobuf encoding of spans, written straight from the facts of a call into a byte buffer:
//! no SDK `SpanData`, no generated structs, no `String` per attribute on the request path. A batch
//! of encoded spans is framed into one `ExportTraceServiceRequest` with the resource and the
//! instrumentation scope encoded once, when the pipeline starts.
//!
//! Field numbers are those of `opentelemetry/proto/{trace,common,resource}/v1/*.proto` and
//! `collector/trace/v1/trace_service.proto`; the unit tests decode what is written here with the
//! generated `opentelemetry-proto` types.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message as _;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};

/// `ScopeSpans.spans`: every span written here is framed as this field, so that a batch is the
/// concatenation of its spans.
const SCOPE_SPANS_SPANS: u32 = 2;

/// Span fields.
mod span {
    pub(super) const TRACE_ID: u32 = 1;
    pub(super) const SPAN_ID: u32 = 2;
    pub(super) const TRACE_STATE: u32 = 3;
    pub(super) const PARENT_SPAN_ID: u32 = 4;
    pub(super) const NAME: u32 = 5;
    pub(super) const KIND: u32 = 6;
    pub(super) const START: u32 = 7;
    pub(super) const END: u32 = 8;
    pub(super) const ATTRIBUTES: u32 = 9;
    pub(super) const LINKS: u32 = 13;
    pub(super) const STATUS: u32 = 15;
    pub(super) const FLAGS: u32 = 16;
}

/// `SpanFlags`: the W3C trace flags in the low byte, and whether the parent is remote.
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
const FLAG_IS_REMOTE: u32 = 0x200;

/// `Span.SpanKind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Server = 2,
    Client = 3,
}

/// The fixed fields of a span.
#[derive(Debug)]
pub(crate) struct Head<'a> {
    pub(crate) trace_id: [u8; 16],
    pub(crate) span_id: [u8; 8],
    /// The parent span, and whether it is remote (another process's).
    pub(crate) parent: Option<([u8; 8], bool)>,
    /// The W3C `tracestate` header, already validated ("" when there is none).
    pub(crate) trace_state: &'a str,
    pub(crate) sampled: bool,
    pub(crate) kind: Kind,
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
}

/// A remote span context a span links to.
#[derive(Debug)]
pub(crate) struct LinkTo<'a> {
    pub(crate) trace_id: [u8; 16],
    pub(crate) span_id: [u8; 8],
    pub(crate) trace_state: &'a str,
    pub(crate) sampled: bool,
}

/// Writes the fields of one span into the buffer (see [`span`]).
#[derive(Debug)]
pub(crate) struct SpanWriter<'a> {
    buf: &'a mut Vec<u8>,
}

/// Appends one span, framed as a `ScopeSpans.spans` field: the head, then whatever `body` adds
/// (name, attributes, links, status).
pub(crate) fn write_span(
    buf: &mut Vec<u8>,
    head: &Head<'_>,
    body: impl FnOnce(&mut SpanWriter<'_>),
) {
    // A span is a few hundred bytes: two bytes of length are the usual case.
    nested(buf, SCOPE_SPANS_SPANS, 2, |buf| {
        bytes_field(buf, span::TRACE_ID, &head.trace_id);
        bytes_field(buf, span::SPAN_ID, &head.span_id);
        if !head.trace_state.is_empty() {
            bytes_field(buf, span::TRACE_STATE, head.trace_state.as_bytes());
        }
        if let Some((p, _)) = &head.parent {
            bytes_field(buf, span::PARENT_SPAN_ID, p);
        }
        encode_key(span::KIND, WireType::Varint, buf);
        encode_varint(head.kind as u64, buf);
        fixed64(buf, span::START, nanos(head.start));
        fixed64(buf, span::END, nanos(head.end));
        let remote = head.parent.is_some_and(|(_, r)| r);
        fixed32(buf, span::FLAGS, flags(head.sampled, remote));
        body(&mut SpanWriter { buf });
    });
}

impl SpanWriter<'_> {
    /// `name`.
    pub(crate) fn name(&mut self, name: &str) {
        bytes_field(self.buf, span::NAME, name.as_bytes());
    }

    /// `name` = `{first} {second}`, without formatting a `String`.
    pub(crate) fn name2(&mut self, first: &str, second: &str) {
        encode_key(span::NAME, WireType::LengthDelimited, self.buf);
        encode_varint((first.len() + 1 + second.len()) as u64, self.buf);
        self.buf.extend_from_slice(first.as_bytes());
        self.buf.push(b' ');
        self.buf.extend_from_slice(second.as_bytes());
    }

    /// A string attribute (lengths known up front: written in one pass, nothing moved).
    pub(crate) fn str(&mut self, key: &str, value: &str) {
        let any = field_len(value.len());
        let kv = field_len(key.len()) + field_len(any);
        let buf = &mut *self.buf;
        buf.reserve(field_len(kv));
        small_key(buf, span::ATTRIBUTES, WireType::LengthDelimited);
        encode_varint(kv as u64, buf);
        bytes_field(buf, 1, key.as_bytes());
        small_key(buf, 2, WireType::LengthDelimited);
        encode_varint(any as u64, buf);
        bytes_field(buf, ANY_STRING, value.as_bytes());
    }

    /// A string attribute formatted in place (addresses, ids): no `String` unless it is long.
    pub(crate) fn display(&mut self, key: &str, value: impl std::fmt::Display) {
        let mut s = Small::default();
        if write!(s, "{value}").is_ok() {
            self.str(key, s.as_str());
        } else {
            self.str(key, &value.to_string());
        }
    }

    /// An integer attribute.
    pub(crate) fn int(&mut self, key: &str, value: i64) {
        let any = 1 + encoded_len_varint(value as u64);
        let kv = field_len(key.len()) + field_len(any);
        let buf = &mut *self.buf;
        buf.reserve(field_len(kv));
        small_key(buf, span::ATTRIBUTES, WireType::LengthDelimited);
        encode_varint(kv as u64, buf);
        bytes_field(buf, 1, key.as_bytes());
        small_key(buf, 2, WireType::LengthDelimited);
        encode_varint(any as u64, buf);
        small_key(buf, ANY_INT, WireType::Varint);
        encode_varint(value as u64, buf);
    }

    /// A string-array attribute.
    pub(crate) fn strs<'s>(&mut self, key: &str, values: impl IntoIterator<Item = &'s str>) {
        key_value(self.buf, span::ATTRIBUTES, key, |buf| {
            nested(buf, ANY_ARRAY, 1, |buf| {
                for v in values {
                    // ArrayValue.values: an AnyValue holding the string.
                    let any = field_len(v.len());
                    encode_key(1, WireType::LengthDelimited, buf);
                    encode_varint(any as u64, buf);
                    bytes_field(buf, ANY_STRING, v.as_bytes());
                }
            });
        });
    }

    /// A link to a remote span context (no attributes).
    pub(crate) fn link(&mut self, l: &LinkTo<'_>) {
        nested(self.buf, span::LINKS, 1, |buf| {
            bytes_field(buf, 1, &l.trace_id);
            bytes_field(buf, 2, &l.span_id);
            if !l.trace_state.is_empty() {
                bytes_field(buf, 3, l.trace_state.as_bytes());
            }
            fixed32(buf, 6, flags(l.sampled, true));
        });
    }

    /// Status `ERROR` with its message.
    pub(crate) fn error(&mut self, message: &str) {
        nested(self.buf, span::STATUS, 1, |buf| {
            if !message.is_empty() {
                bytes_field(buf, 2, message.as_bytes());
            }
            encode_key(3, WireType::Varint, buf);
            encode_varint(2, buf);
        });
    }
}

/// `AnyValue` fields.
const ANY_STRING: u32 = 1;
const ANY_INT: u32 = 3;
const ANY_ARRAY: u32 = 5;

fn flags(sampled: bool, remote: bool) -> u32 {
    let mut f = u32::from(sampled) | FLAG_HAS_IS_REMOTE;
    if remote {
        f |= FLAG_IS_REMOTE;
    }
    f
}

/// A span made elsewhere (the SDK's, from the `tracing` bridge), through the generated types:
/// rare (backend connects), so the stock conversion is fine.
pub(crate) fn write_sdk_span(buf: &mut Vec<u8>, span: opentelemetry_sdk::trace::SpanData) {
    let proto = opentelemetry_proto::tonic::trace::v1::Span::from(span);
    encode_key(SCOPE_SPANS_SPANS, WireType::LengthDelimited, buf);
    // Writing into a Vec cannot run out of room.
    let _ = proto.encode_length_delimited(buf);
}

/// The framing of an export: the resource and the scope, encoded once.
#[derive(Clone, Debug)]
pub(crate) struct Framing {
    /// `Resource`, encoded.
    resource: Vec<u8>,
    resource_schema: String,
    /// `InstrumentationScope`, encoded.
    scope: Vec<u8>,
    scope_schema: String,
}

impl Framing {
    pub(crate) fn new(
        resource: &opentelemetry_sdk::Resource,
        scope: &opentelemetry::InstrumentationScope,
    ) -> Framing {
        use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
        let r = ResourceAttributesWithSchema::from(resource);
        let proto = opentelemetry_proto::tonic::resource::v1::Resource {
            attributes: r.attributes.0,
            dropped_attributes_count: 0,
            entity_refs: Vec::new(),
        };
        let s = opentelemetry_proto::tonic::common::v1::InstrumentationScope::from((
            scope.clone(),
            None,
        ));
        Framing {
            resource: proto.encode_to_vec(),
            resource_schema: r.schema_url.unwrap_or_default(),
            scope: s.encode_to_vec(),
            scope_schema: scope.schema_url().unwrap_or_default().to_string(),
        }
    }

    /// An `ExportTraceServiceRequest` holding `spans` (concatenated [`write_span`] output) under
    /// one resource and one scope, written into `out` (cleared first).
    pub(crate) fn request(&self, spans: &[u8], out: &mut Vec<u8>) {
        out.clear();
        let scope_spans = field_len(self.scope.len()) + spans.len() + opt_len(&self.scope_schema);
        let resource_spans = field_len(self.resource.len())
            + field_len(scope_spans)
            + opt_len(&self.resource_schema);
        out.reserve(field_len(resource_spans));
        // ExportTraceServiceRequest.resource_spans
        encode_key(1, WireType::LengthDelimited, out);
        encode_varint(resource_spans as u64, out);
        bytes_field(out, 1, &self.resource);
        encode_key(2, WireType::LengthDelimited, out);
        encode_varint(scope_spans as u64, out);
        bytes_field(out, 1, &self.scope);
        out.extend_from_slice(spans);
        if !self.scope_schema.is_empty() {
            bytes_field(out, 3, self.scope_schema.as_bytes());
        }
        if !self.resource_schema.is_empty() {
            bytes_field(out, 3, self.resource_schema.as_bytes());
        }
    }
}

/// Length on the wire of a length-delimited field (tag below 16) with `n` bytes of body.
fn field_len(n: usize) -> usize {
    1 + encoded_len_varint(n as u64) + n
}

fn opt_len(s: &str) -> usize {
    if s.is_empty() { 0 } else { field_len(s.len()) }
}

fn bytes_field(buf: &mut Vec<u8>, tag: u32, b: &[u8]) {
    small_key(buf, tag, WireType::LengthDelimited);
    if b.len() < 0x80 {
        buf.push(b.len() as u8);
    } else {
        encode_varint(b.len() as u64, buf);
    }
    buf.extend_from_slice(b);
}

/// A field key: one byte for the tags below 16 (all of this file's but `Span.flags`).
fn small_key(buf: &mut Vec<u8>, tag: u32, wire: WireType) {
    if tag < 16 {
        buf.push(((tag << 3) | wire as u32) as u8);
    } else {
        encode_key(tag, wire, buf);
    }
}

fn fixed64(buf: &mut Vec<u8>, tag: u32, v: u64) {
    encode_key(tag, WireType::SixtyFourBit, buf);
    buf.extend_from_slice(&v.to_le_bytes());
}

fn fixed32(buf: &mut Vec<u8>, tag: u32, v: u32) {
    encode_key(tag, WireType::ThirtyTwoBit, buf);
    buf.extend_from_slice(&v.to_le_bytes());
}

/// A `KeyValue` field: the key, then an `AnyValue` whose body `value` writes.
fn key_value(buf: &mut Vec<u8>, tag: u32, key: &str, value: impl FnOnce(&mut Vec<u8>)) {
    nested(buf, tag, 1, |buf| {
        bytes_field(buf, 1, key.as_bytes());
        nested(buf, 2, 1, value);
    });
}

/// A length-delimited field whose body `body` writes: `guess` bytes are kept for the length and
/// the body is moved when it needs another number of them.
fn nested(buf: &mut Vec<u8>, tag: u32, guess: usize, body: impl FnOnce(&mut Vec<u8>)) {
    encode_key(tag, WireType::LengthDelimited, buf);
    let at = buf.len();
    buf.resize(at + guess, 0);
    body(buf);
    let len = buf.len() - at - guess;
    let need = encoded_len_varint(len as u64);
    if need != guess {
        let end = buf.len();
        if need > guess {
            buf.resize(end + need - guess, 0);
            buf.copy_within(at + guess..end, at + need);
        } else {
            buf.copy_within(at + guess..end, at + need);
            buf.truncate(end - (guess - need));
        }
    }
    put_varint(&mut buf[at..at + need], len as u64);
}

/// A varint filling exactly `out` (its encoded length).
fn put_varint(out: &mut [u8], mut v: u64) {
    let last = out.len() - 1;
    for (i, b) in out.iter_mut().enumerate() {
        *b = (v & 0x7f) as u8 | if i < last { 0x80 } else { 0 };
        v >>= 7;
    }
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A short string formatted on the stack (an IPv6 address, a request id).
struct Small {
    buf: [u8; 64],
    len: usize,
}

impl Default for Small {
    fn default() -> Small {
        Small {
            buf: [0; 64],
            len: 0,
        }
    }
}

impl Small {
    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl std::fmt::Write for Small {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
