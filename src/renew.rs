//! Credential renewal: the per-job renewer behind `auks -R once|loop`
//! (spec §8.3), the `auksdrenewer` daemon that keeps the credentials
//! stored in auksd alive (§6), and the `HelperScript` hook (§8.4).
//!
//! # Renewal policy
//!
//! One pure function, [`decide`], is shared by both renewers. A credential
//! is renewed whenever its remaining life (`endtime - now`) is at most
//! `MinLifeTime`, and this is repeated until the end of its renewable
//! period: the last stretch up to `renew_till` is covered (fixing §11.18,
//! where a credential whose lifetime was not longer than `MinLifeTime` was
//! abandoned). Renewal stops being attempted when it cannot help: the
//! ticket is not renewable, has no lifetime, has expired, or already ends
//! at `renew_till` (the KDC caps a renewed ticket there).
//!
//! The per-job renewer prefers a credential held by auksd for its uid, but
//! only when it is really fresher (same principal, later end time; fixing
//! §11.17), and otherwise renews at the KDC; a cross-realm TGT the
//! credential held (or the configured `CrossRealm`) is re-acquired after a
//! KDC renewal, which drops it. In loop mode it checks again exactly when
//! the credential becomes due, and at least every `Delay` seconds; while a
//! renewal is due (it failed, or the ticket lifetime is not longer than
//! `MinLifeTime`) it checks again after half the remaining life, and while
//! a renewal is impossible it checks again at expiry (auksd may receive a
//! fresher credential meanwhile): always at least 1 s, at most `Delay`
//! apart, so it looks again before the credential expires ([`next_check`]).
//! It stops by itself when its ccache disappears (the job ended: exit 0)
//! or when the credential has expired (exit 11).

use crate::client::{Client, ClientError};
use crate::config::ClientConfig;
use crate::cred::{self, CredError, CredMeta, Placement};
use crate::krb5::Context;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Exit status of `auks -R` when the helper script failed.
pub const EXIT_HELPER: i32 = 10;
/// Exit status of `auks -R` when renewal is impossible or failed.
pub const EXIT_IMPOSSIBLE: i32 = 11;
/// Exit status of `auks -R` for a local credential cache problem (as the
/// other `auks` actions).
pub const EXIT_CCACHE: i32 = 7;

/// How long a helper script may run before it is killed.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(300);

/// The times of a credential that matter for renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    pub starttime: i64,
    pub endtime: i64,
    /// 0 when the ticket is not renewable.
    pub renew_till: i64,
}

impl From<&CredMeta> for Times {
    fn from(m: &CredMeta) -> Self {
        Times {
            starttime: m.starttime,
            endtime: m.endtime,
            renew_till: m.renew_till,
        }
    }
}

impl From<&crate::proto::CredRecord> for Times {
    fn from(r: &crate::proto::CredRecord) -> Self {
        Times {
            starttime: r.starttime,
            endtime: r.endtime,
            renew_till: r.renew_till,
        }
    }
}

/// Why a credential cannot be renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// `endtime == starttime` (or earlier): not a usable ticket.
    ZeroLife,
    /// `endtime <= now`.
    Expired { endtime: i64 },
    /// No renewable period.
    NotRenewable,
    /// The ticket already ends at (or after) the end of its renewable
    /// period, or that period is over: the KDC cannot extend it.
    PeriodOver { renew_till: i64 },
}

impl Why {
    /// True when nothing can ever make this credential usable again.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Why::ZeroLife | Why::Expired { .. })
    }
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::ZeroLife => f.write_str("the ticket has no lifetime (end time = start time)"),
            Why::Expired { endtime } => write!(f, "the ticket expired at {}", fmt_time(*endtime)),
            Why::NotRenewable => f.write_str("the ticket is not renewable"),
            Why::PeriodOver { renew_till } => write!(
                f,
                "the renewable period ends at {}, not after the ticket itself: the KDC cannot extend it",
                fmt_time(*renew_till)
            ),
        }
    }
}

/// What to do with a credential now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// More than `MinLifeTime` remains; due at `due_at`.
    NotDue { due_at: i64 },
    /// Renew now.
    Renew,
    /// A renewal would be due but cannot be done at the KDC.
    Impossible(Why),
}

/// The renewal decision (pure). Order of the tests:
/// 1. no lifetime ⇒ impossible; 2. expired ⇒ impossible; 3. more than
///    `min_lifetime` seconds left ⇒ not due (whatever the renewability);
/// 4. not renewable, or already ending at `renew_till` ⇒ impossible;
/// 5. otherwise renew.
pub fn decide(t: &Times, now: i64, min_lifetime: u64) -> Decision {
    let min = i64::try_from(min_lifetime).unwrap_or(i64::MAX);
    if t.endtime <= t.starttime {
        return Decision::Impossible(Why::ZeroLife);
    }
    if t.endtime <= now {
        return Decision::Impossible(Why::Expired { endtime: t.endtime });
    }
    let remaining = t.endtime - now;
    if remaining > min {
        return Decision::NotDue {
            due_at: t.endtime.saturating_sub(min),
        };
    }
    if t.renew_till <= 0 {
        return Decision::Impossible(Why::NotRenewable);
    }
    if t.endtime >= t.renew_till || t.renew_till <= now {
        return Decision::Impossible(Why::PeriodOver {
            renew_till: t.renew_till,
        });
    }
    Decision::Renew
}

