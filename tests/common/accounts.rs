//! Local accounts of the tests: `alice`, `bob` and `carol` (created with `useradd`
//! when missing, under a lock), and look-ups in the passwd database.

use super::process::out;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

static USER_LOCK: Mutex<()> = Mutex::new(());

fn getent_passwd(name: &str) -> Option<LocalUser> {
    let o = Command::new("getent")
        .args(["passwd", name])
        .stdin(Stdio::null())
        .output()
        .expect("run getent");
    if !o.status.success() {
        return None;
    }
    let line = String::from_utf8_lossy(&o.stdout);
    let f: Vec<&str> = line.trim().split(':').collect();
    if f.len() < 4 {
        return None;
    }
    Some(LocalUser {
        name: f[0].to_string(),
        uid: f[2].parse().ok()?,
        gid: f[3].parse().ok()?,
    })
}

/// Does a local account with that name exist?
pub fn user_exists(name: &str) -> bool {
    getent_passwd(name).is_some()
}

/// A name (`prefix` + digits, alphanumeric so the default ACL's user rule matches it)
/// that no local account has: the name is drawn at random until one is absent.
pub fn absent_user_name(prefix: &str) -> String {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id();
    for i in 0..100u32 {
        let name = format!(
            "{prefix}{}",
            seed.wrapping_add(i.wrapping_mul(7919)) % 1_000_000
        );
        if !user_exists(&name) {
            return name;
        }
    }
    panic!("every name {prefix}<n> tried is a local account");
}

/// Make sure a local account exists (`useradd -M -u UID -U -s /bin/bash NAME`).
/// If the name already exists with another uid, the existing account is returned.
pub fn ensure_user(name: &str, uid: u32) -> LocalUser {
    let _g = USER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(u) = getent_passwd(name) {
        return u;
    }
    let mut last = String::new();
    for _ in 0..20 {
        let o = Command::new("useradd")
            .args(["-M", "-u", &uid.to_string(), "-U", "-s", "/bin/bash", name])
            .stdin(Stdio::null())
            .output()
            .expect("run useradd");
        // another process may have created it meanwhile
        if let Some(u) = getent_passwd(name) {
            return u;
        }
        last = out(&o);
        // passwd/group lock held by a concurrent process: retry
        thread::sleep(Duration::from_millis(200));
    }
    panic!("cannot create local user {name} (uid {uid})\n{last}");
}

/// Fixed test users.
pub fn alice() -> LocalUser {
    ensure_user("alice", 3001)
}
pub fn bob() -> LocalUser {
    ensure_user("bob", 3002)
}
pub fn carol() -> LocalUser {
    ensure_user("carol", 3003)
}
