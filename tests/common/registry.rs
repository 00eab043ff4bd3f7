//! A real OCI registry (the CNCF distribution registry, Debian's
//! `docker-registry`) on a loopback port with its own storage, over HTTP,
//! HTTPS with a CA made for the test, or HTTPS with basic auth.
//!
//! `.ci/run` installs it (and skopeo, openssl and the OCI image-spec
//! schemas). Where one is missing, `host/build/tools.rs` sets a
//! `palisade_missing_<tool>` cfg (unless `CI` or `PALISADE_REQUIRE_TOOLS` is
//! set) and the tests that need it are ignored, with the reason, by
//! `#[cfg_attr(palisade_missing_<tool>, ignore = "...")]`; run anyway, they
//! fail on the missing tool, never pass without it.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::server::Pki;

pub const USER: &str = "palisade";
pub const PASSWORD: &str = "s3cret-for-tests";

/// The path of an external tool (the first of `candidates` that exists),
/// failing the test with how to install it when none does.
pub fn tool(name: &str, candidates: &[&str]) -> PathBuf {
    candidates.iter().map(PathBuf::from).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!(
            "{name} is not installed ({}); `apt-get install docker-registry skopeo openssl golang-github-opencontainers-image-spec-dev` installs it",
            candidates.join(", ")
        )
    })
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
    /// Start a registry (the test fails when docker-registry is not installed).
    pub fn start(mode: Mode) -> Registry {
        let binary = tool("docker-registry", &["/usr/bin/docker-registry"]);
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
        registry
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