/// Seconds to wait before the next check of a credential (pure):
/// - not due: until it becomes due, at most `delay`;
/// - due (a renewal failed, or the renewed ticket is still within the
///   threshold because its lifetime is not longer than `MinLifeTime`):
///   half of the remaining life;
/// - impossible but still valid: until it expires (auksd may meanwhile
///   receive a fresher credential, e.g. after the user's `kinit; auks -a`);
///
/// always at least 1 s and at most `delay` (itself at least 1 s).
pub fn next_check(d: &Decision, t: &Times, now: i64, delay: u64) -> u64 {
    let cap = delay.max(1);
    let secs = match d {
        Decision::NotDue { due_at } => due_at - now,
        Decision::Renew => (t.endtime - now) / 2,
        Decision::Impossible(_) => t.endtime - now,
    };
    u64::try_from(secs).unwrap_or(0).clamp(1, cap)
}

/// Human-readable UTC time for log lines.
pub fn fmt_time(t: i64) -> String {
    crate::daemon::fmt_time(t)
}

// ---------------------------------------------------------------------------
// Helper script (§8.4)

/// Result of running the helper script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelperOutcome {
    /// It ran and exited 0.
    Ran,
    /// It was not run (missing or not executable), with the reason.
    Skipped(String),
}

/// Run `script` with no arguments, `KRB5CCNAME=ccache` when given, stdin
/// from /dev/null, as the caller (real ids set to the effective ones when
/// they differ). A missing or non-executable script is skipped (as C
/// ignores it at configuration load). A non-zero exit, a death by signal
/// (C counted that as success) or a run longer than [`HELPER_TIMEOUT`] is
/// an error.
pub fn run_helper(script: &Path, ccache: Option<&str>) -> Result<HelperOutcome, String> {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let shown = script.display();
    match std::fs::metadata(script) {
        Err(e) => {
            return Ok(HelperOutcome::Skipped(format!(
                "HelperScript {shown} cannot be used ({e}): ignored"
            )))
        }
        Ok(m) if !m.is_file() || m.permissions().mode() & 0o111 == 0 => {
            return Ok(HelperOutcome::Skipped(format!(
                "HelperScript {shown} is not an executable file: ignored"
            )))
        }
        Ok(_) => {}
    }
    let mut cmd = std::process::Command::new(script);
    cmd.stdin(std::process::Stdio::null());
    if let Some(cc) = ccache {
        cmd.env("KRB5CCNAME", cc);
    }
    let (uid, euid) = (nix::unistd::getuid(), nix::unistd::geteuid());
    let (gid, egid) = (nix::unistd::getgid(), nix::unistd::getegid());
    if uid != euid || gid != egid {
        cmd.uid(euid.as_raw()).gid(egid.as_raw());
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            return Ok(HelperOutcome::Skipped(format!(
                "HelperScript {shown} cannot be run ({e}): ignored"
            )))
        }
        Err(e) => return Err(format!("cannot run {shown}: {e}")),
    };
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if start.elapsed() > HELPER_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{shown} did not finish within {} s and was killed",
                    HELPER_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for {shown}: {e}")),
        }
    };
    if status.success() {
        Ok(HelperOutcome::Ran)
    } else if let Some(code) = status.code() {
        Err(format!("{shown} exited with status {code}"))
    } else {
        Err(format!(
            "{shown} was killed by signal {}",
            status.signal().unwrap_or(0)
        ))
    }
}

// ---------------------------------------------------------------------------
// Per-job renewer: `auks -R once|loop` (§8.3)

/// Why `auks -R` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RenewError {
    /// The target ccache cannot be read (missing, no TGT, ...).
    #[error("{0}")]
    Ccache(#[source] CredError),
    /// Renewal is needed and cannot be done.
    #[error("renewal impossible for {principal}: {why}")]
    Impossible { principal: String, why: Why },
    /// The KDC refused or could not be reached.
    #[error("renewal of {principal} at the KDC failed: {source}")]
    Kdc {
        principal: String,
        #[source]
        source: CredError,
    },
    /// The renewed credential could not be written.
    #[error("cannot store the renewed credential: {0}")]
    Store(#[source] CredError),
    /// The helper script failed (after a successful renewal).
    #[error("HelperScript failed: {0}")]
    Helper(String),
}

impl RenewError {
    /// Exit status of `auks -R` (see the `auks` usage text).
    pub fn exit_code(&self) -> i32 {
        match self {
            RenewError::Ccache(_) | RenewError::Store(_) => EXIT_CCACHE,
            RenewError::Impossible { .. } | RenewError::Kdc { .. } => EXIT_IMPOSSIBLE,
            RenewError::Helper(_) => EXIT_HELPER,
        }
    }
}

/// Where a renewed credential came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Auksd,
    Kdc,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Auksd => "a fresher credential from auksd",
            Source::Kdc => "renewal at the KDC",
        })
    }
}

