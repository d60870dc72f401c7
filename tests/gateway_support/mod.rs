//! Harness of the gateway tests: a throw-away CA and server certificate
//! (openssl), the gateway's keytab and JWT key, its configuration, the real
//! `auks-gateway` binary, and `curl` as the laptop's HTTPS client.
//! Used with `mod common;` (real KDC and auksd) by tests/gateway*.rs.

#![allow(dead_code)]

use crate::common::*;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The gateway's service principal (its keytab holds this key).
pub const GW_PRINCIPAL: &str = "HTTP/localhost@TEST.REALM";

/// A throw-away CA and a certificate for localhost / 127.0.0.1.
pub struct Pki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn make_pki(dir: &Path) -> Pki {
    make_ca(dir, "auks-gateway test CA");
    write_file(
        &dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        0o644,
    );
    make_signed(dir, "gw", "/CN=localhost", None);
    set_mode(&dir.join("gw.key"), 0o600);
    Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("gw.pem"),
        key: dir.join("gw.key"),
    }
}

/// A TCP listener standing where slurmrestd would be, counting the
/// connections it receives (proves that nothing reached Slurm).
pub struct Sentinel {
    pub port: u16,
    pub hits: Arc<AtomicUsize>,
}

impl Sentinel {
    pub fn start() -> Sentinel {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind sentinel");
        let port = l.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let h = Arc::clone(&hits);
        std::thread::spawn(move || {
            for s in l.incoming() {
                h.fetch_add(1, Ordering::SeqCst);
                drop(s);
            }
        });
        Sentinel { port, hits }
    }
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Settings of one gateway instance.
pub struct GwOpts {
    pub slurmrestd: String,
    pub auks_conf: PathBuf,
    pub keytab: PathBuf,
    /// Extra TOML lines.
    pub extra: String,
}

/// A running `auks-gateway`.
pub struct Gateway {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub pki: Pki,
    child: Option<Child>,
}

pub fn gateway_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_auks-gateway"))
}

impl Gateway {
    /// Write the files and the configuration; `start` runs it.
    pub fn prepare(opts: &GwOpts) -> Gateway {
        let dir = temp_dir("auks-gw-");
        let d = dir.path();
        let pki = make_pki(d);
        std::fs::copy(&opts.keytab, d.join("gw.keytab")).expect("copy keytab");
        set_mode(&d.join("gw.keytab"), 0o600);
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("random key");
        write_file(&d.join("jwt.key"), key, 0o600);
        // Port 0: the OS chooses; `start` reads the port from the gateway's log.
        let port = 0;
        let conf = format!(
            r#"listen = "127.0.0.1:{port}"
tls_cert = "{cert}"
tls_key = "{key}"
auks_conf = "{auks}"
keytab = "{d}/gw.keytab"
verify_principal = "{GW_PRINCIPAL}"
jwt_key = "{d}/jwt.key"
slurmrestd = "{rest}"
backend_timeout = 10
max_body_bytes = 4096
login_failures_before_backoff = 3
login_backoff_base = 30
{extra}
"#,
            cert = pki.cert.display(),
            key = pki.key.display(),
            auks = opts.auks_conf.display(),
            d = d.display(),
            rest = opts.slurmrestd,
            extra = opts.extra,
        );
        write_file(&d.join("gateway.toml"), conf, 0o644);
        Gateway {
            dir,
            port,
            pki,
            child: None,
        }
    }

    pub fn conf_path(&self) -> PathBuf {
        self.dir.path().join("gateway.toml")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("gateway.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Run `auks-gateway -f conf` in the realm's environment (`realm`
    /// decides which KDC it talks to) and wait until it listens.
    pub fn start(mut self, realm: &Realm) -> Gateway {
        let log = std::fs::File::create(self.log_path()).expect("gateway log");
        let child = realm
            .command(gateway_bin())
            .arg("-f")
            .arg(self.conf_path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start auks-gateway");
        self.child = Some(child);
        let t = Instant::now();
        while !self.log().contains("listening on") {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("auks-gateway exited ({st})\n{}", self.log());
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "auks-gateway not listening after 30 s\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = self.log();
        self.port = log
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|url| url.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in the gateway's listening line\n{log}"));
        self
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// `curl` as a laptop would call the API: returns status, headers and
    /// body. The password goes to curl through its config on stdin, never on
    /// the command line; a body goes through a file.
    pub fn curl(
        &self,
        method: &str,
        path: &str,
        user: Option<(&str, &str)>,
        body: Option<&[u8]>,
    ) -> Reply {
        let mut c = Command::new("curl");
        c.args(["-sS", "--max-time", "60", "-X", method, "--cacert"])
            .arg(&self.pki.ca)
            .args(["-D", "-", "-o", "-", "-K", "-"]);
        let bodyfile = self
            .dir
            .path()
            .join(format!("body-{}", COUNTER.fetch_add(1, Ordering::SeqCst)));
        if let Some(b) = body {
            std::fs::write(&bodyfile, b).expect("write body");
            c.args(["-H", "Content-Type: application/json", "--data-binary"])
                .arg(format!("@{}", bodyfile.display()));
        }
        c.arg(self.url(path));
        let mut stdin = String::new();
        if let Some((u, p)) = user {
            stdin.push_str(&format!("user = \"{u}:{p}\"\n"));
        }
        let o = run_cmd(&mut c, Some(stdin.as_bytes()), Duration::from_secs(90));
        let _ = std::fs::remove_file(&bodyfile);
        Reply::parse(&o)
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A parsed curl answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: String,
    pub body: String,
    pub json: serde_json::Value,
}

impl Reply {
    fn parse(o: &Output) -> Reply {
        assert!(o.status.success(), "curl failed\n{}", out(o));
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no HTTP header in curl output\n{text}"));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line\n{text}"));
        Reply {
            status,
            headers: head.to_string(),
            body: body.to_string(),
            json: serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
        }
    }

    pub fn error_code(&self) -> &str {
        self.json["error"].as_str().unwrap_or("")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_and_reap(&mut c, Duration::from_secs(5));
        }
    }
}
