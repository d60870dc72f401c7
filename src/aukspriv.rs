//! aukspriv: keep a TGT obtained from a keytab fresh in a ccache, so that
//! root's AUKS clients (auksdrenewer, the SPANK plugin in slurmstepd) can
//! authenticate (spec §7; replaces the C shell script).
//!
//! The TGT is obtained in-process (`krb5_get_init_creds_keytab`), not by
//! running `kinit`, and stored atomically (a reader never sees a partial
//! ccache). For another account than the caller, the ccache is written
//! with that account's effective uid and gid, so it is created owned by
//! that account with mode 0600 and no root-owned file ever appears in a
//! directory the account controls.
//!
//! Principal: `AUKS_PRIV_PRINC` when set, else the host principal of this
//! machine (`host/<hostname>@…`, the short and long forms of the name both
//! match) when the keytab holds it, else the first principal of the keytab
//! (the C script took the *last* one, §11.21).
//!
//! Root's ccache lives in [`ROOT_CCACHE`], in the root-owned directory
//! [`ROOT_CCACHE_DIR`] (created 0700 when missing), never in the
//! world-writable `/tmp`: a user who creates `/tmp/krb5cc_0` first can
//! neither make refreshes fail nor feed root's tools a ticket of theirs. A
//! target ccache file that exists and belongs to another account than the
//! one refreshed is refused with a message ([`check_owned_ccache`]); the
//! SPANK plugin applies the same check to its host ccache.
//!
//! Refresh period: `AUKS_PRIV_RENEW_INT` after a success, shortened to 90 %
//! of the life of the ticket actually obtained when the KDC granted less
//! than that (so the ccache never expires between two refreshes);
//! `AUKS_PRIV_ERROR_INT` after a failure.

use crate::cred::{self, Placement};
use crate::krb5::{self, Context, Keytab, Principal};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Root-owned directory of root's AUKS ccache (and of the plugin's job
/// records, `/run/auks/jobs`).
pub const ROOT_CCACHE_DIR: &str = "/run/auks";
/// Root's AUKS ccache: aukspriv's default target for root, the SPANK
/// plugin's default host ccache.
pub const ROOT_CCACHE: &str = "FILE:/run/auks/krb5cc_0";

/// Create [`ROOT_CCACHE_DIR`] (root, 0700) when missing, and check it is a
/// real directory of root's that nobody else can write (0700 or 0755).
pub fn ensure_root_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let shown = dir.display();
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("cannot create {shown}: {e}"))?;
        }
        Err(e) => return Err(format!("{shown}: {e}")),
        Ok(_) => {}
    }
    let m = std::fs::symlink_metadata(dir).map_err(|e| format!("{shown}: {e}"))?;
    if !m.file_type().is_dir() {
        return Err(format!("{shown} is not a directory: refused"));
    }
    if m.uid() != 0 || m.mode() & 0o022 != 0 {
        return Err(format!(
            "{shown} must be root's and writable by root only (it is uid {}, mode {:o}): refused",
            m.uid(),
            m.mode() & 0o7777
        ));
    }
    Ok(())
}

/// A FILE ccache `name` that exists must be a regular file owned by
/// `uid` (checked without following a symbolic link). Other types pass.
pub fn check_owned_ccache(name: &str, uid: u32) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let path = match name.split_once(':') {
        _ if name.starts_with('/') => name,
        Some(("FILE", p)) => p,
        _ => return Ok(()),
    };
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("credential cache {path}: {e}")),
        Ok(m) if !m.file_type().is_file() => Err(format!(
            "credential cache {path} is not a regular file: refused (remove it)"
        )),
        Ok(m) if m.uid() != uid => Err(format!(
            "credential cache {path} belongs to uid {}, not to uid {uid}: refused (remove it)",
            m.uid()
        )),
        Ok(_) => Ok(()),
    }
}

