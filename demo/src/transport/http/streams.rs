//! Per-session SSE streams of POST responses: event ids `<stream>-<seq>`, buffering while no
//! client is attached, and resumption by `Last-Event-ID` on GET (SEP-1699 polling).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::Response;
use bytes::Bytes;
use tokio::sync::mpsc;

use super::sse;
use crate::core::{Frame, lock};

/// How long a finished, undelivered stream waits for the client to resume it.
const UNDELIVERED_TTL: Duration = Duration::from_secs(300);

struct StreamState {
    events: Vec<(u64, Bytes)>,
    live: Option<mpsc::UnboundedSender<Bytes>>,
    /// The final response is buffered; nothing more will come.
    done: bool,
}

/// The resumable POST streams of one session.
#[derive(Default)]
pub(crate) struct StreamTable {
    next: u64,
    streams: HashMap<u64, StreamState>,
}

/// Opens an SSE response for a request whose first frame is not its final response, and
/// pumps the rest of the request's frames into it.
pub(crate) fn open(
    table: &Arc<Mutex<StreamTable>>,
    priming: bool,
    first: Frame,
    rx: mpsc::UnboundedReceiver<Frame>,
) -> Response {
    let (live_tx, live_rx) = mpsc::unbounded_channel();
    let sid = {
        let mut t = lock(table);
        t.next += 1;
        let sid = t.next;
        t.streams.insert(
            sid,
            StreamState {
                events: Vec::new(),
                live: Some(live_tx),
                done: false,
            },
        );
        sid
    };
    tokio::spawn(pump(Arc::clone(table), sid, first, rx));
    let head = priming.then(|| sse::priming(&format!("{sid}-0")));
    sse::response(head, live_rx)
}

async fn pump(
    table: Arc<Mutex<StreamTable>>,
    sid: u64,
    first: Frame,
    mut rx: mpsc::UnboundedReceiver<Frame>,
) {
    let mut seq = 0;
    let mut next = Some(first);
    while let Some(frame) = next {
        let (body, last) = match frame {
            Frame::Message(b) => (b, false),
            Frame::Final(b) => (b, true),
            Frame::CloseStream => {
                if let Some(s) = lock(&table).streams.get_mut(&sid) {
                    s.live = None;
                }
                next = rx.recv().await;
                continue;
            }
        };
        seq += 1;
        let delivered = deliver(&table, sid, seq, &body, last);
        if last {
            if !delivered {
                tokio::time::sleep(UNDELIVERED_TTL).await;
            }
            break;
        }
        next = rx.recv().await;
    }
    lock(&table).streams.remove(&sid);
}

/// Records event `seq` and sends it to the attached client; true if it was sent live.
fn deliver(table: &Mutex<StreamTable>, sid: u64, seq: u64, body: &[u8], last: bool) -> bool {
    let ev = sse::event(Some(&format!("{sid}-{seq}")), body);
    let mut t = lock(table);
    let Some(s) = t.streams.get_mut(&sid) else {
        return false;
    };
    let delivered = s.live.as_ref().is_some_and(|l| l.send(ev.clone()).is_ok());
    if !delivered {
        s.live = None;
    }
    if last && delivered {
        t.streams.remove(&sid);
    } else {
        s.events.push((seq, ev));
        s.done = last;
    }
    delivered
}

/// Resumes stream `<sid>-<seq>` from a `Last-Event-ID`; `None` if it names no stream here.
pub(crate) fn resume(table: &Mutex<StreamTable>, last_event_id: &str) -> Option<Response> {
    let (sid, seq) = last_event_id.split_once('-')?;
    let (sid, seq): (u64, u64) = (sid.parse().ok()?, seq.parse().ok()?);
    let mut t = lock(table);
    let s = t.streams.get_mut(&sid)?;
    let (tx, rx) = mpsc::unbounded_channel();
    for (n, ev) in &s.events {
        if *n > seq {
            let _ = tx.send(ev.clone());
        }
    }
    if s.done {
        t.streams.remove(&sid);
    } else {
        s.live = Some(tx);
    }
    Some(sse::response(None, rx))
}

/// Detaches every client (session end).
pub(crate) fn close_all(table: &Mutex<StreamTable>) {
    lock(table).streams.clear();
}
