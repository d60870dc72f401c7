//! A helper process of the plugin: our `auks` binary started in a mode of
//! its own (`--spank-fetch` in slurmstepd, `--spank-add` in srun) to do a
//! request while Slurm goes on with the step, and report on a pipe; the
//! plugin collects the report in a later hook ([`crate::spank::remote::prefetch`],
//! [`crate::spank::preadd`]).
//!
//! The helper starts with the hygiene of [`crate::spank::spawn`] (no
//! inherited descriptor but the report's pipe, clean signals, its own
//! session, SIGKILL when its parent dies) and its parent's environment,
//! by `posix_spawn` when it runs as its caller ([`crate::spank::vspawn`]).
//! Its report is text lines: first a greeting naming the mode (a program
//! that is not our `auks`, a site's own script or the C client, does not
//! write it within [`HELLO_WAIT`], and the plugin then does the work
//! itself), at most [`REPORT_MAX`] bytes (less than a pipe holds, so the
//! helper never waits for its reader), `.` last. The wait is bounded
//! ([`budget`]). Notes (lines for the log) are `E|I|V <text>`.

use crate::config::ClientConfig;
use crate::spank::spawn::{self, Child, Exit, Identity};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long after its start the helper has to greet.
pub const HELLO_WAIT: Duration = Duration::from_secs(2);
/// Largest report read.
pub const REPORT_MAX: usize = 16 * 1024;
/// Longest note text kept in a report.
pub const NOTE_MAX: usize = 1024;

/// The helper's side: greet on standard output at once (`hello`), parse
/// the plugstack arguments `plug` as the plugin did, run `work` and write
/// the report it returns. The exit status: 0 once the report was written.
pub fn serve(
    hello: &str,
    plug: &[String],
    work: impl FnOnce(&crate::spank::args::PluginArgs) -> String,
) -> i32 {
    match serve_to(&mut std::io::stdout().lock(), hello, plug, work) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// [`serve`] on `out`.
fn serve_to(
    out: &mut impl std::io::Write,
    hello: &str,
    plug: &[String],
    work: impl FnOnce(&crate::spank::args::PluginArgs) -> String,
) -> std::io::Result<()> {
    writeln!(out, "{hello}")?;
    out.flush()?;
    let plug: Vec<&str> = plug.iter().map(String::as_str).collect();
    let report = work(&crate::spank::args::parse_args(&plug).args);
    out.write_all(report.as_bytes())?;
    out.flush()
}

/// A line for the log, written by the plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    Error(String),
    Info(String),
    Verbose(String),
}

impl Note {
    /// The report line of the note.
    pub fn line(&self) -> String {
        let (tag, t) = match self {
            Note::Error(t) => ("E", t),
            Note::Info(t) => ("I", t),
            Note::Verbose(t) => ("V", t),
        };
        format!("{tag}\t{}\n", clean(t, NOTE_MAX))
    }

    /// A note from its tag and text, if `tag` is one.
    pub fn parse(tag: &str, text: &str) -> Option<Note> {
        match tag {
            "E" => Some(Note::Error(text.into())),
            "I" => Some(Note::Info(text.into())),
            "V" => Some(Note::Verbose(text.into())),
            _ => None,
        }
    }
}

/// A helper started by [`Helper::start`] or [`Helper::start_in_thread`].
pub struct Helper {
    run: Run,
    hello: &'static str,
}

/// A helper's run: its report read when collected, or by a thread of its
/// own from its start.
enum Run {
    Here {
        child: Child,
        out: std::fs::File,
        hello_by: Instant,
        deadline: Instant,
    },
    Thread(std::thread::JoinHandle<(Result<String, ReadError>, Exit)>),
    /// A report on a connection to a process that is not our child (the
    /// node's fetch agent): nothing to reap.
    Stream {
        out: std::fs::File,
        hello_by: Instant,
        deadline: Instant,
    },
}

/// This process' environment, for a helper.
fn environment() -> Vec<(String, std::ffi::OsString)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v)))
        .collect()
}

/// The environment as the spawn functions take it.
fn env_refs(env: &[(String, std::ffi::OsString)]) -> Vec<(&str, &std::ffi::OsStr)> {
    env.iter()
        .map(|(k, v)| (k.as_str(), v.as_os_str()))
        .collect()
}

