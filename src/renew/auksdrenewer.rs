//! auksdrenewer (spec §6): every `Delay` seconds, DUMP the credentials
//! stored in auksd, renew at the KDC those [`decide`] finds due, and ADD
//! them back; SIGHUP reloads the configuration, SIGTERM/SIGINT stop it.

use super::policy::{decide, Decision, Times};
use crate::client::{Client, KeptSession, KEPT_REQUESTS};
use crate::config::ClientConfig;
use crate::cred;
use crate::krb5::{Ccache, Context};
use crate::timefmt::fmt_time;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

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
    /// Credentials left with less than `MinLifeTime` after the pass.
    pub expiring: usize,
}

/// Renew one stored credential at the KDC (keeping the cross-realm TGT
/// it held). Returns the renewed KRB-CRED and its times.
fn renew_record(
    ctx: &Context,
    rec: &crate::proto::CredRecord,
) -> Result<(Zeroizing<Vec<u8>>, Times), String> {
    let r = cred::renew_tgt_of(ctx, &rec.data).map_err(|e| format!("at the KDC: {e}"))?;
    // Keep the cross-realm TGT the credential held (§11.17). When none was
    // held, Client::add_kept acquires the configured CrossRealm one itself.
    let Some(realm) = r.cross_realm else {
        let times = Times {
            starttime: r.starttime,
            endtime: r.endtime,
            renew_till: r.renew_till,
        };
        return Ok((r.data, times));
    };
    let mut data = r.data;
    match cred::add_cross_realm(ctx, data.clone(), &realm) {
        Ok(d) => data = d,
        Err(e) => crate::log!(
            1,
            "auksdrenewer : uid {} {} : cross-realm TGT for {realm} not re-acquired: {e}",
            rec.uid,
            rec.principal
        ),
    }
    let m = cred::meta(ctx, &data).map_err(|e| e.to_string())?;
    Ok((data, Times::from(&m)))
}

/// Threads renewing in parallel during a pass, each with its own Kerberos
/// context and in-memory ccache. A thread renews up to
/// [`KEPT_REQUESTS`] credentials at the KDC, then ADDs them back to auksd
/// over one session, which it closes at once: no session stays open while
/// a thread waits for the KDC (a C auksd has no timeout and few workers).
/// A renewal is a few ms of KDC and auksd round trips but well under a
/// millisecond of CPU in this process: enough threads keep the KDC and
/// auksd busy on every core (100 000 credentials on 2 CPUs,
/// `scripts/bench-auksd.sh`, with kept sessions: 8 threads 66 s,
/// 12 threads 58 s, 16 threads 48–52 s).
pub const RENEW_THREADS: usize = 16;

/// A renewal thread's private copy of the renewer's own credentials in a
/// MEMORY ccache: its TGT, then the auksd service ticket the first ADD
/// fetches. Every later ADD authenticates from memory, without opening,
/// locking and reading the FILE ccache each time (nor asking the KDC again
/// for a service ticket). Destroyed (keys wiped) when dropped.
struct ThreadCcache<'a> {
    cc: Option<Ccache<'a>>,
    name: String,
}

impl<'a> ThreadCcache<'a> {
    /// Copy the default ccache's credentials into a new MEMORY ccache.
    fn copy_default(ctx: &'a Context) -> Result<Self, crate::krb5::Error> {
        let src = Ccache::default(ctx)?;
        let cc = Ccache::new_unique(ctx, "MEMORY")?;
        let me = ThreadCcache {
            name: cc.full_name()?,
            cc: Some(cc),
        };
        if let Some(cc) = &me.cc {
            src.copy_to(cc)?;
        }
        Ok(me)
    }
}

impl Drop for ThreadCcache<'_> {
    fn drop(&mut self) {
        if let Some(cc) = self.cc.take() {
            if let Err(e) = cc.destroy() {
                crate::log!(2, "auksdrenewer : cannot destroy {}: {e}", self.name);
            }
        }
    }
}

