//! A throw-away etcd cluster on loopback for the HA tests: `n` members, each
//! with its own temp data dir and client/peer ports on 127.0.0.1, started
//! within a bounded time; members can be killed (-9) and restarted; every
//! process is killed when the cluster is dropped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{free_ports, kill_and_reap, run_cmd, temp_dir};

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
}

impl EtcdCluster {
    /// Starts `n` members and waits until the cluster has a leader.
    pub fn start(n: usize) -> EtcdCluster {
        require_etcd();
        let dir = temp_dir("etcd-");
        let ports = free_ports(2 * n);
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
                "--listen-client-urls=http://127.0.0.1:{}",
                m.client_port
            ))
            .arg(format!(
                "--advertise-client-urls=http://127.0.0.1:{}",
                m.client_port
            ))
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

    /// Client URLs, comma-separated (the `EtcdEndpoints` value).
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("http://127.0.0.1:{}", m.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.members[i].client_port)
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
            .arg("--command-timeout=5s")
            .args(args);
        run_cmd(&mut c, None, Duration::from_secs(20))
    }

    /// Whether member `i` answers `/health` with a leader.
    pub fn member_healthy(&self, i: usize) -> bool {
        let mut c = Command::new("/usr/bin/etcdctl");
        c.env_clear()
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint(i)))
            .args(["--dial-timeout=1s", "--command-timeout=2s"])
            .args(["endpoint", "health"]);
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
