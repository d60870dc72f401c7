//! Pure parts of the plugin: plugstack arguments, the `--auks` option value,
//! mode resolution (spec §10.1–10.2) and small name helpers. No Slurm and
//! no Kerberos calls here, so everything is unit-tested.

use std::path::PathBuf;

/// Default renewer program (`renewer=` overrides it).
pub const DEFAULT_RENEWER: &str = "/usr/bin/auks";

/// Environment variable carrying the mode from the submit side to the
/// compute side (and from sbatch/salloc to the steps inside the job).
pub const ENV_MODE: &str = "SLURM_SPANK_AUKS";

/// Per-job forwarding mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Nothing to do.
    Disabled,
    /// Submit side: push the user's TGT; compute side: fetch it.
    Enabled,
    /// The TGT was already pushed: compute side fetches it.
    Done,
}

/// `sync=` plugstack argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    No,
    /// `sync=yes` or `sync=all`: one `sync()` before the ticket goes away.
    All,
}

/// How slurmstepd authenticates to auksd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostAuth {
    /// root's default ccache (kept fresh by aukspriv), as in C.
    DefaultCcache,
    /// `hostcredcache=NAME`.
    Ccache(String),
    /// `keytab=PATH[:PRINCIPAL]`: a TGT from the keytab in a private
    /// MEMORY ccache, destroyed after use. `None` = host/<fqdn or hostname>.
    Keytab {
        keytab: String,
        principal: Option<String>,
    },
}

/// Everything the plugstack line configures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginArgs {
    /// `conf=`: auks.conf for the plugin and (new) for the renewer.
    pub conf: Option<PathBuf>,
    /// `default=enabled|disabled`.
    pub default_mode: Mode,
    /// `spankstackcred=yes`.
    pub spankstackcred: bool,
    /// `enforced`.
    pub enforced: bool,
    /// `force_file_ccache`.
    pub force_file_ccache: bool,
    /// `no_cc_switch` (false) or the default (true).
    pub cc_switch: bool,
    /// `minimum_uid=N` (0 = no limit).
    pub minimum_uid: u32,
    /// `hostcredcache=` / `keytab=` (the last one given wins).
    pub host_auth: HostAuth,
    /// `sync=yes|all`.
    pub sync: SyncMode,
    /// `renewer=PATH`.
    pub renewer: PathBuf,
    /// `helper=PATH`: the program of the plugin's helper processes
    /// (`--spank-add` in srun, `--spank-fetch` in slurmstepd), by default
    /// the renewer's (our `auks`); `helper=none`: srun adds and slurmstepd
    /// fetches in their hooks.
    pub helper: HelperProgram,
    /// `fetchagent=PATH`: the socket of this node's fetch agent (aukspriv
    /// with `AUKS_PRIV_FETCH_SOCKET`), asked before a helper is started.
    pub fetch_agent: Option<PathBuf>,
}

/// `helper=`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum HelperProgram {
    /// The `renewer=` program.
    #[default]
    Renewer,
    Path(PathBuf),
    /// No helper processes.
    None,
}

impl PluginArgs {
    /// The program started as `<program> --spank-add|--spank-fetch`, if
    /// any.
    pub fn helper_program(&self) -> Option<&std::path::Path> {
        match &self.helper {
            HelperProgram::Renewer => Some(&self.renewer),
            HelperProgram::Path(p) => Some(p),
            HelperProgram::None => None,
        }
    }
}

impl Default for PluginArgs {
    fn default() -> Self {
        PluginArgs {
            conf: None,
            default_mode: Mode::Disabled,
            spankstackcred: false,
            enforced: false,
            force_file_ccache: false,
            cc_switch: true,
            minimum_uid: 0,
            host_auth: HostAuth::DefaultCcache,
            sync: SyncMode::No,
            renewer: PathBuf::from(DEFAULT_RENEWER),
            helper: HelperProgram::Renewer,
            fetch_agent: None,
        }
    }
}

/// Result of parsing the plugstack arguments: the settings plus one line
/// per argument that was not understood (to be logged, never fatal, so a
/// typo cannot stop slurmd or every srun).
#[derive(Debug, Default)]
pub struct Parsed {
    pub args: PluginArgs,
    pub problems: Vec<String>,
}

