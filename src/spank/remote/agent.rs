//! The node's fetch agent: a long-running root process (aukspriv started
//! with `AUKS_PRIV_FETCH_SOCKET`) that does for slurmstepd what the
//! `--spank-fetch` helper does ([`super::fetcher`]: GET as this node,
//! create the job's ccache as the user), without a process started, a
//! binary loaded and libkrb5 opened for every step. slurmstepd (plugstack
//! `fetchagent=PATH`) connects to its Unix socket at `init_post_opt`,
//! sends one request line and, in `user_init`, reads the helper's own
//! report (the same greeting, lines and bounds, [`super::prefetch`]). A
//! node without the agent, or an agent that refuses or does not answer,
//! gets the helper or the fetch in slurmstepd, as before.
//!
//! Request: `auks-fetch-request 1 TAB uid TAB gid TAB jobid [TAB plugstack
//! argument]... LF`. Only root may ask: the socket is created 0600 in a
//! directory of root's that no one else may write, and the peer's uid is
//! checked. A request is read within [`REQUEST_WAIT`], at most
//! [`REQUEST_MAX`] bytes; at most [`AT_ONCE`] requests are served at once
//! and a connection beyond that is closed at once (slurmstepd then
//! fetches itself). The agent never changes its process-wide ids: each
//! request's thread switches its own ([`crate::spank::ids`]).

use super::credential::{self, Gone};
use super::fetcher::{self, Fetched};
use super::prefetch::{encode, HELLO};
use super::Job;
use crate::spank::args::parse_args;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// First field of a request.
pub const REQUEST: &str = "auks-fetch-request 1";
/// Longest request read.
pub const REQUEST_MAX: usize = 16 * 1024;
/// How long the agent waits for a whole request.
pub const REQUEST_WAIT: Duration = Duration::from_secs(2);
/// How long the agent may take to write its report.
const WRITE_WAIT: Duration = Duration::from_secs(5);
/// Requests served at once.
pub const AT_ONCE: usize = 64;

/// The request line for `job` with the plugstack arguments `plug`; `None`
/// when an argument holds a tab or a line feed (it could not be sent).
pub fn request_line(job: &Job, plug: &[String]) -> Option<String> {
    let mut line = format!("{REQUEST}\t{}\t{}\t{}", job.uid, job.gid, job.jobid);
    for a in plug {
        if a.contains(['\t', '\n']) {
            return None;
        }
        line.push('\t');
        line.push_str(a);
    }
    line.push('\n');
    Some(line)
}

/// The job and plugstack arguments of a request line (without its LF).
pub fn parse_request(line: &str) -> Result<(Job, Vec<String>), String> {
    let mut f = line.split('\t');
    if f.next() != Some(REQUEST) {
        return Err("not a fetch request".into());
    }
    let mut num = |what: &str| {
        f.next()
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or_else(|| format!("no valid {what}"))
    };
    let job = Job {
        uid: num("uid")?,
        gid: num("gid")?,
        jobid: num("job id")?,
    };
    Ok((job, f.map(str::to_string).collect()))
}

/// slurmstepd's side: send the request for `job` to the agent at
/// `socket`; the connection, to read the report from. Never blocks: a
/// full backlog or a full socket buffer is an error.
pub fn ask(socket: &Path, job: &Job, plug: &[String]) -> io::Result<std::fs::File> {
    use nix::sys::socket::{connect, socket as new_socket, AddressFamily, SockFlag, SockType};
    let line = request_line(job, plug).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a plugstack argument holds a tab",
        )
    })?;
    let fd: OwnedFd = new_socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    let addr = nix::sys::socket::UnixAddr::new(socket)?;
    connect(fd.as_raw_fd(), &addr)?;
    // One short write into an empty socket buffer: all of it or an error;
    // MSG_NOSIGNAL: an agent that closed at once (busy, refusing) must not
    // kill slurmstepd with SIGPIPE.
    let sent = nix::sys::socket::send(
        fd.as_raw_fd(),
        line.as_bytes(),
        nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
    )?;
    if sent != line.len() {
        return Err(io::Error::new(io::ErrorKind::WouldBlock, "request cut"));
    }
    // The report is read after poll() (crate::spank::helper::read_until),
    // by blocking reads.
    let out = UnixStream::from(fd);
    out.set_nonblocking(false)?;
    Ok(std::fs::File::from(OwnedFd::from(out)))
}

