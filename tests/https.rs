//! A deployed server's way in: `https://` with a private certificate authority and a bearer
//! token from the environment. A TLS-terminating proxy made here (rcgen's CA, tokio-rustls)
//! sits in front of `serve --http` and records the authorization and tenant headers of every
//! request.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

use crate::common::{bin, read_json, spawn_http_server, stop_http_server, write_config};

/// A TLS proxy on 127.0.0.1 to `backend` (`http://127.0.0.1:PORT`), its leaf signed by a fresh
/// CA written to `dir/ca.pem`: its https URL and the `authorization|x-tenant` headers it saw.
async fn tls_proxy(dir: &std::path::Path, backend: String) -> (String, Arc<Mutex<Vec<String>>>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&leaf_key, &issuer).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://127.0.0.1:{}/mcp", listener.local_addr().unwrap().port());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let (seen2, backend) = (seen.clone(), Arc::new(backend));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, seen, client, backend) = (acceptor.clone(), seen2.clone(), client.clone(), backend.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let forward = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let (seen, client, backend) = (seen.clone(), client.clone(), backend.clone());
                    async move {
                        let (mut parts, body) = request.into_parts();
                        let header = |name| parts.headers.get(name).map_or("", |v| v.to_str().unwrap()).to_string();
                        seen.lock().unwrap().push(format!("{}|{}", header("authorization"), header("x-tenant")));
                        parts.uri = format!("{backend}{}", parts.uri.path()).parse().unwrap();
                        let body = Full::new(body.collect().await?.to_bytes());
                        let answer = client.request(hyper::Request::from_parts(parts, body)).await.unwrap();
                        let (parts, body) = answer.into_parts();
                        let body = Full::new(body.collect().await?.to_bytes());
                        Ok::<_, hyper::Error>(hyper::Response::from_parts(parts, body))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), forward).await;
            });
        }
    });
    (url, seen)
}

