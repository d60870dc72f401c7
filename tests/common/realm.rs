//! A throw-away MIT KDC for realm TEST.REALM: its database and configuration in a
//! temporary directory, `krb5kdc` on a loopback port, and the kadmin/kinit/klist helpers
//! that run with the realm's environment.

use super::accounts::LocalUser;
use super::files::{chown, set_mode, temp_dir, write_file};
use super::process::{kill_and_reap, out, run_cmd, run_ok, stderr_of, stdout_of, CMD_TIMEOUT};
use std::collections::HashMap;
use std::fs;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// Realm name used by every test realm.
pub const REALM: &str = "TEST.REALM";
/// Master password of the throw-away KDC database.
const MASTER_PW: &str = "masterpw-not-secret";

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

/// How many ports the KDC is tried on before giving up.
const KDC_ATTEMPTS: usize = 5;

/// Why an attempt to start the KDC failed.
enum KdcStart {
    /// Its port was taken by someone else: try another one.
    PortTaken(String),
    /// Anything else: give up.
    Failed(String),
}

/// A port for the KDC: one the OS hands out for TCP on 127.0.0.1 that is also free for
/// UDP at this moment (the KDC serves both). It is released before krb5kdc binds it, so
/// [`Realm::start_with`] retries another one when the KDC reports a failed bind.
fn kdc_port_candidate() -> u16 {
    for _ in 0..100 {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("local address").port();
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("could not find a port free for both TCP and UDP");
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
        // database first (independent of ports): the configs name port 0 until the
        // KDC is started
        realm.write_configs();
        let mut c = realm.command("kdb5_util");
        c.args(["create", "-s", "-r", REALM, "-P", MASTER_PW]);
        run_ok(&mut c, None, "kdb5_util create");

        // readiness probe principal
        realm.add_principal("k5probe", "k5probe-pw");

        // krb5kdc cannot report the port the OS would choose, so the harness picks
        // one; another program may take it before the KDC binds it. The KDC then logs
        // the failed bind (and exits or never answers): that attempt is abandoned and
        // the next one uses another port. Any other failure stops at once.
        let mut last_err = String::new();
        for _attempt in 0..KDC_ATTEMPTS {
            realm.port = kdc_port_candidate();
            realm.write_configs();
            match realm.spawn_kdc() {
                Ok(()) => return realm,
                Err(KdcStart::PortTaken(e)) => last_err = e,
                Err(KdcStart::Failed(e)) => panic!("could not start the KDC:\n{e}"),
            }
        }
        panic!("could not start the KDC: {KDC_ATTEMPTS} ports were taken\n{last_err}");
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

    fn spawn_kdc(&mut self) -> Result<(), KdcStart> {
        let d = self.dir.path();
        // each attempt starts with empty logs, so that a bind failure of an earlier
        // attempt is not taken for one of this attempt
        for f in ["kdc.stdout", "kdc.log"] {
            let _ = fs::remove_file(d.join(f));
        }
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
            .map_err(|e| KdcStart::Failed(format!("cannot start krb5kdc: {e}")))?;
        self.kdc = Some(child);

        // wait until a kinit succeeds (bounded)
        let probe_cc = d.join("probe.cc");
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < Duration::from_secs(10) {
            if self.kdc_bind_failed() {
                if let Some(mut k) = self.kdc.take() {
                    kill_and_reap(&mut k, Duration::from_secs(2));
                }
                return Err(KdcStart::PortTaken(format!(
                    "krb5kdc could not bind port {}\n{}",
                    self.port,
                    self.kdc_output()
                )));
            }
            if let Some(Ok(Some(st))) = self.kdc.as_mut().map(|k| k.try_wait()) {
                self.kdc = None;
                let e = format!(
                    "krb5kdc exited ({st}) on port {}\n{}",
                    self.port,
                    self.kdc_output()
                );
                // krb5kdc may log the failed bind only as it exits
                return Err(if self.kdc_bind_failed() {
                    KdcStart::PortTaken(e)
                } else {
                    KdcStart::Failed(e)
                });
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
        Err(KdcStart::Failed(format!(
            "KDC on port {} did not answer within 10 s; last kinit:\n{last}\n{}",
            self.port,
            self.kdc_output()
        )))
    }

    /// The KDC's log and its stdout/stderr of the current attempt.
    fn kdc_output(&self) -> String {
        let d = self.dir.path();
        format!(
            "--- kdc.stdout ---\n{}\n--- kdc.log ---\n{}",
            fs::read_to_string(d.join("kdc.stdout")).unwrap_or_default(),
            fs::read_to_string(d.join("kdc.log")).unwrap_or_default()
        )
    }

    /// Did the current attempt fail to bind its port? (krb5kdc logs "Cannot bind
    /// server socket on 127.0.0.1.<port>" with "Address already in use".)
    fn kdc_bind_failed(&self) -> bool {
        let o = self.kdc_output();
        o.contains("Address already in use") || o.contains("Cannot bind")
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
