//! The daemon's lifecycle: start-up, signals, reload and shutdown.
//!
//! Start-up opens the port first and loads the repository in the
//! background (one summary log line), so clients are served at once.
//! SIGTERM/SIGINT stop accepting, let workers finish the queue and exit.
//! SIGHUP re-reads configuration and ACL: a broken file is reported (file,
//! line, reason) and the running configuration is kept; otherwise the new
//! one applies to every new session while the listening socket stays open
//! (it is replaced only when the address changed). SIGUSR2 logs counters.
//! [`check`] is `auksd -t`.

use super::backend::Backend;
use super::dispatch::{self, dispatch, Control, Limits};
use super::droplog::{self, DropLog};
use super::pool::Pool;
use super::repo::Repo;
use super::{detect_role, worker, DaemonError, Options, ServerRole, Shared, State};
use crate::acl::Acl;
use crate::config::{DaemonConfig, Endpoint, METRICS_PERIOD};
use crate::krb5::{Context, Keytab, Principal};
use std::net::{IpAddr, SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Listen backlog (capped by the kernel's net.core.somaxconn).
const LISTEN_BACKLOG: i32 = 4096;
/// How long shutdown waits for the workers to finish the queue.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// Signal flags, registered once per process.
pub(super) struct Signals {
    pub(super) term: Arc<AtomicBool>,
    pub(super) hup: Arc<AtomicBool>,
    pub(super) usr2: Arc<AtomicBool>,
}

impl Signals {
    fn register() -> Result<Self, DaemonError> {
        let s = Signals {
            term: Arc::new(AtomicBool::new(false)),
            hup: Arc::new(AtomicBool::new(false)),
            usr2: Arc::new(AtomicBool::new(false)),
        };
        let reg = |sig, flag: &Arc<AtomicBool>| {
            signal_hook::flag::register(sig, Arc::clone(flag))
                .map_err(|e| DaemonError::Other(format!("cannot install signal handler: {e}")))
        };
        reg(signal_hook::consts::SIGTERM, &s.term)?;
        reg(signal_hook::consts::SIGINT, &s.term)?;
        reg(signal_hook::consts::SIGHUP, &s.hup)?;
        reg(signal_hook::consts::SIGUSR2, &s.usr2)?;
        Ok(s)
    }
}

fn setup_logging(conf: &DaemonConfig, opts: &Options) -> Result<(), DaemonError> {
    let level = conf.auksd.log_level.max(conf.auksd.debug_level) + opts.verbose + opts.debug;
    if opts.foreground || opts.verbose > 0 || opts.debug > 0 {
        crate::log::to_stderr(level);
        Ok(())
    } else {
        crate::log::to_file(&conf.auksd.log_file, level).map_err(|e| {
            DaemonError::Other(format!(
                "cannot open log file {}: {e}",
                conf.auksd.log_file.display()
            ))
        })
    }
}

fn foreground(opts: &Options) -> bool {
    opts.foreground || opts.verbose > 0 || opts.debug > 0
}

/// Everything a configuration needs checked before it is used: server
/// role, ACL, keytab and principal. Logs nothing.
fn build_state(conf: DaemonConfig, old: Option<&State>) -> Result<State, DaemonError> {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let c = &conf.common;
    let role = detect_role(&host, &c.primary.host, &c.secondary.host).ok_or_else(|| {
        DaemonError::NotAServer {
            host: host.clone(),
            primary: c.primary.host.clone(),
            secondary: c.secondary.host.clone(),
        }
    })?;
    let (ep, keytab) = match role {
        ServerRole::Primary => (c.primary.clone(), conf.auksd.primary_keytab.clone()),
        ServerRole::Secondary => (c.secondary.clone(), conf.auksd.secondary_keytab.clone()),
    };
    let acl = Acl::load(&conf.auksd.acl_file)?;
    // Check the Kerberos set-up once, so a bad keytab or principal stops
    // the start-up (or the reload) instead of failing every connection.
    {
        let ctx = Context::new()?;
        let kt = Keytab::resolve(&ctx, &keytab.display().to_string())?;
        kt.principals().map_err(|e| {
            DaemonError::Other(format!("keytab {} unusable: {e}", keytab.display()))
        })?;
        Principal::parse(&ctx, &ep.principal)?;
    }
    let repo = match old {
        Some(o) if o.repo.same_as(&o.conf.auksd, &conf.auksd) => Arc::clone(&o.repo),
        _ => Arc::new(Backend::open(&conf.auksd)?),
    };
    Ok(State {
        role,
        acl,
        endpoint: ep.clone(),
        server_principal: ep.principal,
        keytab: keytab.display().to_string(),
        repo,
        conf,
    })
}

/// `auksd -t`: check the configuration file (and the ACL and keytab it
/// names). Ok carries the warnings; Err says what is wrong, with file and
/// line when it is a syntax error.
pub fn check(opts: &Options) -> Result<Vec<String>, DaemonError> {
    let conf = DaemonConfig::load(opts.conf.as_deref())?;
    let mut warnings: Vec<String> = conf.warnings.clone();
    let st = build_state(conf, None)?;
    warnings.extend(st.acl.warnings.iter().cloned());
    Ok(warnings)
}

/// Load the repository files in the background, then log one summary.
fn start_loader(repo: Arc<Repo>, first: bool) {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8);
    let r = std::thread::Builder::new()
        .name("loader".into())
        .spawn(move || {
            let s = repo.load_all(threads);
            for d in &s.details {
                crate::log!(3, "auksd : load : {d}");
            }
            crate::log!(
                1,
                "auksd : repository {}: {} credentials in {:.2} s ({} files read by the loader, {} unreadable files left in place, {} other files ignored, {} leftover temporary files removed)",
                if first { "loaded" } else { "re-scanned" },
                repo.len(),
                s.took.as_secs_f64(),
                s.loaded,
                s.failed,
                s.ignored,
                s.leftovers_removed
            );
        });
    if let Err(e) = r {
        crate::log!(1, "auksd : cannot start the repository loader: {e}");
    }
}

fn start_workers(shared: &Arc<Shared>, n: usize) {
    for _ in 0..n {
        worker::spawn(shared);
    }
}

/// Run auksd until SIGTERM/SIGINT.
pub fn run(opts: &Options) -> Result<(), DaemonError> {
    let signals = Signals::register()?;
    let conf = DaemonConfig::load(opts.conf.as_deref())?;
    setup_logging(&conf, opts)?;
    for w in &conf.warnings {
        crate::log!(1, "auksd : configuration warning: {w}");
    }
    let st = build_state(conf, None)?;
    for w in &st.acl.warnings {
        crate::log!(1, "auksd : ACL warning: {w}");
    }
    // Before any thread exists: fork keeps only the calling thread.
    if !foreground(opts) {
        nix::unistd::daemon(true, false)
            .map_err(|e| DaemonError::Other(format!("cannot daemonize: {e}")))?;
    }
    prepare_cache_dir(&st.conf.auksd.cache_dir);
    let mut listener = bind(&st.endpoint)?;
    listener
        .set_nonblocking(true)
        .map_err(|e| DaemonError::Other(e.to_string()))?;
    let limits = Limits::for_fd_limit(dispatch::fd_limit());
    // The replay cache's journal is read before the daemon says it is
    // ready (it names the port, known once bound).
    let port = listener.local_addr().map_or(0, |a| a.port());
    let replay = std::sync::OnceLock::new();
    if st.conf.auksd.replay_cache {
        let _ = replay.set(super::open_replay_cache(port));
    }
    crate::log!(
        1,
        "auksd : {} server listening on {} as {} ({} workers, more when they wait for clients, up to {}; {} pending handshakes, {} per address)",
        match st.role {
            ServerRole::Primary => "primary",
            ServerRole::Secondary => "secondary",
        },
        listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default(),
        st.server_principal,
        st.conf.auksd.workers,
        super::pool::MAX_THREADS.max(st.conf.auksd.workers),
        limits.pending,
        limits.per_address
    );
    // systemd (Type=notify): ready once the port is open; the repository
    // loads in the background and requests wait for their own uid.
    crate::notify::ready();
    if let Some(local) = st.repo.local() {
        start_loader(local, true);
    }
    let shared = Arc::new(Shared {
        pool: Pool::new(st.conf.auksd.workers),
        state: RwLock::new(Arc::new(st)),
        drops: DropLog::default(),
        stop: AtomicBool::new(false),
        served: AtomicU64::new(0),
        metrics: crate::metrics::AuksdMetrics::new(),
        replay,
        port,
    });
    start_workers(&shared, shared.pool.reserve_min());
    let sh = Arc::clone(&shared);
    let cleaner = std::thread::Builder::new()
        .name("cleaner".into())
        .spawn(move || clean_loop(sh))
        .map_err(|e| DaemonError::Other(format!("cannot start cleaner: {e}")))?;

    let mut control = |l: &mut TcpListener, pending: usize| {
        if signals.term.swap(false, Ordering::SeqCst) {
            crate::log!(1, "auksd : termination requested");
            return Control::Stop;
        }
        if signals.hup.swap(false, Ordering::SeqCst) {
            reload(opts, &shared, l);
        }
        if signals.usr2.swap(false, Ordering::SeqCst) {
            let (queued, threads, idle, peak) = shared.pool.stats();
            crate::log!(
                1,
                "auksd : {} sessions served, {pending} pending handshakes, {queued} queued (peak {peak}), {threads} workers ({idle} idle), {} stored credentials",
                shared.served.load(Ordering::Relaxed),
                shared.state().repo.len()
            );
            droplog::emit(shared.drops.flush_if_due(true));
        }
        Control::Continue
    };
    dispatch(&mut listener, &shared, limits, &mut control);
    crate::notify::stopping();
    drop(listener);
    shared.pool.close();
    shared.stop.store(true, Ordering::SeqCst);
    if !shared.pool.wait_gone(DRAIN_LIMIT) {
        crate::log!(
            1,
            "auksd : workers still busy after {DRAIN_LIMIT:?}, exiting anyway"
        );
    }
    let _ = cleaner.join();
    write_metrics(&shared);
    droplog::emit(shared.drops.flush_if_due(true));
    crate::log!(1, "auksd : stopped");
    Ok(())
}

/// SIGHUP: apply a new configuration and ACL when they are valid; keep the
/// running ones (and say why) otherwise. The listener stays open.
fn reload(opts: &Options, shared: &Arc<Shared>, listener: &mut TcpListener) {
    crate::notify::reloading();
    // READY=1 again whatever the outcome: the daemon serves either way.
    struct Ready;
    impl Drop for Ready {
        fn drop(&mut self) {
            crate::notify::ready();
        }
    }
    let _ready = Ready;
    crate::log!(1, "auksd : reloading configuration, ACL and repository");
    let old = shared.state();
    let refuse = |e: &dyn std::fmt::Display| {
        crate::log!(
            1,
            "auksd : reload refused, still serving with the previous configuration and ACL: {e}"
        )
    };
    let conf = match DaemonConfig::load(opts.conf.as_deref()) {
        Ok(c) => c,
        Err(e) => return refuse(&e),
    };
    let warnings = conf.warnings.clone();
    let st = match build_state(conf, Some(&old)) {
        Ok(s) => s,
        Err(e) => return refuse(&e),
    };
    // The listener is kept when the endpoint did not change, and also when
    // the new port is the one the listener already has (a configuration
    // first written with port 0, "any", then with the port the OS chose).
    let bound_port = listener.local_addr().map(|a| a.port()).ok();
    let new_port = st.endpoint.port.trim().parse::<u16>().ok();
    let same_port = st.endpoint.port == old.endpoint.port
        || new_port == Some(0)
        || (new_port.is_some() && new_port == bound_port);
    if st.endpoint.address != old.endpoint.address || !same_port {
        match bind(&st.endpoint).and_then(|l| {
            l.set_nonblocking(true)
                .map_err(|e| DaemonError::Other(e.to_string()))?;
            Ok(l)
        }) {
            Ok(l) => *listener = l,
            Err(e) => return refuse(&e),
        }
    }
    if let Err(e) = setup_logging(&st.conf, opts) {
        crate::log!(1, "auksd : keeping the previous log destination: {e}");
    }
    for w in warnings.iter().chain(&st.acl.warnings) {
        crate::log!(1, "auksd : configuration warning: {w}");
    }
    let same_repo = Arc::ptr_eq(&st.repo, &old.repo);
    let repo = st.repo.local();
    let workers = st.conf.auksd.workers;
    shared.set_state(st);
    shared.metrics.reloaded();
    start_workers(shared, shared.pool.set_min(workers));
    match repo {
        None => {} // etcd: the watch thread keeps the view current
        Some(repo) if same_repo => {
            // Pick up files added by hand; what is in memory stays.
            start_loader(repo, false);
        }
        Some(repo) => {
            prepare_cache_dir(&shared.state().conf.auksd.cache_dir);
            start_loader(repo, true);
        }
    }
    crate::log!(1, "auksd : reload done");
}

/// Bind the listening socket, with a backlog of [`LISTEN_BACKLOG`].
fn bind(ep: &Endpoint) -> Result<TcpListener, DaemonError> {
    let port: u16 = ep.port.trim().parse().map_err(|_| DaemonError::Bind {
        addr: ep.port.clone(),
        reason: "the daemon needs a numeric port".into(),
    })?;
    let candidates: Vec<SocketAddr> = if ep.address.is_empty() {
        vec![
            SocketAddr::new(IpAddr::from([0u16; 8]), port),
            SocketAddr::new(IpAddr::from([0u8; 4]), port),
        ]
    } else {
        let host = ep.address.trim_start_matches('[').trim_end_matches(']');
        let mut v: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| DaemonError::Bind {
                addr: format!("{host}:{port}"),
                reason: e.to_string(),
            })?
            .collect();
        v.sort_by_key(|a| a.is_ipv6());
        v
    };
    let mut last = String::from("no address");
    for a in &candidates {
        match TcpListener::bind(a) {
            Ok(l) => {
                // std listens with a backlog of 128: a burst of connections
                // beyond it waits for SYN retransmits (1 s, 3 s...). Linux
                // takes a new backlog on a listening socket.
                let backlog = nix::sys::socket::Backlog::new(LISTEN_BACKLOG)
                    .unwrap_or(nix::sys::socket::Backlog::MAXCONN);
                if let Err(e) = nix::sys::socket::listen(&l, backlog) {
                    crate::log!(1, "auksd : cannot raise the listen backlog: {e}");
                }
                return Ok(l);
            }
            Err(e) => last = format!("{a}: {e}"),
        }
    }
    Err(DaemonError::Bind {
        addr: format!("{}:{}", ep.address, ep.port),
        reason: last,
    })
}