/// Result of one check of the job ccache.
#[derive(Debug)]
pub enum Step {
    /// The ccache is gone (the job ended, or kdestroy), with the error
    /// reading it gave.
    Gone(CredError),
    /// Nothing to do before `due_at`.
    NotDue { times: Times, due_at: i64 },
    /// A new credential was stored; `helper` is the helper-script result.
    Renewed {
        times: Times,
        source: Source,
        helper: Result<(), String>,
    },
    /// Renewal was due and failed (KDC unreachable, disk full, ...): to be
    /// retried before `times.endtime`.
    Failed { times: Times, error: RenewError },
    /// Renewal needed and impossible, but the ticket is still valid.
    Stuck {
        principal: String,
        times: Times,
        why: Why,
    },
}

/// The per-job renewer of one ccache.
pub struct JobRenewer<'a> {
    client: &'a Client,
    /// Full name of the ccache renewed.
    target: String,
    /// Its path when it is a FILE ccache.
    file: Option<PathBuf>,
}

impl<'a> JobRenewer<'a> {
    /// Renew `ccache` (the default ccache when `None`, resolved now so that
    /// later changes of the environment do not matter).
    pub fn new(client: &'a Client, ccache: Option<&str>) -> Result<Self, RenewError> {
        let ctx = Context::new().map_err(|e| RenewError::Ccache(e.into()))?;
        let target = match ccache {
            Some(n) => n.to_string(),
            None => ctx
                .default_ccache_name()
                .map_err(|e| RenewError::Ccache(e.into()))?,
        };
        let file = crate::krb5::Ccache::resolve(&ctx, &target)
            .ok()
            .filter(|c| c.cc_type() == "FILE")
            .map(|c| PathBuf::from(c.residual()));
        Ok(JobRenewer {
            client,
            target,
            file,
        })
    }

    /// Full name of the renewed ccache.
    pub fn target(&self) -> &str {
        &self.target
    }

    fn min_lifetime(&self) -> u64 {
        self.client.conf.renewer.min_lifetime
    }

    fn delay(&self) -> u64 {
        self.client.conf.renewer.delay
    }

    /// True when the FILE ccache no longer exists.
    fn file_gone(&self) -> bool {
        self.file.as_ref().is_some_and(|p| !p.exists())
    }

    fn is_gone(&self, e: &CredError) -> bool {
        match e {
            CredError::CcacheUnreadable { source, .. } => match &self.file {
                Some(p) => !p.exists(),
                None => source.is_ccache_missing(),
            },
            _ => self.file_gone(),
        }
    }

    /// A credential from auksd for our uid, only if it is really fresher
    /// than ours: same principal, later end time, not expired (§11.17).
    fn fetch_fresher(
        &self,
        ctx: &Context,
        ours: &CredMeta,
        now: i64,
    ) -> Option<(Zeroizing<Vec<u8>>, CredMeta)> {
        let uid = nix::unistd::geteuid().as_raw();
        let rec = match self.client.get(uid) {
            Ok(r) => r,
            Err(e) => {
                let lvl = if matches!(e, ClientError::NotFound { .. }) {
                    2
                } else {
                    1
                };
                crate::log!(
                    lvl,
                    "renewer : {} : no credential from auksd: {e}",
                    self.target
                );
                return None;
            }
        };
        // Judge the credential itself, not the header the server sent.
        let theirs = match cred::meta(ctx, &rec.data) {
            Ok(m) => m,
            Err(e) => {
                crate::log!(
                    1,
                    "renewer : {} : credential from auksd ignored: {e}",
                    self.target
                );
                return None;
            }
        };
        if theirs.principal != ours.principal {
            crate::log!(
                1,
                "renewer : {} : auksd holds a credential of {} for uid {uid}, not of {}: ignored",
                self.target,
                theirs.principal,
                ours.principal
            );
            return None;
        }
        if theirs.endtime <= ours.endtime || theirs.endtime <= now {
            crate::log!(
                2,
                "renewer : {} : auksd's credential (end {}) is not fresher than ours (end {})",
                self.target,
                fmt_time(theirs.endtime),
                fmt_time(ours.endtime)
            );
            return None;
        }
        Some((rec.data, theirs))
    }

    /// Renew at the KDC and re-acquire the cross-realm TGT the credential
    /// held, or the configured one (failure to do so is only logged).
    fn renew_at_kdc(
        &self,
        ctx: &Context,
        data: &[u8],
        principal: &str,
    ) -> Result<Zeroizing<Vec<u8>>, RenewError> {
        let mut renewed = cred::renew_at_kdc(ctx, data).map_err(|source| RenewError::Kdc {
            principal: principal.to_string(),
            source,
        })?;
        let realm =
            cred::cross_realm_of(ctx, data).or_else(|| self.client.conf.common.cross_realm.clone());
        if let Some(realm) = realm {
            match cred::add_cross_realm(ctx, renewed.clone(), &realm) {
                Ok(d) => renewed = d,
                Err(e) => crate::log!(
                    1,
                    "renewer : {} : cross-realm TGT for {realm} not re-acquired: {e}",
                    self.target
                ),
            }
        }
        Ok(renewed)
    }

