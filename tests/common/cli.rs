//! Running the `auks` CLI of this crate against a test realm and auksd, as root or as
//! a test user, with a deadline.

use super::accounts::LocalUser;
use super::process::{bin_path, run_cmd, CMD_TIMEOUT};
use super::realm::Realm;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

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