/// Settings read from the environment (usually `/etc/sysconfig/aukspriv`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Account whose ccache is refreshed.
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub keytab: String,
    /// `None`: chosen from the keytab at every refresh.
    pub principal: Option<String>,
    /// Requested ticket lifetime, seconds.
    pub lifetime: u32,
    /// Seconds between two refreshes after a success.
    pub renew_int: u64,
    /// Seconds before a retry after a failure.
    pub error_int: u64,
    /// Target ccache; `None`: [`ROOT_CCACHE`] for root, the default ccache
    /// when refreshing another caller's own ccache, else
    /// `FILE:/tmp/krb5cc_<uid>`.
    pub ccache: Option<String>,
    /// `AUKS_PRIV_SYSLOG_PRIO` (`facility.severity` or `none`).
    pub syslog_prio: String,
    /// Variables of the C script that have no effect here.
    pub ignored: Vec<String>,
}

fn parse_secs(name: &str, v: &str, min: u64, max: u64) -> Result<u64, String> {
    let t = v.trim();
    let (digits, mult) = match t.chars().last() {
        Some('s') => (&t[..t.len() - 1], 1),
        Some('m') => (&t[..t.len() - 1], 60),
        Some('h') => (&t[..t.len() - 1], 3600),
        Some('d') => (&t[..t.len() - 1], 86400),
        _ => (t, 1),
    };
    let n: u64 = digits
        .parse()
        .ok()
        .filter(|_| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| format!("{name}={v:?}: expected a number of seconds (or 10m, 10h, 1d)"))?;
    let n = n
        .checked_mul(mult)
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("{name}={v:?}: must be between {min} and {max} seconds"))?;
    Ok(n)
}

impl Settings {
    /// Read the settings with `get` (e.g. `|k| std::env::var(k).ok()`);
    /// empty values count as unset.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let user = var("AUKS_PRIV_USER").unwrap_or_else(|| "root".into());
        let found = if !user.is_empty() && user.bytes().all(|b| b.is_ascii_digit()) {
            let uid: u32 = user
                .parse()
                .map_err(|_| format!("AUKS_PRIV_USER={user:?}: invalid uid"))?;
            nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        } else {
            nix::unistd::User::from_name(&user)
        };
        let account = found
            .map_err(|e| format!("AUKS_PRIV_USER={user:?}: account lookup failed: {e}"))?
            .ok_or_else(|| format!("AUKS_PRIV_USER={user:?}: no such account"))?;
        let num = |k: &str, default: u64, min: u64, max: u64| match var(k) {
            Some(v) => parse_secs(k, &v, min, max),
            None => Ok(default),
        };
        let lifetime = num("AUKS_PRIV_LIFETIME", 36000, 1, i32::MAX as u64)?;
        let ignored = [
            "AUKS_PRIV_KINIT_TIMEOUT",
            "AUKS_KINIT_OPTS",
            "AUKS_PRIV_CCACHE_APPEND",
        ]
        .iter()
        .filter(|k| var(k).is_some())
        .map(|k| k.to_string())
        .collect();
        Ok(Settings {
            user: account.name,
            uid: account.uid.as_raw(),
            gid: account.gid.as_raw(),
            keytab: var("AUKS_PRIV_KEYTAB").unwrap_or_else(|| "/etc/krb5.keytab".into()),
            principal: var("AUKS_PRIV_PRINC"),
            lifetime: u32::try_from(lifetime).unwrap_or(36000),
            renew_int: num("AUKS_PRIV_RENEW_INT", 35000, 1, u32::MAX as u64)?,
            error_int: num("AUKS_PRIV_ERROR_INT", 60, 1, u32::MAX as u64)?,
            ccache: var("AUKS_PRIV_CCACHE"),
            syslog_prio: var("AUKS_PRIV_SYSLOG_PRIO").unwrap_or_else(|| "local3.notice".into()),
            ignored,
        })
    }
}

/// The host names of this machine, as `gethostname()` gives it.
pub fn host_names() -> Vec<String> {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .into_iter()
        .collect()
}

