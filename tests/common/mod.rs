//! Real-KDC test harness shared by the integration tests (`mod common;`).
//!
//! Everything here is real: a throw-away MIT KDC (`krb5kdc`) in a temporary directory,
//! real local accounts (`useradd`), and the real `auksd` / `auks` binaries of this crate.
//! Nothing mutates the environment of the test process: every child gets the realm's
//! variables explicitly, so tests can run in parallel threads.
//!
//! Tests are expected to run as root (they create accounts and drop to them).
//! Every helper panics with a descriptive message on failure.
#![allow(dead_code)]

pub mod etcd;
pub mod load;

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// Realm name used by every test realm.
pub const REALM: &str = "TEST.REALM";
/// Master password of the throw-away KDC database.
const MASTER_PW: &str = "masterpw-not-secret";
/// Default timeout for any helper command (kinit, kadmin.local, auks, ...).
pub const CMD_TIMEOUT: Duration = Duration::from_secs(120);

/// The ACL used by most tests: `host/*` principals are admins, single-component
/// principals of TEST.REALM are users.
pub const DEFAULT_ACL: &str = "\
rule { principal = ^host/.*@TEST.REALM$ ; host = * ; role = admin ; }
rule { principal = ^[[:alnum:]]*@TEST.REALM$ ; host = * ; role = user ; }
";

// ---------------------------------------------------------------------------------------
// small utilities
// ---------------------------------------------------------------------------------------

/// Path of one of this crate's binaries (`auks`, `auksd`).
///
/// Inside this crate's integration tests Cargo provides `CARGO_BIN_EXE_<name>` at compile
/// time. Elsewhere (e.g. a scratch crate that only exercises the realm harness) the
/// variable `AUKS_TEST_BIN_<NAME>` is read at run time.
pub fn bin_path(name: &str) -> PathBuf {
    let compiled = match name {
        "auks" => option_env!("CARGO_BIN_EXE_auks"),
        "auksd" => option_env!("CARGO_BIN_EXE_auksd"),
        _ => None,
    };
    if let Some(p) = compiled {
        return PathBuf::from(p);
    }
    let var = format!("AUKS_TEST_BIN_{}", name.to_uppercase());
    match std::env::var_os(&var) {
        Some(p) => PathBuf::from(p),
        None => panic!(
            "binary `{name}` unknown: not built by Cargo for this test and ${var} is not set"
        ),
    }
}

/// Format a process result for assertion messages.
pub fn out(o: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn stdout_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Assert the CLI success contract: exit 0 and `Auks API request succeed` on stdout.
#[track_caller]
pub fn assert_ok(o: &Output) {
    assert!(
        o.status.code() == Some(0) && stdout_of(o).contains("Auks API request succeed"),
        "expected success (exit 0, stdout `Auks API request succeed`)\n{}",
        out(o)
    );
}

/// Assert the CLI failure contract: exit `code` and stderr starting with
/// `Auks API request failed : `.
#[track_caller]
pub fn assert_fail(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "unexpected exit status\n{}",
        out(o)
    );
    assert!(
        stderr_of(o).starts_with("Auks API request failed : "),
        "stderr should start with `Auks API request failed : `\n{}",
        out(o)
    );
    assert!(
        !stdout_of(o).contains("Auks API request succeed"),
        "a failed request must not print the success line\n{}",
        out(o)
    );
}

/// Assert failure with exit `code` and a stderr containing `needle` (case-insensitive).
#[track_caller]
pub fn assert_fail_with(o: &Output, code: i32, needle: &str) {
    assert_fail(o, code);
    assert!(
        stderr_of(o).to_lowercase().contains(&needle.to_lowercase()),
        "stderr should mention {needle:?}\n{}",
        out(o)
    );
}