/// The agent's socket at `path`, created 0600. Its directory must be
/// root's and writable by no one else; a socket left there by an earlier
/// agent is replaced, anything else is refused.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    let refuse = |why: String| Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
    let dir = path
        .parent()
        .filter(|_| path.is_absolute())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an absolute path"))?;
    let d = std::fs::symlink_metadata(dir)?;
    if !d.is_dir() || d.uid() != 0 || d.mode() & 0o022 != 0 {
        return refuse(format!(
            "{} is not a directory of root's that only root may write",
            dir.display()
        ));
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => return refuse(format!("{} exists and is not a socket", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// Counts a request served until dropped.
struct Serving(Arc<AtomicUsize>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// [`serve`] in a thread of its own that takes none of the process'
/// signals: a SIGTERM must reach the thread that waits for it (aukspriv's
/// main thread sleeps until a signal interrupts it). The request threads
/// inherit that mask.
pub fn start(
    listener: UnixListener,
    stop: Arc<AtomicBool>,
    log: Arc<dyn Fn(&str) + Send + Sync>,
) -> io::Result<std::thread::JoinHandle<()>> {
    use nix::sys::signal::{SigSet, SigmaskHow};
    let mut old = SigSet::empty();
    nix::sys::signal::pthread_sigmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut old),
    )?;
    let started = std::thread::Builder::new()
        .name("fetch-agent".into())
        .spawn(move || serve(listener, &stop, log));
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None)?;
    started
}

/// Serve requests on `listener` until `stop` is set (checked every
/// second); `log` gets one line per refused connection.
pub fn serve(listener: UnixListener, stop: &AtomicBool, log: Arc<dyn Fn(&str) + Send + Sync>) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let busy = Arc::new(AtomicUsize::new(0));
    // accept() never waits: a connection gone between poll() and accept()
    // must not hold the loop (the streams it returns are blocking)
    if let Err(e) = listener.set_nonblocking(true) {
        log(&format!(
            "fetch agent: cannot make the socket non-blocking: {e}"
        ));
        return;
    }
    while !stop.load(Ordering::Relaxed) {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(1000u16)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => {
                log(&format!("fetch agent: poll: {e}"));
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        }
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) => {
                if !matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) {
                    log(&format!("fetch agent: accept: {e}"));
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
        };
        if busy.fetch_add(1, Ordering::AcqRel) >= AT_ONCE {
            busy.fetch_sub(1, Ordering::AcqRel);
            log(&format!(
                "fetch agent: {AT_ONCE} requests already served: connection closed"
            ));
            continue;
        }
        let serving = Serving(Arc::clone(&busy));
        let log2 = Arc::clone(&log);
        let spawned = std::thread::Builder::new()
            .name("auks-fetch".into())
            .stack_size(512 * 1024)
            .spawn(move || {
                let _serving = serving;
                if let Err(e) = handle(stream) {
                    log2(&format!("fetch agent: request refused: {e}"));
                }
            });
        if let Err(e) = spawned {
            log(&format!("fetch agent: cannot start a thread: {e}"));
        }
    }
}

/// One connection: check the peer, read the request, fetch, report.
fn handle(mut s: UnixStream) -> Result<(), String> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let peer = getsockopt(&s, PeerCredentials).map_err(|e| format!("SO_PEERCRED: {e}"))?;
    if peer.uid() != 0 {
        return Err(format!("uid {} is not root", peer.uid()));
    }
    let line = read_request(&mut s)?;
    let (job, plug) = parse_request(&line)?;
    let fetched = fetcher::fetch_and_create(&job, &parse_args(&plug).args);
    deliver(&mut s, &job, &fetched)
}

