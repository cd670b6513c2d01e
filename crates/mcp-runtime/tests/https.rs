//! The HTTP client against an HTTPS upstream on loopback with a private CA (made here with
//! rcgen): any method, a body, configured headers (one read from the environment), and the
//! tower service's view of a failing status. One test in this binary: it sets an environment
//! variable before any other thread runs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mcp_runtime::http::HeaderSource;
use mcp_runtime::{HttpConfig, HttpUpstream, UpstreamError, tokio_clock};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio::net::TcpListener;
use tower::ServiceExt;

/// Answers every request with what it saw: method, path, authorization, a custom header and
/// the body, as JSON; `/down` answers 503 with `Retry-After: 4`.
async fn echo(request: hyper::Request<hyper::body::Incoming>) -> Result<hyper::Response<Full<Bytes>>, hyper::Error> {
    let header = |name: &str| request.headers().get(name).map(|v| v.to_str().unwrap().to_string());
    let (method, path) = (request.method().to_string(), request.uri().path().to_string());
    let (auth, tenant) = (header("authorization"), header("x-tenant"));
    let body = String::from_utf8(request.into_body().collect().await?.to_bytes().to_vec()).unwrap();
    if path == "/down" {
        return Ok(hyper::Response::builder().status(503).header("retry-after", "4").body(Full::default()).unwrap());
    }
    let seen = serde_json::json!({"method": method, "path": path, "auth": auth, "tenant": tenant, "body": body});
    Ok(hyper::Response::new(Full::new(Bytes::from(seen.to_string()))))
}

/// An HTTPS server on 127.0.0.1 with a leaf signed by a fresh CA; the CA's PEM file.
async fn https_upstream(dir: &std::path::Path) -> (String, std::path::PathBuf) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&leaf_key, &issuer).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();

    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses our certificate ends the handshake: nothing to serve.
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service_fn(echo))
                    .await;
            });
        }
    });
    (url, ca_file)
}

#[tokio::test]
async fn https_with_a_private_ca_any_method_and_configured_headers() {
    // SAFETY: the only test in this binary, run before it starts any thread that reads the
    // environment.
    unsafe { std::env::set_var("MCP_RUNTIME_TEST_TOKEN", "Bearer s3cret") };
    let dir = tempfile::tempdir().unwrap();
    let (url, ca_file) = https_upstream(dir.path()).await;
    let headers = BTreeMap::from([
        ("authorization".to_string(), HeaderSource::Env { env: "MCP_RUNTIME_TEST_TOKEN".into() }),
        ("x-tenant".to_string(), HeaderSource::Value("acme".into())),
    ]);
    let config = HttpConfig { headers: headers.clone(), ca_file: Some(ca_file.clone()), ..HttpConfig::default() };
    let client = HttpUpstream::new("orders", &url, config, tokio_clock()).unwrap();

    // A PUT with a body; the request's own x-tenant wins over the configured one.
    let put = http::Request::put("/orders/7").header("x-tenant", "globex").body(Bytes::from("{\"qty\":2}")).unwrap();
    let answer = client.request(put).await.unwrap();
    assert_eq!(answer.status(), 200);
    let seen: serde_json::Value = serde_json::from_slice(answer.body()).unwrap();
    assert_eq!(
        seen,
        serde_json::json!({"method": "PUT", "path": "/orders/7", "auth": "Bearer s3cret", "tenant": "globex", "body": "{\"qty\":2}"})
    );
    let get = client.get_json::<serde_json::Value>("/orders/7").await.unwrap().unwrap();
    assert_eq!((get["method"].as_str(), get["tenant"].as_str()), (Some("GET"), Some("acme")));
    assert_eq!(client.stats().opened, 1, "one TLS connection, kept alive and reused");

    // As a tower service, a 503 is the upstream's failure with its Retry-After.
    let down = client.clone().oneshot(http::Request::get("/down").body(Bytes::new()).unwrap()).await.unwrap_err();
    match down {
        UpstreamError::Status { status: 503, retry_after, .. } => assert_eq!(retry_after, Some(Duration::from_secs(4))),
        other => panic!("{other}"),
    }

    // Without the CA the certificate is refused; the error says why.
    let untrusted = HttpUpstream::new("orders", &url, HttpConfig::default(), tokio_clock()).unwrap();
    let refused = untrusted.get("/orders/7").await.unwrap_err();
    assert!(matches!(refused, UpstreamError::Transport { .. }), "{refused}");
    assert!(refused.to_string().contains("UnknownIssuer"), "{refused}");

    // Configuration errors name the field.
    let unset = BTreeMap::from([("authorization".to_string(), HeaderSource::Env { env: "MCP_RUNTIME_UNSET".into() })]);
    let err = HttpUpstream::new("orders", &url, HttpConfig { headers: unset, ..HttpConfig::default() }, tokio_clock())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "upstream \"orders\": http.headers.authorization: the environment variable MCP_RUNTIME_UNSET is not set"
    );
    let missing = HttpConfig { ca_file: Some(dir.path().join("nope.pem")), ..HttpConfig::default() };
    let err = HttpUpstream::new("orders", &url, missing, tokio_clock()).unwrap_err().to_string();
    assert!(err.starts_with("upstream \"orders\": http.ca_file: ") && err.contains("nope.pem"), "{err}");
}