/// Run a command to completion with a timeout, optionally feeding `stdin`.
/// Panics if it cannot be started or does not finish in time (the child is killed).
pub fn run_cmd(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    let desc = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {desc}: {e}"));
    let writer = stdin.map(|data| {
        let mut pipe = child.stdin.take().unwrap();
        let data = data.to_vec();
        thread::spawn(move || {
            // the child may legitimately close stdin early
            let _ = pipe.write_all(&data);
        })
    });
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let ro = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let re = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => panic!("waiting for {desc}: {e}"),
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = ro.join().unwrap_or_default();
            let stderr = re.join().unwrap_or_default();
            panic!(
                "command did not finish within {timeout:?} (killed): {desc}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    let stdout = ro.join().unwrap_or_default();
    let stderr = re.join().unwrap_or_default();
    Output {
        status,
        stdout,
        stderr,
    }
}

fn run_ok(cmd: &mut Command, stdin: Option<&[u8]>, what: &str) -> Output {
    let o = run_cmd(cmd, stdin, CMD_TIMEOUT);
    if !o.status.success() {
        panic!("{what} failed\n{}", out(&o));
    }
    o
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, then release).
pub fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// A port free for both TCP and UDP on 127.0.0.1 (for the KDC).
fn free_port_tcp_udp() -> u16 {
    for _ in 0..100 {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = l.local_addr().unwrap().port();
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("could not find a port free for both TCP and UDP");
}

/// `n` distinct free TCP ports.
pub fn free_ports(n: usize) -> Vec<u16> {
    // keep the listeners open while choosing so the kernel hands out distinct ports
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0"))
        .collect();
    ls.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// A temp dir (removed on drop) with mode 0755, so test users can traverse it.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create temp dir");
    set_mode(d.path(), 0o755);
    d
}

pub fn set_mode(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {:o} {}: {e}", mode, p.display()));
}

pub fn write_file(p: &Path, content: impl AsRef<[u8]>, mode: u32) {
    fs::write(p, content).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    set_mode(p, mode);
}

/// `chown user:group path`.
pub fn chown(path: &Path, user: &LocalUser) {
    std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
        .unwrap_or_else(|e| panic!("chown {} to {}: {e}", path.display(), user.name));
}

/// (mode & 0o7777, owner uid) of a file.
pub fn mode_owner(path: &Path) -> (u32, u32) {
    let m = fs::metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    (m.mode() & 0o7777, m.uid())
}

/// The machine's host name (as `gethostname()`).
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
    assert_eq!(rc, 0, "gethostname failed");
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Is a process with that pid alive (and not a zombie)?
pub fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            // state is the field after the ")" that ends the command name
            let state = s
                .rsplit_once(')')
                .and_then(|(_, r)| r.trim_start().chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
        Err(_) => false,
    }
}

/// Names + sizes + mtimes of the entries of a directory (to check it did not change).
pub fn dir_snapshot(dir: &Path) -> Vec<(String, u64, i64, i64)> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                m.len(),
                m.mtime(),
                m.mtime_nsec(),
            )
        })
        .collect();
    v.sort();
    v
}

fn kill_and_reap(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(st)) = child.try_wait() {
        return Some(st);
    }
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let start = Instant::now();
    while start.elapsed() < grace {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait().ok()
}

// ---------------------------------------------------------------------------------------
// local users
// ---------------------------------------------------------------------------------------

/// A local account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

static USER_LOCK: Mutex<()> = Mutex::new(());

fn getent_passwd(name: &str) -> Option<LocalUser> {
    let o = Command::new("getent")
        .args(["passwd", name])
        .stdin(Stdio::null())
        .output()
        .expect("run getent");
    if !o.status.success() {
        return None;
    }
    let line = String::from_utf8_lossy(&o.stdout);
    let f: Vec<&str> = line.trim().split(':').collect();
    if f.len() < 4 {
        return None;
    }
    Some(LocalUser {
        name: f[0].to_string(),
        uid: f[2].parse().ok()?,
        gid: f[3].parse().ok()?,
    })
}

/// Does a local account with that name exist?
pub fn user_exists(name: &str) -> bool {
    getent_passwd(name).is_some()
}

/// Make sure a local account exists (`useradd -M -u UID -U -s /bin/bash NAME`).
/// If the name already exists with another uid, the existing account is returned.
pub fn ensure_user(name: &str, uid: u32) -> LocalUser {
    let _g = USER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(u) = getent_passwd(name) {
        return u;
    }
    let mut last = String::new();
    for _ in 0..20 {
        let o = Command::new("useradd")
            .args(["-M", "-u", &uid.to_string(), "-U", "-s", "/bin/bash", name])
            .stdin(Stdio::null())
            .output()
            .expect("run useradd");
        // another process may have created it meanwhile
        if let Some(u) = getent_passwd(name) {
            return u;
        }
        last = out(&o);
        // passwd/group lock held by a concurrent process: retry
        thread::sleep(Duration::from_millis(200));
    }
    panic!("cannot create local user {name} (uid {uid})\n{last}");
}

