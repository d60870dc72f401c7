//! The credential fetched while slurmstepd sets the step up: at
//! `init_post_opt` the plugin starts `<renewer> --spank-fetch`, a helper
//! process that does what [`super::fetcher`] does (GET from auksd as this
//! node, create the job's ccache as the user) and reports on its standard
//! output; `user_init` collects the report. The GET and the ccache then
//! cost the step nothing: slurmstepd spends about 2 ms between the two
//! hooks on its own set-up (I/O, cgroups, privileges), and the helper runs
//! meanwhile on the other CPU. In the hook itself the same work costs
//! about 2 ms (libkrb5's loading, the authenticated exchange, the ccache).
//!
//! Why a process and not a thread: between the two hooks slurmstepd drops
//! its effective ids (`setresuid` in every thread, by the C library), so a
//! thread could lose root while reading the node's own ccache; and a
//! process of its own leaves slurmstepd without libkrb5 at all.
//!
//! The helper starts as root (the node's ccache or keytab), with the hygiene
//! of [`crate::spank::spawn`] (no inherited descriptor but the report's
//! pipe, clean signals, its own session, SIGKILL when slurmstepd dies) and
//! slurmstepd's environment. The report is a few short lines (at most
//! [`REPORT_MAX`] bytes, less than a pipe holds, so the helper never waits
//! for the reader); the wait for it is bounded ([`budget`]).
//!
//! Report lines (tab-separated; text has no control characters):
//! `E|I|V <text>` a note; `P <phase> <nanoseconds>`; `S <1|0> <ccache>`
//! stored; `F <text>` failed, the message for the user; `.` the end.

use super::fetcher::{self, Fetched, Note};
use super::{Job, JobCcache};
use crate::config::ClientConfig;
use crate::spank::spawn::{self, Child, Exit, Identity};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// First argument of the helper mode of the `auks` binary.
pub const HELPER_ARG: &str = "--spank-fetch";
/// The helper's first line, written before any work: a program that is
/// not our `auks` (a site's own `renewer=` script, the C client) does not
/// write it, and the plugin then fetches in slurmstepd.
pub const HELLO: &str = "auks-spank-fetch 1";
/// How long after its start the helper has to write [`HELLO`].
pub const HELLO_WAIT: Duration = Duration::from_secs(2);
/// Largest report read.
pub const REPORT_MAX: usize = 16 * 1024;
/// Longest note text kept in a report.
const NOTE_MAX: usize = 1024;

/// A helper started by [`Prefetch::start`].
pub struct Prefetch {
    child: Child,
    out: std::fs::File,
    hello_by: Instant,
    deadline: Instant,
}

/// How long a fetch may take, from the client configuration: every round
/// of `Retries` tries both daemons, each bounded by `Timeout` (or by the
/// I/O timeout without one), plus `Delay` between rounds and a margin for
/// the ccache. At most ten minutes.
pub fn budget(conf: &ClientConfig) -> Duration {
    let per = match conf.common.timeout {
        // without Timeout every read waits at most 5 s (Client::io_timeout)
        0 => Duration::from_secs(4 * 5),
        t => Duration::from_secs(t.min(600)),
    };
    let rounds = conf.common.retries.clamp(1, 10) as u32;
    let delay = Duration::from_secs(conf.common.delay.min(600));
    ((per * 2 + delay) * rounds + Duration::from_secs(30)).min(Duration::from_secs(600))
}

impl Prefetch {
    /// Start the helper for `job` (`argv`: the plugstack arguments, which
    /// the helper parses as the plugin did). Call as root.
    pub fn start(
        program: &std::path::Path,
        argv: &[String],
        job: &Job,
        budget: Duration,
    ) -> std::io::Result<Prefetch> {
        let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let ids = [
            job.uid.to_string(),
            job.gid.to_string(),
            job.jobid.to_string(),
        ];
        let mut args: Vec<&str> = vec![HELPER_ARG];
        args.extend(ids.iter().map(String::as_str));
        args.push("--");
        args.extend(argv.iter().map(String::as_str));
        let env: Vec<(String, std::ffi::OsString)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v)))
            .collect();
        let env: Vec<(&str, &std::ffi::OsStr)> = env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_os_str()))
            .collect();
        let root = Identity {
            uid: 0,
            gid: 0,
            groups: nix::unistd::getgroups()?
                .into_iter()
                .map(|g| g.as_raw())
                .collect(),
        };
        let child = spawn::spawn_to(
            program,
            &args,
            &env,
            &root,
            libc::SIGKILL,
            Some(wr.as_raw_fd()),
        )?;
        drop(wr);
        let now = Instant::now();
        Ok(Prefetch {
            child,
            out: std::fs::File::from(rd),
            hello_by: now + HELLO_WAIT,
            deadline: now + budget.max(HELLO_WAIT),
        })
    }

    /// Wait for the report (until the budget is spent: then the helper is
    /// killed) and reap the helper.
    pub fn collect(mut self) -> Result<Fetched, HelperFailed> {
        let read = read_until(&mut self.out, self.hello_by, self.deadline);
        let exit = reap(&mut self.child, read.is_err());
        let text = read?;
        decode(&text).map_err(|e| HelperFailed::NoReport(format!("{e}; exit {exit:?}")))
    }
}

