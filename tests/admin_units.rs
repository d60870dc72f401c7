//! The systemd units, checked statically (no systemd runs here): the
//! settings the packaging promises for a credential vault, and
//! `systemd-analyze verify` when it is installed (it is part of the Debian
//! systemd package and works without a running systemd).

use std::path::{Path, PathBuf};
use std::process::Command;

fn unit(name: &str) -> (PathBuf, Vec<String>) {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("packaging/systemd")
        .join(name);
    let text = std::fs::read_to_string(&p).unwrap();
    let lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    (p, lines)
}

fn has(lines: &[String], want: &str) -> bool {
    lines.iter().any(|l| l == want)
}

#[test]
fn auksd_runs_unprivileged_with_readiness() {
    let (_, u) = unit("auksd.service");
    for want in [
        "Type=notify",
        "User=auks",
        "Group=auks",
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
        "NoNewPrivileges=yes",
        "LimitCORE=0",
        "ProtectProc=invisible",
        "CacheDirectory=auks",
        "CacheDirectoryMode=0700",
        "LogsDirectory=auks",
        "RuntimeDirectory=auks",
        // the replay cache's journal survives a restart
        "StateDirectory=auks",
        "StateDirectoryMode=0700",
        "Environment=KRB5RCACHEDIR=/var/lib/auks",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(has(&u, want), "auksd.service lacks {want}");
    }
    assert!(
        !u.iter().any(|l| l.starts_with("ReadWritePaths=")),
        "auksd.service must not widen write access: {u:?}"
    );
}

#[test]
fn every_daemon_is_protected_from_dumps_and_peeks() {
    for name in ["auksd.service", "auksdrenewer.service", "aukspriv.service"] {
        let (_, u) = unit(name);
        for want in [
            "LimitCORE=0",
            "ProtectProc=invisible",
            "NoNewPrivileges=yes",
        ] {
            assert!(has(&u, want), "{name} lacks {want}");
        }
        assert!(
            u.iter().any(|l| l.starts_with("ExecReload=")),
            "{name} has no ExecReload"
        );
        assert!(
            !u.iter()
                .any(|l| l.starts_with("ReadWritePaths=") && l.contains("/var/log")),
            "{name}: broad /var/log write access"
        );
    }
    systemd_analyze_verify();
}

/// `systemd-analyze verify` on the three units, when it is installed.
fn systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze not installed: only the static checks ran");
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/systemd");
    let units: Vec<PathBuf> = ["auksd", "auksdrenewer", "aukspriv"]
        .iter()
        .map(|u| dir.join(format!("{u}.service")))
        .collect();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&units)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    // The binaries are not installed at /usr/sbin on a build machine.
    let bad: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.contains("is not executable: No such file or directory"))
        .collect();
    assert!(bad.is_empty(), "systemd-analyze verify: {bad:?}");
}