/// Create the cache directory (mode 0700) when missing; warn when other
/// users could write into it.
fn prepare_cache_dir(dir: &std::path::Path) {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::symlink_metadata(dir) {
        Err(_) => match std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
        {
            Ok(()) => crate::log!(1, "auksd : created cache dir {}", dir.display()),
            Err(e) => crate::log!(1, "auksd : cannot create cache dir {}: {e}", dir.display()),
        },
        Ok(m) if !m.is_dir() => {
            crate::log!(1, "auksd : cache dir {} is not a directory", dir.display())
        }
        Ok(m) if m.permissions().mode() & 0o022 != 0 => crate::log!(
            1,
            "auksd : WARNING: cache dir {} is writable by other users (mode {:o}); use 0700",
            dir.display(),
            m.permissions().mode() & 0o7777
        ),
        Ok(_) => {}
    }
}

/// Update the repository gauges and rewrite `MetricsFile`, if set.
/// Failures are logged, never fatal.
fn write_metrics(shared: &Shared) {
    let st = shared.state();
    let Some(path) = st.conf.auksd.metrics_file.as_deref() else {
        return;
    };
    if st.repo.is_loaded() {
        let horizon = chrono::Utc::now().timestamp()
            + i64::try_from(st.conf.auksd.renewer_min_lifetime).unwrap_or(i64::MAX / 2);
        if let Some(all) = st.repo.dump(Duration::ZERO) {
            let expiring = all.iter().filter(|r| r.endtime < horizon).count();
            shared.metrics.repository(all.len(), expiring);
        }
    }
    if let Err(e) = shared.metrics.write(path) {
        crate::log!(1, "auksd : {e}");
    }
}

/// The clean stage every `CleanDelay` seconds, and the metrics file every
/// [`METRICS_PERIOD`] seconds.
fn clean_loop(shared: Arc<Shared>) {
    let mut next_clean = Instant::now();
    loop {
        let st = shared.state();
        let delay = Duration::from_secs(st.conf.auksd.clean_delay.max(1));
        if Instant::now() >= next_clean && st.repo.is_loaded() {
            let now = chrono::Utc::now().timestamp();
            for (uid, princ, why) in st.repo.clean(now) {
                crate::log!(1, "auksd : clean stage : uid {uid} {princ} removed: {why}");
            }
            next_clean = Instant::now() + delay;
        }
        drop(st);
        write_metrics(&shared);
        let until = Instant::now() + Duration::from_secs(METRICS_PERIOD).min(delay);
        while Instant::now() < until {
            if shared.stop.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
