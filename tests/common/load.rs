//! Helpers of the scale and hostile-load suites: thousands of test accounts
//! from the test's own passwd/group files through cwrap's nss_wrapper (the
//! machine's /etc/passwd is never edited), principals and TGTs in bulk, an
//! auksd started with that environment, and the figures those suites print.

use super::*;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Where Debian's `libnss-wrapper` puts the preload library.
const NSS_WRAPPER_LIBS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so",
    "/usr/lib/aarch64-linux-gnu/libnss_wrapper.so",
    "/usr/lib64/libnss_wrapper.so",
    "/usr/lib/libnss_wrapper.so",
];

/// The nss_wrapper library; panics (the test must not pass by skipping)
/// when it is not installed.
pub fn nss_wrapper_lib() -> PathBuf {
    NSS_WRAPPER_LIBS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("libnss_wrapper.so not found: install libnss-wrapper (scripts/deps.sh)")
        })
}

/// nss_wrapper serialised (`tests/common/nss_serial.c`: one lock around
/// each lookup, as nss_wrapper 1.1.12 crashes under concurrent ones), built
/// once per test process with the system C compiler into Cargo's temporary
/// directory for tests (a fresh name renamed into place, so concurrent test
/// processes never load a half-written file). Panics when it cannot be built.
pub fn nss_serial_lib() -> PathBuf {
    static LIB: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    LIB.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/nss_serial.c");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let out = dir.join("libnss_serial.so");
        let tmp = dir.join(format!("libnss_serial.{}.so", std::process::id()));
        let st = Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&tmp)
            .arg(&src)
            .args(["-ldl", "-lpthread"])
            .status()
            .expect("run cc to build tests/common/nss_serial.c");
        assert!(st.success(), "cc failed on {}", src.display());
        fs::rename(&tmp, &out).expect("rename libnss_serial.so into place");
        out
    })
    .clone()
}

/// `n` accounts `<prefix><i>` with uids `base..base+n`, visible only to
/// processes started with [`Accounts::env`].
pub struct Accounts {
    dir: tempfile::TempDir,
    pub prefix: String,
    pub base: u32,
    pub n: u32,
}

impl Accounts {
    pub fn create(prefix: &str, base: u32, n: u32) -> Accounts {
        let dir = temp_dir("auks-nss-");
        let mut passwd = fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
        let mut group = fs::read_to_string("/etc/group").expect("read /etc/group");
        for i in 0..n {
            let uid = base + i;
            passwd.push_str(&format!(
                "{prefix}{i}:x:{uid}:{uid}:load test:/nonexistent:/usr/sbin/nologin\n"
            ));
            group.push_str(&format!("{prefix}{i}:x:{uid}:\n"));
        }
        write_file(&dir.path().join("passwd"), passwd, 0o644);
        write_file(&dir.path().join("group"), group, 0o644);
        Accounts {
            dir,
            prefix: prefix.into(),
            base,
            n,
        }
    }

    pub fn name(&self, i: u32) -> String {
        format!("{}{i}", self.prefix)
    }

    pub fn uid(&self, i: u32) -> u32 {
        self.base + i
    }

    /// Environment that makes a process see these accounts.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "LD_PRELOAD".into(),
                format!(
                    "{} {}",
                    nss_serial_lib().display(),
                    nss_wrapper_lib().display()
                ),
            ),
            (
                "NSS_WRAPPER_PASSWD".into(),
                self.dir.path().join("passwd").display().to_string(),
            ),
            (
                "NSS_WRAPPER_GROUP".into(),
                self.dir.path().join("group").display().to_string(),
            ),
        ]
    }
}

/// Create principals with random keys in one kadmin.local run, each key
/// exported to `<keytabs>/<name>.keytab` (no password hashing: fast).
pub fn add_principals(realm: &Realm, names: &[String], keytabs: &Path) {
    let mut script = String::new();
    for n in names {
        let p = realm.princ(n);
        script.push_str(&format!(
            "addprinc -randkey {p}\nktadd -norandkey -k {}/{n}.keytab {p}\n",
            keytabs.display()
        ));
    }
    let mut c = realm.command("kadmin.local");
    c.args(["-r", REALM]);
    let o = run_cmd(&mut c, Some(script.as_bytes()), Duration::from_secs(900));
    assert!(o.status.success(), "kadmin.local batch failed\n{}", out(&o));
    let err = stderr_of(&o);
    assert!(
        !err.lines().any(|l| l.contains(" while ")),
        "kadmin.local batch reported errors\n{}",
        &err[..err.len().min(4000)]
    );
}

