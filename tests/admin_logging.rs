//! The logging backends, seen from outside: the C AUKS file format line for
//! line (log file and `-v` on stderr), journal priorities on stderr when
//! `JOURNAL_STREAM` names it (and not when it names another stream), and
//! records arriving at a syslog socket the test listens on.
//!
//! The programs run without a KDC: `auks -p` against a closed loopback port
//! with no ticket of its own logs a configuration warning (level 1) and the
//! failed attempts (level 2), then exits 4.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn write_conf(dir: &Path, api: &str) -> std::path::PathBuf {
    let conf = dir.join("auks.conf");
    fs::write(
        &conf,
        format!(
            "common {{\n PrimaryHost = \"127.0.0.1\" ; PrimaryPort = 1 ;\n \
             PrimaryPrincipal = \"host/x@TEST.REALM\" ;\n SecondaryHost = \"127.0.0.1\" ;\n \
             SecondaryPort = 1 ; SecondaryPrincipal = \"host/x@TEST.REALM\" ;\n \
             Retries = 1 ; Timeout = 1 ; Delay = 1 ;\n}}\napi {{\n {api}\n Bogus = 1 ;\n}}\n"
        ),
    )
    .unwrap();
    conf
}

fn auks(dir: &Path, conf: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_auks"));
    c.args(args)
        .arg("-f")
        .arg(conf)
        .env(
            "KRB5CCNAME",
            format!("FILE:{}/no-such-ccache", dir.display()),
        )
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null());
    c
}

/// `<ctime> [INFO<n>] [euid=<euid>,pid=<pid>] <text>` of the C xlogger.
fn c_line_re(pid: u32) -> regex::Regex {
    regex::Regex::new(&format!(
        r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 123]\d \d\d:\d\d:\d\d \d{{4}} \[(INFO[1-9]|ERROR)\] \[euid={},pid={pid}\] \S.*$",
        nix::unistd::geteuid()
    ))
    .unwrap()
}

fn run(mut c: Command) -> (Output, u32) {
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    (child.wait_with_output().unwrap(), pid)
}

#[test]
fn log_file_lines_are_in_the_c_format() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("api.log");
    let conf = write_conf(
        dir.path(),
        &format!("LogFile = \"{}\" ; LogLevel = 2 ;", log.display()),
    );
    let (out, pid) = run(auks(dir.path(), &conf, &["-p"]));
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let text = fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 2, "{text}");
    let re = c_line_re(pid);
    for l in &lines {
        assert!(re.is_match(l), "not a C AUKS log line: {l:?}");
    }
    assert!(
        lines[0].contains("[INFO1]")
            && lines[0].ends_with("unknown key 'Bogus' in block 'api' ignored"),
        "{}",
        lines[0]
    );
    assert!(lines.iter().any(|l| l.contains("[INFO2]")), "{text}");
    assert!(text.ends_with('\n'));

    // LogLevel 1: the level-2 lines are left out.
    fs::remove_file(&log).unwrap();
    let conf = write_conf(
        dir.path(),
        &format!("LogFile = \"{}\" ; LogLevel = 1 ;", log.display()),
    );
    run(auks(dir.path(), &conf, &["-p"]));
    let text = fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("[INFO1]"));
}

#[test]
fn verbose_lines_on_stderr_are_in_the_c_format() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_conf(dir.path(), "LogLevel = 0 ;");
    let (out, pid) = run(auks(dir.path(), &conf, &["-v", "-p"]));
    let err = String::from_utf8(out.stderr).unwrap();
    let re = c_line_re(pid);
    let logged: Vec<&str> = err.lines().filter(|l| l.contains("[euid=")).collect();
    assert!(!logged.is_empty(), "{err}");
    for l in logged {
        assert!(re.is_match(l), "{l:?}");
    }
}

/// Run `auks -v -p` with stderr a pipe; `JOURNAL_STREAM` names that pipe
/// (`matching`) or another file.
fn stderr_with_journal_stream(matching: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_conf(dir.path(), "LogLevel = 0 ;");
    let (r, w): (OwnedFd, OwnedFd) = nix::unistd::pipe().unwrap();
    let st = if matching {
        nix::sys::stat::fstat(w.as_raw_fd()).unwrap()
    } else {
        nix::sys::stat::stat(&conf).unwrap()
    };
    let mut c = auks(dir.path(), &conf, &["-v", "-v", "-p"]);
    c.env("JOURNAL_STREAM", format!("{}:{}", st.st_dev, st.st_ino))
        .stdout(Stdio::null())
        .stderr(Stdio::from(w));
    let mut child = c.spawn().unwrap();
    drop(c); // closes our copy of the write end
    let mut text = String::new();
    let mut f = fs::File::from(r);
    std::io::Read::read_to_string(&mut f, &mut text).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "auks did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    text
}

#[test]
fn journal_priorities_when_stderr_is_the_journal_stream() {
    let text = stderr_with_journal_stream(true);
    let logged: Vec<&str> = text.lines().filter(|l| l.contains("auks")).collect();
    let first = logged
        .first()
        .unwrap_or_else(|| panic!("nothing logged: {text}"));
    assert!(
        first.starts_with("<6>auks : configuration: "),
        "no priority prefix: {first:?}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("<7>auks api : ")),
        "level-2 records are debug (7): {text}"
    );
    // No timestamp and no euid/pid: the journal records them itself.
    assert!(!text.contains("[euid="), "{text}");
    assert!(!text.contains("[INFO"), "{text}");
}

#[test]
fn no_journal_format_when_journal_stream_names_another_file() {
    let text = stderr_with_journal_stream(false);
    assert!(text.lines().any(|l| l.contains("[INFO1] [euid=")), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("<6>")), "{text}");
}

#[test]
fn syslog_records_arrive_at_the_socket() {
    use auks::logging::{init, syslog, Target};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let server = UnixDatagram::bind(&path).unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    init(
        1,
        Target::Syslog {
            path: path.clone(),
            ident: "auks".into(),
            facility: syslog::FACILITY_USER,
            info_severity: syslog::SEVERITY_INFO,
        },
    )
    .unwrap();
    auks::log!(1, "auks : one level-1 line");
    auks::log!(2, "auks : filtered out at level 1");
    log::error!("auks : an error");
    log::warn!("auks : a warning");
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    for _ in 0..3 {
        let n = server.recv(&mut buf).unwrap();
        got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
    }
    server
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(server.recv(&mut buf).is_err(), "a level-2 record was sent");
    let pid = std::process::id();
    let re = |pri: u8, text: &str| {
        regex::Regex::new(&format!(
            r"^<{pri}>[A-Z][a-z][a-z] [ 123]\d \d\d:\d\d:\d\d auks\[{pid}\]: {}$",
            regex::escape(text)
        ))
        .unwrap()
    };
    // user.info = 14, user.err = 11, user.warning = 12
    assert!(
        re(14, "auks : one level-1 line").is_match(&got[0]),
        "{}",
        got[0]
    );
    assert!(re(11, "auks : an error").is_match(&got[1]), "{}", got[1]);
    assert!(re(12, "auks : a warning").is_match(&got[2]), "{}", got[2]);

    // UseSyslog is read from the api block as the C AUKS does.
    let conf = write_conf(dir.path(), "UseSyslog = 1 ;");
    let c = auks::config::ClientConfig::load(Some(&conf)).unwrap();
    assert!(c.api.use_syslog);
}
