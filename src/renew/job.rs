//! The per-job renewer behind `auks -R once|loop` (spec §8.3): it watches
//! one ccache, takes a really fresher credential from auksd or renews at
//! the KDC when [`decide`] says so, rewrites the ccache atomically and runs
//! the `HelperScript`; in loop mode it sleeps as [`next_check`] says until
//! the ccache disappears, the credential expires or a [`Stop`] arrives.

use super::helper::{run_helper, HelperOutcome, RunAs};
use super::policy::{decide, next_check, Decision, Times, Why};
use super::stop::Stop;
use super::{EXIT_CCACHE, EXIT_HELPER, EXIT_IMPOSSIBLE};
use crate::client::{Client, ClientError};
use crate::cred::{self, CredError, CredMeta, Placement};
use crate::krb5::Context;
use crate::timefmt::fmt_time;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

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
        let r = cred::renew_tgt_of(ctx, data).map_err(|source| RenewError::Kdc {
            principal: principal.to_string(),
            source,
        })?;
        let mut renewed = r.data;
        let realm = r
            .cross_realm
            .or_else(|| self.client.conf.common.cross_realm.clone());
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
        Ok(match run_helper(script, Some(&name), RunAs::Caller) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
