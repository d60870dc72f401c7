//! In-process load generator for auksd (used by scripts/bench-auksd.sh).
//!
//! Runs `--clients` threads of the client library, each request a full new
//! authenticated session exactly as `auks` makes it (connect, sendauth,
//! KRB-PRIV request and reply), so the daemon is measured, not process
//! start-up. Prints one line of figures:
//!
//! `op=get clients=16 requests=12000 failed=0 seconds=5.00 rps=2400.0 p50_ms=6.10 p99_ms=14.20 p90_ms=9.00 p999_ms=20.10 max_ms=25.00`
//!
//! `--op populate` instead copies the ccache `--ccache` into `--count`
//! files `<dir>/aukscc_<uid>` (uids from `--uid` on), to give a daemon a
//! large repository to load.

use auks::client::Client;
use auks::cred;
use auks::krb5::{Ccache, Context};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const USAGE: &str =
    "usage: auksd_load --op ping|get|add|dump|populate [--conf FILE] [--ccache FILE]
       [--uid N] [--clients N] [--seconds S] [--count N] [--dir DIR]";

struct Opts {
    op: String,
    conf: Option<PathBuf>,
    ccache: Option<PathBuf>,
    uid: u32,
    clients: usize,
    seconds: f64,
    count: u32,
    dir: Option<PathBuf>,
}

fn parse() -> Result<Opts, String> {
    use lexopt::prelude::*;
    let mut o = Opts {
        op: String::new(),
        conf: None,
        ccache: None,
        uid: 0,
        clients: 1,
        seconds: 5.0,
        count: 0,
        dir: None,
    };
    let mut p = lexopt::Parser::from_env();
    let val = |p: &mut lexopt::Parser| -> Result<String, String> {
        p.value()
            .map_err(|e| e.to_string())?
            .into_string()
            .map_err(|_| "not UTF-8".to_string())
    };
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Long("op") => o.op = val(&mut p)?,
            Long("conf") => o.conf = Some(val(&mut p)?.into()),
            Long("ccache") => o.ccache = Some(val(&mut p)?.into()),
            Long("dir") => o.dir = Some(val(&mut p)?.into()),
            Long("uid") => o.uid = val(&mut p)?.parse().map_err(|e| format!("--uid: {e}"))?,
            Long("clients") => {
                o.clients = val(&mut p)?
                    .parse()
                    .map_err(|e| format!("--clients: {e}"))?
            }
            Long("seconds") => {
                o.seconds = val(&mut p)?
                    .parse()
                    .map_err(|e| format!("--seconds: {e}"))?
            }
            Long("count") => o.count = val(&mut p)?.parse().map_err(|e| format!("--count: {e}"))?,
            Short('h') | Long("help") => return Err(String::new()),
            a => return Err(a.unexpected().to_string()),
        }
    }
    if o.op.is_empty() {
        return Err("--op is required".into());
    }
    Ok(o)
}

fn client(o: &Opts) -> Result<Client, String> {
    let c = Client::from_config_file(o.conf.as_deref()).map_err(|e| e.to_string())?;
    Ok(c.with_auth_ccache(o.ccache.as_ref().map(|p| format!("FILE:{}", p.display()))))
}

/// A client whose tickets are read from a MEMORY copy of `--ccache`
/// (named `MEMORY:auksd_load-<n>`), as a service holding its tickets in
/// memory does: the load generator then spends its time on the sessions
/// (connect, AP-REQ, KRB-PRIV), not on reading and locking a file.
fn memory_client(o: &Opts, n: usize) -> Result<Client, String> {
    let ctx = Context::new().map_err(|e| e.to_string())?;
    let src = match &o.ccache {
        Some(p) => Ccache::resolve(&ctx, &format!("FILE:{}", p.display())),
        None => Ccache::default(&ctx),
    }
    .map_err(|e| e.to_string())?;
    let name = format!("MEMORY:auksd_load-{n}");
    let mem = Ccache::resolve(&ctx, &name).map_err(|e| e.to_string())?;
    src.copy_to(&mem).map_err(|e| e.to_string())?;
    let c = Client::from_config_file(o.conf.as_deref()).map_err(|e| e.to_string())?;
    Ok(c.with_auth_ccache(Some(name)).keeping_context())
}

