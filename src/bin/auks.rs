//! `auks`: the AUKS command-line client (spec §8).
//!
//! This binary only parses the command line, sets up logging and prints
//! results; every request is carried out by the `auks` library
//! ([`auks::client`], [`auks::cred`], [`auks::proto`]).

use auks::client::{Client, ClientError};
use auks::config::ClientConfig;
use auks::cred::{self, CredError, Placement};
use auks::krb5::Context;
use auks::proto::{self, CredRecord};
use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use zeroize::Zeroizing;

const USAGE: &str = "\
Usage: auks [-h] [--version] [-v...] [-d...] [-f conffile] [-C ccache] [-u uid]
            [-p | -a | -g | -r | -D | -R once|loop | --send | --receive]

Options:
  -h, --help            show this message and exit
      --version         show the version (and the Slurm and krb5 it was
                        built against) and exit
  -v, --verbose         increase the verbosity (repeatable); logs go to stderr
  -d, --debug           increase the debug level (repeatable; same scale as -v)
  -f, --config FILE     configuration file (default: $AUKS_CONF, else
                        /etc/auks/auks.conf)
  -p, --ping            ping auksd (default action)
  -a, --add             add the TGT of the -C ccache (or the default ccache)
  -g, --get             get the credential of -u uid and store it into the -C
                        ccache, or else into the default ccache (which is then
                        re-initialised)
  -r, --remove          remove the credential of -u uid
  -D, --dump            list every stored credential (auksd admins only)
  -R, --renew MODE      renew the -C ccache (or the default one): MODE is
                        'once' or 'loop'
  -u, --uid UID         uid whose credential is requested by -g, -r and --send
                        (decimal; default: the effective uid)
  -C, --ccache NAME     ccache to add from or store into (never the one used to
                        authenticate to auksd, which is always the default ccache)
      --send            get the credential of -u uid and write it to stdout as
                        a binary blob (stdout must not be a terminal)
      --receive         read a --send blob from stdin and store it into the -C
                        ccache (or the default one); contacts no daemon, needs
                        no ticket and works without a configuration file
                        (unless -f names one)
When several actions are given, the last one wins.

Exit status:
   0  success
   1  usage error (bad option or argument), or cannot write standard output
   2  configuration error
   3  auksd unreachable
   4  authentication to auksd failed (no or expired ticket of your own?)
   5  permission denied by auksd
   6  no credential stored for that uid
   7  local credential cache problem
   8  request rejected by auksd
   9  protocol error (including a malformed --receive blob)
  10  helper script failed
  11  renewal impossible
";

/// How `-R` renews.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RenewMode {
    Once,
    Loop,
}

/// The requested action (the last action option wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Ping,
    Add,
    Get,
    Remove,
    Dump,
    Renew(RenewMode),
    Send,
    Receive,
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Command {
    action: Action,
    verbose: u32,
    debug: u32,
    config: Option<PathBuf>,
    /// `None` = the effective uid.
    uid: Option<u32>,
    ccache: Option<String>,
}

/// Outcome of parsing.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Help,
    Version,
    Run(Command),
}

/// A usage error: message printed before the usage text, exit 1.
#[derive(Debug, PartialEq, Eq)]
struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<lexopt::Error> for UsageError {
    fn from(e: lexopt::Error) -> Self {
        UsageError(e.to_string())
    }
}

/// Long options; like getopt_long, an unambiguous prefix is accepted.
const LONG_OPTIONS: &[(&str, char)] = &[
    ("help", 'h'),
    ("verbose", 'v'),
    ("debug", 'd'),
    ("config", 'f'),
    ("ping", 'p'),
    ("add", 'a'),
    ("get", 'g'),
    ("remove", 'r'),
    ("dump", 'D'),
    ("renew", 'R'),
    ("uid", 'u'),
    ("ccache", 'C'),
    ("send", 'x'),
    ("receive", 'X'),
];

