//! The `auks` command line: the usage text, the options (as the C `auks`
//! and its getopt_long, with a hint for a mistyped option) and the parsed
//! [`Command`].

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

pub const USAGE: &str = "\
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
pub enum RenewMode {
    Once,
    Loop,
}

/// The requested action (the last action option wins; ping by default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Action {
    #[default]
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    pub action: Action,
    pub verbose: u32,
    pub debug: u32,
    pub config: Option<PathBuf>,
    /// `None` = the effective uid.
    pub uid: Option<u32>,
    pub ccache: Option<String>,
}

/// Outcome of parsing.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Help,
    Version,
    Run(Command),
}

/// A usage error: message printed before the usage text, exit 1.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

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
pub fn parse<I>(args: I) -> Result<Parsed, UsageError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    use lexopt::Arg;
    let raw: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut p = lexopt::Parser::from_args(raw.clone());
    // getopt semantics: `-C=x` means the ccache "=x".
    p.set_short_equals(false);
    let mut cmd = Command::default();
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
}