fn pct(sorted: &[Duration], p: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[(sorted.len() - 1) * p / 100].as_secs_f64() * 1000.0
}

fn populate(o: &Opts) -> Result<(), String> {
    let src = o.ccache.as_ref().ok_or("--ccache is required")?;
    let dir = o.dir.as_ref().ok_or("--dir is required")?;
    let bytes = std::fs::read(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let t = Instant::now();
    for i in 0..o.count {
        let p = dir.join(format!("aukscc_{}", o.uid + i));
        std::fs::write(&p, &bytes).map_err(|e| format!("{}: {e}", p.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
    }
    println!(
        "op=populate count={} seconds={:.2}",
        o.count,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

fn dump(o: &Opts) -> Result<(), String> {
    let c = client(o)?;
    let t = Instant::now();
    let all = c.dump().map_err(|e| e.to_string())?;
    println!(
        "op=dump records={} seconds={:.3}",
        all.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

fn load(o: &Opts) -> Result<(), String> {
    let data = if o.op == "add" {
        let ctx = Context::new().map_err(|e| e.to_string())?;
        let name = o.ccache.as_ref().map(|p| format!("FILE:{}", p.display()));
        Some(cred::extract_from_ccache(&ctx, name.as_deref()).map_err(|e| e.to_string())?)
    } else {
        None
    };
    // One request first: the service ticket is then in the ccache.
    let c = client(o)?;
    c.ping().map_err(|e| format!("warm-up ping: {e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(o.clients + 1));
    let mut handles = Vec::new();
    for n in 0..o.clients {
        let c = memory_client(o, n)?;
        let (stop, start, data, op, uid) = (
            Arc::clone(&stop),
            Arc::clone(&start),
            data.clone(),
            o.op.clone(),
            o.uid,
        );
        handles.push(
            std::thread::Builder::new()
                .stack_size(512 * 1024)
                .spawn(move || {
                    let (mut lat, mut failed, mut first_err) = (Vec::new(), 0usize, None);
                    start.wait();
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        let r = match op.as_str() {
                            "ping" => c.ping(),
                            "get" => c.get(uid).map(|_| ()),
                            "add" => c.add(data.clone().unwrap_or_default()),
                            _ => unreachable!(),
                        };
                        lat.push(t.elapsed());
                        if let Err(e) = r {
                            failed += 1;
                            first_err.get_or_insert(e.to_string());
                        }
                    }
                    (lat, failed, first_err)
                })
                .map_err(|e| e.to_string())?,
        );
    }
    start.wait();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(o.seconds));
    stop.store(true, Ordering::Relaxed);
    let (mut lat, mut failed, mut err) = (Vec::new(), 0, None);
    for h in handles {
        let (l, f, e) = h.join().map_err(|_| "client thread panicked")?;
        lat.extend(l);
        failed += f;
        err = err.or(e);
    }
    let secs = t0.elapsed().as_secs_f64();
    lat.sort();
    println!(
        "op={} clients={} requests={} failed={failed} seconds={secs:.2} rps={:.1} p50_ms={:.2} p99_ms={:.2} p90_ms={:.2} p999_ms={:.2} max_ms={:.2}",
        o.op,
        o.clients,
        lat.len(),
        (lat.len() - failed) as f64 / secs,
        pct(&lat, 50),
        pct(&lat, 99),
        pct(&lat, 90),
        lat.get((lat.len().max(1) - 1) * 999 / 1000)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        lat.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    );
    if let Some(e) = err {
        eprintln!("auksd_load: first failure: {e}");
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    let r = match o.op.as_str() {
        "populate" => populate(&o),
        "dump" => dump(&o),
        "ping" | "get" | "add" => load(&o),
        other => Err(format!("unknown --op {other}\n{USAGE}")),
    };
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("auksd_load: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