    fn store_and_help(&self, ctx: &Context, data: &[u8]) -> Result<Result<(), String>, RenewError> {
        let name = cred::store_krb_cred(ctx, data, Some(&self.target), Placement::Replace)
            .map_err(RenewError::Store)?;
        let Some(script) = self.client.conf.api.helper_script.as_deref() else {
            return Ok(Ok(()));
        };
        Ok(match run_helper(script, Some(&name)) {
            Ok(HelperOutcome::Ran) => {
                crate::log!(
                    2,
                    "renewer : {} : HelperScript {} succeeded",
                    self.target,
                    script.display()
                );
                Ok(())
            }
            Ok(HelperOutcome::Skipped(why)) => {
                crate::log!(1, "renewer : {} : {why}", self.target);
                Ok(())
            }
            Err(e) => Err(e),
        })
    }

    /// One check: read the ccache, decide, renew if due.
    pub fn step(&self) -> Result<Step, RenewError> {
        let ctx = Context::new().map_err(|e| RenewError::Ccache(e.into()))?;
        let local = match cred::extract_from_ccache(&ctx, Some(&self.target)) {
            Ok(d) => d,
            Err(e) if self.is_gone(&e) => return Ok(Step::Gone(e)),
            Err(e) => return Err(RenewError::Ccache(e)),
        };
        let ours = cred::meta(&ctx, &local).map_err(RenewError::Ccache)?;
        let now = ctx.now();
        let times = Times::from(&ours);
        let min = self.min_lifetime();
        let decision = decide(&times, now, min);
        if let Decision::NotDue { due_at } = decision {
            return Ok(Step::NotDue { times, due_at });
        }
        // Something must be done: prefer a really fresher credential from
        // auksd, else renew at the KDC.
        let (data, source) = match self.fetch_fresher(&ctx, &ours, now) {
            Some((theirs, m)) => {
                // Fresher, but maybe itself due: renew it too when possible.
                if decide(&Times::from(&m), now, min) == Decision::Renew {
                    match self.renew_at_kdc(&ctx, &theirs, &m.principal) {
                        Ok(d) => (d, Source::Kdc),
                        Err(e) => {
                            crate::log!(
                                1,
                                "renewer : {} : {e}; using auksd's credential as is",
                                self.target
                            );
                            (theirs, Source::Auksd)
                        }
                    }
                } else {
                    (theirs, Source::Auksd)
                }
            }
            None => match decision {
                Decision::Renew => match self.renew_at_kdc(&ctx, &local, &ours.principal) {
                    Ok(d) => (d, Source::Kdc),
                    Err(error) => return Ok(Step::Failed { times, error }),
                },
                Decision::Impossible(why) if why.is_terminal() => {
                    return Err(RenewError::Impossible {
                        principal: ours.principal,
                        why,
                    })
                }
                Decision::Impossible(why) => {
                    return Ok(Step::Stuck {
                        principal: ours.principal,
                        times,
                        why,
                    })
                }
                Decision::NotDue { .. } => unreachable!("handled above"),
            },
        };
        let new = cred::meta(&ctx, &data).map_err(RenewError::Store)?;
        let helper = match self.store_and_help(&ctx, &data) {
            Ok(h) => h,
            Err(error) => return Ok(Step::Failed { times, error }),
        };
        Ok(Step::Renewed {
            times: Times::from(&new),
            source,
            helper,
        })
    }

