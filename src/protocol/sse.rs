//! Server-Sent Events framing: encode events, and decode an event stream incrementally.

use bytes::{BufMut, Bytes, BytesMut};

/// One SSE event as the gateway writes or reads it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Event {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    pub retry_ms: Option<u64>,
}

/// Encodes one event; multi-line data is split over several `data:` lines.
pub fn encode(ev: &Event, out: &mut BytesMut) {
    if let Some(id) = &ev.id {
        put_field(out, "id", id);
    }
    if let Some(e) = &ev.event {
        put_field(out, "event", e);
    }
    if let Some(r) = ev.retry_ms {
        put_field(out, "retry", &r.to_string());
    }
    if ev.data.is_empty() {
        out.put_slice(b"data:\n");
    } else {
        for line in ev.data.split('\n') {
            put_field(out, "data", line.trim_end_matches('\r'));
        }
    }
    out.put_u8(b'\n');
}

/// Encodes a JSON message as a `message` event with an optional id.
pub fn encode_message(id: Option<&str>, json: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(json.len() + 48);
    if let Some(id) = id {
        put_field(&mut out, "id", id);
    }
    out.put_slice(b"event: message\ndata: ");
    // JSON from serde_json never contains raw newlines, so one data line suffices.
    out.put_slice(json);
    out.put_slice(b"\n\n");
    out.freeze()
}

/// A comment line, used as keep-alive.
pub fn comment(text: &str) -> Bytes {
    Bytes::from(format!(": {text}\n\n"))
}

fn put_field(out: &mut BytesMut, name: &str, value: &str) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    out.put_slice(value.as_bytes());
    out.put_u8(b'\n');
}

/// Incremental SSE decoder: feed bytes, take complete events.
#[derive(Default, Debug)]
pub struct Decoder {
    buf: BytesMut,
    current: Event,
    has_fields: bool,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes and returns every event completed by them.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Event> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
            let line = self.buf.split_to(pos + 1);
            let mut line = &line[..pos];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            if let Some(ev) = self.line(line) {
                events.push(ev);
            }
        }
        events
    }

    fn line(&mut self, line: &[u8]) -> Option<Event> {
        if line.is_empty() {
            if !self.has_fields {
                return None;
            }
            self.has_fields = false;
            let mut ev = std::mem::take(&mut self.current);
            if ev.data.ends_with('\n') {
                ev.data.pop();
            }
            return Some(ev);
        }
        if line[0] == b':' {
            return None;
        }
        let text = String::from_utf8_lossy(line);
        let (name, value) = match text.find(':') {
            Some(i) => {
                let v = &text[i + 1..];
                (&text[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (&text[..], ""),
        };
        self.has_fields = true;
        match name {
            "data" => {
                self.current.data.push_str(value);
                self.current.data.push('\n');
            }
            "id" => self.current.id = Some(value.to_string()),
            "event" => self.current.event = Some(value.to_string()),
            "retry" => self.current.retry_ms = value.parse().ok(),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_an_event_split_across_chunks() {
        let mut out = BytesMut::new();
        let ev = Event {
            id: Some("7".into()),
            event: Some("message".into()),
            data: "{\"a\":1}".into(),
            retry_ms: Some(1000),
        };
        encode(&ev, &mut out);
        let mut d = Decoder::new();
        let (a, b) = out.split_at(5);
        assert!(d.feed(a).is_empty());
        assert_eq!(d.feed(b), vec![ev]);
    }

    #[test]
    fn decodes_multiline_data_crlf_and_skips_comments() {
        let mut d = Decoder::new();
        let evs = d.feed(b": keep-alive\r\n\r\ndata: a\r\ndata: b\r\n\r\nid: 3\ndata:\n\n");
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].data, "a\nb");
        assert_eq!(evs[1].id.as_deref(), Some("3"));
        assert_eq!(evs[1].data, "");
    }

    #[test]
    fn message_encoding_is_a_single_data_line() {
        let b = encode_message(Some("s-1"), br#"{"jsonrpc":"2.0"}"#);
        assert_eq!(
            &b[..],
            b"id: s-1\nevent: message\ndata: {\"jsonrpc\":\"2.0\"}\n\n"
        );
    }
}
