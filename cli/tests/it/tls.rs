//! The service over TLS, as Terraform deploys it: the read cache on a
//! `rediss://` server whose certificate a private CA signed. The server is
//! started here (`redis-server --tls-port`), never the shared one.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pipeline::cache::{Cache, RedisCache};
use tempfile::TempDir;
use uuid::Uuid;

use crate::support::testdata;

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// A CA, and a certificate it signed for `localhost` and 127.0.0.1.
fn make_certificates(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=image-service test CA"],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]].concat(),
    );
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        .expect("write ext.cnf");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

/// A Redis that speaks only TLS, stopped when dropped.
struct TlsRedis {
    child: Child,
    port: u16,
    ca: PathBuf,
    _dir: TempDir,
}

impl TlsRedis {
    fn start() -> Self {
        let dir = TempDir::new().expect("temp dir");
        make_certificates(dir.path());
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--tls-cert-file", "server.pem", "--tls-key-file", "server.key", "--tls-ca-cert-file", "ca.pem"])
            .args(["--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", "."])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts (it must be built with TLS)");
        let ca = dir.path().join("ca.pem");
        let redis = Self { child, port, ca, _dir: dir };
        wait_for_port(port);
        redis
    }

    fn url(&self) -> String {
        format!("rediss://localhost:{}/", self.port)
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The real binary, `run`, with the cache on `redis`; killed when dropped.
struct Service {
    child: Child,
    base: String,
    _data: TempDir,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ADMIN_KEY: &str = "tls-test-admin-key";

/// The all-in-one binary against `redis`, trusting its CA when `trust_ca`
/// (otherwise only the public roots).
fn run_service(redis: &TlsRedis, trust_ca: bool) -> Service {
    let data = TempDir::new().expect("temp dir");
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_image-service"));
    command
        .arg("run")
        .env("DATA_DIR", data.path())
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("METRICS_ADDR", "127.0.0.1:0")
        .env("QUEUE_WAIT_SECS", "1")
        .env("ADMIN_API_KEY", ADMIN_KEY)
        .env("REDIS_URL", redis.url());
    if trust_ca {
        command.env("REDIS_CA_FILE", &redis.ca);
    } else {
        command.env_remove("REDIS_CA_FILE");
    }
    let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("the binary starts");
    wait_for_port(port);
    Service { child, base: format!("http://127.0.0.1:{port}"), _data: data }
}

#[tokio::test]
async fn the_binary_serves_cached_job_reads_over_rediss_with_a_private_ca() {
    // Arrange: a TLS-only Redis, and the service pointed at it the way
    // Terraform points the tasks at ElastiCache.
    let redis = TlsRedis::start();
    let service = run_service(&redis, true);
    let http = reqwest::Client::new();
    let accepted = http
        .post(format!("{}/v1/images", service.base))
        .bearer_auth(ADMIN_KEY)
        .header("content-type", "image/png")
        .body(std::fs::read(testdata("dice_rgba.png")).expect("testdata"))
        .send()
        .await
        .expect("upload");
    assert_eq!(accepted.status(), 202);
    let job: serde_json::Value = accepted.json().await.expect("json");
    let id: Uuid = job["id"].as_str().and_then(|s| s.parse().ok()).expect("job id");

    // Act: follow the job to its end, then read it once more.
    let get = || http.get(format!("{}/v1/jobs/{id}", service.base)).bearer_auth(ADMIN_KEY).send();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = get().await.expect("get job");
        assert_eq!(response.status(), 200, "every read of the job answers, cached or not");
        let body: serde_json::Value = response.json().await.expect("json");
        if body["status"] == "succeeded" {
            break;
        }
        assert!(Instant::now() < deadline, "the job never finished: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cached = get().await.expect("get job");

    // Assert: the read came from the cache, and the entry is in the TLS Redis.
    assert_eq!(cached.status(), 200);
    assert_eq!(cached.headers().get("x-cache").and_then(|v| v.to_str().ok()), Some("hit"));
    let roots = std::fs::read(&redis.ca).expect("ca");
    let direct = RedisCache::with_roots(&redis.url(), roots).expect("client");
    let entry = direct
        .get(&pipeline::cache::job_key(pipeline::tenants::DEFAULT_TENANT, id))
        .await
        .expect("the job's view is stored in Redis");
    let entry: serde_json::Value = serde_json::from_slice(&entry).expect("json");
    assert_eq!(entry["status"], "succeeded");
}

#[tokio::test]
async fn a_rediss_server_whose_ca_is_not_trusted_only_makes_reads_miss() {
    // Arrange: the same server, but the service trusts only the public roots.
    let redis = TlsRedis::start();
    let service = run_service(&redis, false);

    // Act
    let response = reqwest::Client::new()
        .get(format!("{}/v1/jobs/{}", service.base, Uuid::now_v7()))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("get");

    // Assert: the cache fails open; the database answers.
    assert_eq!(response.status(), 404);
}