/// Why [`Prefetch::collect`] has no report.
#[derive(Debug, PartialEq, Eq)]
pub enum HelperFailed {
    /// Still running when the budget was spent (killed): the message for
    /// the user.
    TimedOut(String),
    /// It ended without a valid report (not our `auks`, a crash...): why.
    NoReport(String),
}

impl From<ReadError> for HelperFailed {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Deadline => HelperFailed::TimedOut(
                "auks: the credential fetch did not finish in time; the job step has no Kerberos credential".into(),
            ),
            ReadError::Other(m) => HelperFailed::NoReport(m),
        }
    }
}

/// Why the report could not be read.
enum ReadError {
    Deadline,
    Other(String),
}

/// Read `out` to its end or `deadline`; its first line must have come by
/// `hello_by`.
fn read_until(
    out: &mut std::fs::File,
    hello_by: Instant,
    deadline: Instant,
) -> Result<String, ReadError> {
    let other = |m: String| ReadError::Other(m);
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let greeted = buf.contains(&b'\n');
        let now = Instant::now();
        if !greeted && now >= hello_by {
            return Err(other(format!(
                "no greeting within {} s",
                HELLO_WAIT.as_secs()
            )));
        }
        let until = if greeted {
            deadline
        } else {
            hello_by.min(deadline)
        };
        let left = until.saturating_duration_since(now);
        if left.is_zero() {
            return Err(ReadError::Deadline);
        }
        let ms = PollTimeout::try_from(left.as_millis().min(60_000) as i32 + 1)
            .unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(out.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(other(format!("cannot read its report: {e}"))),
        }
        match out.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) if buf.len() + n <= REPORT_MAX => buf.extend_from_slice(&chunk[..n]),
            Ok(_) => return Err(other("its report is too long".into())),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(other(format!("cannot read its report: {e}"))),
        }
    }
    String::from_utf8(buf).map_err(|_| other("its report is not text".into()))
}

