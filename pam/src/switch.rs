//! `switch`: make the job ccache the primary cache of its collection
//! (DIR, KEYRING, KCM), so tools that ignore `KRB5CCNAME` find it too.
//! Done by running `kswitch -c NAME` as the user (`setpriv` sets real and
//! effective ids and clears the supplementary groups before the exec;
//! empty environment), bounded in time: this module does not link libkrb5.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SETPRIV: &str = "/usr/bin/setpriv";
const KSWITCH: &str = "/usr/bin/kswitch";
const LIMIT: Duration = Duration::from_secs(5);

/// Whether `switch` applies to this ccache type.
pub fn applies(ccache_type: &str) -> bool {
    matches!(ccache_type, "DIR" | "KEYRING" | "KCM")
}

/// Run kswitch as `uid`/`gid`; Err(reason) on any failure.
pub fn run(ccache: &str, uid: u32, gid: u32) -> Result<(), String> {
    let mut child = Command::new(SETPRIV)
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--clear-groups")
        .arg("--")
        .arg(KSWITCH)
        .arg("-c")
        .arg(ccache)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir("/")
        .spawn()
        .map_err(|e| format!("cannot run {KSWITCH}: {e}"))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(s)) if s.success() => return Ok(()),
            Ok(Some(s)) => return Err(format!("{KSWITCH} {s}")),
            Ok(None) if start.elapsed() < LIMIT => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{KSWITCH} killed after {}s", LIMIT.as_secs()));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_collections_are_switched() {
        for t in ["DIR", "KEYRING", "KCM"] {
            assert!(applies(t));
        }
        for t in ["FILE", "MEMORY", "API", ""] {
            assert!(!applies(t));
        }
    }
}
