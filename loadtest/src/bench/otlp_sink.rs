//! A do-nothing OTLP/HTTP collector for `bench --telemetry on`: accepts `POST /v1/traces` and
//! `POST /v1/metrics` on 127.0.0.1, reads the body, counts it and answers 200 with an empty
//! body (an empty protobuf `Export*ServiceResponse` is zero bytes). Stops when dropped.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the sink received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct SinkStats {
    pub(crate) trace_posts: u64,
    pub(crate) trace_bytes: u64,
    pub(crate) metric_posts: u64,
    pub(crate) metric_bytes: u64,
    /// Requests to other paths or methods (answered 404).
    pub(crate) other: u64,
}

#[derive(Debug, Default)]
struct Counters {
    trace_posts: AtomicU64,
    trace_bytes: AtomicU64,
    metric_posts: AtomicU64,
    metric_bytes: AtomicU64,
    other: AtomicU64,
}

pub(crate) struct OtlpSink {
    /// `http://127.0.0.1:PORT`, the OTLP/HTTP base URL.
    pub(crate) endpoint: String,
    counters: Arc<Counters>,
    task: JoinHandle<()>,
}

impl OtlpSink {
    pub(crate) async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the OTLP sink")?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let c = c.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| answer(c.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            endpoint,
            counters,
            task,
        })
    }

    pub(crate) fn stats(&self) -> SinkStats {
        let c = &self.counters;
        SinkStats {
            trace_posts: c.trace_posts.load(Relaxed),
            trace_bytes: c.trace_bytes.load(Relaxed),
            metric_posts: c.metric_posts.load(Relaxed),
            metric_bytes: c.metric_bytes.load(Relaxed),
            other: c.other.load(Relaxed),
        }
    }
}

impl Drop for OtlpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    c: Arc<Counters>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (posts, bytes) = match (req.method(), req.uri().path()) {
        (&Method::POST, "/v1/traces") => (&c.trace_posts, &c.trace_bytes),
        (&Method::POST, "/v1/metrics") => (&c.metric_posts, &c.metric_bytes),
        _ => {
            c.other.fetch_add(1, Relaxed);
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::NOT_FOUND;
            return Ok(r);
        }
    };
    let len = match req.into_body().collect().await {
        Ok(body) => body.to_bytes().len() as u64,
        Err(_) => 0,
    };
    posts.fetch_add(1, Relaxed);
    bytes.fetch_add(len, Relaxed);
    let mut r = Response::new(Full::new(Bytes::new()));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-protobuf"),
    );
    Ok(r)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::transport::{Conn, Headers, Target};
    use std::time::Duration;

    #[tokio::test]
    async fn counts_posts_and_answers_empty_200() {
        let sink = OtlpSink::start().await.unwrap();
        let target = Target::parse(&format!("{}/v1/traces", sink.endpoint)).unwrap();
        let mut conn = Conn::new(target);
        let reply = conn
            .send(
                Method::POST,
                Bytes::from_static(b"\x0a\x00"),
                Headers::Plain,
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.body.is_empty());
        assert_eq!(
            sink.stats(),
            SinkStats {
                trace_posts: 1,
                trace_bytes: 2,
                ..SinkStats::default()
            }
        );
    }
}