/// Parse the arguments that follow the plugin path on the plugstack line.
pub fn parse_args<S: AsRef<str>>(argv: &[S]) -> Parsed {
    let mut p = Parsed::default();
    for raw in argv {
        let a = raw.as_ref();
        let (key, value) = match a.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (a, None),
        };
        let mut bad = |why: &str| p.problems.push(format!("plugstack argument '{a}': {why}"));
        match (key, value) {
            ("conf", Some(v)) if !v.is_empty() => p.args.conf = Some(PathBuf::from(v)),
            ("default", Some("enabled")) => p.args.default_mode = Mode::Enabled,
            ("default", Some("disabled")) => p.args.default_mode = Mode::Disabled,
            ("default", _) => bad("expected default=enabled or default=disabled; ignored"),
            ("spankstackcred", Some("yes")) => p.args.spankstackcred = true,
            ("spankstackcred", Some("no")) => p.args.spankstackcred = false,
            ("spankstackcred", _) => bad("expected spankstackcred=yes; ignored"),
            ("enforced", None) => p.args.enforced = true,
            ("force_file_ccache", None) => p.args.force_file_ccache = true,
            ("no_cc_switch", None) => p.args.cc_switch = false,
            ("minimum_uid", Some(v)) => match v.trim().parse::<u32>() {
                Ok(n) => p.args.minimum_uid = n,
                Err(_) => bad("not a uid (0 to 4294967295); ignored"),
            },
            ("hostcredcache", Some(v)) if !v.is_empty() => {
                p.args.host_auth = HostAuth::Ccache(v.to_string())
            }
            ("keytab", Some(v)) if !v.is_empty() => {
                let (keytab, principal) = split_keytab_arg(v);
                p.args.host_auth = HostAuth::Keytab { keytab, principal };
            }
            ("sync", Some("yes" | "all")) => p.args.sync = SyncMode::All,
            ("sync", Some("no")) => p.args.sync = SyncMode::No,
            ("sync", _) => bad("expected sync=yes or sync=all; ignored"),
            ("renewer", Some(v)) if v.starts_with('/') => p.args.renewer = PathBuf::from(v),
            ("renewer", _) => bad("expected an absolute path; ignored"),
            ("helper", Some("none")) => p.args.helper = HelperProgram::None,
            ("helper", Some(v)) if v.starts_with('/') => {
                p.args.helper = HelperProgram::Path(PathBuf::from(v))
            }
            ("helper", _) => bad("expected an absolute path or none; ignored"),
            ("fetchagent", Some(v)) if v.starts_with('/') => {
                p.args.fetch_agent = Some(PathBuf::from(v))
            }
            ("fetchagent", _) => bad("expected an absolute path; ignored"),
            ("conf" | "hostcredcache" | "keytab", _) => bad("needs a non-empty value; ignored"),
            _ => bad("unknown argument; ignored"),
        }
    }
    p
}

/// `keytab=PATH[:PRINCIPAL]`. PATH may carry a keytab type prefix
/// (`FILE:/etc/krb5.keytab:host/node@REALM`).
pub fn split_keytab_arg(v: &str) -> (String, Option<String>) {
    let (prefix, rest) = match v.split_once(':') {
        Some((t, r)) if !t.is_empty() && t.chars().all(|c| c.is_ascii_uppercase()) => {
            (&v[..t.len() + 1], r)
        }
        _ => ("", v),
    };
    match rest.split_once(':') {
        Some((path, princ)) if !princ.is_empty() => {
            (format!("{prefix}{path}"), Some(princ.to_string()))
        }
        Some((path, _)) => (format!("{prefix}{path}"), None),
        None => (v.to_string(), None),
    }
}

/// Value of `--auks`: `Ok(mode)` or a message for the user.
pub fn parse_option_value(v: Option<&str>) -> Result<Mode, String> {
    match v {
        Some("yes") => Ok(Mode::Enabled),
        Some("no") => Ok(Mode::Disabled),
        Some("done") => Ok(Mode::Done),
        Some(other) => Err(format!(
            "invalid value '{}' for --auks: use --auks=yes, --auks=no or --auks=done",
            other.escape_debug()
        )),
        None => Err("--auks needs a value: use --auks=yes, --auks=no or --auks=done".into()),
    }
}