/// `kinit -r 7d -k -t <keytabs>/<name>.keytab name` into each ccache path,
/// on `threads` threads.
pub fn kinit_many(realm: &Realm, jobs: &[(String, PathBuf)], keytabs: &Path, threads: usize) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((p, cc)) = jobs.get(i) else { return };
                let kt = keytabs.join(format!("{p}.keytab"));
                realm.kinit_keytab_with(p, &kt, cc, &["-r", "7d"]);
            });
        }
    });
}

/// An auksd started from an existing configuration with extra environment
/// (e.g. [`Accounts::env`]); stderr (its log with `-F`) goes to `log`.
pub struct Daemon {
    child: Option<Child>,
    pub conf: PathBuf,
    pub log: PathBuf,
    pub port: u16,
    env: Vec<(String, String)>,
}

impl Daemon {
    /// Start and wait until the port accepts connections; returns the
    /// daemon and how long that took.
    pub fn start(
        realm: &Realm,
        conf: &Path,
        port: u16,
        log: &Path,
        extra_env: &[(String, String)],
    ) -> (Daemon, Duration) {
        let mut env = realm.env();
        env.extend(extra_env.iter().cloned());
        let mut d = Daemon {
            child: None,
            conf: conf.to_path_buf(),
            log: log.to_path_buf(),
            port,
            env,
        };
        let took = d.spawn();
        (d, took)
    }

    fn spawn(&mut self) -> Duration {
        let errf = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open daemon log");
        let mut c = Command::new(bin_path("auksd"));
        for k in ["KRB5CCNAME", "KRB5_KTNAME", "AUKS_CONF", "AUKSD_CONF"] {
            c.env_remove(k);
        }
        c.envs(self.env.iter().cloned())
            .arg("-F")
            .arg("-f")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(errf.try_clone().unwrap())
            .stderr(errf);
        let before = self.log().matches(" listening on ").count();
        let start = Instant::now();
        self.child = Some(c.spawn().expect("start auksd"));
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        while start.elapsed() < Duration::from_secs(20) {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("auksd exited early ({st})\n{}", self.log());
            }
            // Our daemon says it listens (the port alone could be another
            // process's, taken since the harness chose it).
            if self.log().matches(" listening on ").count() > before
                && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            {
                return start.elapsed();
            }
            thread::sleep(Duration::from_millis(2));
        }
        panic!("auksd not listening after 20 s\n{}", self.log());
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("auksd running").id()
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log since byte `from` (to look at one phase only).
    pub fn log_since(&self, from: usize) -> String {
        let l = self.log();
        l.get(from..).unwrap_or_default().to_string()
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), sig)
            .expect("signal auksd");
    }

    /// SIGKILL, reaped.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start again (after [`Daemon::kill9`]); returns the time to listen.
    pub fn restart(&mut self) -> Duration {
        self.kill9();
        self.spawn()
    }

    /// Wait until the log contains `needle` (panics after `max`).
    pub fn wait_log(&self, needle: &str, max: Duration) -> Duration {
        self.wait_log_after(0, needle, max)
    }

    /// Wait until the log past byte `from` contains `needle`.
    pub fn wait_log_after(&self, from: usize, needle: &str, max: Duration) -> Duration {
        let start = Instant::now();
        while start.elapsed() < max {
            if self.log_since(from).contains(needle) {
                return start.elapsed();
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "auksd log has no {needle:?} after {max:?}\n{}",
            tail(&self.log(), 40)
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_and_reap(&mut c, Duration::from_secs(5));
        }
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Percentile (0..=100) of sorted durations, in milliseconds.
pub fn pct_ms(sorted: &[Duration], p: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) * p) / 100;
    sorted[i].as_secs_f64() * 1000.0
}

/// The rows of an `auks -D` output: (uid, principal, endtime text).
pub fn dump_rows(stdout: &str) -> Vec<(u32, String, String)> {
    stdout
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let uid = f.first()?.parse().ok()?;
            Some((uid, f.get(1)?.to_string(), f.get(3)?.to_string()))
        })
        .collect()
}

/// A TCP connection to `dst` from the local address `src` (e.g. a second
/// loopback address, 127.0.0.2), the connect bounded by `timeout`.
pub fn connect_from(
    src: Ipv4Addr,
    dst: std::net::SocketAddrV4,
    timeout: Duration,
) -> std::io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    fn sin(a: std::net::SocketAddrV4) -> libc::sockaddr_in {
        libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: a.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*a.ip()).to_be(),
            },
            sin_zero: [0; 8],
        }
    }
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket(2); the descriptor is owned by `stream` at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh socket nobody else owns.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    let local = sin(std::net::SocketAddrV4::new(src, 0));
    let remote = sin(dst);
    // SAFETY: valid pointers to live values of the sizes passed; on Linux
    // SO_SNDTIMEO also bounds connect(2).
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        if libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len) != 0 {
            -1
        } else {
            libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len)
        }
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stream)
}