/// Start a helper that runs as its caller, its standard output on a new
/// pipe: the read end and the child.
fn spawn_as_caller(
    program: &Path,
    args: &[&str],
    env: &[(String, std::ffi::OsString)],
) -> std::io::Result<(std::fs::File, Child)> {
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let child = super::vspawn::spawn_helper(program, args, &env_refs(env), wr.as_raw_fd())?;
    Ok((std::fs::File::from(rd), child))
}

/// How long a helper's request may take, from the client configuration:
/// every round of `Retries` tries both daemons, each bounded by `Timeout`
/// (or by the I/O timeout without one), plus `Delay` between rounds and a
/// margin for the ccache. At most ten minutes.
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

/// When a report started now must have greeted ([`HELLO_WAIT`]) and when
/// it must have ended (the budget, never less than the greeting's wait).
fn deadlines(budget: Duration) -> (Instant, Instant) {
    let now = Instant::now();
    (now + HELLO_WAIT, now + budget.max(HELLO_WAIT))
}

impl Helper {
    /// Start `program args...` with this process' environment, as `id`
    /// (from root) or as the caller (`None`), its standard output on a
    /// pipe; `hello` is the greeting it must write first.
    pub fn start(
        program: &Path,
        args: &[&str],
        id: Option<&Identity>,
        hello: &'static str,
        budget: Duration,
    ) -> std::io::Result<Helper> {
        let env = environment();
        // No change of identity: posix_spawn, which does not copy srun's
        // or slurmstepd's address space (the helper sets its own
        // parent-death signal, SIGKILL).
        let (out, child) = match id {
            Some(i) if !runs_as(i) => {
                let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
                let env = env_refs(&env);
                let child =
                    spawn::spawn_to(program, args, &env, id, libc::SIGKILL, Some(wr.as_raw_fd()))?;
                (std::fs::File::from(rd), child)
            }
            _ => spawn_as_caller(program, args, &env)?,
        };
        let (hello_by, deadline) = deadlines(budget);
        Ok(Helper {
            run: Run::Here {
                child,
                out,
                hello_by,
                deadline,
            },
            hello,
        })
    }

    /// [`Helper::start`] as the caller, from a thread of its own, which
    /// also reads the report: the caller goes on at once. `posix_spawn`
    /// returns once the helper has been `exec`ed, half a millisecond that
    /// srun would otherwise spend before asking slurmctld for its
    /// allocation. The thread touches no environment variable (srun sets
    /// many meanwhile, and the C library's `setenv` and `getenv` must not
    /// run at once): the environment is read here, and the helper is
    /// started with it. Not for slurmstepd, whose threads lose root when it
    /// drops its ids. A helper that cannot be started gives no report
    /// (the caller then does the work itself).
    pub fn start_in_thread(
        program: &Path,
        args: &[&str],
        hello: &'static str,
        budget: Duration,
    ) -> std::io::Result<Helper> {
        spawn::check_program(program)?;
        let env = environment();
        let program = program.to_path_buf();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (hello_by, deadline) = deadlines(budget);
        let run = move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            match spawn_as_caller(&program, &args, &env) {
                Ok((mut out, mut child)) => {
                    let read = read_until(&mut out, hello_by, deadline);
                    let exit = reap(&mut child, read.is_err());
                    (read, exit)
                }
                Err(e) => (
                    Err(ReadError::Other(format!("cannot start it: {e}"))),
                    Exit::Unknown,
                ),
            }
        };
        // An explicit stack size: std would read RUST_MIN_STACK otherwise.
        let thread = std::thread::Builder::new()
            .name("auks-helper".into())
            .stack_size(256 * 1024)
            .spawn(run)?;
        Ok(Helper {
            run: Run::Thread(thread),
            hello,
        })
    }

    /// A report to be read from `out` (a connection to the node's fetch
    /// agent), with the same greeting, bounds and budget as a helper's.
    pub fn reading(out: std::fs::File, hello: &'static str, budget: Duration) -> Helper {
        let (hello_by, deadline) = deadlines(budget);
        Helper {
            run: Run::Stream {
                out,
                hello_by,
                deadline,
            },
            hello,
        }
    }

    /// Wait for the report (until the budget is spent: then the helper is
    /// killed), reap the helper, and return the report after its greeting.
    pub fn collect(self) -> Result<String, HelperFailed> {
        let (read, exit) = match self.run {
            Run::Here {
                mut child,
                mut out,
                hello_by,
                deadline,
            } => {
                let read = read_until(&mut out, hello_by, deadline);
                let exit = reap(&mut child, read.is_err());
                (read, exit)
            }
            Run::Thread(t) => t
                .join()
                .map_err(|_| HelperFailed::NoReport("its reader thread failed".into()))?,
            Run::Stream {
                mut out,
                hello_by,
                deadline,
            } => (read_until(&mut out, hello_by, deadline), Exit::Unknown),
        };
        let text = read?;
        match text.split_once('\n') {
            Some((first, rest)) if first == self.hello => Ok(rest.to_string()),
            _ => Err(HelperFailed::NoReport(format!(
                "not the report of auks in this mode; exit {exit:?}"
            ))),
        }
    }
}

