//! The real `auksd` of this crate, run in the foreground with its own temporary
//! directory (auks.conf, auks.acl, keytab, CacheDir, logs) on a port chosen by the OS.

use super::files::{set_mode, temp_dir, write_file};
use super::ports::closed_port;
use super::process::{bin_path, kill_and_reap};
use super::realm::Realm;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The ACL used by most tests: `host/*` principals are admins, single-component
/// principals of TEST.REALM are users.
pub const DEFAULT_ACL: &str = "\
rule { principal = ^host/.*@TEST.REALM$ ; host = * ; role = admin ; }
rule { principal = ^[[:alnum:]]*@TEST.REALM$ ; host = * ; role = user ; }
";

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
    /// Extra environment of the daemon (e.g. `NOTIFY_SOCKET`).
    pub env: Vec<(String, String)>,
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
            env: Vec::new(),
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
            secondary_port: closed_port(),
            opts,
            realm_env: realm.env(),
            dir,
        };
        // Port 0: the OS chooses the port when auksd binds, so no other program can
        // take it between choosing and binding; auksd logs the address it bound.
        write_file(&a.conf_path(), a.conf_text(0, a.secondary_port), 0o644);
        if let Err(e) = a.spawn() {
            panic!("auksd did not start:\n{e}");
        }
        // From now on the configuration names the real port: clients read it, and a
        // reload (SIGHUP) or a restart binds that same port again.
        write_file(&a.conf_path(), a.conf_text(a.port, a.secondary_port), 0o644);
        a
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

    /// Start the daemon and wait (bounded) for the log line that says where it listens:
    /// `auksd : primary server listening on <ip>:<port> as <principal> (...)`. The first
    /// start learns the port from it; a restart must find the same port.
    fn spawn(&mut self) -> Result<(), String> {
        let seen = listening_lines(&self.log());
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
            .envs(self.opts.env.iter().cloned())
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
            let log = self.log();
            if listening_lines(&log) > seen {
                return match last_listening_port(&log) {
                    Some(p) if self.port == 0 || p == self.port => {
                        self.port = p;
                        Ok(())
                    }
                    _ => Err(format!(
                        "auksd listens on an unexpected address (expected port {})\n{log}",
                        self.port
                    )),
                };
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
    /// The configured secondary port: a closed port (nothing listens there).
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

/// What auksd logs once its socket listens, before the bound address.
const LISTENING: &str = " server listening on ";

/// A raw authenticated session to the auksd on `port` of this machine,
/// with the tickets of `cc` and `io_timeout` per I/O (the client library's
/// handshake, without a request: the tests drive the session themselves).
pub fn session<'a>(
    ctx: &'a auks::krb5::Context,
    port: u16,
    cc: &auks::krb5::Ccache<'_>,
    io_timeout: Duration,
) -> auks::session::Session<'a> {
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to auksd");
    auks::session::Session::connect(ctx, stream, cc, AUKSD_PRINCIPAL, false, io_timeout)
        .expect("authenticate to auksd")
}

/// How many times auksd said it listens (once per start and per reload).
fn listening_lines(log: &str) -> usize {
    log.matches(LISTENING).count()
}

/// The port of the last `... server listening on <ip>:<port> as ...` line.
pub fn last_listening_port(log: &str) -> Option<u16> {
    let rest = &log[log.rfind(LISTENING)? + LISTENING.len()..];
    let addr = rest.split_whitespace().next()?;
    addr.parse::<SocketAddr>().ok().map(|a| a.port())
}

#[test]
fn listening_port_is_read_from_the_last_line() {
    let log = "x auksd : primary server listening on 127.0.0.1:4100 as a@B (4 workers, 0 stored credentials)\n\
               y auksd : primary server listening on [::]:4711 as a@B (4 workers, 1 stored credentials)\n";
    assert_eq!(listening_lines(log), 2);
    assert_eq!(last_listening_port(log), Some(4711));
    assert_eq!(last_listening_port("no such line"), None);
    assert_eq!(
        last_listening_port("primary server listening on nonsense as x"),
        None
    );
}
