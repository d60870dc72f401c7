//! `auks`: the AUKS command-line client (spec §8).
//!
//! This binary only parses the command line ([`args`]), sets up logging and
//! prints results ([`stdio`], [`table`]); every request is carried out by
//! the `auks` library ([`auks::client`], [`auks::cred`], [`auks::proto`]).

mod args;
mod stdio;
mod table;

use args::{Action, Command, Parsed, RenewMode, USAGE};
use auks::client::{Client, ClientError};
use auks::config::ClientConfig;
use auks::cred::{self, CredError, Placement};
use auks::krb5::Context;
use auks::proto;
use auks::spank::preadd as spank_add;
use auks::spank::remote::prefetch as spank_fetch;
use std::fmt;
use std::io::{self, IsTerminal};
use std::process::ExitCode;
use stdio::{err_line, out_text};
use table::printable;

/// Why a request failed.
pub enum Failure {
    Client(ClientError),
    /// Bad invocation detected after parsing (exit 1).
    Usage(String),
    /// Standard output could not be written (exit 1).
    Output(io::Error),
    /// Unreadable or malformed `--receive` input (exit 9).
    Input(String),
    /// `-R` failed (exit 7, 10 or 11).
    Renew(auks::renew::RenewError),
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Client(e) => u8::try_from(e.exit_code()).unwrap_or(1),
            Failure::Usage(_) | Failure::Output(_) => 1,
            Failure::Input(_) => 9,
            Failure::Renew(e) => u8::try_from(e.exit_code()).unwrap_or(1),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Client(e) => write!(f, "{e}"),
            Failure::Usage(m) | Failure::Input(m) => f.write_str(m),
            Failure::Output(e) => write!(f, "cannot write to standard output: {e}"),
            Failure::Renew(e) => write!(f, "{e}"),
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure::Client(e)
    }
}

impl From<CredError> for Failure {
    fn from(e: CredError) -> Self {
        Failure::Client(ClientError::LocalCred(e))
    }
}

/// Logging (fixes §11.4: -v/-d are not overwritten by the configuration):
/// `-v`/`-d` on standard error; else, with `UseSyslog` (block `api`, as
/// the C AUKS) to syslog (facility user, ident `auks`); else the `LogFile`
/// of the `api` block (or the `renewer` block for `-R`) at its `LogLevel`.
fn setup_logging(cmd: &Command, conf: Option<&ClientConfig>) {
    use auks::logging::{init, syslog, Target};
    let console = cmd.verbose.saturating_add(cmd.debug);
    let renew = matches!(cmd.action, Action::Renew(_));
    let (file, level) = match conf {
        Some(c) if renew => (Some(&c.renewer.log_file), c.renewer.log_level),
        Some(c) => (Some(&c.api.log_file), c.api.log_level),
        None => (None, 0),
    };
    let use_syslog = conf.is_some_and(|c| c.api.use_syslog);
    let target = if console > 0 {
        auks::log::to_stderr(i64::from(console).max(level));
        return;
    } else if level <= 0 {
        Target::Off
    } else if use_syslog {
        Target::Syslog {
            path: syslog::DEV_LOG.into(),
            ident: "auks".into(),
            facility: syslog::FACILITY_USER,
            info_severity: syslog::SEVERITY_INFO,
        }
    } else if let Some(file) = file {
        Target::File(file.clone())
    } else {
        Target::Off
    };
    // A log file or syslog we cannot open must not break the command (as C).
    if init(level, target).is_err() {
        auks::log::off();
    }
}

fn krb5_context() -> Result<Context, Failure> {
    Context::new().map_err(|e| CredError::from(e).into())
}

/// Store a KRB-CRED into the -C ccache or the default one.
fn store(data: &[u8], ccache: Option<&str>) -> Result<String, Failure> {
    let ctx = krb5_context()?;
    Ok(cred::store_krb_cred(
        &ctx,
        data,
        ccache,
        Placement::Replace,
    )?)
}

fn receive(ccache: Option<&str>) -> Result<(), Failure> {
    let blob = stdio::read_blob()?;
    let rec = proto::decode_send_blob(&blob).map_err(|e| {
        Failure::Input(format!(
            "standard input is not a credential blob written by 'auks --send': {e}"
        ))
    })?;
    let name = store(&rec.data, ccache)?;
    auks::log!(
        1,
        "auks : credential of {} (uid {}) stored into {name}",
        printable(&rec.principal),
        rec.uid
    );
    Ok(())
}