/// Fixed test users.
pub fn alice() -> LocalUser {
    ensure_user("alice", 3001)
}
pub fn bob() -> LocalUser {
    ensure_user("bob", 3002)
}
pub fn carol() -> LocalUser {
    ensure_user("carol", 3003)
}

// ---------------------------------------------------------------------------------------
// Realm: a throw-away MIT KDC
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct RealmOpts {
    /// KDC `max_life` and krb5.conf `ticket_lifetime` (e.g. "1h", "60s").
    pub max_life: &'static str,
    /// KDC `max_renewable_life` and krb5.conf `renew_lifetime` (e.g. "7d").
    pub max_renew: &'static str,
    /// KDC `supported_enctypes`.
    pub enctypes: &'static str,
}

impl Default for RealmOpts {
    fn default() -> Self {
        RealmOpts {
            max_life: "1h",
            max_renew: "7d",
            enctypes: "aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal",
        }
    }
}

/// A running throw-away KDC for realm TEST.REALM. Dropping it kills the KDC and removes
/// its directory (database, keytabs, ccaches created inside it).
pub struct Realm {
    kdc: Option<Child>,
    port: u16,
    opts: RealmOpts,
    kadmin_lock: Mutex<()>,
    service_keytabs: Mutex<HashMap<String, PathBuf>>,
    // last so that it is removed after the KDC is stopped
    dir: tempfile::TempDir,
}

impl Realm {
    pub fn start() -> Realm {
        Realm::start_with(RealmOpts::default())
    }

    pub fn start_with(opts: RealmOpts) -> Realm {
        let dir = temp_dir("auks-realm-");
        let rc = dir.path().join("rcache");
        fs::create_dir(&rc).expect("mkdir rcache");
        set_mode(&rc, 0o1777);
        write_file(&dir.path().join("kadm5.acl"), "", 0o644);

        let mut realm = Realm {
            kdc: None,
            port: 0,
            opts,
            kadmin_lock: Mutex::new(()),
            service_keytabs: Mutex::new(HashMap::new()),
            dir,
        };
        // database first (independent of ports); configs need a port, use a placeholder
        realm.port = free_port_tcp_udp();
        realm.write_configs();
        let mut c = realm.command("kdb5_util");
        c.args(["create", "-s", "-r", REALM, "-P", MASTER_PW]);
        run_ok(&mut c, None, "kdb5_util create");

        // readiness probe principal
        realm.add_principal("k5probe", "k5probe-pw");

        let mut last_err = String::new();
        for _attempt in 0..5 {
            realm.port = free_port_tcp_udp();
            realm.write_configs();
            match realm.spawn_kdc() {
                Ok(()) => return realm,
                Err(e) => last_err = e,
            }
        }
        panic!("could not start the KDC:\n{last_err}");
    }

    fn write_configs(&self) {
        let d = self.dir.path().display().to_string();
        let p = self.port;
        let o = &self.opts;
        let krb5 = format!(
            "[libdefaults]
  default_realm = {REALM}
  dns_lookup_kdc = false
  dns_lookup_realm = false
  rdns = false
  dns_canonicalize_hostname = false
  forwardable = true
  noaddresses = true
  ticket_lifetime = {life}
  renew_lifetime = {renew}
  default_ccache_name = FILE:{d}/krb5cc_default_%{{uid}}
  default_keytab_name = FILE:{d}/default.keytab
  udp_preference_limit = 1

[realms]
  {REALM} = {{
    kdc = 127.0.0.1:{p}
  }}

[domain_realm]
  localhost = {REALM}
",
            life = o.max_life,
            renew = o.max_renew,
        );
        let kdc = format!(
            "[kdcdefaults]
  kdc_listen = 127.0.0.1:{p}
  kdc_tcp_listen = 127.0.0.1:{p}

[realms]
  {REALM} = {{
    database_name = {d}/principal
    key_stash_file = {d}/stash
    acl_file = {d}/kadm5.acl
    max_life = {life}
    max_renewable_life = {renew}
    supported_enctypes = {enc}
  }}

[logging]
  kdc = FILE:{d}/kdc.log
",
            life = o.max_life,
            renew = o.max_renew,
            enc = o.enctypes,
        );
        write_file(&self.krb5_conf(), krb5, 0o644);
        write_file(&self.kdc_conf(), kdc, 0o644);
    }