fn long_option(name: &str) -> Result<char, UsageError> {
    if let Some((_, c)) = LONG_OPTIONS.iter().find(|(n, _)| *n == name) {
        return Ok(*c);
    }
    let matches: Vec<&(&str, char)> = LONG_OPTIONS
        .iter()
        .filter(|(n, _)| !name.is_empty() && n.starts_with(name))
        .collect();
    match matches.as_slice() {
        [(_, c)] => Ok(*c),
        [] => Err(UsageError(format!(
            "invalid option '--{name}'{}",
            hint_word(name)
        ))),
        many => Err(UsageError(format!(
            "option '--{name}' is ambiguous ({})",
            many.iter()
                .map(|(n, _)| format!("--{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn parse_uid(v: &str) -> Result<u32, UsageError> {
    let bad = || {
        UsageError(format!(
            "invalid uid {v:?}: expected a decimal number from 0 to {}",
            u32::MAX - 1
        ))
    };
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    // (uid_t)-1 is "no uid" for the system, not a real account.
    match v.parse::<u32>() {
        Ok(u) if u != u32::MAX => Ok(u),
        _ => Err(bad()),
    }
}

fn parse_renew_mode(v: &str) -> Result<RenewMode, UsageError> {
    match v {
        "once" => Ok(RenewMode::Once),
        "loop" => Ok(RenewMode::Loop),
        _ => Err(UsageError(format!(
            "invalid renew mode {v:?}: expected 'once' or 'loop'"
        ))),
    }
}

fn string_value(v: OsString, what: &str) -> Result<String, UsageError> {
    let s = v
        .into_string()
        .map_err(|v| UsageError(format!("{what} {v:?} is not valid UTF-8")))?;
    if s.is_empty() {
        return Err(UsageError(format!("{what} must not be empty")));
    }
    Ok(s)
}

/// `; did you mean '--get'?` when `word` (with or without dashes) is close
/// to a long option, else nothing.
fn hint_word(word: &str) -> String {
    let mut names: Vec<&str> = LONG_OPTIONS.iter().map(|(n, _)| *n).collect();
    names.push("version");
    let w = word.trim_start_matches('-');
    let w = w.split_once('=').map_or(w, |(n, _)| n);
    match auks::suggest::closest(w, &names) {
        Some(n) => format!("; did you mean '--{n}'?"),
        None => String::new(),
    }
}

/// The hint for an unknown short option `c`: a long option written with
/// one dash (`-get`), or the same letter in the other case (`-G`).
fn hint_short(c: char, raw: &[OsString]) -> String {
    for a in raw {
        let a = a.to_string_lossy();
        if let Some(w) = a.strip_prefix('-').filter(|w| w.len() > 1 && w.contains(c)) {
            if LONG_OPTIONS.iter().any(|(n, _)| n == &w) || w == "version" {
                return format!("; did you mean '--{w}'?");
            }
        }
    }
    let other: Vec<char> = if c.is_ascii_lowercase() {
        c.to_uppercase().collect()
    } else {
        c.to_lowercase().collect()
    };
    match other.as_slice() {
        [o] if SHORT_OPTIONS.contains(*o) => format!("; did you mean '-{o}'?"),
        _ => String::new(),
    }
}

/// The short options (as the C `auks`).
const SHORT_OPTIONS: &str = "hvdfpagrDRuC";

/// Parse the arguments (without the program name).
fn parse<I>(args: I) -> Result<Parsed, UsageError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    use lexopt::Arg;
    let raw: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut p = lexopt::Parser::from_args(raw.clone());
    // getopt semantics: `-C=x` means the ccache "=x".
    p.set_short_equals(false);
    let mut cmd = Command {
        action: Action::Ping,
        verbose: 0,
        debug: 0,
        config: None,
        uid: None,
        ccache: None,
    };
    while let Some(arg) = p.next()? {
        let opt = match arg {
            Arg::Short(c) if SHORT_OPTIONS.contains(c) => c,
            // Exact only: `--ver` stays `--verbose`, as with the C getopt_long.
            Arg::Long("version") => return Ok(Parsed::Version),
            Arg::Long(name) => long_option(name)?,
            Arg::Short(c) => {
                let hint = hint_short(c, &raw);
                return Err(UsageError(format!("{}{hint}", Arg::Short(c).unexpected())));
            }
            Arg::Value(v) => {
                let hint = hint_word(&v.to_string_lossy());
                return Err(UsageError(format!("{}{hint}", Arg::Value(v).unexpected())));
            }
        };
        match opt {
            'h' => return Ok(Parsed::Help),
            'v' => cmd.verbose = cmd.verbose.saturating_add(1),
            'd' => cmd.debug = cmd.debug.saturating_add(1),
            'f' => {
                let v = p.value()?;
                if v.is_empty() {
                    return Err(UsageError(
                        "configuration file name must not be empty".into(),
                    ));
                }
                cmd.config = Some(PathBuf::from(v));
            }
            'p' => cmd.action = Action::Ping,
            'a' => cmd.action = Action::Add,
            'g' => cmd.action = Action::Get,
            'r' => cmd.action = Action::Remove,
            'D' => cmd.action = Action::Dump,
            'x' => cmd.action = Action::Send,
            'X' => cmd.action = Action::Receive,
            'R' => {
                let v = string_value(p.value()?, "renew mode")?;
                cmd.action = Action::Renew(parse_renew_mode(&v)?);
            }
            'u' => {
                let v = p.value()?;
                let s = v.to_string_lossy();
                cmd.uid = Some(parse_uid(&s)?);
            }
            'C' => cmd.ccache = Some(string_value(p.value()?, "ccache name")?),
            _ => unreachable!("option table and match disagree"),
        }
    }
    Ok(Parsed::Run(cmd))
}

// ---------------------------------------------------------------------------
// Running

/// Why a request failed.
enum Failure {
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

/// Write to stderr, ignoring errors (there is nowhere left to report them).
fn err_line(msg: &str) {
    let _ = writeln!(io::stderr().lock(), "{msg}");
}

/// Write to stdout; `Err` on a write error (e.g. closed pipe).
fn out_text(text: &str) -> io::Result<()> {
    let mut o = io::stdout().lock();
    o.write_all(text.as_bytes())?;
    o.flush()
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

/// Replace control characters in peer-provided text.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// `%FT%T%z` in local time, as C `strftime`; `None` if out of range.
fn local_time(t: i64) -> Option<String> {
    use chrono::TimeZone;
    chrono::Local
        .timestamp_opt(t, 0)
        .single()
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%z").to_string())
}

/// The dump table (§8.2), formatted as C `_print_creds`.
fn dump_table(creds: &[CredRecord]) -> String {
    let mut s = format!(
        "{:<10} {:<34} {:<24} {:<24} {:<24}\n",
        "UID", "PRINCIPAL", "START_TIME", "END_TIME", "RENEW_UNTIL"
    );
    for c in creds {
        // C skips a row whose times localtime() cannot convert.
        let (Some(start), Some(end), Some(renew)) = (
            local_time(c.starttime),
            local_time(c.endtime),
            local_time(c.renew_till),
        ) else {
            continue;
        };
        s.push_str(&format!(
            "{:<10} {:<34} {start} {end} {renew}\n",
            c.uid,
            printable(&c.principal)
        ));
    }
    s
}

/// Write bytes to stdout without going through std's buffer, so the only
/// copy of the credential is the caller's zeroizing one.
fn write_raw_stdout(data: &[u8]) -> io::Result<()> {
    let fd = io::stdout().as_fd().try_clone_to_owned()?;
    let mut f = File::from(fd);
    f.write_all(data)?;
    f.flush()
}

/// Read the `--receive` blob from stdin, bounded and unbuffered.
fn read_blob() -> Result<Zeroizing<Vec<u8>>, Failure> {
    const SLACK: usize = 64;
    let limit = proto::SEND_BLOB_PREFIX + 4 + proto::RECORD_LEN + SLACK;
    let stdin = io::stdin();
    if stdin.is_terminal() {
        return Err(Failure::Usage(
            "standard input is a terminal: pipe a blob written by 'auks --send' into --receive"
                .into(),
        ));
    }
    let fd = stdin
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| Failure::Input(format!("cannot read standard input: {e}")))?;
    let mut f = File::from(fd);
    // Fixed-size buffer: never reallocated, so no unzeroed copy is left.
    let mut buf = Zeroizing::new(vec![0u8; limit + 1]);
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Failure::Input(format!("cannot read standard input: {e}"))),
        }
    }
    if n > limit {
        return Err(Failure::Input(format!(
            "more than {limit} bytes on standard input: not a credential blob written by 'auks --send'"
        )));
    }
    buf.truncate(n);
    Ok(buf)
}

fn receive(ccache: Option<&str>) -> Result<(), Failure> {
    let blob = read_blob()?;
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
            out_text(&dump_table(&creds)).map_err(Failure::Output)?;
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
            write_raw_stdout(&blob).map_err(Failure::Output)?;
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
        Ok(()) => match out_text("Auks API request succeed\n") {
            Ok(()) => 0,
            Err(e) => {
                report_output_error(&e);
                1
            }
        },
        Err(Failure::Output(e)) => {
            report_output_error(&e);
            1
        }
        Err(f) => {
            err_line(&format!("Auks API request failed : {f}"));
            f.exit_code()
        }
    }
}

fn report_output_error(e: &io::Error) {
    // A reader that went away (`auks -D | head -1`) is not worth a message.
    if e.kind() != io::ErrorKind::BrokenPipe {
        err_line(&format!("auks: cannot write to standard output: {e}"));
    }
}

fn main() -> ExitCode {
    let code = match parse(std::env::args_os().skip(1)) {
        Ok(Parsed::Help) => match out_text(USAGE) {
            Ok(()) => 0,
            Err(e) => {
                report_output_error(&e);
                1
            }
        },
        Ok(Parsed::Version) => match out_text(&auks::version::text("auks")) {
            Ok(()) => 0,
            Err(e) => {
                report_output_error(&e);
                1
            }
        },
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(args: &[&str]) -> Command {
        match parse(args.iter().copied()) {
            Ok(Parsed::Run(c)) => c,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn usage_err(args: &[&str]) -> String {
        match parse(args.iter().copied()) {
            Err(UsageError(m)) => m,
            other => panic!("{args:?} should be a usage error: {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = cmd(&[]);
        assert_eq!(
            c,
            Command {
                action: Action::Ping,
                verbose: 0,
                debug: 0,
                config: None,
                uid: None,
                ccache: None,
            }
        );
    }

    #[test]
    fn each_action() {
        for (a, want) in [
            ("-p", Action::Ping),
            ("--ping", Action::Ping),
            ("-a", Action::Add),
            ("--add", Action::Add),
            ("-g", Action::Get),
            ("--get", Action::Get),
            ("-r", Action::Remove),
            ("--remove", Action::Remove),
            ("-D", Action::Dump),
            ("--dump", Action::Dump),
            ("--send", Action::Send),
            ("--receive", Action::Receive),
        ] {
            assert_eq!(cmd(&[a]).action, want, "{a}");
        }
    }

    #[test]
    fn last_action_wins() {
        assert_eq!(cmd(&["-g", "-r", "-a"]).action, Action::Add);
        assert_eq!(cmd(&["--send", "-p"]).action, Action::Ping);
        assert_eq!(cmd(&["-R", "once", "--receive"]).action, Action::Receive);
        assert_eq!(
            cmd(&["--dump", "-R", "loop"]).action,
            Action::Renew(RenewMode::Loop)
        );
        assert_eq!(cmd(&["-agD"]).action, Action::Dump);
    }

    #[test]
    fn help() {
        assert_eq!(parse(["-h"]), Ok(Parsed::Help));
        assert_eq!(parse(["--help"]), Ok(Parsed::Help));
        assert_eq!(parse(["-a", "-h", "-u", "abc"]), Ok(Parsed::Help));
    }

    #[test]
    fn repeatable_levels() {
        let c = cmd(&["-v", "-vv", "--verbose", "-d", "--debug"]);
        assert_eq!((c.verbose, c.debug), (4, 2));
    }

    #[test]
    fn uid_values() {
        assert_eq!(cmd(&["-u", "1000"]).uid, Some(1000));
        assert_eq!(cmd(&["-u1000"]).uid, Some(1000));
        assert_eq!(cmd(&["--uid", "0"]).uid, Some(0));
        assert_eq!(cmd(&["--uid=42"]).uid, Some(42));
        assert_eq!(cmd(&["-u", "4294967294"]).uid, Some(4_294_967_294));
        assert_eq!(cmd(&["-u", "1", "-u", "2"]).uid, Some(2));
        for bad in [
            "abc",
            "-5",
            "",
            "+5",
            " 5",
            "5x",
            "4294967295",
            "99999999999",
            "0x10",
        ] {
            let m = usage_err(&["-u", bad]);
            assert!(m.contains("invalid uid"), "{bad:?}: {m}");
        }
        // getopt semantics: "-u=5" has the value "=5"
        assert!(usage_err(&["-u=5"]).contains("invalid uid"));
    }

    #[test]
    fn renew_values() {
        assert_eq!(cmd(&["-R", "once"]).action, Action::Renew(RenewMode::Once));
        assert_eq!(cmd(&["-Rloop"]).action, Action::Renew(RenewMode::Loop));
        assert_eq!(
            cmd(&["--renew", "loop"]).action,
            Action::Renew(RenewMode::Loop)
        );
        assert_eq!(
            cmd(&["--renew=once"]).action,
            Action::Renew(RenewMode::Once)
        );
        for bad in ["bogus", "ONCE", "onc", "once ", "loopy"] {
            assert!(
                usage_err(&["-R", bad]).contains("invalid renew mode"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn missing_values() {
        for opt in [
            "-u", "--uid", "-R", "--renew", "-C", "--ccache", "-f", "--config",
        ] {
            let m = usage_err(&[opt]);
            assert!(m.contains("missing argument"), "{opt}: {m}");
        }
    }

    #[test]
    fn values_may_look_like_options() {
        // as getopt: a required argument is taken verbatim
        assert_eq!(cmd(&["-C", "-a"]).ccache.as_deref(), Some("-a"));
        assert_eq!(cmd(&["-C", "-a"]).action, Action::Ping);
    }

    #[test]
    fn unknown_options_and_arguments() {
        for args in [
            &["-H", "x"][..],
            &["-x"],
            &["-X"],
            &["--bogus-option"],
            &["stray"],
            &["-p", "--", "-a"],
            &["--ping=yes"],
        ] {
            usage_err(args);
        }
        // a bare "--" ends options and is harmless
        assert_eq!(cmd(&["--"]).action, Action::Ping);
        assert!(usage_err(&["-H"]).contains("invalid option '-H'"));
        assert!(usage_err(&["--bogus"]).contains("invalid option '--bogus'"));
        assert!(!usage_err(&["--bogus"]).contains("did you mean"));
    }

    #[test]
    fn typos_get_a_suggestion() {
        assert!(usage_err(&["--gte"]).ends_with("did you mean '--get'?"));
        assert!(usage_err(&["--recieve"]).ends_with("did you mean '--receive'?"));
        assert!(usage_err(&["--cache=x"]).ends_with("did you mean '--ccache'?"));
        assert!(usage_err(&["get"]).ends_with("did you mean '--get'?"));
        assert!(usage_err(&["-G"]).ends_with("did you mean '-g'?"));
        assert!(usage_err(&["-c", "x"]).ends_with("did you mean '-C'?"));
        assert!(usage_err(&["-ping"]).ends_with("did you mean '--ping'?"));
        assert!(usage_err(&["--versoin"]).ends_with("did you mean '--version'?"));
    }

    #[test]
    fn version_is_exact_and_verbose_prefixes_still_work() {
        assert_eq!(parse(["--version"]), Ok(Parsed::Version));
        assert_eq!(parse(["-p", "--version"]), Ok(Parsed::Version));
        assert_eq!(cmd(&["--ver"]).verbose, 1);
        assert_eq!(cmd(&["--verb", "--verbose"]).verbose, 2);
    }

    #[test]
    fn long_options_with_equals_and_separate_values() {
        let c = cmd(&[
            "--config=/etc/a.conf",
            "--ccache",
            "FILE:/tmp/x",
            "--uid",
            "7",
            "--get",
        ]);
        assert_eq!(c.config, Some(PathBuf::from("/etc/a.conf")));
        assert_eq!(c.ccache.as_deref(), Some("FILE:/tmp/x"));
        assert_eq!(c.uid, Some(7));
        assert_eq!(c.action, Action::Get);
        let c = cmd(&["--config", "/etc/b.conf", "--ccache=KEYRING:persistent:1"]);
        assert_eq!(c.config, Some(PathBuf::from("/etc/b.conf")));
        assert_eq!(c.ccache.as_deref(), Some("KEYRING:persistent:1"));
        let c = cmd(&["-f/etc/c.conf", "-CFILE:/tmp/y"]);
        assert_eq!(c.config, Some(PathBuf::from("/etc/c.conf")));
        assert_eq!(c.ccache.as_deref(), Some("FILE:/tmp/y"));
    }

    #[test]
    fn empty_values_refused() {
        assert!(usage_err(&["-C", ""]).contains("must not be empty"));
        assert!(usage_err(&["--config="]).contains("must not be empty"));
    }

    #[test]
    fn long_option_prefixes() {
        assert_eq!(cmd(&["--rec"]).action, Action::Receive);
        assert_eq!(cmd(&["--se"]).action, Action::Send);
        assert_eq!(cmd(&["--du"]).action, Action::Dump);
        assert_eq!(cmd(&["--u", "3"]).uid, Some(3));
        assert!(usage_err(&["--re"]).contains("ambiguous"));
        assert!(usage_err(&["--r"]).contains("ambiguous"));
    }

    #[test]
    fn dump_table_format() {
        let rec = CredRecord {
            principal: "alice@TEST.REALM".into(),
            uid: 3001,
            starttime: 1_700_000_000,
            endtime: 1_700_036_000,
            renew_till: 1_700_604_800,
            addressless: true,
            crossrealm: false,
            data: Zeroizing::new(vec![1, 2, 3]),
            status: 0,
        };
        let t = dump_table(&[rec]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            format!(
                "{:<10} {:<34} {:<24} {:<24} {:<24}",
                "UID", "PRINCIPAL", "START_TIME", "END_TIME", "RENEW_UNTIL"
            )
        );
        let row = lines[1];
        assert!(
            row.starts_with("3001       alice@TEST.REALM                   "),
            "{row:?}"
        );
        let times: Vec<&str> = row[46..].split(' ').collect();
        assert_eq!(times.len(), 3, "{row:?}");
        for t in times {
            // e.g. 2023-11-14T22:13:20+0000
            assert_eq!(t.len(), 24, "{t:?}");
            assert_eq!(&t[10..11], "T");
            assert!(
                t[19..].starts_with('+') || t[19..].starts_with('-'),
                "{t:?}"
            );
        }
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn control_chars_in_principal_are_neutralised() {
        assert_eq!(printable("a\x1b[2Jb\n"), "a?[2Jb?");
    }
}
