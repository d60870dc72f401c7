//! A program started in the background for the length of a test: its
//! output goes to a log file, and it is stopped (SIGTERM, then SIGKILL
//! after 3 s) when the test drops it.

use crate::common::kill_and_reap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// A background process, killed on drop; its stdout and stderr go to `log`.
pub struct Bg {
    child: Option<Child>,
    log: PathBuf,
}

impl Bg {
    pub fn spawn(mut cmd: Command, log: &Path) -> Bg {
        let f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        cmd.stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Bg {
            child: Some(child),
            log: log.to_path_buf(),
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Wait up to `t` for the process to exit.
    pub fn wait(&mut self, t: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return Some(st);
            }
            if start.elapsed() > t {
                return None;
            }
            sleep(Duration::from_millis(50));
        }
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        if let Some(c) = &self.child {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), sig);
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_and_reap(&mut c, Duration::from_secs(3));
        }
    }
}