    /// Sleep `secs` seconds, waking early on `stop` (at once: the signal
    /// handler also writes to the stop's wake socket) or when the FILE
    /// ccache disappears (checked every 250 ms). Returns false when stopped.
    fn sleep(&self, secs: u64, stop: &Stop) -> bool {
        let until = Instant::now() + Duration::from_secs(secs);
        loop {
            if stop.is_set() {
                return false;
            }
            if self.file_gone() {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            stop.wait(left.min(Duration::from_millis(250)));
        }
    }

    /// Run once, or until the ccache disappears, the credential expires or
    /// `stop` is set.
    pub fn run(&self, loop_mode: bool, stop: &Stop) -> Result<(), RenewError> {
        let t = &self.target;
        crate::log!(
            1,
            "renewer : {t} : started ({} mode, MinLifeTime {} s, Delay {} s)",
            if loop_mode { "loop" } else { "once" },
            self.min_lifetime(),
            self.delay()
        );
        loop {
            if stop.is_set() {
                crate::log!(1, "renewer : {t} : stopped by a signal");
                return Ok(());
            }
            let wait = match self.step() {
                Ok(step) => self.report(step, loop_mode)?,
                Err(e) => {
                    crate::log!(1, "renewer : {t} : {e}; stopping");
                    return Err(e);
                }
            };
            let Some(wait) = wait else {
                return Ok(());
            };
            crate::log!(2, "renewer : {t} : next check in {wait} s");
            self.sleep(wait, stop);
        }
    }

    /// Log the result of a step. `Ok(None)`: stop with success;
    /// `Ok(Some(s))`: check again in `s` seconds (loop mode only).
    fn report(&self, step: Step, loop_mode: bool) -> Result<Option<u64>, RenewError> {
        let t = &self.target;
        let now = chrono::Utc::now().timestamp();
        let delay = self.delay();
        let wait = match step {
            Step::Gone(e) => {
                if !loop_mode {
                    return Err(RenewError::Ccache(e));
                }
                crate::log!(
                    1,
                    "renewer : {t} : the ccache no longer exists (the job ended?): stopping"
                );
                return Ok(None);
            }
            Step::NotDue { times, due_at } => {
                crate::log!(
                    if loop_mode { 2 } else { 1 },
                    "renewer : {t} : still valid until {}, renewal due at {}{}",
                    fmt_time(times.endtime),
                    fmt_time(due_at),
                    if loop_mode { "" } else { ": nothing to do" }
                );
                next_check(&Decision::NotDue { due_at }, &times, now, delay)
            }
            Step::Renewed {
                times,
                source,
                helper,
            } => {
                crate::log!(
                    1,
                    "renewer : {t} : renewed by {source}: valid until {}, renewable until {}",
                    fmt_time(times.endtime),
                    fmt_time(times.renew_till)
                );
                if let Err(e) = helper {
                    crate::log!(1, "renewer : {t} : HelperScript failed: {e}");
                    if !loop_mode {
                        return Err(RenewError::Helper(e));
                    }
                }
                next_check(
                    &decide(&times, now, self.min_lifetime()),
                    &times,
                    now,
                    delay,
                )
            }
            Step::Failed { times, error } => {
                if !loop_mode {
                    return Err(error);
                }
                // The KDC or the disk may come back: retry before expiry.
                crate::log!(1, "renewer : {t} : {error}; will retry");
                next_check(&Decision::Renew, &times, now, delay)
            }
            Step::Stuck {
                principal,
                times,
                why,
            } => {
                crate::log!(
                    1,
                    "renewer : {t} : cannot renew: {why}; auksd has nothing fresher; valid until {}",
                    fmt_time(times.endtime)
                );
                if !loop_mode {
                    return Err(RenewError::Impossible { principal, why });
                }
                next_check(&Decision::Impossible(why), &times, now, delay)
            }
        };
        Ok(loop_mode.then_some(wait))
    }
}

/// `auks -R once|loop`: renew `ccache` (the default ccache when `None`)
/// using the `renewer` settings of the client's configuration. In loop
/// mode SIGTERM and SIGINT stop it cleanly (between two steps, so a store
/// in progress completes and leaves no temporary file).
pub fn run_cli(client: &Client, ccache: Option<&str>, loop_mode: bool) -> Result<(), RenewError> {
    let stop = if loop_mode {
        Stop::on_signals()
    } else {
        Stop::new()
    };
    let r = JobRenewer::new(client, ccache)?;
    r.run(loop_mode, &stop)
}

/// When the job renewer must stop: a flag set by SIGTERM/SIGINT, plus a
/// socket the handler writes to, so that a sleeping renewer wakes at once
/// (the plugin waits for it at the end of every job step).
pub struct Stop {
    flag: Arc<AtomicBool>,
    wake: Option<std::os::unix::net::UnixStream>,
}

impl Stop {
    /// Never set by a signal (`auks -R once`, tests).
    pub fn new() -> Stop {
        Stop {
            flag: Arc::new(AtomicBool::new(false)),
            wake: None,
        }
    }

    /// Set by SIGTERM and SIGINT.
    pub fn on_signals() -> Stop {
        use nix::sys::signal::{SigSet, SigmaskHow, Signal};
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut stop = Stop::new();
        for sig in [SIGTERM, SIGINT] {
            if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop.flag)) {
                crate::log!(1, "renewer : cannot install signal handler: {e}");
            }
        }
        match std::os::unix::net::UnixStream::pair() {
            Ok((rx, tx)) => {
                // The handler writes one byte per signal, non-blocking (a
                // full socket only means a wake-up is already pending).
                let registered = rx.set_nonblocking(true).is_ok()
                    && [SIGTERM, SIGINT].into_iter().all(|sig| {
                        tx.try_clone()
                            .and_then(|t| signal_hook::low_level::pipe::register(sig, t))
                            .is_ok()
                    });
                if registered {
                    stop.wake = Some(rx);
                } else {
                    crate::log!(1, "renewer : cannot install the wake-up socket: polling");
                }
            }
            Err(e) => crate::log!(
                1,
                "renewer : cannot create the wake-up socket ({e}): polling"
            ),
        }
        // slurmstepd blocks SIGTERM and a child started with std's Command
        // inherits that mask (C cleared it, §10.5): unblock the stop
        // signals so that the plugin's SIGTERM reaches us instead of its
        // SIGKILL. The process is single-threaded here.
        let mut set = SigSet::empty();
        set.add(Signal::SIGTERM);
        set.add(Signal::SIGINT);
        if let Err(e) = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None) {
            crate::log!(1, "renewer : cannot unblock SIGTERM: {e}");
        }
        stop
    }

    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Wait up to `limit`, returning early when a stop signal arrives.
    fn wait(&self, limit: Duration) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let Some(rx) = &self.wake else {
            std::thread::sleep(limit);
            return;
        };
        let ms = u16::try_from(limit.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(rx.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            // Drain; the flag is what is checked.
            Ok(n) if n > 0 => {
                let mut buf = [0u8; 16];
                let _ = std::io::Read::read(&mut &*rx, &mut buf);
            }
            Ok(_) => {}
            // EINTR (the signal itself): the caller checks the flag.
            Err(_) => {}
        }
    }
}

