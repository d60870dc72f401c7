//! Child processes of the tests: where this crate's binaries are, running a command
//! with a deadline (`run_cmd`), stopping a daemon (`kill_and_reap`), and the `assert_*`
//! helpers that print a command's whole output when it did not end as expected.

use std::fs;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Default timeout for any helper command (kinit, kadmin.local, auks, ...).
pub const CMD_TIMEOUT: Duration = Duration::from_secs(120);

/// Path of one of this crate's binaries (`auks`, `auksd`).
///
/// Inside this crate's integration tests Cargo provides `CARGO_BIN_EXE_<name>` at compile
/// time. Elsewhere (e.g. a scratch crate that only exercises the realm harness) the
/// variable `AUKS_TEST_BIN_<NAME>` is read at run time.
pub fn bin_path(name: &str) -> PathBuf {
    let compiled = match name {
        "auks" => option_env!("CARGO_BIN_EXE_auks"),
        "auksd" => option_env!("CARGO_BIN_EXE_auksd"),
        _ => None,
    };
    if let Some(p) = compiled {
        return PathBuf::from(p);
    }
    let var = format!("AUKS_TEST_BIN_{}", name.to_uppercase());
    match std::env::var_os(&var) {
        Some(p) => PathBuf::from(p),
        None => panic!(
            "binary `{name}` unknown: not built by Cargo for this test and ${var} is not set"
        ),
    }
}

/// Format a process result for assertion messages.
pub fn out(o: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn stdout_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Assert the CLI success contract: exit 0 and `Auks API request succeed` on stdout.
#[track_caller]
pub fn assert_ok(o: &Output) {
    assert!(
        o.status.code() == Some(0) && stdout_of(o).contains("Auks API request succeed"),
        "expected success (exit 0, stdout `Auks API request succeed`)\n{}",
        out(o)
    );
}

/// Assert the CLI failure contract: exit `code` and stderr starting with
/// `Auks API request failed : `.
#[track_caller]
pub fn assert_fail(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "unexpected exit status\n{}",
        out(o)
    );
    assert!(
        stderr_of(o).starts_with("Auks API request failed : "),
        "stderr should start with `Auks API request failed : `\n{}",
        out(o)
    );
    assert!(
        !stdout_of(o).contains("Auks API request succeed"),
        "a failed request must not print the success line\n{}",
        out(o)
    );
}

/// Assert failure with exit `code` and a stderr containing `needle` (case-insensitive).
#[track_caller]
pub fn assert_fail_with(o: &Output, code: i32, needle: &str) {
    assert_fail(o, code);
    assert!(
        stderr_of(o).to_lowercase().contains(&needle.to_lowercase()),
        "stderr should mention {needle:?}\n{}",
        out(o)
    );
}

/// Run a command to completion with a timeout, optionally feeding `stdin`.
/// Panics if it cannot be started or does not finish in time (the child is killed).
pub fn run_cmd(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    let desc = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {desc}: {e}"));
    let writer = stdin.map(|data| {
        let mut pipe = child.stdin.take().unwrap();
        let data = data.to_vec();
        thread::spawn(move || {
            // the child may legitimately close stdin early
            let _ = pipe.write_all(&data);
        })
    });
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let ro = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let re = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => panic!("waiting for {desc}: {e}"),
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = ro.join().unwrap_or_default();
            let stderr = re.join().unwrap_or_default();
            panic!(
                "command did not finish within {timeout:?} (killed): {desc}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    let stdout = ro.join().unwrap_or_default();
    let stderr = re.join().unwrap_or_default();
    Output {
        status,
        stdout,
        stderr,
    }
}

/// `run_cmd` with [`CMD_TIMEOUT`] that panics unless the command succeeds.
pub(super) fn run_ok(cmd: &mut Command, stdin: Option<&[u8]>, what: &str) -> Output {
    let o = run_cmd(cmd, stdin, CMD_TIMEOUT);
    if !o.status.success() {
        panic!("{what} failed\n{}", out(&o));
    }
    o
}

/// Is a process with that pid alive (and not a zombie)?
pub fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            // state is the field after the ")" that ends the command name
            let state = s
                .rsplit_once(')')
                .and_then(|(_, r)| r.trim_start().chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
        Err(_) => false,
    }
}

/// SIGTERM, then SIGKILL after `grace`; reaps the child and returns its status.
pub fn kill_and_reap(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(st)) = child.try_wait() {
        return Some(st);
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        // ESRCH (already gone) is fine: it is reaped below
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let start = Instant::now();
    while start.elapsed() < grace {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait().ok()
}