/// `run --config CONFIG --out OUT`, with the token variable set to `token` or unset.
async fn run(config: &std::path::Path, out: &std::path::Path, token: Option<&str>) -> std::process::Output {
    let mut cmd = bin();
    cmd.args(["run", "--config"]).arg(config).arg("--out").arg(out).env_remove("MCP_PERFCHECK_TEST_TOKEN");
    if let Some(t) = token {
        cmd.env("MCP_PERFCHECK_TEST_TOKEN", t);
    }
    tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_behind_https_with_a_private_ca_is_measured_with_a_token_from_the_environment() {
    let (server, backend_url) = spawn_http_server(&[], &[]).await;
    let backend = backend_url.trim_end_matches("/mcp").to_string();
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = tls_proxy(dir.path(), backend).await;
    let config = |extra: &str| {
        format!(
            "server:
  url: \"{url}\"
  transport: http
  startup_timeout: 5s
{extra}
workload:
  repetitions: 1
  scenarios:
    - {{name: s, concurrency: 2, duration: 500ms, mix: [{{tool: echo, arguments: {{message: hi}}}}]}}
"
        )
    };
    let trusted = "  ca_file: ca.pem\n  headers: {authorization: {env: MCP_PERFCHECK_TEST_TOKEN}, x-tenant: load}";
    let path = write_config(dir.path(), &config(trusted));
    let out = dir.path().join("r.json");
    let token = "Bearer s3cr3t-value";
    let done = run(&path, &out, Some(token)).await;
    let stdout = String::from_utf8_lossy(&done.stdout).to_string();
    assert!(done.status.success(), "{stdout}{}", String::from_utf8_lossy(&done.stderr));
    let r = read_json(&out);
    let calls = r["scenarios"][0]["repetitions"][0]["operations"][0]["count"].as_u64().unwrap();
    assert!(calls > 10, "{calls} calls over https");
    let first = seen.lock().unwrap().clone();
    let expected = format!("{token}|load");
    assert!(first.len() as u64 > calls && first.iter().all(|a| *a == expected), "every request carried the token");
    let file = std::fs::read_to_string(&out).unwrap();
    assert!(!file.contains("s3cr3t") && !stdout.contains("s3cr3t"), "the token is in no output");

    // Without the CA, the certificate is refused; without the variable, nothing starts.
    let untrusted = dir.path().join("untrusted.yaml");
    std::fs::write(&untrusted, config("  headers: {authorization: {env: MCP_PERFCHECK_TEST_TOKEN}}")).unwrap();
    let done = run(&untrusted, &out, Some(token)).await;
    let text = String::from_utf8_lossy(&done.stdout).to_string() + &String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(2), "{text}");
    assert!(text.contains("UnknownIssuer"), "{text}");
    let done = run(&path, &out, None).await;
    let text = String::from_utf8_lossy(&done.stdout).to_string() + &String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(2), "{text}");
    assert!(
        text.contains("server.headers.authorization: the environment variable MCP_PERFCHECK_TEST_TOKEN is not set"),
        "{text}"
    );

    // Quick mode, no config: the same server with the CA and the headers given as flags.
    let before = seen.lock().unwrap().len();
    let mut quick = bin();
    quick.current_dir(dir.path()).env("MCP_PERFCHECK_TEST_TOKEN", token);
    quick.args(["run", "--url", &url, "--ca-file", "ca.pem", "-H", "X-Tenant: load"]);
    quick.args(["--header-env", "authorization=MCP_PERFCHECK_TEST_TOKEN", "--tool", r#"echo={"message":"hi"}"#]);
    quick.args(["--repetitions", "1", "--warmup", "0s", "--duration", "500ms", "--print-config", "--out", "q.json"]);
    let done = tokio::task::spawn_blocking(move || quick.output().unwrap()).await.unwrap();
    let stdout = String::from_utf8_lossy(&done.stdout).to_string();
    assert!(done.status.success(), "{stdout}{}", String::from_utf8_lossy(&done.stderr));
    let calls = read_json(&dir.path().join("q.json"))["scenarios"][0]["repetitions"][0]["operations"][0]["count"]
        .as_u64()
        .unwrap();
    let quick_seen = seen.lock().unwrap()[before..].to_vec();
    assert!(
        calls > 10 && quick_seen.len() as u64 > calls && quick_seen.iter().all(|a| *a == expected),
        "{calls} calls: {quick_seen:?}"
    );
    // The config to keep names the variable, never its value.
    assert!(stdout.contains("authorization:\n      env: MCP_PERFCHECK_TEST_TOKEN"), "{stdout}");
    assert!(!stdout.contains("s3cr3t"), "{stdout}");

    // `init` takes the same flags: its probe gets in, and the config it writes keeps them.
    let before = seen.lock().unwrap().len();
    let mut init = bin();
    init.current_dir(dir.path()).env("MCP_PERFCHECK_TEST_TOKEN", token);
    init.args(["init", "--url", &url, "--ca-file", "ca.pem", "-H", "X-Tenant: load"]);
    init.args(["--header-env", "authorization=MCP_PERFCHECK_TEST_TOKEN", "--probe", "500ms", "--out", "init.yaml"]);
    let done = tokio::task::spawn_blocking(move || init.output().unwrap()).await.unwrap();
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let probe_seen = seen.lock().unwrap()[before..].to_vec();
    assert!(probe_seen.len() > 10 && probe_seen.iter().all(|a| *a == expected), "{probe_seen:?}");
    let written = std::fs::read_to_string(dir.path().join("init.yaml")).unwrap();
    let headers =
        "  headers:\n    \"X-Tenant\": \"load\"\n    \"authorization\": {env: \"MCP_PERFCHECK_TEST_TOKEN\"}\n";
    assert!(written.contains(headers) && written.contains("  ca_file: \"ca.pem\"\n"), "{written}");
    assert!(!written.contains("s3cr3t"), "{written}");
    stop_http_server(server).await;
}