/// The client a renewal thread uses: authenticating from a private
/// in-memory copy of the default ccache when one could be made (else from
/// the default ccache itself, read at each request).
fn thread_client<'a>(conf: &ClientConfig, ctx: &'a Context) -> (Client, Option<ThreadCcache<'a>>) {
    match ThreadCcache::copy_default(ctx) {
        Ok(cc) => {
            let c = Client::new(conf.clone())
                .with_auth_ccache(Some(cc.name.clone()))
                .keeping_context();
            (c, Some(cc))
        }
        Err(e) => {
            crate::log!(
                2,
                "auksdrenewer : no in-memory copy of the ccache ({e}): reading it at each request"
            );
            (Client::new(conf.clone()).keeping_context(), None)
        }
    }
}

/// The counters the renewing threads share.
#[derive(Default)]
struct Tally {
    renewed: AtomicUsize,
    skipped: AtomicUsize,
    failed: AtomicUsize,
    expiring: AtomicUsize,
}

/// A credential renewed at the KDC, waiting for its ADD.
struct Renewed<'r> {
    rec: &'r crate::proto::CredRecord,
    data: Zeroizing<Vec<u8>>,
    times: Times,
}

fn who(rec: &crate::proto::CredRecord) -> String {
    format!("uid {} {}", rec.uid, rec.principal)
}

/// `endtime` is less than `min` seconds after `now`.
fn under(endtime: i64, now: i64, min: u64) -> bool {
    endtime < now.saturating_add(i64::try_from(min).unwrap_or(i64::MAX))
}

/// Decide about one record and renew it at the KDC when due. Skips and
/// KDC failures are counted and logged here; a renewed credential is
/// returned for [`add_back`].
fn renew_one<'r>(
    min: u64,
    ctx: &Context,
    rec: &'r crate::proto::CredRecord,
    t: &Tally,
) -> Option<Renewed<'r>> {
    let now = ctx.now();
    let times = Times::from(rec);
    let outcome = match decide(&times, now, min) {
        Decision::NotDue { due_at } => {
            t.skipped.fetch_add(1, Ordering::Relaxed);
            crate::log!(
                2,
                "auksdrenewer : {} : skipped: valid until {}, renewal due at {}",
                who(rec),
                fmt_time(times.endtime),
                fmt_time(due_at)
            );
            None
        }
        Decision::Impossible(why) => {
            t.skipped.fetch_add(1, Ordering::Relaxed);
            crate::log!(2, "auksdrenewer : {} : skipped: {why}", who(rec));
            None
        }
        Decision::Renew => match renew_record(ctx, rec) {
            Ok((data, n)) => {
                return Some(Renewed {
                    rec,
                    data,
                    times: n,
                })
            }
            Err(e) => {
                t.failed.fetch_add(1, Ordering::Relaxed);
                crate::log!(1, "auksdrenewer : {} : renewal failed: {e}", who(rec));
                None
            }
        },
    };
    if under(times.endtime, now, min) {
        t.expiring.fetch_add(1, Ordering::Relaxed);
    }
    outcome
}

/// ADD a renewed credential back to auksd over `kept`; count and log.
fn add_back(client: &Client, ctx: &Context, kept: &mut KeptSession<'_>, r: Renewed<'_>, t: &Tally) {
    let min = client.conf.renewer.min_lifetime;
    let (rec, n) = (r.rec, r.times);
    let old_end = Times::from(rec).endtime;
    let expiring = match client.add_kept(kept, r.data) {
        Ok(()) => {
            t.renewed.fetch_add(1, Ordering::Relaxed);
            crate::log!(
                1,
                "auksdrenewer : {} : renewed: end {} -> {}, renewable until {}",
                who(rec),
                fmt_time(old_end),
                fmt_time(n.endtime),
                fmt_time(n.renew_till)
            );
            under(n.endtime, ctx.now(), min)
        }
        Err(e) => {
            t.failed.fetch_add(1, Ordering::Relaxed);
            crate::log!(
                1,
                "auksdrenewer : {} : renewal failed: ADD to auksd: {e}",
                who(rec)
            );
            under(old_end, ctx.now(), min)
        }
    };
    if expiring {
        t.expiring.fetch_add(1, Ordering::Relaxed);
    }
}

