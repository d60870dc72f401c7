//! aukspriv: keeps a TGT obtained from a keytab fresh in root's (or
//! `AUKS_PRIV_USER`'s) ccache (spec §7). The logic is in [`auks::aukspriv`].
use auks::aukspriv::{self, PrivLog, Settings};
use auks::spank::remote::agent;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

const USAGE: &str = "usage: aukspriv [-h] [-v] [-F]

Keeps a TGT obtained from a keytab valid in a credential cache, for the AUKS
programs that run as root (auksdrenewer, the Slurm plugin).

  -h          print this help and exit
  --version   print the version (and the Slurm and krb5 built against) and exit
  -v          stay in the foreground and log to standard output
  -F          stay in the foreground (for systemd); log as configured
Without -v or -F, aukspriv detaches itself (daemon) and logs to syslog.

Environment (e.g. from /etc/sysconfig/aukspriv):
  AUKS_PRIV_USER         account whose ccache is refreshed (default root)
  AUKS_PRIV_KEYTAB       keytab (default /etc/krb5.keytab)
  AUKS_PRIV_PRINC        principal (default: host/<this host>@ if the keytab
                         holds it, else the keytab's first principal)
  AUKS_PRIV_CCACHE       ccache to refresh (default: FILE:/run/auks/krb5cc_0
                         for root, in a root-owned directory created 0700;
                         /tmp/krb5cc_<uid> for another account)
  AUKS_PRIV_LIFETIME     requested ticket lifetime, s (default 36000)
  AUKS_PRIV_RENEW_INT    seconds between refreshes (default 35000; shortened
                         to 90% of the ticket life when that is shorter)
  AUKS_PRIV_ERROR_INT    seconds before a retry after a failure (default 60)
  AUKS_PRIV_SYSLOG_PRIO  syslog priority (default local3.notice; none =
                         standard output)
  AUKS_PRIV_FETCH_SOCKET serve the SPANK plugin's fetches on this node at
                         this Unix socket (e.g. /run/auks/fetch.sock, in a
                         directory of root's; plugstack fetchagent=)
SIGHUP refreshes at once; SIGTERM or SIGINT stops it.
";

fn main() -> ExitCode {
    // No core dumps, no ptrace by other processes of the same uid: this
    // process holds a keytab-derived TGT.
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        eprintln!("aukspriv: cannot disable core dumps (PR_SET_DUMPABLE): {e}");
        return ExitCode::from(2);
    }
    let (mut verbose, mut foreground) = (false, false);
    let mut p = lexopt::Parser::from_env();
    loop {
        use lexopt::prelude::*;
        match p.next() {
            Ok(None) => break,
            Ok(Some(Short('h') | Long("help"))) => {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            Ok(Some(Long("version"))) => {
                print!("{}", auks::version::text("aukspriv"));
                return ExitCode::SUCCESS;
            }
            Ok(Some(Short('v') | Long("verbose"))) => verbose = true,
            Ok(Some(Short('F') | Long("foreground"))) => foreground = true,
            Ok(Some(a)) => {
                eprintln!("aukspriv: {}\n\n{USAGE}", a.unexpected());
                return ExitCode::from(1);
            }
            Err(e) => {
                eprintln!("aukspriv: {e}\n\n{USAGE}");
                return ExitCode::from(1);
            }
        }
    }
    let settings = match Settings::from_env(|k| std::env::var(k).ok()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("aukspriv: {e}");
            return ExitCode::from(2);
        }
    };
    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    for (sig, flag) in [
        (signal_hook::consts::SIGTERM, &term),
        (signal_hook::consts::SIGINT, &term),
        (signal_hook::consts::SIGHUP, &hup),
    ] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(flag)) {
            eprintln!("aukspriv: cannot install signal handler: {e}");
            return ExitCode::from(2);
        }
    }
    // The syslog socket is opened before detaching, so that errors are
    // still visible on the terminal.
    let log = match PrivLog::new(verbose, &settings.syslog_prio) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("aukspriv: {e}");
            return ExitCode::from(2);
        }
    };
    // The fetch agent's socket, bound before detaching so that a refusal
    // is seen on the terminal.
    let agent_at = match std::env::var_os("AUKS_PRIV_FETCH_SOCKET").filter(|s| !s.is_empty()) {
        None => None,
        Some(p) => {
            let p = std::path::PathBuf::from(p);
            match agent::bind(&p) {
                Ok(l) => Some((p, l)),
                Err(e) => {
                    log.error(&format!("cannot serve fetches at {}: {e}", p.display()));
                    return ExitCode::from(2);
                }
            }
        }
    };
    if !verbose && !foreground {
        if let Err(e) = nix::unistd::daemon(false, false) {
            eprintln!("aukspriv: cannot daemonize: {e}");
            return ExitCode::from(2);
        }
    }
    // Served until aukspriv stops; its socket is then removed.
    let socket = match agent_at {
        None => None,
        Some((p, l)) => {
            log.info(&format!(
                "serving the SPANK plugin's fetches at {}",
                p.display()
            ));
            let msg: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(move |m: &str| log.error(m));
            if let Err(e) = agent::start(l, Arc::clone(&term), msg) {
                log.error(&format!("cannot start the fetch agent: {e}"));
                return ExitCode::from(2);
            }
            Some(p)
        }
    };
    aukspriv::run(&settings, &log, &term, &hup);
    if let Some(p) = socket {
        let _ = std::fs::remove_file(p);
    }
    ExitCode::SUCCESS
}