/// Choose the principal to use among the keytab's (in keytab order): the
/// host principal of one of `hostnames` (exact instance first, then short
/// name against FQDN either way, case-insensitive), else the first entry.
pub fn choose_principal(keytab: &[String], hostnames: &[String]) -> Option<String> {
    let instance = |p: &str| -> Option<String> {
        let (name, _realm) = p.rsplit_once('@').unwrap_or((p, ""));
        name.strip_prefix("host/")
            .filter(|i| !i.contains('/'))
            .map(|i| i.to_ascii_lowercase())
    };
    let short = |h: &str| h.split('.').next().unwrap_or(h).to_string();
    for exact in [true, false] {
        for p in keytab {
            let Some(inst) = instance(p) else { continue };
            for h in hostnames {
                let h = h.to_ascii_lowercase();
                let hit = if exact {
                    inst == h
                } else {
                    // short host name vs FQDN in the keytab, or the reverse
                    (inst.contains('.') != h.contains('.')) && short(&inst) == short(&h)
                };
                if hit {
                    return Some(p.clone());
                }
            }
        }
    }
    keytab.first().cloned()
}

/// What a refresh produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refreshed {
    pub principal: String,
    pub ccache: String,
    pub endtime: i64,
}

/// Restores the effective ids when dropped.
struct AsUser {
    euid: nix::unistd::Uid,
    egid: nix::unistd::Gid,
}

impl AsUser {
    fn switch(uid: u32, gid: u32) -> Result<AsUser, String> {
        let saved = AsUser {
            euid: nix::unistd::geteuid(),
            egid: nix::unistd::getegid(),
        };
        nix::unistd::setegid(nix::unistd::Gid::from_raw(gid))
            .map_err(|e| format!("cannot switch to gid {gid}: {e}"))?;
        if let Err(e) = nix::unistd::seteuid(nix::unistd::Uid::from_raw(uid)) {
            let _ = nix::unistd::setegid(saved.egid);
            return Err(format!("cannot switch to uid {uid}: {e}"));
        }
        Ok(saved)
    }
}

impl Drop for AsUser {
    fn drop(&mut self) {
        // Failing to regain root would leave us unable to work: abort
        // rather than continue with the wrong identity.
        if nix::unistd::seteuid(self.euid).is_err() || nix::unistd::setegid(self.egid).is_err() {
            eprintln!("aukspriv: cannot restore the effective ids");
            std::process::abort();
        }
    }
}

impl Settings {
    /// True when the ccache belongs to another account than ours.
    fn for_other_user(&self) -> bool {
        self.uid != nix::unistd::geteuid().as_raw()
    }

    /// The ccache refreshed.
    pub fn target_ccache(&self, ctx: &Context) -> Result<String, String> {
        if let Some(c) = &self.ccache {
            return Ok(c.clone());
        }
        if self.uid == 0 {
            return Ok(ROOT_CCACHE.to_string());
        }
        if self.for_other_user() {
            return Ok(format!("FILE:/tmp/krb5cc_{}", self.uid));
        }
        ctx.default_ccache_name()
            .map_err(|e| format!("no default ccache: {e}"))
    }
}

