//! A `palisade serve` on a loopback port, a CA made for the test, and a
//! small HTTPS client, for the tests that talk to the server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::palisade;

pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: rcgen::Certificate,
    pub ca_key: rcgen::KeyPair,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "palisade test CA");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        let pki = Pki { dir, ca, ca_key };
        pki.issue("server", &["localhost", "127.0.0.1"], false);
        pki
    }

    /// Write `<name>.pem` and `<name>-key.pem`, signed by the CA.
    pub fn issue(&self, name: &str, sans: &[&str], client: bool) -> rcgen::Certificate {
        let mut params = rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        if client {
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        std::fs::write(self.path(&format!("{name}-key.pem")), key.serialize_pem()).unwrap();
        std::fs::write(self.path(&format!("{name}.pem")), cert.pem()).unwrap();
        cert
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

pub struct Server {
    pub child: Child,
    pub addr: String,
    pub pki: Pki,
    /// Whether the server asks for client certificates (the helpers then present one).
    pub mtls: bool,
    pub stdout: Option<std::process::ChildStdout>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start(extra: &[&str], config: &str, client_ca: bool) -> Server {
    start_logged(extra, config, client_ca, None).0
}

/// What the server wrote to stderr (the first 10,000 lines).
pub type Stderr = Arc<std::sync::Mutex<Vec<String>>>;

/// The address in the server's `listening` line, if `line` is that line.
/// Every line the server writes is a JSON object: any other fails the test.
pub fn listening(line: &str) -> Option<String> {
    let parsed: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
    (parsed["msg"] == "listening").then(|| parsed["address"].as_str().expect("the address").to_string())
}

/// [`start`], keeping the server's stderr, and with `open_files` as its
/// limit on open file descriptors (soft and hard) when given.
pub fn start_logged(extra: &[&str], config: &str, client_ca: bool, open_files: Option<u64>) -> (Server, Stderr) {
    let pki = Pki::new();
    let cfg = pki.path("palisade.yaml");
    std::fs::write(&cfg, config).unwrap();
    let mut cmd = palisade();
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--tls-cert"])
        .arg(pki.path("server.pem"))
        .arg("--tls-key")
        .arg(pki.path("server-key.pem"))
        .arg("--config")
        .arg(&cfg)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if client_ca {
        cmd.arg("--client-ca").arg(pki.path("ca.pem"));
    }
    if let Some(n) = open_files {
        use std::os::unix::process::CommandExt;
        // SAFETY: only setrlimit, which is async-signal-safe, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let limit = libc::rlimit { rlim_cur: n, rlim_max: n };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().expect("start palisade serve");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let kept: Stderr = Arc::default();
    let addr = loop {
        let line = lines.next().expect("palisade serve exited before listening").unwrap();
        let address = listening(&line);
        kept.lock().unwrap().push(line);
        if let Some(a) = address {
            break a;
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    {
        let kept = kept.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(mut k) = kept.lock()
                    && k.len() < 10_000
                {
                    k.push(line);
                }
            }
        });
    }
    let stdout = child.stdout.take();
    pki.issue("client", &["client"], true);
    let server = Server { child, addr, pki, stdout, mtls: client_ca };
    let deadline = Instant::now() + Duration::from_secs(120);
    while get(&server, "/readyz").0 != 200 {
        assert!(Instant::now() < deadline, "not ready in time");
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, kept)
}

pub fn client_config(pki: &Pki, client_cert: Option<&str>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.der().clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client_cert {
        None => builder.with_no_client_auth(),
        Some(name) => {
            use rustls::pki_types::pem::PemObject;
            let chain =
                vec![rustls::pki_types::CertificateDer::from_pem_file(pki.path(&format!("{name}.pem"))).unwrap()];
            let key = rustls::pki_types::PrivateKeyDer::from_pem_file(pki.path(&format!("{name}-key.pem"))).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    Arc::new(config)
}

/// One HTTPS request; (status, headers, body). Err for a TLS or connection failure.
pub fn request_with(
    server: &Server,
    config: Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String, Vec<u8>, Vec<u8>)> {
    request_at(&server.addr, "localhost", config, method, path, headers, body)
}

/// [`request_with`] to `addr`, verifying its certificate for `name`.
pub fn request_at(
    addr: &str,
    name: &str,
    config: Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String, Vec<u8>, Vec<u8>)> {
    let server_name = rustls::pki_types::ServerName::try_from(name.to_string()).map_err(std::io::Error::other)?;
    let conn = rustls::ClientConnection::new(config, server_name).map_err(std::io::Error::other)?;
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n");
    // A Content-Length among `headers` is sent as it is (it may not match the body).
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length")) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    tls.write_all(head.as_bytes())?;
    tls.write_all(body)?;
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        // The server may close without close_notify after answering.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    let peer = tls.conn.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec()).unwrap_or_default();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| std::io::Error::other("no HTTP head"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut body = raw[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Ok((status, head, body, peer))
}

pub fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&data[..end]).unwrap().trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 2 + size + 2..];
    }
    out
}

pub fn get(server: &Server, path: &str) -> (u16, String) {
    let config = client_config(&server.pki, server.mtls.then_some("client"));
    match request_with(server, config, "GET", path, &[], b"") {
        Ok((s, _, b, _)) => (s, String::from_utf8_lossy(&b).into_owned()),
        Err(_) => (0, String::new()),
    }
}

pub fn post(server: &Server, path: &str, body: &Value) -> (u16, Value) {
    let (status, _, body, _) = request_with(
        server,
        client_config(&server.pki, None),
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

pub fn pod(name: &str, namespace: &str, security: Value, extra_spec: Value) -> Value {
    let mut spec =
        json!({"containers": [{"name": "app", "image": "registry.example.com/app:1.0", "securityContext": security}]});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra_spec.as_object()) {
        s.extend(e.clone());
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace}, "spec": spec})
}

pub fn review(uid: &str, operation: &str, namespace: &str, object: Value, old: Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": object,
            "oldObject": old,
        }
    })
}

/// The first line of `stderr` that `wanted` accepts, parsed, waiting for it
/// (the lines arrive through a pipe and a thread) up to 30 s.
pub fn wait_for_line(stderr: &Stderr, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found =
            stderr.lock().unwrap().iter().filter_map(|l| serde_json::from_str::<Value>(l).ok()).find(|l| wanted(l));
        if let Some(line) = found {
            return line;
        }
        assert!(Instant::now() < deadline, "no such line on stderr: {:#?}", stderr.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A client that trusts the CA certificate(s) in the PEM file `ca`.
pub fn client_trusting(ca: &std::path::Path) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}
