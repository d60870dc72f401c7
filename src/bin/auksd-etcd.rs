//! auksd-etcd: administration of the replicated auksd repository in etcd
//! (the `Etcd*` keys of the auksd block): key generation, import of a
//! `CacheDir` (ours or C's) and export back, key rotation, status.
//! The logic is in [`auks::store`]; this binary only parses the command line.
use auks::config::{DaemonConfig, EtcdConf};
use auks::krb5::Context;
use auks::store::migrate::{self, Report};
use auks::store::{EtcdRepo, KeyRing, Leader, StoreError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

const USAGE: &str = "usage: auksd-etcd [-h] [--version] [-f conf] COMMAND

Administers the auksd repository kept in etcd (auksd block keys
EtcdEndpoints, EtcdPrefix, EtcdCAFile, EtcdCertFile, EtcdKeyFile,
EtcdSealKeyFile). Credentials are never printed.

commands:
  genkey ID FILE   write a new sealing key file (mode 0600; FILE must not exist)
  import DIR       store every aukscc_<uid> file of DIR (a CacheDir of auksd,
                   C or Rust) in etcd; a fresher credential in etcd is kept
  export DIR       write every credential of etcd to DIR/aukscc_<uid>
  list             uid, principal, end and renew-till times, sealing key id
  reseal           re-seal every credential with the first key (key rotation)
  status           etcd members, number of credentials, lock holders

  -h        print this help and exit
  -f conf   configuration file (default: $AUKSD_CONF, else /etc/auks/auks.conf)
";

enum Cmd {
    GenKey(String, PathBuf),
    Import(PathBuf),
    Export(PathBuf),
    List,
    Reseal,
    Status,
}

fn parse() -> Result<Option<(Option<PathBuf>, Cmd)>, String> {
    use lexopt::prelude::*;
    let mut conf = None;
    let mut words: Vec<String> = Vec::new();
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => return Ok(None),
            Short('f') | Long("config") => {
                conf = Some(PathBuf::from(p.value().map_err(|e| e.to_string())?))
            }
            Value(v) => words.push(v.into_string().map_err(|_| "argument is not UTF-8")?),
            a => return Err(a.unexpected().to_string()),
        }
    }
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let cmd = match w.as_slice() {
        ["genkey", id, file] => Cmd::GenKey(id.to_string(), PathBuf::from(file)),
        ["import", dir] => Cmd::Import(PathBuf::from(dir)),
        ["export", dir] => Cmd::Export(PathBuf::from(dir)),
        ["list"] => Cmd::List,
        ["reseal"] => Cmd::Reseal,
        ["status"] => Cmd::Status,
        [] => return Err("no command".into()),
        _ => return Err(format!("bad command line: {}", words.join(" "))),
    };
    Ok(Some((conf, cmd)))
}

fn etcd_conf(conf: Option<&Path>) -> Result<EtcdConf, String> {
    let c = DaemonConfig::load(conf).map_err(|e| e.to_string())?;
    c.auksd
        .etcd
        .ok_or_else(|| "the auksd block has no EtcdEndpoints: nothing to administer".into())
}

fn print_report(what: &str, r: &Report) {
    println!(
        "{what}: {} written, {} kept (fresher or already current), {} failed",
        r.written,
        r.kept,
        r.failed.len()
    );
    for f in &r.failed {
        eprintln!("auksd-etcd: {f}");
    }
}

fn genkey(id: &str, file: &Path) -> Result<(), String> {
    let text = KeyRing::generate(id).map_err(|e| e.to_string())?;
    let mut f =
        auks::private_file::create(file, false).map_err(|e| format!("{}: {e}", file.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", file.display()))?;
    println!("sealing key {id} written to {}", file.display());
    Ok(())
}

fn run(conf: Option<&Path>, cmd: Cmd) -> Result<bool, String> {
    if let Cmd::GenKey(id, file) = &cmd {
        return genkey(id, file).map(|()| true);
    }
    let ec = etcd_conf(conf)?;
    let repo = EtcdRepo::open(&ec).map_err(|e| e.to_string())?;
    let ctx = || Context::new().map_err(|e| e.to_string());
    let err = |e: StoreError| e.to_string();
    match cmd {
        Cmd::GenKey(..) => unreachable!("handled above"),
        Cmd::Import(dir) => {
            let r = migrate::import(&ctx()?, &repo, &dir).map_err(err)?;
            print_report("import", &r);
            Ok(r.failed.is_empty())
        }
        Cmd::Export(dir) => {
            let r = migrate::export(&ctx()?, &repo, &dir).map_err(err)?;
            print_report("export", &r);
            Ok(r.failed.is_empty())
        }
        Cmd::Reseal => {
            let r = migrate::reseal(&repo).map_err(err)?;
            print_report("reseal", &r);
            Ok(r.failed.is_empty())
        }
        Cmd::List => {
            let (kvs, rev) = repo.etcd().range_prefix(&repo.cred_prefix()).map_err(err)?;
            let mut ok = true;
            println!("# etcd revision {rev}, {} credentials", kvs.len());
            for kv in kvs {
                let id = KeyRing::key_id_of(&kv.value).unwrap_or("?").to_string();
                match repo.keys().open(&kv.key, &kv.value) {
                    Ok(r) => println!(
                        "{} {} end={} renew_till={} key={id}",
                        r.uid,
                        r.principal,
                        auks::timefmt::fmt_time(r.endtime),
                        auks::timefmt::fmt_time(r.renew_till)
                    ),
                    Err(e) => {
                        ok = false;
                        println!("{} (unreadable: {e})", String::from_utf8_lossy(&kv.key));
                    }
                }
            }
            Ok(ok)
        }
        Cmd::Status => {
            let mut ok = true;
            for (ep, st) in repo.etcd().status() {
                match st {
                    Ok(s) => println!("member {ep}: {s}"),
                    Err(e) => {
                        ok = false;
                        println!("member {ep}: DOWN ({e})");
                    }
                }
            }
            match repo.sync() {
                Ok((rev, problems)) => {
                    println!("credentials: {} at revision {rev}", repo.len());
                    for p in problems {
                        println!("  {p}");
                    }
                }
                Err(e) => {
                    ok = false;
                    println!("credentials: unreadable ({e})");
                }
            }
            for name in ["clean", "renewer"] {
                let l = Leader::new(Arc::clone(repo.etcd()), repo.lock_key(name), 10);
                match l.holder() {
                    Ok(h) => println!("lock {name}: {}", h.as_deref().unwrap_or("free")),
                    Err(e) => println!("lock {name}: unknown ({e})"),
                }
            }
            Ok(ok)
        }
    }
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--version") {
        print!("{}", auks::version::text("auksd-etcd"));
        return ExitCode::SUCCESS;
    }
    let (conf, cmd) = match parse() {
        Ok(Some(x)) => x,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("auksd-etcd: {e}\n\n{USAGE}");
            return ExitCode::from(1);
        }
    };
    match run(conf.as_deref(), cmd) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(3),
        Err(e) => {
            eprintln!("auksd-etcd: {e}");
            ExitCode::from(2)
        }
    }
}