/// Whether this process already has `id`'s real, effective and saved ids
/// and its supplementary groups.
fn runs_as(id: &Identity) -> bool {
    let (Ok(u), Ok(g), Ok(groups)) = (
        nix::unistd::getresuid(),
        nix::unistd::getresgid(),
        nix::unistd::getgroups(),
    ) else {
        return false;
    };
    let mut have: Vec<u32> = groups.iter().map(|g| g.as_raw()).collect();
    let mut want = id.groups.clone();
    have.sort_unstable();
    have.dedup();
    want.sort_unstable();
    want.dedup();
    [u.real, u.effective, u.saved]
        .iter()
        .all(|x| x.as_raw() == id.uid)
        && [g.real, g.effective, g.saved]
            .iter()
            .all(|x| x.as_raw() == id.gid)
        && have == want
}

/// Why [`Helper::collect`] has no report.
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
            ReadError::Deadline => HelperFailed::TimedOut("did not finish in time".into()),
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
/// helper that lingers for a second): SIGKILL to its process group.
fn reap(child: &mut Child, kill: bool) -> Exit {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    if kill {
        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
    }
    // The end of its report is the end of the helper: it is usually gone
    // within a millisecond (polled finely first: srun's thread waits for
    // it), else within a second (then it is killed), three at most.
    let start = Instant::now();
    let mut killed = false;
    while start.elapsed() < Duration::from_secs(3) {
        if let Some(e) = child.try_wait() {
            return e;
        }
        if !killed && start.elapsed() >= Duration::from_secs(1) {
            let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
            killed = true;
        }
        let step = if start.elapsed() < Duration::from_millis(20) {
            Duration::from_micros(200)
        } else {
            Duration::from_millis(10)
        };
        std::thread::sleep(step);
    }
    Exit::Unknown
}

/// One line of text: control characters become spaces, at most `max` bytes.
pub fn clean(text: &str, max: usize) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_writes_the_greeting_then_the_report() {
        let mut out = Vec::new();
        let plug = vec!["renewer=/opt/auks".to_string()];
        serve_to(&mut out, "auks-spank-test 1", &plug, |a| {
            // the plugstack arguments are parsed as the plugin parses them
            assert_eq!(a.renewer, std::path::PathBuf::from("/opt/auks"));
            "R\t0\n.\n".into()
        })
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "auks-spank-test 1\nR\t0\n.\n"
        );
    }

    #[test]
    fn a_helper_read_by_a_thread_of_its_own() {
        let sh = Path::new("/bin/sh");
        let budget = Duration::from_secs(20);
        let h = Helper::start_in_thread(
            sh,
            &["-c", "echo auks-test 1; echo \"R\t0\"; echo ."],
            "auks-test 1",
            budget,
        )
        .unwrap();
        assert_eq!(h.collect().unwrap(), "R\t0\n.\n");
        // a program that does not greet gives no report
        let h = Helper::start_in_thread(sh, &["-c", "echo other"], "auks-test 1", budget).unwrap();
        assert!(matches!(h.collect(), Err(HelperFailed::NoReport(_))));
        // one that cannot run is refused at once
        assert!(Helper::start_in_thread(
            Path::new("/nonexistent/auks"),
            &[],
            "auks-test 1",
            budget
        )
        .is_err());
        // and the same by the caller's own thread
        let h = Helper::start(
            sh,
            &["-c", "echo auks-test 1; echo ."],
            None,
            "auks-test 1",
            budget,
        )
        .unwrap();
        assert_eq!(h.collect().unwrap(), ".\n");
    }
}
