//! Pure extraction of event `data` payloads from a complete `text/event-stream` body.
//!
//! Follows the WHATWG event-stream rules that matter for MCP: lines end in `\n`, `\r\n`
//! or `\r`; a blank line dispatches the event; `data:` lines (one optional space after
//! the colon) are joined with `\n`; comments (`:`) and other fields are ignored; an event
//! with no data is not dispatched. Unlike a browser, a final event without the closing
//! blank line is still returned, since the body is known to be complete.

use std::borrow::Cow;

/// The `data` payload of every event in `body`, in order.
pub(crate) fn data_events(body: &[u8]) -> Vec<Cow<'_, [u8]>> {
    let mut events = Vec::new();
    let mut data: Option<Cow<'_, [u8]>> = None;
    for line in lines(body) {
        if line.is_empty() {
            if let Some(payload) = data.take() {
                events.push(payload);
            }
            continue;
        }
        let Some(value) = field_value(line, b"data") else {
            continue;
        };
        data = Some(match data.take() {
            None => Cow::Borrowed(value),
            Some(previous) => {
                let mut joined = previous.into_owned();
                joined.push(b'\n');
                joined.extend_from_slice(value);
                Cow::Owned(joined)
            }
        });
    }
    if let Some(payload) = data {
        events.push(payload);
    }
    events
}

/// The value of `line` if it is the field `name` (`name:value`, `name: value`, or bare `name`).
fn field_value<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let rest = line.strip_prefix(name)?;
    match rest.first() {
        None => Some(rest),
        Some(b':') => {
            let value = &rest[1..];
            Some(value.strip_prefix(b" ").unwrap_or(value))
        }
        Some(_) => None,
    }
}

/// Splits on `\r\n`, `\n` or `\r`; a trailing unterminated line is included.
fn lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = body;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            None => {
                let line = rest;
                rest = &[];
                Some(line)
            }
            Some(end) => {
                let line = &rest[..end];
                let skip = if rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                rest = &rest[end + skip..];
                Some(line)
            }
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn texts(body: &str) -> Vec<String> {
        data_events(body.as_bytes())
            .iter()
            .map(|d| String::from_utf8_lossy(d).into_owned())
            .collect()
    }

    #[test]
    fn single_event_as_sent_by_the_typescript_sdk() {
        let body =
            "event: message\nid: abc_1\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n";
        assert_eq!(texts(body), [r#"{"jsonrpc":"2.0","id":1,"result":{}}"#]);
        assert!(matches!(data_events(body.as_bytes())[0], Cow::Borrowed(_)));
    }

    #[test]
    fn notification_then_response_and_priming_event() {
        let body = "id: 0\ndata:\n\n: keep-alive comment\n\
                    data: {\"method\":\"notifications/progress\"}\n\n\
                    data: {\"id\":7,\"result\":{}}\n\n";
        assert_eq!(
            texts(body),
            [
                "",
                r#"{"method":"notifications/progress"}"#,
                r#"{"id":7,"result":{}}"#
            ]
        );
    }

    #[test]
    fn multi_line_data_joined_and_crlf_and_cr_endings() {
        assert_eq!(texts("data: {\"a\":\r\ndata: 1}\r\n\r\n"), ["{\"a\":\n1}"]);
        assert_eq!(texts("data:x\rdata:y\r\r"), ["x\ny"]);
    }

    #[test]
    fn only_one_space_is_stripped_and_other_fields_ignored() {
        assert_eq!(texts("data:  two\n\n"), [" two"]);
        assert_eq!(
            texts("dataset: no\nretry: 10\nevent: e\n\n"),
            Vec::<String>::new()
        );
        assert_eq!(texts("data\n\n"), [""]);
    }

    #[test]
    fn unterminated_final_event_is_kept_and_empty_body_has_none() {
        assert_eq!(texts("data: last"), ["last"]);
        assert!(texts("").is_empty());
        assert!(texts("\n\n\n").is_empty());
    }
}