    fn spawn_kdc(&mut self) -> Result<(), String> {
        let d = self.dir.path();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("kdc.stdout"))
            .expect("open kdc.stdout");
        let mut c = self.command("krb5kdc");
        c.arg("-n")
            .arg("-P")
            .arg(d.join("kdc.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = c
            .spawn()
            .map_err(|e| format!("cannot start krb5kdc: {e}"))?;
        self.kdc = Some(child);

        // wait until a kinit succeeds (bounded)
        let probe_cc = d.join("probe.cc");
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < Duration::from_secs(10) {
            if let Some(Ok(Some(st))) = self.kdc.as_mut().map(|k| k.try_wait()) {
                self.kdc = None;
                return Err(format!(
                    "krb5kdc exited ({st}) on port {}\n{}\n{}",
                    self.port,
                    fs::read_to_string(d.join("kdc.stdout")).unwrap_or_default(),
                    fs::read_to_string(d.join("kdc.log")).unwrap_or_default()
                ));
            }
            let mut k = self.command("kinit");
            k.arg("-c")
                .arg(format!("FILE:{}", probe_cc.display()))
                .arg("k5probe");
            let o = run_cmd(&mut k, Some(b"k5probe-pw\n"), Duration::from_secs(10));
            if o.status.success() {
                let _ = fs::remove_file(&probe_cc);
                return Ok(());
            }
            last = out(&o);
            thread::sleep(Duration::from_millis(100));
        }
        if let Some(mut k) = self.kdc.take() {
            kill_and_reap(&mut k, Duration::from_secs(2));
        }
        Err(format!(
            "KDC on port {} did not answer within 10 s; last kinit:\n{last}\n{}",
            self.port,
            fs::read_to_string(d.join("kdc.log")).unwrap_or_default()
        ))
    }

    /// Directory holding configs, database, keytabs (removed on drop).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn realm(&self) -> &str {
        REALM
    }
    pub fn kdc_port(&self) -> u16 {
        self.port
    }
    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.path().join("krb5.conf")
    }
    pub fn kdc_conf(&self) -> PathBuf {
        self.dir.path().join("kdc.conf")
    }
    /// Directory for replay caches (KRB5RCACHEDIR), mode 1777.
    pub fn rcache_dir(&self) -> PathBuf {
        self.dir.path().join("rcache")
    }
    /// Fully qualified principal name.
    pub fn princ(&self, name: &str) -> String {
        if name.contains('@') {
            name.to_string()
        } else {
            format!("{name}@{REALM}")
        }
    }

    /// Environment every Kerberos-using child needs.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("KRB5_CONFIG".into(), self.krb5_conf().display().to_string()),
            (
                "KRB5_KDC_PROFILE".into(),
                self.kdc_conf().display().to_string(),
            ),
            (
                "KRB5RCACHEDIR".into(),
                self.rcache_dir().display().to_string(),
            ),
        ]
    }

    /// A `Command` with the realm environment set (and nothing inherited that could point
    /// at another Kerberos setup).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        for k in [
            "KRB5CCNAME",
            "KRB5_KTNAME",
            "KRB5_CLIENT_KTNAME",
            "KRB5_TRACE",
            "AUKS_CONF",
            "AUKSD_CONF",
        ] {
            c.env_remove(k);
        }
        c.envs(self.env());
        c.current_dir("/");
        c
    }

    /// Run a `kadmin.local -q` query; panics on error. Returns stdout.
    pub fn kadmin(&self, query: &str) -> String {
        let _g = self.kadmin_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut c = self.command("kadmin.local");
        c.args(["-r", REALM, "-q", query]);
        let o = run_cmd(&mut c, None, CMD_TIMEOUT);
        let err = stderr_of(&o);
        // kadmin.local exits 0 even when the query failed: look for its error lines
        let failed = err.lines().any(|l| {
            l.contains(" while ") || l.contains("Command not found") || l.contains("Usage:")
        });
        if !o.status.success() || failed {
            panic!("kadmin.local -q {query:?} failed\n{}", out(&o));
        }
        stdout_of(&o)
    }

    /// Create a principal with a password (`addprinc -pw`).
    pub fn add_principal(&self, name: &str, password: &str) {
        self.kadmin(&format!("addprinc -pw {password} {}", self.princ(name)));
    }

    /// Create a principal with a random key and export it to `keytab` (`ktadd -k`).
    /// Note: exporting again re-randomizes the key; use [`Realm::service_keytab`] for a
    /// principal shared by several daemons.
    pub fn add_randkey_to_keytab(&self, princ: &str, keytab: &Path) {
        let p = self.princ(princ);
        self.kadmin(&format!("addprinc -randkey {p}"));
        self.kadmin(&format!("ktadd -k {} {p}", keytab.display()));
        assert!(keytab.exists(), "keytab {} not created", keytab.display());
    }

    /// Keytab of a service principal, created (random key) on first use and then reused,
    /// so several daemons of one realm can share it.
    pub fn service_keytab(&self, princ: &str) -> PathBuf {
        let p = self.princ(princ);
        let mut m = self
            .service_keytabs
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(k) = m.get(&p) {
            return k.clone();
        }
        let safe: String = p
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let kt = self.dir.path().join(format!("svc-{safe}.keytab"));
        self.add_randkey_to_keytab(&p, &kt);
        set_mode(&kt, 0o600);
        m.insert(p, kt.clone());
        kt
    }

    /// `kinit` with a password into `ccache` (a path; FILE: type). `extra_args` e.g.
    /// `&["-f", "-r", "1d"]`. The ccache is owned by root; see [`chown`].
    pub fn kinit_password(&self, princ: &str, password: &str, ccache: &Path, extra_args: &[&str]) {
        let mut c = self.command("kinit");
        c.arg("-c").arg(format!("FILE:{}", ccache.display()));
        c.args(extra_args).arg(self.princ(princ));
        run_ok(
            &mut c,
            Some(format!("{password}\n").as_bytes()),
            &format!("kinit {princ}"),
        );
    }

    /// `kinit -k -t keytab princ` into `ccache`.
    pub fn kinit_keytab(&self, princ: &str, keytab: &Path, ccache: &Path) {
        self.kinit_keytab_with(princ, keytab, ccache, &[]);
    }

    pub fn kinit_keytab_with(
        &self,
        princ: &str,
        keytab: &Path,
        ccache: &Path,
        extra_args: &[&str],
    ) {
        let mut c = self.command("kinit");
        c.arg("-c").arg(format!("FILE:{}", ccache.display()));
        c.args(extra_args);
        c.arg("-k").arg("-t").arg(keytab).arg(self.princ(princ));
        run_ok(&mut c, None, &format!("kinit -k {princ}"));
    }

    /// `kdestroy -c ccache` (ignores "no ccache").
    pub fn kdestroy(&self, ccache: &Path) {
        let mut c = self.command("kdestroy");
        c.arg("-c").arg(format!("FILE:{}", ccache.display()));
        let _ = run_cmd(&mut c, None, CMD_TIMEOUT);
    }

    /// `klist -f -a -c ccache` (not asserted).
    pub fn klist(&self, ccache: &Path) -> Output {
        let mut c = self.command("klist");
        c.args(["-f", "-a", "-c"])
            .arg(format!("FILE:{}", ccache.display()));
        run_cmd(&mut c, None, CMD_TIMEOUT)
    }

    /// Default principal of a ccache according to `klist`, panics if klist fails.
    pub fn ccache_principal(&self, ccache: &Path) -> String {
        let o = self.klist(ccache);
        assert!(
            o.status.success(),
            "klist {} failed\n{}",
            ccache.display(),
            out(&o)
        );
        stdout_of(&o)
            .lines()
            .find_map(|l| {
                l.strip_prefix("Default principal: ")
                    .map(|s| s.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no default principal in klist output\n{}", out(&o)))
    }

    /// A directory owned by `user` (mode 0700) inside the realm dir, for that user's
    /// ccaches and files the user's processes must create.
    pub fn user_dir(&self, user: &LocalUser) -> PathBuf {
        let p = self.dir.path().join(format!("home-{}", user.name));
        if !p.exists() {
            fs::create_dir(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        }
        chown(&p, user);
        set_mode(&p, 0o700);
        p
    }

    /// Create principal `user.name` with `password` if needed, kinit it (`-f -r 1d`) into
    /// `<user_dir>/cc` and chown the ccache to the user. Returns the ccache path.
    pub fn user_ccache(&self, user: &LocalUser, password: &str) -> PathBuf {
        self.ensure_principal(&user.name, password);
        let cc = self.user_dir(user).join("cc");
        self.kinit_password(&user.name, password, &cc, &["-f", "-r", "1d"]);
        chown(&cc, user);
        cc
    }

    /// `add_principal` unless the principal already exists.
    pub fn ensure_principal(&self, name: &str, password: &str) {
        let p = self.princ(name);
        let listed = self.kadmin(&format!("listprincs {p}"));
        if !listed.lines().any(|l| l.trim() == p) {
            self.add_principal(&p, password);
        }
    }

    /// Log of the KDC.
    pub fn kdc_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("kdc.log")).unwrap_or_default()
    }
}

impl Drop for Realm {
    fn drop(&mut self) {
        if let Some(mut k) = self.kdc.take() {
            kill_and_reap(&mut k, Duration::from_secs(5));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Auksd: the real daemon of this crate
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct AuksdOpts {
    /// Full text of auks.acl.
    pub acl: String,
    /// Extra lines inside the `common` block (e.g. `CrossRealm = "X" ;`); every
    /// `extra_*` text comes first in its block, so it overrides the defaults
    /// (the first occurrence of a key wins, as in C).
    pub extra_common: String,
    /// Extra lines inside the `auksd` block.
    pub extra_auksd: String,
    /// Extra lines inside the `api` block (e.g. `HelperScript = "/x" ;`).
    pub extra_api: String,
    /// Extra lines inside the `renewer` block (e.g. `Delay = 5 ;`).
    pub extra_renewer: String,
    /// `Workers` of the auksd block.
    pub workers: u32,
    /// `Retries`, `Timeout`, `Delay` of the common block.
    pub retries: u32,
    pub timeout: u32,
    pub delay: u32,
}

impl Default for AuksdOpts {
    fn default() -> Self {
        AuksdOpts {
            acl: DEFAULT_ACL.to_string(),
            extra_common: String::new(),
            extra_auksd: String::new(),
            extra_api: String::new(),
            extra_renewer: String::new(),
            workers: 4,
            retries: 1,
            timeout: 2,
            delay: 1,
        }
    }
}

/// The auksd service principal used by the tests.
pub const AUKSD_PRINCIPAL: &str = "auks/localhost@TEST.REALM";

/// A running `auksd -F` with its own temp dir (config, keytab, ACL, CacheDir, logs).
/// Dropping it stops the daemon (SIGTERM, then SIGKILL after 5 s) and removes the dir.
pub struct Auksd {
    child: Option<Child>,
    port: u16,
    secondary_port: u16,
    opts: AuksdOpts,
    realm_env: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Auksd {
    pub fn start(realm: &Realm, opts: AuksdOpts) -> Auksd {
        let dir = temp_dir("auksd-");
        let d = dir.path();
        fs::copy(realm.service_keytab(AUKSD_PRINCIPAL), d.join("auks.keytab"))
            .expect("copy auksd keytab");
        set_mode(&d.join("auks.keytab"), 0o600);
        fs::create_dir(d.join("cache")).expect("mkdir cache");
        set_mode(&d.join("cache"), 0o700);
        write_file(&d.join("auks.acl"), &opts.acl, 0o644);
        // clients run as test users and may open the api log even at level 0
        write_file(&d.join("api.log"), "", 0o666);

        let mut a = Auksd {
            child: None,
            port: 0,
            secondary_port: 0,
            opts,
            realm_env: realm.env(),
            dir,
        };
        let mut last = String::new();
        for _attempt in 0..5 {
            let ports = free_ports(2);
            a.port = ports[0];
            a.secondary_port = ports[1];
            let conf = a.conf_text(a.port, a.secondary_port);
            write_file(&a.conf_path(), conf, 0o644);
            match a.spawn() {
                Ok(()) => return a,
                Err(e) => {
                    let retry = e.contains("in use") || e.contains("bind");
                    last = e;
                    if !retry {
                        break;
                    }
                }
            }
        }
        panic!("auksd did not start:\n{last}");
    }

    /// Text of an auks.conf pointing clients at the given ports (daemon settings included).
    pub fn conf_text(&self, primary_port: u16, secondary_port: u16) -> String {
        let d = self.dir.path().display().to_string();
        let o = &self.opts;
        format!(
            r#"common {{
  {extra_common}
  PrimaryHost = "localhost" ; PrimaryAddress = "127.0.0.1" ; PrimaryPort = "{primary_port}" ;
  PrimaryPrincipal = "{AUKSD_PRINCIPAL}" ;
  SecondaryHost = "localhost" ; SecondaryAddress = "127.0.0.1" ; SecondaryPort = "{secondary_port}" ;
  SecondaryPrincipal = "{AUKSD_PRINCIPAL}" ;
  NAT = no ; Retries = {retries} ; Timeout = {timeout} ; Delay = {delay} ;
}}
api {{
  {extra_api}
  LogFile = "{d}/api.log" ; LogLevel = 0 ; DebugFile = "{d}/api.log" ; DebugLevel = 0 ;
}}
auksd {{
  {extra_auksd}
  PrimaryKeytab = "{d}/auks.keytab" ; SecondaryKeytab = "{d}/auks.keytab" ;
  CacheDir = "{d}/cache" ; ACLFile = "{d}/auks.acl" ;
  LogFile = "{d}/auksd.log" ; LogLevel = 3 ; DebugFile = "{d}/auksd.log" ; DebugLevel = 0 ;
  Workers = {workers} ; QueueSize = 16 ; RepoSize = 64 ; CleanDelay = 300 ; ReplayCache = yes ;
}}
renewer {{
  {extra_renewer}
  LogFile = "{d}/renewer.log" ; LogLevel = 1 ; Delay = 60 ; MinLifeTime = 300 ;
}}
"#,
            retries = o.retries,
            timeout = o.timeout,
            delay = o.delay,
            workers = o.workers,
            extra_common = o.extra_common,
            extra_api = o.extra_api,
            extra_auksd = o.extra_auksd,
            extra_renewer = o.extra_renewer,
        )
    }

    /// Write a client configuration (mode 0644) whose endpoints are
    /// 127.0.0.1:`primary_port` and 127.0.0.1:`secondary_port` (e.g. for fail-over tests).
    pub fn write_client_conf(&self, path: &Path, primary_port: u16, secondary_port: u16) {
        write_file(path, self.conf_text(primary_port, secondary_port), 0o644);
    }

    fn spawn(&mut self) -> Result<(), String> {
        let d = self.dir.path();
        let errf = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("auksd.stderr"))
            .expect("open auksd.stderr");
        let mut c = Command::new(bin_path("auksd"));
        for k in [
            "KRB5CCNAME",
            "KRB5_KTNAME",
            "KRB5_CLIENT_KTNAME",
            "AUKS_CONF",
            "AUKSD_CONF",
        ] {
            c.env_remove(k);
        }
        c.envs(self.realm_env.iter().cloned())
            .arg("-F")
            .arg("-f")
            .arg(self.conf_path())
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(errf.try_clone().unwrap())
            .stderr(errf);
        let child = c
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin_path("auksd").display()))?;
        self.child = Some(child);

        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return Err(format!(
                    "auksd exited early ({st}) on port {}\n{}",
                    self.port,
                    self.log()
                ));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(50));
        }
        if let Some(mut c) = self.child.take() {
            kill_and_reap(&mut c, Duration::from_secs(2));
        }
        Err(format!(
            "auksd not listening on port {} after 10 s\n{}",
            self.port,
            self.log()
        ))
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    pub fn conf_path(&self) -> PathBuf {
        self.dir.path().join("auks.conf")
    }
    pub fn acl_path(&self) -> PathBuf {
        self.dir.path().join("auks.acl")
    }
    pub fn keytab_path(&self) -> PathBuf {
        self.dir.path().join("auks.keytab")
    }
    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }
    /// `<CacheDir>/aukscc_<uid>`.
    pub fn cache_file(&self, uid: u32) -> PathBuf {
        self.cache_dir().join(format!("aukscc_{uid}"))
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    /// The configured secondary port (nothing listens there).
    pub fn secondary_port(&self) -> u16 {
        self.secondary_port
    }
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("auksd is not running").id()
    }
    /// Is the daemon still running?
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }
    /// auksd.log + auksd.stderr.
    pub fn log(&self) -> String {
        let d = self.dir.path();
        format!(
            "--- auksd.log ---\n{}\n--- auksd.stderr ---\n{}",
            fs::read_to_string(d.join("auksd.log")).unwrap_or_default(),
            fs::read_to_string(d.join("auksd.stderr")).unwrap_or_default()
        )
    }
    /// Stop the daemon (SIGTERM, SIGKILL after 5 s). Returns its exit status.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.child
            .take()
            .and_then(|mut c| kill_and_reap(&mut c, Duration::from_secs(5)))
    }
    /// Stop and start again with the same configuration and ports.
    pub fn restart(&mut self) {
        self.stop();
        let mut last = String::new();
        for _ in 0..10 {
            match self.spawn() {
                Ok(()) => return,
                Err(e) => last = e,
            }
            thread::sleep(Duration::from_millis(300));
        }
        panic!("auksd did not restart:\n{last}");
    }
}

