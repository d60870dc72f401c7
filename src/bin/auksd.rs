//! auksd: the AUKS credential repository daemon.
use auks::daemon::{self, Options};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: auksd [-h] [-t] [-v...] [-d...] [-F] [-f conf]

  -h        print this help and exit
  -v        raise the log level (repeatable); implies foreground
  -d        raise the debug level (repeatable); implies foreground
  -F        stay in the foreground and log to standard error
  -t        check the configuration, the ACL and the keytab, then exit
            (status 0 when usable, 1 otherwise), like sshd -t
  -f conf   configuration file (default: $AUKSD_CONF, else /etc/auks/auks.conf)
";

fn parse() -> Result<Options, String> {
    use lexopt::prelude::*;
    let mut o = Options::default();
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            Short('v') | Long("verbose") => o.verbose += 1,
            Short('d') | Long("debug") => o.debug += 1,
            Short('F') | Long("foreground") => o.foreground = true,
            Short('t') | Long("test") => o.test = true,
            Short('f') | Long("config") => {
                o.conf = Some(PathBuf::from(p.value().map_err(|e| e.to_string())?))
            }
            a => return Err(a.unexpected().to_string()),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let opts = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("auksd: {e}\n{USAGE}");
            return ExitCode::from(1);
        }
    };
    if opts.test {
        return match daemon::check(&opts) {
            Ok(warnings) => {
                for w in warnings {
                    eprintln!("auksd: warning: {w}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("auksd: {e}");
                ExitCode::from(1)
            }
        };
    }
    match daemon::run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            auks::log!(1, "auksd : fatal: {e}");
            eprintln!("auksd: {e}");
            ExitCode::from(2)
        }
    }
}
