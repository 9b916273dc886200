//! Where encoded span batches go: the collector's `TraceService/Export` over gRPC (tonic, the
//! request body passed through as already-encoded bytes) or `POST {endpoint}/v1/traces` with a
//! protobuf body (the gateway's hyper + rustls client). Endpoint, headers and timeout come from
//! `telemetry.otlp` / `OTEL_EXPORTER_OTLP_*`; header values are marked sensitive and never appear
//! in an error.

use std::time::Duration;

use anyhow::Context as _;
use bytes::{Buf as _, BufMut as _, Bytes};
use http_body_util::{BodyExt as _, Full};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

use super::{ExportError, SpanSink};
use crate::config::{OtlpConfig, OtlpProtocol};

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// The configured OTLP span destination.
#[derive(Clone, Debug)]
pub(crate) enum OtlpSink {
    // Boxed: the two differ in size by hundreds of bytes (made once, at start-up).
    Grpc(Box<GrpcSink>),
    Http(Box<HttpSink>),
}

impl OtlpSink {
    /// Inside the runtime (the gRPC channel is lazy and spawns onto it).
    pub(crate) fn new(o: &OtlpConfig) -> anyhow::Result<OtlpSink> {
        let headers = headers(o)?;
        Ok(match o.protocol {
            OtlpProtocol::Grpc => OtlpSink::Grpc(Box::new(GrpcSink::new(o, headers)?)),
            OtlpProtocol::HttpProtobuf => OtlpSink::Http(Box::new(HttpSink::new(o, headers)?)),
        })
    }
}

impl SpanSink for OtlpSink {
    async fn export(&self, request: Bytes) -> Result<(), ExportError> {
        match self {
            OtlpSink::Grpc(g) => g.export(request).await,
            OtlpSink::Http(h) => h.export(request).await,
        }
    }
}

/// The configured headers (`telemetry.otlp.headers`), values marked sensitive.
pub(crate) fn headers(o: &OtlpConfig) -> anyhow::Result<http::HeaderMap> {
    let mut h = http::HeaderMap::new();
    for (k, v) in &o.headers {
        let name = http::HeaderName::from_bytes(k.as_bytes())
            .with_context(|| format!("telemetry.otlp.headers: {k} is not a header name"))?;
        let mut value = http::HeaderValue::from_str(v.expose())
            .with_context(|| format!("telemetry.otlp.headers.{k}: not a valid header value"))?;
        value.set_sensitive(true);
        h.insert(name, value);
    }
    Ok(h)
}

/// OTLP/gRPC: one lazily connected channel (HTTP/2, reconnects by itself).
#[derive(Clone)]
pub(crate) struct GrpcSink {
    grpc: tonic::client::Grpc<Channel>,
    metadata: tonic::metadata::MetadataMap,
}

impl std::fmt::Debug for GrpcSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcSink").finish_non_exhaustive()
    }
}

impl GrpcSink {
    fn new(o: &OtlpConfig, headers: http::HeaderMap) -> anyhow::Result<GrpcSink> {
        let endpoint = tonic::transport::Endpoint::from_shared(o.endpoint.clone())
            .context("telemetry.otlp.endpoint: not a gRPC endpoint")?;
        let https = endpoint
            .uri()
            .scheme()
            .is_some_and(|s| *s == http::uri::Scheme::HTTPS);
        let endpoint = if https {
            endpoint
                .tls_config(tonic::transport::ClientTlsConfig::new().with_enabled_roots())
                .context("telemetry.otlp.endpoint: TLS set-up")?
        } else {
            endpoint
        };
        let channel = endpoint
            .timeout(o.timeout)
            .connect_timeout(o.timeout)
            .connect_lazy();
        Ok(GrpcSink {
            grpc: tonic::client::Grpc::new(channel),
            metadata: tonic::metadata::MetadataMap::from_headers(headers),
        })
    }

    async fn export(&self, request: Bytes) -> Result<(), ExportError> {
        let mut grpc = self.grpc.clone();
        grpc.ready()
            .await
            .map_err(|e| ExportError::Transport(e.to_string()))?;
        let mut req = tonic::Request::new(request);
        *req.metadata_mut() = self.metadata.clone();
        let path = http::uri::PathAndQuery::from_static(EXPORT_PATH);
        grpc.unary::<Bytes, (), _>(req, path, Raw)
            .await
            .map(drop)
            .map_err(|s| {
                use tonic::Code;
                let retry = matches!(
                    s.code(),
                    Code::Unavailable
                        | Code::ResourceExhausted
                        | Code::Aborted
                        | Code::DeadlineExceeded
                        | Code::Cancelled
                        | Code::OutOfRange
                        | Code::DataLoss
                );
                ExportError::Rejected {
                    message: format!("{:?}: {}", s.code(), s.message()),
                    retry,
                }
            })
    }
}

/// A codec for a request that is already encoded; the answer (`ExportTraceServiceResponse`,
/// whose partial success the gateway does not act on) is skipped.
#[derive(Clone, Copy, Debug)]
struct Raw;

impl Codec for Raw {
    type Encode = Bytes;
    type Decode = ();
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = ();
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, tonic::Status> {
        src.advance(src.remaining());
        Ok(Some(()))
    }
}

