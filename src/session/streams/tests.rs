use super::*;

fn chan() -> (mpsc::Sender<Outbound>, mpsc::Receiver<Outbound>) {
    mpsc::channel(STREAM_CHANNEL_CAPACITY)
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[test]
fn a_plain_answer_is_json_without_event_id_and_is_not_buffered() {
    let mut s = Streams::new(8);
    let (tx, mut rx) = chan();
    s.open(1, tx);
    s.finish(1, b("r"));
    let o = rx.try_recv().unwrap();
    assert!(o.last && o.event_id.is_none());
    assert!(s.ring.is_empty());
    assert!(rx.try_recv().is_err(), "stream ends after the answer");
}

#[test]
fn interim_messages_number_the_stream_and_a_dropped_client_resumes_from_the_buffer() {
    let mut s = Streams::new(8);
    let (tx, rx) = chan();
    s.open(3, tx);
    s.interim(3, b("progress1"));
    drop(rx); // the client's connection broke
    s.interim(3, b("progress2"));
    s.finish(3, b("answer"));
    let (tx2, mut rx2) = chan();
    assert_eq!(s.attach(Some("3-1"), tx2), Ok(3));
    let got: Vec<_> = std::iter::from_fn(|| rx2.try_recv().ok()).collect();
    assert_eq!(
        got.iter()
            .map(|o| o.event_id.clone().unwrap())
            .collect::<Vec<_>>(),
        ["3-2", "3-3"]
    );
    assert!(got[1].last);
    assert_eq!(&got[1].json[..], b"answer");
}

#[test]
fn get_stream_delivers_backlog_to_the_first_listener_only_once() {
    let mut s = Streams::new(8);
    s.interim(GET_STREAM, b("list_changed"));
    let (tx, mut rx) = chan();
    s.attach(None, tx).unwrap();
    assert_eq!(&rx.try_recv().unwrap().json[..], b"list_changed");
    let (tx2, mut rx2) = chan();
    s.attach(None, tx2).unwrap();
    assert!(rx2.try_recv().is_err(), "already delivered");
    s.interim(GET_STREAM, b("next"));
    assert_eq!(rx2.try_recv().unwrap().event_id.as_deref(), Some("0-2"));
}

#[test]
fn unknown_and_malformed_ids_are_errors_and_eviction_is_counted() {
    let mut s = Streams::new(2);
    let (tx, _rx) = chan();
    assert_eq!(s.attach(Some("x"), tx.clone()), Err(ResumeError::Malformed));
    assert_eq!(s.attach(Some("9-1"), tx), Err(ResumeError::Unknown));
    for i in 0..3 {
        s.interim(GET_STREAM, b(&i.to_string()));
    }
    assert_eq!(s.evicted_undelivered, 1);
}

#[test]
fn a_slow_client_is_detached_instead_of_blocking_the_session() {
    let mut s = Streams::new(1024);
    let (tx, _rx) = mpsc::channel(2);
    s.open(1, tx);
    for _ in 0..5 {
        s.interim(1, b("p"));
    }
    assert!(!s.is_open(1));
    s.finish(1, b("done"));
    let (tx2, mut rx2) = chan();
    s.attach(Some("1-2"), tx2).unwrap();
    let n = std::iter::from_fn(|| rx2.try_recv().ok()).count();
    assert_eq!(n, 4, "events 3..5 and the answer");
}
