//! A throw-away etcd cluster on loopback for the HA tests: `n` members, each
//! with its own temp data dir and client/peer ports on 127.0.0.1, started
//! within a bounded time; members can be killed (-9) and restarted; every
//! process is killed when the cluster is dropped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::{self, sleep};
use std::time::{Duration, Instant};

use super::*;

/// Longest wait for a member or a cluster to become healthy.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether etcd is installed (scripts/deps.sh installs Debian's etcd-server
/// and etcd-client). The HA tests fail, never pass, without it.
pub fn require_etcd() {
    for b in ["/usr/bin/etcd", "/usr/bin/etcdctl"] {
        assert!(
            Path::new(b).exists(),
            "{b} missing: run scripts/deps.sh (Debian packages etcd-server, etcd-client)"
        );
    }
}

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

/// A running cluster.
pub struct EtcdCluster {
    dir: tempfile::TempDir,
    members: Vec<Member>,
    token: String,
    /// Client URLs are https with client certificates (see [`Tls`]).
    tls: Option<Tls>,
}

/// PEM files of a test PKI: a CA, the members' server certificate (SAN
/// 127.0.0.1) and a client certificate. The server certificate also needs
/// the clientAuth usage: with `--client-cert-auth`, etcd's JSON gateway
/// connects to its own gRPC server with it (without, every JSON call gets
/// HTTP 503 "connection closed").
#[derive(Clone, Debug)]
pub struct Tls {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Tls {
    /// Makes the PKI in `dir` with the openssl command.
    pub fn create(dir: &Path) -> Tls {
        let ext = dir.join("ext.cnf");
        fs::write(
            &ext,
            "[srv]\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n\
             basicConstraints=CA:FALSE\n[cli]\nextendedKeyUsage=clientAuth\n\
             basicConstraints=CA:FALSE\n",
        )
        .unwrap();
        make_ca(dir, "auks test CA");
        make_signed(dir, "server", "/CN=auks-server", Some("srv"));
        make_signed(dir, "client", "/CN=auks-client", Some("cli"));
        Tls {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        }
    }
}

impl EtcdCluster {
    /// Starts `n` members and waits until the cluster has a leader.
    pub fn start(n: usize) -> EtcdCluster {
        Self::start_with(n, false)
    }