/// Mode from the `SLURM_SPANK_AUKS` value. On the compute side C reads it
/// into a 5-byte buffer, so a value longer than 4 bytes counts as unset.
pub fn env_mode(value: Option<&str>, remote: bool) -> Option<Mode> {
    let v = value?;
    if remote && v.len() > 4 {
        return None;
    }
    Some(match v {
        "yes" => Mode::Enabled,
        "done" => Mode::Done,
        _ => Mode::Disabled,
    })
}

/// Mode resolution (§10.2): `minimum_uid` first (an unknown uid disables),
/// then the environment variable, then `--auks` or `default=`.
pub fn resolve_mode(
    minimum_uid: u32,
    uid: Option<u32>,
    env: Option<Mode>,
    option: Option<Mode>,
    default: Mode,
) -> Mode {
    if minimum_uid > 0 {
        match uid {
            Some(u) if u >= minimum_uid => {}
            _ => return Mode::Disabled,
        }
    }
    env.or(option).unwrap_or(default)
}

/// Base name of a per-job FILE ccache, `/tmp/krb5cc_<uid>_<jobid>_<suffix>`
/// (rpc.gssd looks for `krb5cc_<uid>*`).
pub fn job_ccache_path(uid: u32, jobid: u32, suffix: &str) -> String {
    format!("/tmp/krb5cc_{uid}_{jobid}_{suffix}")
}

/// Six characters from [A-Za-z0-9] made from random bytes.
pub fn random_suffix(bytes: &[u8; 6]) -> String {
    const SET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    bytes
        .iter()
        .map(|b| SET[usize::from(*b) % SET.len()] as char)
        .collect()
}

/// The ccache type of a ccache name (`TYPE:residual`, a plain path = FILE).
pub fn ccache_type_of(name: &str) -> &str {
    if name.starts_with('/') {
        return "FILE";
    }
    match name.split_once(':') {
        Some((t, _)) if !t.is_empty() => t,
        _ => "FILE",
    }
}

/// Which kind of per-job ccache to create for the node's default type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CcacheKind {
    /// `/tmp/krb5cc_<uid>_<jobid>_<random>`.
    File,
    /// A new unique cache in the default collection of this type.
    Collection,
}

/// FILE unless the default type is a collection type Slurm tasks can use.
pub fn ccache_kind(default_type: &str, force_file: bool) -> CcacheKind {
    if force_file {
        return CcacheKind::File;
    }
    match default_type {
        "DIR" | "KEYRING" | "KCM" => CcacheKind::Collection,
        _ => CcacheKind::File,
    }
}

/// Default principal for `keytab=` without one: `host/<fqdn>` if the
/// keytab has it, else `host/<hostname>`. `names` are the principals in the
/// keytab (`host/name@REALM`). Returns the chosen full principal name.
pub fn pick_host_principal(names: &[String], fqdn: &str, hostname: &str) -> Option<String> {
    let want = |host: &str| {
        names.iter().find(|n| {
            let base = n.rsplit_once('@').map_or(n.as_str(), |(b, _)| b);
            base.eq_ignore_ascii_case(&format!("host/{host}"))
        })
    };
    want(fqdn).or_else(|| want(hostname)).cloned()
}

