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

mod privlog;
mod rootcc;
#[cfg(test)]
mod tests;

pub use privlog::{parse_priority, PrivLog};
pub use rootcc::{check_owned_ccache, ensure_root_dir, ROOT_CCACHE, ROOT_CCACHE_DIR};

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