fn renew(client: &Client, ccache: Option<&str>, mode: RenewMode) -> Result<(), Failure> {
    // The SPANK plugin starts us from slurmstepd, whose blocked signals we
    // inherit: unblock them so that SIGTERM at job end stops us at once.
    let _ = nix::sys::signal::SigSet::all().thread_unblock();
    auks::renew::run_cli(client, ccache, mode == RenewMode::Loop).map_err(Failure::Renew)
}

fn execute(cmd: &Command, client: Option<&Client>) -> Result<(), Failure> {
    let ccache = cmd.ccache.as_deref();
    let uid = cmd.uid.unwrap_or_else(|| nix::unistd::geteuid().as_raw());
    if cmd.action == Action::Receive {
        return receive(ccache);
    }
    let Some(client) = client else {
        unreachable!("configuration is loaded for every action but --receive")
    };
    match cmd.action {
        Action::Ping => client.ping()?,
        Action::Add => client.add_from_ccache(ccache)?,
        Action::Get => {
            let rec = client.get(uid)?;
            let name = store(&rec.data, ccache)?;
            auks::log!(1, "auks : credential of uid {uid} stored into {name}");
        }
        Action::Remove => client.remove(uid)?,
        Action::Dump => {
            let creds = client.dump()?;
            out_text(&table::dump_table(&creds)).map_err(Failure::Output)?;
        }
        Action::Renew(mode) => renew(client, ccache, mode)?,
        Action::Send => {
            if io::stdout().is_terminal() {
                return Err(Failure::Usage(
                    "refusing to write a credential to a terminal: redirect standard output".into(),
                ));
            }
            let rec = client.get(uid)?;
            let blob = proto::encode_send_blob(&rec);
            stdio::write_raw_stdout(&blob).map_err(Failure::Output)?;
        }
        Action::Receive => unreachable!("handled above"),
    }
    Ok(())
}

fn run(cmd: Command) -> u8 {
    let conf = match ClientConfig::load(cmd.config.as_deref()) {
        Ok(c) => Ok(c),
        // --receive does not use the configuration: only an explicit -f
        // must be valid.
        Err(e) if cmd.action == Action::Receive && cmd.config.is_none() => Err(e),
        Err(e) => {
            err_line(&format!("Auks API init failed : {e}"));
            return 2;
        }
    };
    setup_logging(&cmd, conf.as_ref().ok());
    let client = match conf {
        Ok(c) => {
            for w in &c.warnings {
                auks::log!(1, "auks : configuration: {w}");
            }
            Some(Client::new(c))
        }
        Err(e) => {
            auks::log!(1, "auks : no configuration ({e}); not needed for --receive");
            None
        }
    };
    match execute(&cmd, client.as_ref()) {
        Ok(()) if cmd.action == Action::Send => 0,
        Ok(()) => stdio::print("Auks API request succeed\n"),
        Err(Failure::Output(e)) => {
            stdio::report_output_error(&e);
            1
        }
        Err(f) => {
            err_line(&format!("Auks API request failed : {f}"));
            f.exit_code()
        }
    }
}

fn main() -> ExitCode {
    // A process of its own, mostly short-lived (see bind_lazily).
    auks::krb5::bind_lazily();
    // Internal: the SPANK plugin's helpers (slurmstepd's fetch, srun's ADD).
    let first = std::env::args_os().nth(1);
    let helper: Option<fn(&[String]) -> i32> = match first.as_deref().and_then(|a| a.to_str()) {
        Some(spank_fetch::HELPER_ARG) => Some(spank_fetch::helper_main),
        Some(spank_add::HELPER_ARG) => Some(spank_add::helper_main),
        _ => None,
    };
    if let Some(helper_main) = helper {
        auks::spank::vspawn::adopt_parent(nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::prctl::set_dumpable(false);
        let rest: Vec<String> = std::env::args_os()
            .skip(2)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        return ExitCode::from(helper_main(&rest) as u8);
    }
    let code = match args::parse(std::env::args_os().skip(1)) {
        Ok(Parsed::Help) => stdio::print(USAGE),
        Ok(Parsed::Version) => stdio::print(&auks::version::text("auks")),
        Ok(Parsed::Run(cmd)) => {
            if matches!(cmd.action, Action::Get | Action::Send | Action::Renew(_)) {
                // Holds a credential: no core dump, no ptrace by the same
                // uid (the kernel refuses nothing else). Best effort.
                let _ = nix::sys::prctl::set_dumpable(false);
            }
            run(cmd)
        }
        Err(e) => {
            err_line(&format!("auks: {e}\n\n{USAGE}"));
            1
        }
    };
    ExitCode::from(code)
}