impl Drop for Auksd {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------
// the auks CLI
// ---------------------------------------------------------------------------------------

/// Run `auks` with `KRB5_CONFIG`, `KRB5CCNAME=FILE:<ccache>`, `AUKS_CONF=<conf>`, as
/// `user` when given (uid/gid dropped in the child; tests run as root).
pub fn auks(
    realm: &Realm,
    conf: &Path,
    ccache: &Path,
    user: Option<&LocalUser>,
    args: &[&str],
) -> Output {
    let mut r = AuksRun::new(realm, conf).ccache(ccache).args(args);
    if let Some(u) = user {
        r = r.user(u);
    }
    auks_with(r)
}

/// Builder for a more controlled `auks` run (extra env, stdin, timeout).
pub struct AuksRun<'a> {
    pub realm: &'a Realm,
    pub conf: PathBuf,
    pub ccache: Option<PathBuf>,
    pub user: Option<LocalUser>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub stdin: Option<Vec<u8>>,
    pub timeout: Duration,
}

impl<'a> AuksRun<'a> {
    pub fn new(realm: &'a Realm, conf: &Path) -> Self {
        AuksRun {
            realm,
            conf: conf.to_path_buf(),
            ccache: None,
            user: None,
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            timeout: CMD_TIMEOUT,
        }
    }
    /// `KRB5CCNAME=FILE:<ccache>` (without it, KRB5CCNAME is unset).
    pub fn ccache(mut self, p: &Path) -> Self {
        self.ccache = Some(p.to_path_buf());
        self
    }
    pub fn user(mut self, u: &LocalUser) -> Self {
        self.user = Some(u.clone());
        self
    }
    pub fn args(mut self, a: &[&str]) -> Self {
        self.args.extend(a.iter().map(|s| s.to_string()));
        self
    }
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }
    /// Extra environment (applied last, so it can override KRB5CCNAME or AUKS_CONF).
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }
    pub fn stdin(mut self, data: &[u8]) -> Self {
        self.stdin = Some(data.to_vec());
        self
    }
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
    pub fn run(self) -> Output {
        auks_with(self)
    }
}

pub fn auks_with(r: AuksRun<'_>) -> Output {
    let mut c = r.realm.command(bin_path("auks"));
    c.env("AUKS_CONF", &r.conf);
    if let Some(cc) = &r.ccache {
        c.env("KRB5CCNAME", format!("FILE:{}", cc.display()));
    }
    for (k, v) in &r.env {
        c.env(k, v);
    }
    if let Some(u) = &r.user {
        // std drops supplementary groups (setgroups(0)) when uid is set as root
        c.uid(u.uid).gid(u.gid);
        c.env("USER", &u.name)
            .env("LOGNAME", &u.name)
            .env("HOME", "/");
    }
    c.args(&r.args);
    run_cmd(&mut c, r.stdin.as_deref(), r.timeout)
}