/// Get a TGT from the keytab and store it into the target ccache.
pub fn refresh(s: &Settings) -> Result<Refreshed, String> {
    let ctx = Context::new().map_err(|e| e.to_string())?;
    let kt = Keytab::resolve(&ctx, &s.keytab).map_err(|e| format!("keytab {}: {e}", s.keytab))?;
    let principal = match &s.principal {
        Some(p) => p.clone(),
        None => {
            let all = kt
                .principals()
                .map_err(|e| format!("cannot list keytab {}: {e}", s.keytab))?;
            choose_principal(&all, &host_names())
                .ok_or_else(|| format!("keytab {} holds no key", s.keytab))?
        }
    };
    let p =
        Principal::parse(&ctx, &principal).map_err(|e| format!("principal {principal}: {e}"))?;
    let mut tgt = kt
        .get_tgt(&p, i32::try_from(s.lifetime).ok(), None)
        .map_err(|e| format!("cannot get a TGT for {principal} from {}: {e}", s.keytab))?;
    let endtime = tgt.endtime();
    let data = krb5::encode_krb_cred(&ctx, &mut [&mut tgt]).map_err(|e| e.to_string())?;
    drop(tgt);
    let target = s.target_ccache(&ctx)?;
    if target == ROOT_CCACHE {
        ensure_root_dir(Path::new(ROOT_CCACHE_DIR))?;
    }
    check_owned_ccache(&target, s.uid)?;
    let stored = if s.for_other_user() {
        if !nix::unistd::geteuid().is_root() {
            return Err(format!(
                "only root can refresh the ccache of {} (uid {})",
                s.user, s.uid
            ));
        }
        let _as = AsUser::switch(s.uid, s.gid)?;
        cred::store_krb_cred(&ctx, &data, Some(&target), Placement::Replace)
    } else {
        cred::store_krb_cred(&ctx, &data, Some(&target), Placement::Replace)
    }
    .map_err(|e| e.to_string())?;
    Ok(Refreshed {
        principal,
        ccache: stored,
        endtime,
    })
}

/// Seconds to wait after a successful refresh (pure): `renew_int`, or 90 %
/// of the remaining life of the ticket when that is shorter (at least 1).
pub fn wait_after_success(renew_int: u64, endtime: i64, now: i64) -> u64 {
    let life = u64::try_from(endtime - now).unwrap_or(0);
    renew_int.min(life * 9 / 10).max(1)
}

// ---------------------------------------------------------------------------
// Logging: through the crate's facade (crate::logging): standard output
// (-v, or AUKS_PRIV_SYSLOG_PRIO=none) in the C format, or syslog.

pub use crate::logging::syslog::parse_priority;

/// Where aukspriv writes its messages (set up once in the facade).
pub struct PrivLog {
    /// Prefix `aukspriv: ` (standard output; syslog names the program).
    prefix: bool,
}

impl PrivLog {
    /// `verbose` or priority `none`: stdout; else syslog through /dev/log
    /// (stdout, with a warning, when there is no syslog daemon).
    pub fn new(verbose: bool, priority: &str) -> Result<PrivLog, String> {
        use crate::logging::{init, syslog, Target};
        let stdout = || init(1, Target::Stdout).map(|()| PrivLog { prefix: true });
        if verbose || priority.trim().eq_ignore_ascii_case("none") {
            return stdout().map_err(|e| e.to_string());
        }
        let (facility, info_severity) = parse_priority(priority).ok_or_else(|| {
            format!("AUKS_PRIV_SYSLOG_PRIO={priority:?}: not a facility.severity priority")
        })?;
        let target = Target::Syslog {
            path: syslog::DEV_LOG.into(),
            ident: "aukspriv".into(),
            facility,
            info_severity,
        };
        match init(1, target) {
            Ok(()) => Ok(PrivLog { prefix: false }),
            Err(e) => {
                let l = stdout().map_err(|e| e.to_string())?;
                l.error(&format!("no syslog ({e}): logging to standard output"));
                Ok(l)
            }
        }
    }

    fn pre(&self) -> &'static str {
        if self.prefix {
            "aukspriv: "
        } else {
            ""
        }
    }

    pub fn info(&self, msg: &str) {
        ::log::info!("{}{msg}", self.pre());
    }

    pub fn error(&self, msg: &str) {
        ::log::error!("{}{msg}", self.pre());
    }
}

