//! A real OCI registry (the CNCF distribution registry, Debian's
//! `docker-registry`) on a loopback port with its own storage, over HTTP,
//! HTTPS with a CA made for the test, or HTTPS with basic auth.
//!
//! `.ci/run` installs it (and skopeo, and the OCI image-spec schemas). Where a
//! tool is missing the tests that need it say so and stop, unless `CI` or
//! `PALISADE_REQUIRE_TOOLS` is set: then a missing tool is a failure, so CI
//! can never pass them by skipping.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::server::Pki;

pub const USER: &str = "palisade";
pub const PASSWORD: &str = "s3cret-for-tests";

/// Whether a missing tool fails the test rather than skipping it.
fn required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("PALISADE_REQUIRE_TOOLS").is_some()
}

/// The path of an external tool, or `None` (after saying so) when it is
/// missing and not required.
pub fn tool(name: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(found) = candidates.iter().map(PathBuf::from).find(|p| p.is_file()) {
        return Some(found);
    }
    assert!(!required(), "{name} is not installed ({}); .ci/run installs it", candidates.join(", "));
    eprintln!(
        "SKIPPED: {name} is not installed ({}); `apt-get install docker-registry skopeo openssl golang-github-opencontainers-image-spec-dev` runs it",
        candidates.join(", ")
    );
    None
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Http,
    Https,
    HttpsWithBasicAuth,
}

pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`
    pub addr: String,
    pub dir: tempfile::TempDir,
    pub pki: Option<Pki>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    /// Start a registry, or `None` when it is not installed (and not required).
    pub fn start(mode: Mode) -> Option<Registry> {
        let binary = tool("docker-registry", &["/usr/bin/docker-registry"])?;
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        let pki = (mode != Mode::Http).then(Pki::new);
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if let Some(pki) = &pki {
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                pki.path("server.pem").display(),
                pki.path("server-key.pem").display()
            ));
        }
        if mode == Mode::HttpsWithBasicAuth {
            let hash = bcrypt::hash(PASSWORD, 4).unwrap();
            std::fs::write(dir.path().join("htpasswd"), format!("{USER}:{hash}\n")).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: palisade-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("registry.log")).unwrap())
            .spawn()
            .expect("start docker-registry");
        let registry = Registry { child, addr, dir, pki };
        registry.wait_until_listening();
        Some(registry)
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&self.addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "the registry did not start: {}",
                std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `oci://127.0.0.1:PORT/<path>`
    pub fn reference(&self, path: &str) -> String {
        format!("oci://{}/{path}", self.addr)
    }

    /// The CA the HTTPS registry's certificate chains to.
    pub fn ca(&self) -> PathBuf {
        self.pki.as_ref().expect("an HTTPS registry").path("ca.pem")
    }

    /// Where the registry keeps a blob's bytes (its filesystem driver's layout).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir.path().join(format!("data/docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]))
    }

    /// Stop it (the storage stays until the value is dropped).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Docker configuration directory whose config.json holds credentials for `addr`.
pub fn docker_config(dir: &Path, addr: &str, user: &str, password: &str) -> PathBuf {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let config = dir.join("docker");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config.json"), serde_json::json!({"auths": {addr: {"auth": auth}}}).to_string())
        .unwrap();
    config
}