impl Default for Stop {
    fn default() -> Stop {
        Stop::new()
    }
}

// ---------------------------------------------------------------------------
// auksdrenewer (§6)

/// Command-line options of auksdrenewer.
#[derive(Debug, Clone, Default)]
pub struct RenewerOptions {
    pub conf: Option<PathBuf>,
    /// `-F`: stay in the foreground, log to stderr at the configured level.
    pub foreground: bool,
    /// `-v` count, added to the configured level (implies foreground).
    pub verbose: i64,
    /// `-d` count, added to the configured level (implies foreground).
    pub debug: i64,
    /// `-l`: log file instead of the configured `LogFile`.
    pub log_file: Option<PathBuf>,
}

impl RenewerOptions {
    fn foreground(&self) -> bool {
        self.foreground || self.verbose > 0 || self.debug > 0
    }
}

/// Errors that stop auksdrenewer.
#[derive(Debug, thiserror::Error)]
pub enum RenewerError {
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Other(String),
}

/// Counters of one pass.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassStats {
    pub renewed: usize,
    pub skipped: usize,
    pub failed: usize,
}

/// Renew one stored credential at the KDC and ADD it back. Returns the
/// times of the renewed credential.
fn renew_record(
    client: &Client,
    ctx: &Context,
    rec: &crate::proto::CredRecord,
) -> Result<Times, String> {
    let mut data = cred::renew_at_kdc(ctx, &rec.data).map_err(|e| format!("at the KDC: {e}"))?;
    // Keep the cross-realm TGT the credential held (§11.17). When none was
    // held, Client::add acquires the configured CrossRealm one itself.
    if let Some(realm) = cred::cross_realm_of(ctx, &rec.data) {
        match cred::add_cross_realm(ctx, data.clone(), &realm) {
            Ok(d) => data = d,
            Err(e) => crate::log!(
                1,
                "auksdrenewer : uid {} {} : cross-realm TGT for {realm} not re-acquired: {e}",
                rec.uid,
                rec.principal
            ),
        }
    }
    let m = cred::meta(ctx, &data).map_err(|e| e.to_string())?;
    client.add(data).map_err(|e| format!("ADD to auksd: {e}"))?;
    Ok(Times::from(&m))
}

/// One DUMP → renew → ADD pass (§6). Stops early when `stop` is set.
pub fn renewer_pass(client: &Client, stop: &AtomicBool) -> PassStats {
    let mut st = PassStats::default();
    let records = match client.dump() {
        Ok(r) => r,
        Err(e) => {
            crate::log!(1, "auksdrenewer : DUMP failed, pass skipped: {e}");
            return st;
        }
    };
    let ctx = match Context::new() {
        Ok(c) => c,
        Err(e) => {
            crate::log!(
                1,
                "auksdrenewer : Kerberos set-up failed, pass skipped: {e}"
            );
            return st;
        }
    };
    let min = client.conf.renewer.min_lifetime;
    for rec in &records {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let now = ctx.now();
        let times = Times::from(rec);
        let who = format!("uid {} {}", rec.uid, rec.principal);
        match decide(&times, now, min) {
            Decision::NotDue { due_at } => {
                st.skipped += 1;
                crate::log!(
                    1,
                    "auksdrenewer : {who} : skipped: valid until {}, renewal due at {}",
                    fmt_time(times.endtime),
                    fmt_time(due_at)
                );
            }
            Decision::Impossible(why) => {
                st.skipped += 1;
                crate::log!(1, "auksdrenewer : {who} : skipped: {why}");
            }
            Decision::Renew => match renew_record(client, &ctx, rec) {
                Ok(t) => {
                    st.renewed += 1;
                    crate::log!(
                        1,
                        "auksdrenewer : {who} : renewed: end {} -> {}, renewable until {}",
                        fmt_time(times.endtime),
                        fmt_time(t.endtime),
                        fmt_time(t.renew_till)
                    );
                }
                Err(e) => {
                    st.failed += 1;
                    crate::log!(1, "auksdrenewer : {who} : renewal failed: {e}");
                }
            },
        }
    }
    let lvl = if st.renewed + st.failed > 0 { 1 } else { 2 };
    crate::log!(
        lvl,
        "auksdrenewer : pass done: {} stored, {} renewed, {} skipped, {} failed",
        records.len(),
        st.renewed,
        st.skipped,
        st.failed
    );
    st
}