/// From the text of `/proc/<pid>/status`: is signal `sig` neither blocked
/// (`SigBlk`) nor ignored (`SigIgn`)? Unparsable = yes.
pub fn signal_deliverable(status: &str, sig: i32) -> bool {
    if !(1..=64).contains(&sig) {
        return false;
    }
    let bit = 1u64 << (sig - 1);
    for line in status.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if k == "SigBlk" || k == "SigIgn" {
            if let Ok(mask) = u64::from_str_radix(v.trim(), 16) {
                if mask & bit != 0 {
                    return false;
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let p = parse_args::<&str>(&[]);
        assert_eq!(p.args, PluginArgs::default());
        assert!(p.problems.is_empty());
        assert_eq!(p.args.renewer, PathBuf::from("/usr/bin/auks"));
        assert_eq!(p.args.default_mode, Mode::Disabled);
        assert!(p.args.cc_switch);
    }

    #[test]
    fn every_c_argument() {
        let p = parse_args(&[
            "conf=/etc/auks/auks.conf",
            "default=enabled",
            "spankstackcred=yes",
            "enforced",
            "force_file_ccache",
            "no_cc_switch",
            "minimum_uid=1000",
            "hostcredcache=FILE:/tmp/krb5cc_host",
            "sync=all",
        ]);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        let a = p.args;
        assert_eq!(a.conf, Some(PathBuf::from("/etc/auks/auks.conf")));
        assert_eq!(a.default_mode, Mode::Enabled);
        assert!(a.spankstackcred && a.enforced && a.force_file_ccache && !a.cc_switch);
        assert_eq!(a.minimum_uid, 1000);
        assert_eq!(
            a.host_auth,
            HostAuth::Ccache("FILE:/tmp/krb5cc_host".into())
        );
        assert_eq!(a.sync, SyncMode::All);
        assert_eq!(parse_args(&["sync=yes"]).args.sync, SyncMode::All);
        assert_eq!(
            parse_args(&["default=enabled", "default=disabled"])
                .args
                .default_mode,
            Mode::Disabled
        );
    }

    #[test]
    fn new_arguments() {
        let a = parse_args(&["keytab=/etc/krb5.keytab", "renewer=/opt/auks/bin/auks"]).args;
        assert_eq!(
            a.host_auth,
            HostAuth::Keytab {
                keytab: "/etc/krb5.keytab".into(),
                principal: None
            }
        );
        assert_eq!(a.renewer, PathBuf::from("/opt/auks/bin/auks"));
        // the fetch helper follows renewer= unless helper= names another
        assert_eq!(
            a.helper_program(),
            Some(std::path::Path::new("/opt/auks/bin/auks"))
        );
        let f = |v: &str| parse_args(&[v]);
        assert_eq!(
            f("helper=/usr/libexec/auks").args.helper_program(),
            Some(std::path::Path::new("/usr/libexec/auks"))
        );
        assert_eq!(f("helper=none").args.helper_program(), None);
        assert_eq!(
            f("fetchagent=/run/auks/fetch.sock").args.fetch_agent,
            Some(PathBuf::from("/run/auks/fetch.sock"))
        );
        for bad in ["fetchagent=", "fetchagent=run/x", "fetchagent"] {
            let p = f(bad);
            assert_eq!(p.args.fetch_agent, None, "{bad}");
            assert_eq!(p.problems.len(), 1, "{bad}");
        }
        for bad in ["helper=", "helper=relative/auks", "helper"] {
            let p = f(bad);
            assert_eq!(p.args.helper, HelperProgram::Renewer, "{bad}");
            assert_eq!(p.problems.len(), 1, "{bad}");
        }
        let a = parse_args(&["keytab=/etc/krb5.keytab:host/n1.example.org@EX.ORG"]).args;
        assert_eq!(
            a.host_auth,
            HostAuth::Keytab {
                keytab: "/etc/krb5.keytab".into(),
                principal: Some("host/n1.example.org@EX.ORG".into())
            }
        );
    }

    #[test]
    fn keytab_arg_with_type_prefix() {
        assert_eq!(
            split_keytab_arg("FILE:/etc/krb5.keytab"),
            ("FILE:/etc/krb5.keytab".to_string(), None)
        );
        assert_eq!(
            split_keytab_arg("FILE:/k.kt:host/a@R"),
            ("FILE:/k.kt".to_string(), Some("host/a@R".to_string()))
        );
        assert_eq!(split_keytab_arg("/k.kt:"), ("/k.kt".to_string(), None));
    }

    #[test]
    fn unknown_and_bad_arguments_are_reported_not_fatal() {
        let p = parse_args(&[
            "bogus",
            "default=maybe",
            "minimum_uid=-1",
            "minimum_uid=abc",
            "sync=sometimes",
            "renewer=relative/auks",
            "conf=",
            "enforced=yes",
            "default=enabled",
        ]);
        assert_eq!(p.problems.len(), 8, "{:?}", p.problems);
        assert!(p.problems[0].contains("'bogus'") && p.problems[0].contains("unknown"));
        assert_eq!(p.args.minimum_uid, 0);
        assert!(!p.args.enforced);
        assert_eq!(p.args.default_mode, Mode::Enabled);
        assert_eq!(p.args.renewer, PathBuf::from(DEFAULT_RENEWER));
    }

    #[test]
    fn option_values() {
        assert_eq!(parse_option_value(Some("yes")), Ok(Mode::Enabled));
        assert_eq!(parse_option_value(Some("no")), Ok(Mode::Disabled));
        assert_eq!(parse_option_value(Some("done")), Ok(Mode::Done));
        let e = parse_option_value(Some("maybe")).unwrap_err();
        assert!(e.contains("'maybe'") && e.contains("--auks=yes"), "{e}");
        assert!(parse_option_value(None)
            .unwrap_err()
            .contains("needs a value"));
        assert!(parse_option_value(Some("")).is_err());
    }

    #[test]
    fn env_values() {
        assert_eq!(env_mode(None, true), None);
        assert_eq!(env_mode(Some("yes"), true), Some(Mode::Enabled));
        assert_eq!(env_mode(Some("done"), false), Some(Mode::Done));
        assert_eq!(env_mode(Some("no"), true), Some(Mode::Disabled));
        assert_eq!(env_mode(Some("whatever"), false), Some(Mode::Disabled));
        // remote: longer than 4 bytes = unset (C's 5-byte buffer)
        assert_eq!(env_mode(Some("donee"), true), None);
        assert_eq!(env_mode(Some(""), true), Some(Mode::Disabled));
    }

    #[test]
    fn mode_resolution_order() {
        use Mode::*;
        // env beats option beats default
        assert_eq!(
            resolve_mode(0, None, Some(Done), Some(Disabled), Enabled),
            Done
        );
        assert_eq!(
            resolve_mode(0, None, None, Some(Enabled), Disabled),
            Enabled
        );
        assert_eq!(resolve_mode(0, None, None, None, Enabled), Enabled);
        assert_eq!(
            resolve_mode(0, None, Some(Disabled), Some(Enabled), Enabled),
            Disabled
        );
        // minimum_uid beats everything
        assert_eq!(
            resolve_mode(1000, Some(999), Some(Done), Some(Enabled), Enabled),
            Disabled
        );
        assert_eq!(
            resolve_mode(1000, Some(1000), None, Some(Enabled), Disabled),
            Enabled
        );
        assert_eq!(
            resolve_mode(1000, None, Some(Done), None, Enabled),
            Disabled
        );
        // minimum_uid=0: uid not needed
        assert_eq!(resolve_mode(0, None, None, None, Disabled), Disabled);
    }

    #[test]
    fn names() {
        assert_eq!(
            job_ccache_path(2000, 17, "aB3xYz"),
            "/tmp/krb5cc_2000_17_aB3xYz"
        );
        let s = random_suffix(&[0, 61, 62, 255, 25, 26]);
        assert_eq!(s.len(), 6);
        assert!(s.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(ccache_type_of("/tmp/krb5cc_1"), "FILE");
        assert_eq!(ccache_type_of("FILE:/tmp/x"), "FILE");
        assert_eq!(ccache_type_of("KEYRING:persistent:2000"), "KEYRING");
        assert_eq!(ccache_type_of("DIR::/run/user/2000/krb5cc/tkt"), "DIR");
        assert_eq!(ccache_type_of("KCM:"), "KCM");
        assert_eq!(ccache_kind("FILE", false), CcacheKind::File);
        assert_eq!(ccache_kind("KEYRING", false), CcacheKind::Collection);
        assert_eq!(ccache_kind("KCM", true), CcacheKind::File);
        assert_eq!(ccache_kind("MEMORY", false), CcacheKind::File);
    }

    #[test]
    fn signal_masks() {
        let st = "Name:\tsleep\nSigPnd:\t0000000000000000\nSigBlk:\t0000000000087a07\nSigIgn:\t0000000000000004\n";
        assert!(!signal_deliverable(st, 15)); // SIGTERM blocked
        assert!(!signal_deliverable(st, 3)); // SIGQUIT ignored (and blocked)
        assert!(signal_deliverable(st, 9));
        let free = "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n";
        assert!(signal_deliverable(free, 15));
        assert!(signal_deliverable("garbage", 15));
        assert!(!signal_deliverable(free, 0));
    }

    #[test]
    fn host_principal_choice() {
        let names = vec![
            "host/vm@TEST.REALM".to_string(),
            "host/vm.example.org@TEST.REALM".to_string(),
            "nfs/vm@TEST.REALM".to_string(),
        ];
        assert_eq!(
            pick_host_principal(&names, "vm.example.org", "vm").as_deref(),
            Some("host/vm.example.org@TEST.REALM")
        );
        assert_eq!(
            pick_host_principal(&names[..1], "vm.example.org", "vm").as_deref(),
            Some("host/vm@TEST.REALM")
        );
        assert_eq!(pick_host_principal(&names[2..], "vm", "vm"), None);
    }
}
