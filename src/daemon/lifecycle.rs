//! The daemon's lifecycle: signals, configuration (re)load, start-up of the
//! listener, workers and cleaner, and orderly shutdown.
//!
//! SIGTERM/SIGINT stop accepting, let workers finish the queue and exit;
//! SIGHUP does the same and then reloads configuration, ACL and
//! repository; SIGUSR2 logs counters.

use super::dispatch::dispatch;
use super::repo::Repo;
use super::worker::{worker, Conn};
use super::{detect_role, DaemonError, Options, ServerRole, Shared};
use crate::acl::Acl;
use crate::config::{DaemonConfig, Endpoint};
use crate::krb5::{Context, Keytab, Principal};
use std::net::{IpAddr, SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Run auksd until SIGTERM/SIGINT. SIGHUP reloads everything.
pub fn run(opts: &Options) -> Result<(), DaemonError> {
    let signals = Signals::register()?;
    let mut first = true;
    loop {
        let conf = DaemonConfig::load(opts.conf.as_deref())?;
        setup_logging(&conf, opts)?;
        for w in &conf.warnings {
            crate::log!(1, "auksd : configuration warning: {w}");
        }
        if first && !(opts.foreground || opts.verbose > 0 || opts.debug > 0) {
            nix::unistd::daemon(true, false)
                .map_err(|e| DaemonError::Other(format!("cannot daemonize: {e}")))?;
        }
        first = false;
        let reload = serve(conf, &signals)?;
        if !reload {
            crate::log!(1, "auksd : stopped");
            return Ok(());
        }
        crate::log!(1, "auksd : reloading configuration, ACL and repository");
    }
}

/// Bind the listening socket (std's listen backlog is 128; `QueueSize`
/// bounds the queue of authenticated work instead).
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
            Ok(l) => return Ok(l),
            Err(e) => last = format!("{a}: {e}"),
        }
    }
    Err(DaemonError::Bind {
        addr: format!("{}:{}", ep.address, ep.port),
        reason: last,
    })
}

/// One life of the daemon between (re)loads. Returns true for a reload.
fn serve(conf: DaemonConfig, signals: &Signals) -> Result<bool, DaemonError> {
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
        ServerRole::Primary => (&c.primary, &conf.auksd.primary_keytab),
        ServerRole::Secondary => (&c.secondary, &conf.auksd.secondary_keytab),
    };
    let acl = Acl::load(&conf.auksd.acl_file)?;
    for w in &acl.warnings {
        crate::log!(1, "auksd : ACL warning: {w}");
    }
    // Check the Kerberos set-up once, so a bad keytab or principal stops
    // the start-up instead of failing every connection.
    {
        let ctx = Context::new()?;
        let kt = Keytab::resolve(&ctx, &keytab.display().to_string())?;
        kt.principals().map_err(|e| {
            DaemonError::Other(format!("keytab {} unusable: {e}", keytab.display()))
        })?;
        Principal::parse(&ctx, &ep.principal)?;
    }
    prepare_cache_dir(&conf.auksd.cache_dir);
    let ctx = Context::new()?;
    let mut repo = Repo::new(&conf.auksd.cache_dir);
    for line in repo.load(&ctx) {
        crate::log!(1, "auksd : {line}");
    }
    drop(ctx);
    let listener = bind(ep)?;
    listener
        .set_nonblocking(true)
        .map_err(|e| DaemonError::Other(e.to_string()))?;
    crate::log!(
        1,
        "auksd : {} server listening on {} as {} ({} workers, {} stored credentials)",
        if role == ServerRole::Primary {
            "primary"
        } else {
            "secondary"
        },
        listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default(),
        ep.principal,
        conf.auksd.workers,
        repo.len()
    );
    let shared = Arc::new(Shared {
        server_principal: ep.principal.clone(),
        keytab: keytab.display().to_string(),
        acl,
        repo: Mutex::new(repo),
        stop: AtomicBool::new(false),
        served: AtomicU64::new(0),
        conf,
    });
    let (tx, rx) = sync_channel::<Conn>(shared.conf.auksd.queue_size);
    let rx = Arc::new(Mutex::new(rx));
    let mut threads = Vec::new();
    for i in 0..shared.conf.auksd.workers {
        let (sh, rx) = (Arc::clone(&shared), Arc::clone(&rx));
        threads.push(
            std::thread::Builder::new()
                .name(format!("worker{i}"))
                .spawn(move || worker(i, sh, rx))
                .map_err(|e| DaemonError::Other(format!("cannot start worker: {e}")))?,
        );
    }
    let sh = Arc::clone(&shared);
    let cleaner = std::thread::Builder::new()
        .name("cleaner".into())
        .spawn(move || clean_loop(sh))
        .map_err(|e| DaemonError::Other(format!("cannot start cleaner: {e}")))?;

    let reload = dispatch(&listener, &tx, signals, &shared);
    drop(listener);
    drop(tx);
    shared.stop.store(true, Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    let _ = cleaner.join();
    Ok(reload)
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

fn clean_loop(shared: Arc<Shared>) {
    let delay = Duration::from_secs(shared.conf.auksd.clean_delay.max(1));
    loop {
        let now = chrono::Utc::now().timestamp();
        if let Ok(mut repo) = shared.repo.lock() {
            for (uid, princ, why) in repo.clean(now) {
                crate::log!(1, "auksd : clean stage : uid {uid} {princ} removed: {why}");
            }
        }
        let until = Instant::now() + delay;
        while Instant::now() < until {
            if shared.stop.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
