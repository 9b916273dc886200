//! A session's outbound streams: per-request response streams and the GET stream, with SSE event
//! ids and a bounded replay buffer for `Last-Event-ID` resumption.

use std::collections::VecDeque;

use rustc_hash::FxHashMap as HashMap;

use bytes::Bytes;
use tokio::sync::mpsc;

/// Stream id of the standalone GET stream; request streams count up from 1.
pub const GET_STREAM: u64 = 0;
/// Capacity of one attached stream's channel; a client that falls this far behind is detached
/// (its HTTP stream ends) and may resume from the replay buffer with `Last-Event-ID`.
pub const STREAM_CHANNEL_CAPACITY: usize = 256;

/// One message for a client stream.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// Serialized JSON-RPC message.
    pub json: Bytes,
    /// SSE event id, when the stream is an event stream (`None`: a plain JSON answer).
    pub event_id: Option<String>,
    /// The request's final response: the stream ends after it.
    pub last: bool,
    /// For a plain JSON answer: the HTTP status a policy stage asked for (`None`: 200).
    pub status: Option<u16>,
}

/// Formats an SSE event id.
pub fn event_id(stream: u64, seq: u64) -> String {
    format!("{stream}-{seq}")
}

/// Parses `Last-Event-ID` into `(stream, seq)`.
pub fn parse_event_id(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

#[derive(Debug)]
struct StreamState {
    tx: Option<mpsc::Sender<Outbound>>,
    next_seq: u64,
    /// Became an event stream (an interim message was sent before the answer).
    sse: bool,
    /// Highest seq handed to an attached client (for the GET stream's undelivered backlog).
    delivered: u64,
}

#[derive(Debug)]
struct Buffered {
    stream: u64,
    seq: u64,
    json: Bytes,
    last: bool,
}

/// Why a stream could not be (re)attached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    #[error("Last-Event-ID is malformed")]
    Malformed,
    #[error("no stream with that event id (it ended and left the replay buffer)")]
    Unknown,
}

/// All streams of one session.
#[derive(Debug)]
pub struct Streams {
    streams: HashMap<u64, StreamState>,
    ring: VecDeque<Buffered>,
    cap: usize,
    /// Events dropped from the ring before anyone read them.
    pub evicted_undelivered: u64,
}

impl Streams {
    pub fn new(replay_capacity: usize) -> Self {
        let mut streams = HashMap::default();
        streams.insert(
            GET_STREAM,
            StreamState {
                tx: None,
                next_seq: 1,
                sse: true,
                delivered: 0,
            },
        );
        Streams {
            streams,
            ring: VecDeque::new(),
            cap: replay_capacity.max(1),
            evicted_undelivered: 0,
        }
    }

    /// Registers a request's response stream.
    pub fn open(&mut self, stream: u64, tx: mpsc::Sender<Outbound>) {
        self.streams.insert(
            stream,
            StreamState {
                tx: Some(tx),
                next_seq: 1,
                sse: false,
                delivered: 0,
            },
        );
    }

    pub fn is_open(&self, stream: u64) -> bool {
        self.streams.get(&stream).is_some_and(|s| s.tx.is_some())
    }

    /// Sends a notification or server→client request on a stream; it becomes an event stream.
    /// Falls back to the GET stream when the request stream is gone.
    pub fn interim(&mut self, stream: u64, json: Bytes) {
        let target = if self.streams.contains_key(&stream) {
            stream
        } else {
            GET_STREAM
        };
        self.push(target, json, false);
    }

    /// Sends a request's final response; the stream ends.
    pub fn finish(&mut self, stream: u64, json: Bytes) {
        self.finish_with(stream, json, None);
    }

    /// `finish`, with the HTTP status for a plain JSON answer (an SSE stream is already 200).
    pub fn finish_with(&mut self, stream: u64, json: Bytes, status: Option<u16>) {
        let Some(st) = self.streams.get_mut(&stream) else {
            return;
        };
        if !st.sse {
            // Plain JSON answer: nothing to replay, nothing to number.
            if let Some(tx) = st.tx.take() {
                let _ = tx.try_send(Outbound {
                    json,
                    event_id: None,
                    last: true,
                    status,
                });
            }
            self.streams.remove(&stream);
            return;
        }
        self.push(stream, json, true);
        self.streams.remove(&stream);
    }

    /// Drops a request stream without an answer (session closing, request cancelled).
    pub fn abandon(&mut self, stream: u64) {
        if stream != GET_STREAM {
            self.streams.remove(&stream);
        }
    }

    fn push(&mut self, stream: u64, json: Bytes, last: bool) {
        let Some(st) = self.streams.get_mut(&stream) else {
            return;
        };
        st.sse = true;
        let seq = st.next_seq;
        st.next_seq += 1;
        if let Some(tx) = &st.tx {
            let out = Outbound {
                json: json.clone(),
                event_id: Some(event_id(stream, seq)),
                last,
                status: None,
            };
            match tx.try_send(out) {
                Ok(()) => st.delivered = seq,
                // Closed or too far behind: detach; the client may resume from the buffer.
                Err(_) => st.tx = None,
            }
        }
        if self.ring.len() >= self.cap
            && let Some(old) = self.ring.pop_front()
            && self
                .streams
                .get(&old.stream)
                .is_some_and(|s| s.delivered < old.seq)
        {
            self.evicted_undelivered += 1;
        }
        self.ring.push_back(Buffered {
            stream,
            seq,
            json,
            last,
        });
    }

    /// Attaches a new GET stream. Without `Last-Event-ID`, it receives what no one has read yet;
    /// with one, it resumes the stream that id belongs to (the GET stream or a request stream).
    pub fn attach(
        &mut self,
        last_event_id: Option<&str>,
        tx: mpsc::Sender<Outbound>,
    ) -> Result<u64, ResumeError> {
        let (stream, after) = match last_event_id {
            None => {
                let st = self
                    .streams
                    .get(&GET_STREAM)
                    .map(|s| s.delivered)
                    .unwrap_or(0);
                (GET_STREAM, st)
            }
            Some(s) => parse_event_id(s).ok_or(ResumeError::Malformed)?,
        };
        let live = self.streams.contains_key(&stream);
        let replay: Vec<&Buffered> = self
            .ring
            .iter()
            .filter(|b| b.stream == stream && b.seq > after)
            .collect();
        if !live && replay.is_empty() {
            return Err(ResumeError::Unknown);
        }
        let mut delivered = after;
        let mut ended = false;
        for b in replay {
            let out = Outbound {
                json: b.json.clone(),
                event_id: Some(event_id(stream, b.seq)),
                last: b.last,
                status: None,
            };
            if tx.try_send(out).is_err() {
                break;
            }
            delivered = b.seq;
            ended |= b.last;
        }
        if let Some(st) = self.streams.get_mut(&stream) {
            if !ended {
                st.tx = Some(tx);
            }
            st.delivered = st.delivered.max(delivered);
        }
        Ok(stream)
    }

    /// The next seq the GET stream will use (for the priming event id).
    pub fn get_stream_position(&self) -> u64 {
        self.streams
            .get(&GET_STREAM)
            .map(|s| s.next_seq.saturating_sub(1))
            .unwrap_or(0)
    }

    /// Ends every attached stream (session closing).
    pub fn close_all(&mut self) {
        for st in self.streams.values_mut() {
            st.tx = None;
        }
    }
}

#[cfg(test)]
mod tests;