/// One DUMP → renew → ADD pass (§6), on up to [`RENEW_THREADS`] threads,
/// authenticating to auksd with the default ccache (`KRB5CCNAME`), each
/// thread from its own in-memory copy of it. Stops early when `stop` is set. Skipped credentials are logged one by
/// one at level 2 only; the summary line says how many were renewed,
/// skipped and failed.
pub fn renewer_pass(conf: &ClientConfig, stop: &AtomicBool) -> PassStats {
    let records = match Client::new(conf.clone()).dump() {
        Ok(r) => r,
        Err(e) => {
            crate::log!(1, "auksdrenewer : DUMP failed, pass skipped: {e}");
            return PassStats::default();
        }
    };
    let next = AtomicUsize::new(0);
    let tally = Tally::default();
    let threads = RENEW_THREADS.min(records.len()).max(1);
    std::thread::scope(|sc| {
        for i in 0..threads {
            let (next, tally, records) = (&next, &tally, &records);
            let body = move || {
                let ctx = match Context::new() {
                    Ok(c) => c,
                    Err(e) => {
                        crate::log!(1, "auksdrenewer : Kerberos set-up failed: {e}");
                        return;
                    }
                };
                // (the ccache copy lives as long as the client using it)
                let (client, _own) = thread_client(conf, &ctx);
                let min = client.conf.renewer.min_lifetime;
                let mut batch: Vec<Renewed<'_>> = Vec::with_capacity(KEPT_REQUESTS);
                let mut more = true;
                while more && !stop.load(Ordering::SeqCst) {
                    // Renew up to KEPT_REQUESTS at the KDC with no auksd
                    // session open (a slow KDC must not hold a worker of
                    // a C auksd, which has no timeout) ...
                    while batch.len() < KEPT_REQUESTS && !stop.load(Ordering::SeqCst) {
                        let Some(rec) = records.get(next.fetch_add(1, Ordering::Relaxed)) else {
                            more = false;
                            break;
                        };
                        // A panic in one renewal must not end the pass.
                        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            renew_one(min, &ctx, rec, tally)
                        })) {
                            Ok(Some(r)) => batch.push(r),
                            Ok(None) => {}
                            Err(_) => {
                                tally.failed.fetch_add(1, Ordering::Relaxed);
                                crate::log!(1, "auksdrenewer : uid {} : internal error", rec.uid);
                            }
                        }
                    }
                    // ... then ADD them back over one session, closed at
                    // once: a few ms of back-to-back requests.
                    let mut kept = KeptSession::new(&ctx);
                    for r in batch.drain(..) {
                        let uid = r.rec.uid;
                        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            add_back(&client, &ctx, &mut kept, r, tally)
                        }));
                        if done.is_err() {
                            tally.failed.fetch_add(1, Ordering::Relaxed);
                            crate::log!(1, "auksdrenewer : uid {uid} : internal error");
                        }
                    }
                }
            };
            if let Err(e) = std::thread::Builder::new()
                .name(format!("renew-{i}"))
                .spawn_scoped(sc, body)
            {
                crate::log!(1, "auksdrenewer : cannot start a renewal thread: {e}");
            }
        }
    });
    let mut st = PassStats {
        renewed: tally.renewed.into_inner(),
        skipped: tally.skipped.into_inner(),
        failed: tally.failed.into_inner(),
        expiring: tally.expiring.into_inner(),
    };
    // Records no thread could take (no thread or context): failed.
    let done = st.renewed + st.skipped + st.failed;
    if !stop.load(Ordering::SeqCst) && done < records.len() {
        st.failed += records.len() - done;
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
    let metrics = crate::metrics::RenewerMetrics::new();
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
                    let st = renewer_pass(&conf, &term);
                    metrics.pass(
                        started.elapsed(),
                        st.renewed,
                        st.skipped,
                        st.failed,
                        st.expiring,
                    );
                    if let Some(path) = conf.renewer.metrics_file.as_deref() {
                        if let Err(e) = metrics.write(path) {
                            crate::log!(1, "auksdrenewer : {e}");
                        }
                    }
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