/// Reap the helper: once its report ended it exits at once; `kill` (or a
/// helper that lingers for a second): SIGKILL to its process group first.
fn reap(child: &mut Child, kill: bool) -> Exit {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    if kill {
        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
    }
    for i in 0..300 {
        if let Some(e) = child.try_wait() {
            return e;
        }
        if i == 100 {
            let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Exit::Unknown
}

/// One line of text: control characters become spaces, at most `max` bytes.
fn clean(text: &str, max: usize) -> String {
    let mut s: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The report of `f`.
pub fn encode(f: &Fetched) -> String {
    let mut out = String::new();
    out.push_str(HELLO);
    out.push('\n');
    for n in &f.notes {
        let (tag, t) = match n {
            Note::Error(t) => ("E", t),
            Note::Info(t) => ("I", t),
            Note::Verbose(t) => ("V", t),
        };
        out.push_str(&format!("{tag}\t{}\n", clean(t, NOTE_MAX)));
    }
    for (name, d) in &f.phases {
        out.push_str(&format!("P\t{}\t{}\n", clean(name, 32), d.as_nanos()));
    }
    match &f.result {
        Some(Ok(cc)) if clean(&cc.name, usize::MAX) == cc.name => {
            out.push_str(&format!("S\t{}\t{}\n", u8::from(cc.ours), cc.name))
        }
        Some(Ok(cc)) => out.push_str(&format!(
            "F\tauks: unusable credential cache name {:?}\n",
            clean(&cc.name, NOTE_MAX)
        )),
        Some(Err(m)) => out.push_str(&format!("F\t{}\n", clean(m, NOTE_MAX))),
        None => out.push_str("F\tauks: the credential helper had no result\n"),
    }
    out.push_str(".\n");
    out
}

/// Parse a report; an error names what is wrong with it.
pub fn decode(text: &str) -> Result<Fetched, String> {
    let mut f = Fetched::default();
    let mut ended = false;
    let mut lines = text.lines();
    if lines.next() != Some(HELLO) {
        return Err("not the report of auks --spank-fetch".into());
    }
    for line in lines {
        if ended {
            return Err("text after the end of the report".into());
        }
        let mut it = line.splitn(3, '\t');
        let (tag, a, b) = (it.next().unwrap_or(""), it.next(), it.next());
        match (tag, a, b) {
            ("E", Some(t), None) => f.notes.push(Note::Error(t.into())),
            ("I", Some(t), None) => f.notes.push(Note::Info(t.into())),
            ("V", Some(t), None) => f.notes.push(Note::Verbose(t.into())),
            ("P", Some(n), Some(ns)) => {
                let ns: u64 = ns.parse().map_err(|_| format!("bad phase time {ns:?}"))?;
                f.phases.push((n.into(), Duration::from_nanos(ns)));
            }
            ("S", Some(ours @ ("0" | "1")), Some(name)) if f.result.is_none() => {
                f.result = Some(Ok(JobCcache {
                    name: name.into(),
                    ours: ours == "1",
                }))
            }
            ("F", Some(m), None) if f.result.is_none() => f.result = Some(Err(m.into())),
            (".", None, None) if f.result.is_some() => ended = true,
            _ => return Err(format!("unexpected report line {:?}", clean(line, 80))),
        }
    }
    if !ended {
        return Err("the report ended early".into());
    }
    Ok(f)
}

/// The helper mode of the `auks` binary: `auks --spank-fetch UID GID
/// JOBID -- PLUGSTACK-ARGS...` (`args` without the program name and
/// [`HELPER_ARG`]). Writes the report on standard output; returns the
/// exit status (0 once a report was written, 1 for bad arguments).
pub fn helper_main(args: &[String]) -> i32 {
    let num = |i: usize| args.get(i).and_then(|s| s.parse::<u32>().ok());
    let (Some(uid), Some(gid), Some(jobid), Some("--")) =
        (num(0), num(1), num(2), args.get(3).map(String::as_str))
    else {
        eprintln!("usage: auks {HELPER_ARG} UID GID JOBID -- PLUGSTACK-ARGS... (used by the auks SPANK plugin)");
        return 1;
    };
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // The greeting first (see HELLO), before any work; encode() starts
    // with it too, so the rest of the report follows it.
    if writeln!(out, "{HELLO}").and_then(|()| out.flush()).is_err() {
        return 1;
    }
    let plug: Vec<&str> = args[4..].iter().map(String::as_str).collect();
    let parsed = crate::spank::args::parse_args(&plug);
    let job = Job { uid, gid, jobid };
    let fetched = fetcher::fetch_and_create(&job, &parsed.args);
    let report = encode(&fetched);
    let rest = &report[HELLO.len() + 1..];
    match out.write_all(rest.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip() {
        let f = Fetched {
            notes: vec![
                Note::Info("auks: got\tit\nfrom auksd".into()),
                Note::Verbose("v".into()),
                Note::Error("e".into()),
            ],
            phases: vec![("get".into(), Duration::from_micros(1234))],
            result: Some(Ok(JobCcache {
                name: "FILE:/tmp/krb5cc_1000_7_AbC123".into(),
                ours: true,
            })),
        };
        let back = decode(&encode(&f)).unwrap();
        assert_eq!(back.notes[0], Note::Info("auks: got it from auksd".into()));
        assert_eq!(back.notes[1..], f.notes[1..]);
        assert_eq!(back.phases, f.phases);
        assert_eq!(back.result, f.result);

        let failed = Fetched {
            result: Some(Err("auks: no credential".into())),
            ..Fetched::default()
        };
        assert_eq!(decode(&encode(&failed)).unwrap(), failed);
    }

    #[test]
    fn bad_reports_are_refused() {
        // without the greeting (not our helper)
        for bad in ["", "F\tx\n.\n", "auks-spank-fetch 2\nF\tx\n.\n"] {
            assert!(decode(bad).is_err(), "accepted {bad:?}");
        }
        // after it, a report must be well formed and complete
        for bad in [
            "",
            "I\tx\n",
            "S\t1\tFILE:/x\n",
            "S\t2\tFILE:/x\n.\n",
            "F\tx\nS\t1\tFILE:/x\n.\n",
            "F\tx\n.\nI\tmore\n",
            "P\tget\tsoon\nF\tx\n.\n",
            "X\ty\nF\tx\n.\n",
            ".\n",
        ] {
            let text = format!("{HELLO}\n{bad}");
            assert!(decode(&text).is_err(), "accepted {text:?}");
        }
        assert!(decode(&format!("{HELLO}\nF\tx\n.\n")).is_ok());
    }

    #[test]
    fn a_name_with_control_characters_is_not_reported_as_stored() {
        let f = Fetched {
            result: Some(Ok(JobCcache {
                name: "FILE:/tmp/a\nb".into(),
                ours: true,
            })),
            ..Fetched::default()
        };
        assert!(matches!(decode(&encode(&f)).unwrap().result, Some(Err(_))));
    }

    #[test]
    fn long_notes_are_cut() {
        let f = Fetched {
            notes: vec![Note::Info("é".repeat(NOTE_MAX))],
            result: Some(Err("x".into())),
            ..Fetched::default()
        };
        let back = decode(&encode(&f)).unwrap();
        let Note::Info(t) = &back.notes[0] else {
            panic!()
        };
        assert!(t.len() <= NOTE_MAX && t.starts_with('é'));
    }
}