/// OTLP/HTTP with protobuf bodies, over the gateway's own hyper + rustls client.
#[derive(Clone)]
pub(crate) struct HttpSink {
    client: crate::upstream::http::Client,
    url: http::Uri,
    headers: http::HeaderMap,
    timeout: Duration,
}

impl std::fmt::Debug for HttpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSink")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl HttpSink {
    fn new(o: &OtlpConfig, mut headers: http::HeaderMap) -> anyhow::Result<HttpSink> {
        let url = format!("{}/v1/traces", o.endpoint)
            .parse::<http::Uri>()
            .context("telemetry.otlp.endpoint: not a URL")?;
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/x-protobuf"),
        );
        let t = crate::config::Timeouts {
            connect: o.timeout,
            request: o.timeout,
        };
        let client = crate::upstream::http::build_client(&t)
            .map_err(|e| anyhow::anyhow!("building the OTLP HTTP client: {e}"))?;
        Ok(HttpSink {
            client,
            url,
            headers,
            timeout: o.timeout,
        })
    }

    async fn export(&self, request: Bytes) -> Result<(), ExportError> {
        let mut req = http::Request::new(Full::new(request));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = self.url.clone();
        *req.headers_mut() = self.headers.clone();
        let send = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| ExportError::Transport(e.to_string()))?;
            let status = resp.status();
            // Read the answer to the end, so that the connection goes back to the pool.
            let _ = resp.into_body().collect().await;
            if status.is_success() {
                Ok(())
            } else {
                Err(ExportError::Rejected {
                    message: format!("HTTP {status}"),
                    retry: matches!(status.as_u16(), 429 | 502 | 503 | 504),
                })
            }
        };
        tokio::time::timeout(self.timeout, send)
            .await
            .map_err(|_| ExportError::Timeout)?
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
        TraceService, TraceServiceServer,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use prost::Message as _;

    use super::*;
    use crate::config::Secret;

    const KEY: &str = "s3cr3t-key";

    fn config(endpoint: String, protocol: OtlpProtocol) -> OtlpConfig {
        OtlpConfig {
            endpoint,
            protocol,
            headers: BTreeMap::from([("x-api-key".to_string(), Secret::new(KEY))]),
            timeout: Duration::from_secs(5),
        }
    }

    fn request() -> Bytes {
        Bytes::from(ExportTraceServiceRequest::default().encode_to_vec())
    }

    /// What a collector saw: its path, the API key header, the content type.
    type Seen = Arc<Mutex<Vec<(String, Option<String>, Option<String>)>>>;

    async fn http_collector(status: u16) -> (String, Seen) {
        let seen = Seen::default();
        let s = seen.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let s = s.clone();
            async move {
                let h = |n: &str| {
                    req.headers()
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                };
                let entry = (
                    req.uri().path().to_string(),
                    h("x-api-key"),
                    h("content-type"),
                );
                s.lock().unwrap().push(entry);
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        });
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await });
        (format!("http://{addr}"), seen)
    }

    #[tokio::test]
    async fn http_posts_protobuf_with_the_configured_headers_and_classifies_failures() {
        let (url, seen) = http_collector(200).await;
        let sink = OtlpSink::new(&config(url, OtlpProtocol::HttpProtobuf)).unwrap();
        sink.export(request()).await.unwrap();
        let entry = seen.lock().unwrap()[0].clone();
        assert_eq!(
            entry,
            (
                "/v1/traces".to_string(),
                Some(KEY.to_string()),
                Some("application/x-protobuf".to_string())
            )
        );
        assert!(!format!("{sink:?}").contains(KEY), "no secret in Debug");

        let (url, _) = http_collector(503).await;
        let sink = OtlpSink::new(&config(url, OtlpProtocol::HttpProtobuf)).unwrap();
        let e = sink.export(request()).await.unwrap_err();
        assert!(e.retryable(), "{e}");
        let (url, _) = http_collector(400).await;
        let sink = OtlpSink::new(&config(url, OtlpProtocol::HttpProtobuf)).unwrap();
        let e = sink.export(request()).await.unwrap_err();
        assert!(!e.retryable(), "{e}");
        assert!(!e.to_string().contains(KEY));
    }

    #[derive(Clone, Default)]
    struct Collector(Arc<Mutex<Vec<Option<String>>>>);

    #[tonic::async_trait]
    impl TraceService for Collector {
        async fn export(
            &self,
            req: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            let key = req
                .metadata()
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            self.0.lock().unwrap().push(key);
            Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
        }
    }

    #[tokio::test]
    async fn grpc_calls_trace_service_export_with_the_configured_metadata() {
        let collector = Collector::default();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        // gRPC over h2c, served by axum as the tests' receiver does.
        let app = axum::Router::new()
            .route_service(EXPORT_PATH, TraceServiceServer::new(collector.clone()));
        tokio::spawn(async move {
            let (stream, _) = l.accept().await.unwrap();
            let svc = hyper_util::service::TowerToHyperService::new(app);
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
        });
        let sink = OtlpSink::new(&config(format!("http://{addr}"), OtlpProtocol::Grpc)).unwrap();
        sink.export(request()).await.unwrap();
        assert_eq!(*collector.0.lock().unwrap(), vec![Some(KEY.to_string())]);
        assert!(!format!("{sink:?}").contains(KEY), "no secret in Debug");
    }
}
