//! auksdrenewer: keeps the credentials stored in auksd renewed (spec §6).
//! The logic is in [`auks::renew`]; this binary only parses the command line.
use auks::renew::{self, RenewerOptions};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: auksdrenewer [-h] [-v...] [-d...] [-F] [-f conf] [-l logfile]

Renews, at the KDC, every credential stored in auksd whose remaining life is
at most the renewer MinLifeTime, until the end of its renewable period, and
adds it back to auksd. Checks every renewer Delay seconds. Authenticates with
its default ccache (kept fresh by aukspriv); its principal must be an auksd
admin. SIGHUP reloads the configuration, SIGTERM stops it.

  -h          print this help and exit
  --version   print the version (and the Slurm and krb5 built against) and exit
  -v          raise the log level (repeatable); foreground, logs to stderr
  -d          raise the debug level (repeatable); foreground, logs to stderr
  -F          stay in the foreground, log to stderr at the configured level
  -f conf     configuration file (default: $AUKS_CONF, else /etc/auks/auks.conf)
  -l logfile  log file (default: the renewer LogFile of the configuration)
";

fn parse() -> Result<Option<RenewerOptions>, String> {
    use lexopt::prelude::*;
    let mut o = RenewerOptions::default();
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => return Ok(None),
            Long("version") => {
                print!("{}", auks::version::text("auksdrenewer"));
                std::process::exit(0);
            }
            Short('v') | Long("verbose") => o.verbose += 1,
            Short('d') | Long("debug") => o.debug += 1,
            Short('F') | Long("foreground") => o.foreground = true,
            Short('f') | Long("config") => {
                o.conf = Some(PathBuf::from(p.value().map_err(|e| e.to_string())?))
            }
            Short('l') | Long("logfile") => {
                o.log_file = Some(PathBuf::from(p.value().map_err(|e| e.to_string())?))
            }
            a => return Err(a.unexpected().to_string()),
        }
    }
    Ok(Some(o))
}

fn main() -> ExitCode {
    // No core dumps, no ptrace by other processes of the same uid: this
    // process holds the credentials it renews.
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        eprintln!("auksdrenewer: cannot disable core dumps (PR_SET_DUMPABLE): {e}");
        return ExitCode::from(2);
    }
    let opts = match parse() {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("auksdrenewer: {e}\n\n{USAGE}");
            return ExitCode::from(1);
        }
    };
    match renew::run_renewer(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            auks::log!(1, "auksdrenewer : fatal: {e}");
            eprintln!("auksdrenewer: {e}");
            ExitCode::from(2)
        }
    }
}