fn setup_renewer_logging(conf: &ClientConfig, opts: &RenewerOptions) -> Result<(), RenewerError> {
    let r = &conf.renewer;
    let level = r.log_level.max(r.debug_level) + opts.verbose + opts.debug;
    if opts.foreground() {
        crate::log::to_stderr(level);
        return Ok(());
    }
    let file = opts.log_file.as_deref().unwrap_or(&r.log_file);
    crate::log::to_file(file, level)
        .map_err(|e| RenewerError::Other(format!("cannot open log file {}: {e}", file.display())))
}

/// Run auksdrenewer until SIGTERM/SIGINT; SIGHUP reloads the configuration
/// (a configuration that no longer loads is reported and the previous one
/// kept). Daemonises unless `-F`, `-v` or `-d`.
pub fn run_renewer(opts: &RenewerOptions) -> Result<(), RenewerError> {
    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    let reg = |sig, flag: &Arc<AtomicBool>| {
        signal_hook::flag::register(sig, Arc::clone(flag))
            .map(|_| ())
            .map_err(|e| RenewerError::Other(format!("cannot install signal handler: {e}")))
    };
    reg(signal_hook::consts::SIGTERM, &term)?;
    reg(signal_hook::consts::SIGINT, &term)?;
    reg(signal_hook::consts::SIGHUP, &hup)?;

    let mut conf = ClientConfig::load(opts.conf.as_deref())?;
    setup_renewer_logging(&conf, opts)?;
    if !opts.foreground() {
        nix::unistd::daemon(true, false)
            .map_err(|e| RenewerError::Other(format!("cannot daemonize: {e}")))?;
    }
    loop {
        for w in &conf.warnings {
            crate::log!(1, "auksdrenewer : configuration warning: {w}");
        }
        crate::log!(
            1,
            "auksdrenewer : started with {} (Delay {} s, MinLifeTime {} s)",
            conf.path.display(),
            conf.renewer.delay,
            conf.renewer.min_lifetime
        );
        let client = Client::new(conf.clone());
        let delay = Duration::from_secs(conf.renewer.delay.max(1));
        // With the daemons' repository in etcd: one pass per cluster.
        let lock = crate::store::pass_lock::PassLock::from_conf_file(&conf.path)
            .map_err(RenewerError::Other)?;
        if lock.is_active() {
            crate::log!(1, "auksdrenewer : one pass per cluster (etcd pass lock)");
        }
        loop {
            let started = Instant::now();
            match lock.may_run() {
                crate::store::pass_lock::Decision::Run => {
                    renewer_pass(&client, &term);
                }
                crate::store::pass_lock::Decision::Skip(why) => {
                    crate::log!(2, "auksdrenewer : pass skipped: {why}")
                }
            }
            let until = started + delay;
            while Instant::now() < until
                && !term.load(Ordering::SeqCst)
                && !hup.load(Ordering::SeqCst)
            {
                std::thread::sleep(Duration::from_millis(200));
            }
            if term.load(Ordering::SeqCst) {
                lock.resign();
                crate::log!(1, "auksdrenewer : stopped");
                return Ok(());
            }
            if hup.swap(false, Ordering::SeqCst) {
                lock.resign();
                break;
            }
        }
        match ClientConfig::load(opts.conf.as_deref()) {
            Ok(c) => {
                conf = c;
                if let Err(e) = setup_renewer_logging(&conf, opts) {
                    // Keep logging where we were.
                    crate::log!(1, "auksdrenewer : {e}");
                }
                crate::log!(1, "auksdrenewer : configuration reloaded");
            }
            Err(e) => crate::log!(
                1,
                "auksdrenewer : reload failed, keeping the previous configuration: {e}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn t(start: i64, end: i64, till: i64) -> Times {
        Times {
            starttime: NOW + start,
            endtime: NOW + end,
            renew_till: if till == 0 { 0 } else { NOW + till },
        }
    }

    #[test]
    fn fresh_ticket_is_not_due() {
        // 60 s ticket just obtained, threshold 10 s
        let d = decide(&t(0, 60, 900), NOW, 10);
        assert_eq!(d, Decision::NotDue { due_at: NOW + 50 });
    }

    #[test]
    fn threshold_boundaries() {
        // remaining 41 > 40: not due; 40 <= 40: due; 39: due
        assert!(matches!(
            decide(&t(-19, 41, 900), NOW, 40),
            Decision::NotDue { .. }
        ));
        assert_eq!(decide(&t(-20, 40, 900), NOW, 40), Decision::Renew);
        assert_eq!(decide(&t(-21, 39, 900), NOW, 40), Decision::Renew);
        // one second left is still renewable
        assert_eq!(decide(&t(-59, 1, 900), NOW, 40), Decision::Renew);
    }

    #[test]
    fn short_lifetime_is_renewed_not_abandoned() {
        // §11.18: life (60) <= MinLifeTime (300) used to abort; now it renews
        assert_eq!(decide(&t(0, 60, 900), NOW, 300), Decision::Renew);
        // MinLifeTime 0: renew only at the very end (never, as endtime > now)
        assert!(matches!(
            decide(&t(0, 60, 900), NOW, 0),
            Decision::NotDue { .. }
        ));
    }

    #[test]
    fn end_of_renewable_period() {
        // endtime capped at renew_till: nothing more to gain
        assert_eq!(
            decide(&t(-30, 30, 30), NOW, 40),
            Decision::Impossible(Why::PeriodOver {
                renew_till: NOW + 30
            })
        );
        // renew_till just after endtime: still worth one more renewal
        assert_eq!(decide(&t(-30, 30, 31), NOW, 40), Decision::Renew);
        // renewable period over (inconsistent ticket: end after renew_till)
        assert_eq!(
            decide(&t(-30, 30, -1), NOW, 40),
            Decision::Impossible(Why::PeriodOver {
                renew_till: NOW - 1
            })
        );
        // capped but far from expiry: not due (nothing to do yet)
        assert!(matches!(
            decide(&t(0, 600, 600), NOW, 40),
            Decision::NotDue { .. }
        ));
    }

    #[test]
    fn after_renew_till_and_expired() {
        assert_eq!(
            decide(&t(-100, -10, -5), NOW, 40),
            Decision::Impossible(Why::Expired { endtime: NOW - 10 })
        );
        // endtime == now counts as expired
        assert_eq!(
            decide(&t(-60, 0, 900), NOW, 40),
            Decision::Impossible(Why::Expired { endtime: NOW })
        );
        assert!(Why::Expired { endtime: 0 }.is_terminal());
        assert!(!Why::NotRenewable.is_terminal());
    }

    #[test]
    fn zero_life_and_not_renewable() {
        assert_eq!(
            decide(&t(10, 10, 900), NOW, 40),
            Decision::Impossible(Why::ZeroLife)
        );
        assert_eq!(
            decide(&t(0, 0, 0), NOW, 40),
            Decision::Impossible(Why::ZeroLife)
        );
        assert!(Why::ZeroLife.is_terminal());
        // not renewable: nothing to do while fresh, impossible once due
        assert!(matches!(
            decide(&t(0, 60, 0), NOW, 10),
            Decision::NotDue { .. }
        ));
        assert_eq!(
            decide(&t(-55, 5, 0), NOW, 10),
            Decision::Impossible(Why::NotRenewable)
        );
    }

    #[test]
    fn huge_min_lifetime_does_not_overflow() {
        assert_eq!(decide(&t(0, 60, 900), NOW, u64::MAX), Decision::Renew);
    }

    #[test]
    fn sleep_policy() {
        let times = t(0, 60, 900);
        // wake up exactly when due, capped by Delay
        assert_eq!(next_check(&decide(&times, NOW, 10), &times, NOW, 60), 50);
        assert_eq!(next_check(&decide(&times, NOW, 10), &times, NOW, 5), 5);
        // due (ticket not longer than the threshold): half the remaining life
        assert_eq!(next_check(&Decision::Renew, &times, NOW, 60), 30);
        // impossible: until expiry, capped
        let d = Decision::Impossible(Why::NotRenewable);
        assert_eq!(next_check(&d, &t(0, 20, 0), NOW, 60), 20);
        assert_eq!(next_check(&d, &t(0, 20, 0), NOW, 7), 7);
        // never 0, even with Delay 0 or an expired credential
        assert_eq!(next_check(&Decision::Renew, &t(-60, 1, 900), NOW, 60), 1);
        assert_eq!(next_check(&d, &t(-60, -5, 0), NOW, 0), 1);
    }

    #[test]
    fn exit_codes() {
        let e = RenewError::Impossible {
            principal: "a@B".into(),
            why: Why::NotRenewable,
        };
        assert_eq!(e.exit_code(), 11);
        assert_eq!(RenewError::Helper("x".into()).exit_code(), 10);
        let e = RenewError::Ccache(CredError::NoTgt { ccache: "x".into() });
        assert_eq!(e.exit_code(), 7);
    }

    #[test]
    fn helper_missing_is_skipped_and_failure_reported() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("nope");
        assert!(matches!(
            run_helper(&missing, None),
            Ok(HelperOutcome::Skipped(_))
        ));
        use std::os::unix::fs::PermissionsExt;
        let not_exec = d.path().join("plain");
        std::fs::write(&not_exec, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&not_exec, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            run_helper(&not_exec, None),
            Ok(HelperOutcome::Skipped(_))
        ));
        let ok = d.path().join("ok");
        let out = d.path().join("seen");
        std::fs::write(
            &ok,
            format!(
                "#!/bin/sh\n[ $# -eq 0 ] && echo \"$KRB5CCNAME\" > {}\n",
                out.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&ok, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(run_helper(&ok, Some("FILE:/tmp/x")), Ok(HelperOutcome::Ran));
        assert_eq!(std::fs::read_to_string(&out).unwrap().trim(), "FILE:/tmp/x");
        let bad = d.path().join("bad");
        std::fs::write(&bad, "#!/bin/sh\nexit 3\n").unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = run_helper(&bad, None).unwrap_err();
        assert!(e.contains("status 3"), "{e}");
    }
}