    /// Same, with https client URLs that require a client certificate.
    pub fn start_with(n: usize, tls: bool) -> EtcdCluster {
        require_etcd();
        let dir = temp_dir("etcd-");
        let tls = tls.then(|| Tls::create(dir.path()));
        // etcd cannot bind port 0 and report it (its peers need each other's
        // URLs up front), so its ports are chosen closed here, like the
        // KDC's; a member that fails to bind fails the start loudly.
        let ports = closed_ports(2 * n);
        let members = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: ports[2 * i],
                peer_port: ports[2 * i + 1],
                child: None,
            })
            .collect();
        let mut c = EtcdCluster {
            token: format!("auks-test-{}-{}", std::process::id(), ports[0]),
            dir,
            members,
            tls,
        };
        for i in 0..n {
            c.spawn(i);
        }
        c.wait_healthy(START_TIMEOUT);
        c
    }

    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn(&mut self, i: usize) {
        let initial = self.initial_cluster();
        let d = self.dir.path().to_path_buf();
        let scheme = self.scheme();
        let tls_args: Vec<String> = match &self.tls {
            Some(t) => vec![
                format!("--cert-file={}", t.server_cert.display()),
                format!("--key-file={}", t.server_key.display()),
                format!("--trusted-ca-file={}", t.ca.display()),
                "--client-cert-auth".into(),
            ],
            None => Vec::new(),
        };
        let m = &mut self.members[i];
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join(format!("{}.log", m.name)))
            .expect("open etcd log");
        let child = Command::new("/usr/bin/etcd")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(d.join(format!("{}.data", m.name)))
            .arg(format!(
                "--listen-client-urls={scheme}://127.0.0.1:{}",
                m.client_port
            ))
            .arg(format!(
                "--advertise-client-urls={scheme}://127.0.0.1:{}",
                m.client_port
            ))
            .args(&tls_args)
            .arg(format!(
                "--listen-peer-urls=http://127.0.0.1:{}",
                m.peer_port
            ))
            .arg(format!(
                "--initial-advertise-peer-urls=http://127.0.0.1:{}",
                m.peer_port
            ))
            .arg(format!("--initial-cluster={initial}"))
            .arg(format!("--initial-cluster-token={}", self.token))
            .arg("--initial-cluster-state=new")
            // Fast elections on loopback.
            .args(["--heartbeat-interval=50", "--election-timeout=500"])
            .args([
                "--snapshot-count=100000",
                "--quota-backend-bytes=1073741824",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        m.child = Some(child);
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The test PKI, when the cluster uses TLS.
    pub fn tls(&self) -> Option<&Tls> {
        self.tls.as_ref()
    }

    /// Client URLs, comma-separated (the `EtcdEndpoints` value).
    pub fn endpoints(&self) -> String {
        (0..self.members.len())
            .map(|i| self.endpoint(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn endpoint(&self, i: usize) -> String {
        format!(
            "{}://127.0.0.1:{}",
            self.scheme(),
            self.members[i].client_port
        )
    }

    fn etcdctl_tls(&self, c: &mut Command) {
        if let Some(t) = &self.tls {
            c.arg(format!("--cacert={}", t.ca.display()))
                .arg(format!("--cert={}", t.client_cert.display()))
                .arg(format!("--key={}", t.client_key.display()));
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `etcdctl` (API v3) against every member.
    pub fn etcdctl(&self, args: &[&str]) -> Output {
        let mut c = Command::new("/usr/bin/etcdctl");
        c.env_clear()
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoints()))
            .arg("--dial-timeout=2s")
            .arg("--command-timeout=5s");
        self.etcdctl_tls(&mut c);
        c.args(args);
        run_cmd(&mut c, None, Duration::from_secs(20))
    }

    /// Whether member `i` answers `/health` with a leader.
    pub fn member_healthy(&self, i: usize) -> bool {
        let mut c = Command::new("/usr/bin/etcdctl");
        c.env_clear()
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint(i)))
            .args(["--dial-timeout=1s", "--command-timeout=2s"]);
        self.etcdctl_tls(&mut c);
        c.args(["endpoint", "health"]);
        run_cmd(&mut c, None, Duration::from_secs(5))
            .status
            .success()
    }

    /// Waits until every running member is healthy.
    pub fn wait_healthy(&self, max: Duration) {
        let start = Instant::now();
        loop {
            let all = (0..self.members.len())
                .filter(|&i| self.members[i].child.is_some())
                .all(|i| self.member_healthy(i));
            if all {
                return;
            }
            assert!(
                start.elapsed() < max,
                "etcd cluster not healthy after {max:?}\n{}",
                self.logs()
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// kill -9 member `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts member `i` again on its data dir and ports.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
    }

    /// The members' logs.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for m in &self.members {
            let p: PathBuf = self.dir.path().join(format!("{}.log", m.name));
            let text = fs::read_to_string(&p).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            s.push_str(&format!("--- {} (last lines) ---\n", m.name));
            for l in tail.into_iter().rev() {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(mut c) = m.child.take() {
                kill_and_reap(&mut c, Duration::from_secs(2));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// An HA site: KDC, etcd cluster, sealing key, auksd instances on etcd

pub const PREFIX: &str = "/auks-ha/";

pub struct Ha {
    pub realm: Realm,
    pub cluster: EtcdCluster,
    pub keys: tempfile::TempDir,
    pub instances: Vec<Auksd>,
    pub dir: tempfile::TempDir,
}

/// Runs `auksd-etcd`; it must succeed.
pub fn auksd_etcd(args: &[&str]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_auksd-etcd"));
    c.args(args);
    let o = run_cmd(&mut c, None, Duration::from_secs(120));
    assert!(
        o.status.success(),
        "auksd-etcd {args:?} failed\n{}",
        out(&o)
    );
    o
}

/// The auksd block lines for the etcd repository.
pub fn etcd_lines(cluster: &EtcdCluster, keyfile: &Path) -> String {
    format!(
        "EtcdEndpoints = \"{}\" ; EtcdPrefix = \"{PREFIX}\" ; EtcdSealKeyFile = \"{}\" ; EtcdTimeout = 2 ;",
        cluster.endpoints(),
        keyfile.display()
    )
}

impl Ha {
    pub fn start(n: usize, opts: AuksdOpts) -> Ha {
        let realm = Realm::start();
        let cluster = EtcdCluster::start(3);
        let keys = temp_dir("auks-keys-");
        let keyfile = keys.path().join("seal.keys");
        auksd_etcd(&["genkey", "k1", keyfile.to_str().unwrap()]);
        assert_eq!(mode_owner(&keyfile).0 & 0o777, 0o600);
        let mut opts = opts;
        opts.extra_auksd = format!("{} {}", etcd_lines(&cluster, &keyfile), opts.extra_auksd);
        let instances = (0..n).map(|_| Auksd::start(&realm, opts.clone())).collect();
        Ha {
            realm,
            cluster,
            keys,
            instances,
            dir: temp_dir("auks-ha-"),
        }
    }

    pub fn keyfile(&self) -> PathBuf {
        self.keys.path().join("seal.keys")
    }

    /// A client configuration with `primary` then `secondary` instance.
    pub fn conf(&self, primary: usize, secondary: usize) -> PathBuf {
        let p = self
            .dir
            .path()
            .join(format!("client-{primary}-{secondary}.conf"));
        let a = &self.instances[primary];
        let b = &self.instances[secondary];
        a.write_client_conf(&p, a.port(), b.port());
        p
    }

    pub fn logs(&self) -> String {
        let mut s = String::new();
        for (i, a) in self.instances.iter().enumerate() {
            s.push_str(&format!("=== instance {i} ===\n{}\n", a.log()));
        }
        s + &self.cluster.logs()
    }
}

pub fn admin_cc(realm: &Realm, dir: &Path) -> PathBuf {
    let princ = format!("host/{}@TEST.REALM", hostname());
    let kt = dir.join("host.keytab");
    if !kt.exists() {
        realm.add_randkey_to_keytab(&princ, &kt);
    }
    let cc = dir.join("admin.cc");
    realm.kinit_keytab(&princ, &kt, &cc);
    cc
}

pub fn get_ok(ha: &Ha, conf: &Path, user: &LocalUser, cc: &Path) -> bool {
    let out = ha.dir.path().join(format!("got-{}", user.uid));
    let _ = fs::remove_file(&out);
    let uid = user.uid.to_string();
    let target = format!("FILE:{}", out.display());
    let o = auks(
        &ha.realm,
        conf,
        cc,
        None,
        &["-g", "-u", &uid, "-C", &target],
    );
    o.status.success()
}

pub fn wait_until(max: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < max {
        if f() {
            return Some(t.elapsed());
        }
        sleep(Duration::from_millis(20));
    }
    None
}