/// Refresh forever, until `term` is set; `hup` forces a refresh now.
pub fn run(s: &Settings, log: &PrivLog, term: &AtomicBool, hup: &AtomicBool) {
    let target = match Context::new()
        .map_err(|e| e.to_string())
        .and_then(|c| s.target_ccache(&c))
    {
        Ok(t) => t,
        Err(e) => format!("(unknown: {e})"),
    };
    log.info(&format!(
        "started: keytab {}, principal {}, ccache {target} of {} (uid {}), lifetime {} s, refresh every {} s (after an error: {} s)",
        s.keytab,
        s.principal.as_deref().unwrap_or("chosen from the keytab"),
        s.user,
        s.uid,
        s.lifetime,
        s.renew_int,
        s.error_int
    ));
    for v in &s.ignored {
        log.info(&format!(
            "{v} is ignored: the TGT is obtained in-process, without kinit"
        ));
    }
    if s.renew_int >= u64::from(s.lifetime) {
        log.info(&format!(
            "AUKS_PRIV_RENEW_INT ({} s) is not shorter than AUKS_PRIV_LIFETIME ({} s): refreshing at 90 % of the ticket life instead",
            s.renew_int, s.lifetime
        ));
    }
    let notifier = crate::notify::Notifier::from_env();
    let watchdog = crate::notify::watchdog_interval();
    loop {
        let wait = match refresh(s) {
            Ok(r) => {
                let now = chrono::Utc::now().timestamp();
                let w = wait_after_success(s.renew_int, r.endtime, now);
                log.info(&format!(
                    "refreshed {} of {}: {} valid until {}; next refresh in {w} s",
                    r.ccache,
                    s.user,
                    r.principal,
                    crate::timefmt::fmt_time(r.endtime)
                ));
                w
            }
            Err(e) => {
                log.error(&format!(
                    "refresh failed: {e}; retrying in {} s",
                    s.error_int
                ));
                s.error_int
            }
        };
        // systemd (Type=notify): ready once the first refresh was tried.
        if let Some(n) = &notifier {
            let _ = n.ready();
            let _ = n.status(&format!("next refresh in {wait} s"));
        }
        let until = Instant::now() + Duration::from_secs(wait);
        let mut pet = Instant::now();
        while Instant::now() < until && !term.load(Ordering::SeqCst) && !hup.load(Ordering::SeqCst)
        {
            std::thread::sleep(Duration::from_millis(200));
            if let (Some(n), Some(every)) = (&notifier, watchdog) {
                if pet.elapsed() >= every {
                    let _ = n.watchdog();
                    pet = Instant::now();
                }
            }
        }
        if term.load(Ordering::SeqCst) {
            if let Some(n) = &notifier {
                let _ = n.stopping();
            }
            log.info("stopped");
            return;
        }
        if hup.swap(false, Ordering::SeqCst) {
            log.info("SIGHUP: refreshing now");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn host_principal_preferred_over_order() {
        let kt = v(&[
            "nfs/vm@R",
            "HTTP/vm@R",
            "host/other@R",
            "host/vm@R",
            "zzz@R",
        ]);
        assert_eq!(
            choose_principal(&kt, &v(&["vm"])).as_deref(),
            Some("host/vm@R")
        );
    }

    #[test]
    fn short_and_long_host_names_match() {
        let kt = v(&["a@R", "host/node1.example.org@R"]);
        assert_eq!(
            choose_principal(&kt, &v(&["node1"])).as_deref(),
            Some("host/node1.example.org@R")
        );
        let kt = v(&["a@R", "host/node1@R"]);
        assert_eq!(
            choose_principal(&kt, &v(&["node1.example.org"])).as_deref(),
            Some("host/node1@R")
        );
        // exact beats short/long
        let kt = v(&["host/node1@R", "host/NODE1.example.org@R"]);
        assert_eq!(
            choose_principal(&kt, &v(&["node1.example.org"])).as_deref(),
            Some("host/NODE1.example.org@R")
        );
        // node10 is not node1
        let kt = v(&["first@R", "host/node10.example.org@R"]);
        assert_eq!(
            choose_principal(&kt, &v(&["node1"])).as_deref(),
            Some("first@R")
        );
    }

    #[test]
    fn first_entry_otherwise_not_last() {
        let kt = v(&["first@R", "second@R", "last@R"]);
        assert_eq!(
            choose_principal(&kt, &v(&["vm"])).as_deref(),
            Some("first@R")
        );
        assert_eq!(choose_principal(&[], &v(&["vm"])), None);
    }

    #[test]
    fn settings_defaults_and_values() {
        let s = Settings::from_env(|_| None).unwrap();
        assert_eq!(s.user, "root");
        assert_eq!(s.uid, 0);
        assert_eq!(s.keytab, "/etc/krb5.keytab");
        assert_eq!((s.lifetime, s.renew_int, s.error_int), (36000, 35000, 60));
        assert_eq!(s.principal, None);
        assert_eq!(s.ccache, None);
        assert_eq!(s.syslog_prio, "local3.notice");
        let s = Settings::from_env(|k| {
            Some(
                match k {
                    "AUKS_PRIV_USER" => "0",
                    "AUKS_PRIV_LIFETIME" => "10h",
                    "AUKS_PRIV_RENEW_INT" => "20",
                    "AUKS_PRIV_ERROR_INT" => "5s",
                    "AUKS_PRIV_CCACHE" => "FILE:/tmp/x",
                    "AUKS_PRIV_PRINC" => "host/a@B",
                    "AUKS_KINIT_OPTS" => "-f",
                    _ => return None,
                }
                .to_string(),
            )
        })
        .unwrap();
        assert_eq!((s.lifetime, s.renew_int, s.error_int), (36000, 20, 5));
        assert_eq!(s.ccache.as_deref(), Some("FILE:/tmp/x"));
        assert_eq!(s.principal.as_deref(), Some("host/a@B"));
        assert_eq!(s.ignored, vec!["AUKS_KINIT_OPTS".to_string()]);
        for bad in ["abc", "0", "-5", "1x", ""] {
            let r = Settings::from_env(|k| (k == "AUKS_PRIV_RENEW_INT").then(|| bad.to_string()));
            if bad.is_empty() {
                assert!(r.is_ok());
            } else {
                assert!(r.is_err(), "{bad:?}");
            }
        }
        assert!(
            Settings::from_env(|k| (k == "AUKS_PRIV_USER").then(|| "no-such-user-xyz".into()))
                .is_err()
        );
    }

    #[test]
    fn root_ccache_out_of_tmp() {
        let s = Settings::from_env(|_| None).unwrap();
        let ctx = Context::new().unwrap();
        assert_eq!(s.target_ccache(&ctx).unwrap(), ROOT_CCACHE);
        assert!(ROOT_CCACHE.starts_with(&format!("FILE:{ROOT_CCACHE_DIR}/")));
    }

    #[test]
    fn ccache_of_someone_else_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("krb5cc_0");
        let name = format!("FILE:{}", f.display());
        assert_eq!(check_owned_ccache(&name, 0), Ok(()), "missing is fine");
        std::fs::write(&f, b"x").unwrap();
        let me = nix::unistd::geteuid().as_raw();
        assert_eq!(check_owned_ccache(&name, me), Ok(()));
        let e = check_owned_ccache(&name, me + 1).unwrap_err();
        assert!(e.contains("belongs to uid") && e.contains("refused"), "{e}");
        std::fs::remove_file(&f).unwrap();
        nix::unistd::mkfifo(&f, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = check_owned_ccache(f.to_str().unwrap(), me).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        assert_eq!(check_owned_ccache("KEYRING:persistent:0", 0), Ok(()));
        // the directory: created 0700, refused when others may write it
        let dir = d.path().join("auks");
        ensure_root_dir(&dir).unwrap();
        let m = std::fs::metadata(&dir).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(ensure_root_dir(&dir).unwrap_err().contains("refused"));
    }

    #[test]
    fn wait_policy() {
        assert_eq!(wait_after_success(20, 1060, 1000), 20);
        assert_eq!(wait_after_success(35000, 1000 + 3600, 1000), 3240);
        assert_eq!(wait_after_success(35000, 1000, 1000), 1);
    }
}