/// Write the report of `fetched` to the step. A report that cannot be
/// written (the step gave up waiting, or ended) leaves nobody who knows
/// the name of the ccache the fetch created: it is removed here, as the
/// job user, so that nothing of the job's credential stays on the node.
fn deliver(s: &mut UnixStream, job: &Job, fetched: &Fetched) -> Result<(), String> {
    let sent = s
        .set_write_timeout(Some(WRITE_WAIT))
        .and_then(|()| s.write_all(format!("{HELLO}\n{}", encode(fetched)).as_bytes()));
    let Err(e) = sent else {
        return Ok(());
    };
    let undone = match &fetched.result {
        Some(Ok(cc)) if cc.ours => match credential::remove(job, cc) {
            Ok(()) | Err(Gone::Missing) => format!("; removed {}", cc.name),
            Err(Gone::Other(why)) => format!("; cannot remove {}: {why}", cc.name),
        },
        _ => String::new(),
    };
    Err(format!(
        "cannot write the report for job {}: {e}{undone}",
        job.jobid
    ))
}

/// The request line (without its LF), read within [`REQUEST_WAIT`].
fn read_request(s: &mut UnixStream) -> Result<String, String> {
    let deadline = Instant::now() + REQUEST_WAIT;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            buf.truncate(end);
            return String::from_utf8(buf).map_err(|_| "the request is not text".into());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("no whole request in time".into());
        }
        s.set_read_timeout(Some(left))
            .map_err(|e| format!("cannot set a read timeout: {e}"))?;
        match s.read(&mut chunk) {
            Ok(0) => return Err("the request ended early".into()),
            Ok(n) if buf.len() + n <= REQUEST_MAX => buf.extend_from_slice(&chunk[..n]),
            Ok(_) => return Err("the request is too long".into()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err("no whole request in time".into())
            }
            Err(e) => return Err(format!("cannot read the request: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::prefetch::Prefetch;
    use super::*;
    use crate::spank::helper::HelperFailed;
    use std::sync::Mutex;

    fn root_dir() -> tempfile::TempDir {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root (CI runs as root)"
        );
        tempfile::tempdir().unwrap()
    }

    type Lines = Arc<Mutex<Vec<String>>>;

    /// Wait (5 s at most) for a log line holding `needle`: a request's
    /// thread logs after it has closed the connection.
    fn logged(lines: &Lines, needle: &str) -> bool {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if lines.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// An agent serving `l` in its thread: its stop flag, its log lines.
    fn agent(l: UnixListener) -> (Arc<AtomicBool>, Lines, std::thread::JoinHandle<()>) {
        let stop = Arc::new(AtomicBool::new(false));
        let lines: Lines = Arc::default();
        let l2 = Arc::clone(&lines);
        let log: Arc<dyn Fn(&str) + Send + Sync> =
            Arc::new(move |m: &str| l2.lock().unwrap().push(m.to_string()));
        let h = start(l, Arc::clone(&stop), log).unwrap();
        (stop, lines, h)
    }

    /// Ask the agent at `sock` for a fetch that fails at once, as the
    /// helper's would (no auks.conf): its report's result.
    fn failing_fetch(
        sock: &Path,
        jobid: u32,
    ) -> Result<Option<Result<super::super::JobCcache, String>>, HelperFailed> {
        let job = Job {
            uid: 65534,
            gid: 65534,
            jobid,
        };
        let plug = ["conf=/nonexistent/auks.conf".to_string()];
        let asked = Prefetch::ask_agent(sock, &plug, &job, Duration::from_secs(20)).unwrap();
        asked.collect().map(|f| f.result)
    }

    #[test]
    fn the_socket_only_in_a_directory_of_roots() {
        let d = root_dir();
        let sock = d.path().join("fetch.sock");
        let l = bind(&sock).unwrap();
        let m = std::fs::symlink_metadata(&sock).unwrap();
        assert!(m.file_type().is_socket());
        assert_eq!(m.mode() & 0o777, 0o600);
        drop(l);
        // a socket left behind by an earlier agent is replaced
        drop(bind(&sock).unwrap());
        // anything else is refused and left alone
        let file = d.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(bind(&file).is_err());
        assert_eq!(std::fs::read(&file).unwrap(), b"x");
        // a directory that others may write, or that is not root's
        let open = d.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(bind(&open.join("s")).is_err());
        let other = d.path().join("other");
        std::fs::create_dir(&other).unwrap();
        std::os::unix::fs::chown(&other, Some(65534), Some(65534)).unwrap();
        assert!(bind(&other.join("s")).is_err());
        assert!(bind(Path::new("fetch.sock")).is_err());
        assert!(bind(Path::new("run/fetch.sock")).is_err());
        assert!(!open.join("s").exists() && !other.join("s").exists());
    }

    #[test]
    fn a_request_gets_the_helpers_report() {
        let d = root_dir();
        let sock = d.path().join("fetch.sock");
        let (stop, lines, h) = agent(bind(&sock).unwrap());
        match failing_fetch(&sock, 7).unwrap() {
            Some(Err(m)) => assert!(m.contains("configuration problem on this node"), "{m}"),
            other => panic!("unexpected result {other:?}"),
        }
        // many at once
        let asked: Vec<_> = (0..8)
            .map(|i| {
                let sock = sock.clone();
                std::thread::spawn(move || failing_fetch(&sock, 10 + i))
            })
            .collect();
        for t in asked {
            assert!(matches!(t.join().unwrap(), Ok(Some(Err(_)))));
        }
        assert!(
            lines.lock().unwrap().is_empty(),
            "{:?}",
            lines.lock().unwrap()
        );
        // a request it cannot read is refused: no report
        let mut s = UnixStream::connect(&sock).unwrap();
        s.write_all(b"auks-fetch-request 1\t1\tx\t3\n").unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert!(got.is_empty());
        assert!(logged(&lines, "no valid gid"));
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap();
    }

    #[test]
    fn only_root_may_ask() {
        let d = root_dir();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let sock = d.path().join("open.sock");
        // bound without `bind`'s checks, so that another uid can connect
        let l = UnixListener::bind(&sock).unwrap();
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
        let (stop, lines, h) = agent(l);
        let job = Job {
            uid: 65534,
            gid: 65534,
            jobid: 8,
        };
        let sock2 = sock.clone();
        let asked = std::thread::spawn(move || {
            let _nobody = job.as_user().unwrap();
            // refused: the connection closed before the request was sent,
            // or after it, without a report
            match Prefetch::ask_agent(&sock2, &[], &job, Duration::from_secs(20)) {
                Err(e) => e.kind() == io::ErrorKind::BrokenPipe,
                Ok(p) => matches!(p.collect(), Err(HelperFailed::NoReport(_))),
            }
        })
        .join()
        .unwrap();
        assert!(asked);
        assert!(logged(&lines, "uid 65534 is not root"));
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap();
    }

    #[test]
    fn slow_and_surplus_clients_are_bounded() {
        let d = root_dir();
        let sock = d.path().join("fetch.sock");
        let (stop, lines, h) = agent(bind(&sock).unwrap());
        // AT_ONCE clients that send nothing hold every place...
        let idle: Vec<UnixStream> = (0..AT_ONCE)
            .map(|_| UnixStream::connect(&sock).unwrap())
            .collect();
        // ...so one more is closed at once, long before REQUEST_WAIT
        let t = Instant::now();
        let mut extra = UnixStream::connect(&sock).unwrap();
        let mut got = Vec::new();
        extra.read_to_end(&mut got).unwrap();
        assert!(
            got.is_empty() && t.elapsed() < REQUEST_WAIT,
            "{:?}",
            t.elapsed()
        );
        // and the idle ones are closed after REQUEST_WAIT
        for (i, mut s) in idle.into_iter().enumerate() {
            s.set_read_timeout(Some(REQUEST_WAIT * 3)).unwrap();
            // a read with a timeout is never restarted after a signal
            // handler ran (signal(7)): EINTR is not the agent's answer
            let n = loop {
                match s.read(&mut [0u8; 16]) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    r => break r,
                }
            };
            match n {
                Ok(0) => {}
                other => panic!("idle client {i}: {other:?} after {:?}", t.elapsed()),
            }
        }
        assert!(t.elapsed() < REQUEST_WAIT * 3);
        // the places are free again: a request is answered
        assert!(matches!(failing_fetch(&sock, 9), Ok(Some(Err(_)))));
        assert!(logged(&lines, "requests already served"));
        assert!(logged(&lines, "no whole request in time"));
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap();
    }

    /// A report the step no longer reads: the ccache the fetch created
    /// is removed (it was ours; the user's own is never touched), and a
    /// report that is delivered leaves it in place.
    #[test]
    fn an_undelivered_report_takes_its_ccache_away() {
        let d = root_dir();
        let job = Job {
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            jobid: 31,
        };
        let made = |file: &str, ours: bool| {
            let path = d.path().join(file);
            std::fs::write(&path, b"not a real ccache").unwrap();
            let name = format!("FILE:{}", path.display());
            let fetched = Fetched {
                result: Some(Ok(super::super::JobCcache { name, ours })),
                ..Fetched::default()
            };
            (path, fetched)
        };
        // the step gave up: its end of the connection is closed
        let (path, fetched) = made("gone", true);
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        drop(theirs);
        let e = deliver(&mut ours, &job, &fetched).unwrap_err();
        assert!(e.contains("cannot write the report for job 31"), "{e}");
        assert!(e.contains("; removed FILE:"), "{e}");
        assert!(!path.exists());
        // not ours: kept, even then
        let (path, fetched) = made("users", false);
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        drop(theirs);
        let e = deliver(&mut ours, &job, &fetched).unwrap_err();
        assert!(!e.contains("removed"), "{e}");
        assert!(path.exists());
        // delivered: kept, and the step reads the report with its name
        let (path, fetched) = made("kept", true);
        let (mut ours, mut theirs) = UnixStream::pair().unwrap();
        deliver(&mut ours, &job, &fetched).unwrap();
        drop(ours);
        let mut got = String::new();
        theirs.read_to_string(&mut got).unwrap();
        assert!(got.starts_with(HELLO), "{got}");
        assert!(got.contains(&path.display().to_string()), "{got}");
        assert!(path.exists());
    }

    #[test]
    fn requests_round_trip() {
        let job = Job {
            uid: 2000,
            gid: 2001,
            jobid: 77,
        };
        let plug = vec!["conf=/etc/auks/auks.conf".to_string(), "enforced".into()];
        let line = request_line(&job, &plug).unwrap();
        assert!(line.ends_with('\n'));
        assert_eq!(
            parse_request(line.trim_end_matches('\n')).unwrap(),
            (job, plug)
        );
        assert_eq!(
            parse_request(&format!("{REQUEST}\t1\t2\t3")).unwrap(),
            (
                Job {
                    uid: 1,
                    gid: 2,
                    jobid: 3
                },
                vec![]
            )
        );
        assert_eq!(request_line(&job, &["a\tb".to_string()]), None);
        for bad in [
            "",
            "auks-fetch-request 2\t1\t2\t3",
            &format!("{REQUEST}\t1\t2"),
            &format!("{REQUEST}\t-1\t2\t3"),
            &format!("{REQUEST}\t1\tx\t3"),
        ] {
            assert!(parse_request(bad).is_err(), "accepted {bad:?}");
        }
    }
}
