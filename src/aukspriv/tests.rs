//! Unit tests of aukspriv: principal choice, settings, refresh timing,
//! root's ccache checks (no KDC needed).

use super::*;

fn v(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

#[test]
fn host_principal_preferred_over_order() {
    let kt = v(&[
        "nfs/vm@R",
        "HTTP/vm@R",
        "host/other@R",
        "host/vm@R",
        "zzz@R",
    ]);
    assert_eq!(
        choose_principal(&kt, &v(&["vm"])).as_deref(),
        Some("host/vm@R")
    );
}

#[test]
fn short_and_long_host_names_match() {
    let kt = v(&["a@R", "host/node1.example.org@R"]);
    assert_eq!(
        choose_principal(&kt, &v(&["node1"])).as_deref(),
        Some("host/node1.example.org@R")
    );
    let kt = v(&["a@R", "host/node1@R"]);
    assert_eq!(
        choose_principal(&kt, &v(&["node1.example.org"])).as_deref(),
        Some("host/node1@R")
    );
    // exact beats short/long
    let kt = v(&["host/node1@R", "host/NODE1.example.org@R"]);
    assert_eq!(
        choose_principal(&kt, &v(&["node1.example.org"])).as_deref(),
        Some("host/NODE1.example.org@R")
    );
    // node10 is not node1
    let kt = v(&["first@R", "host/node10.example.org@R"]);
    assert_eq!(
        choose_principal(&kt, &v(&["node1"])).as_deref(),
        Some("first@R")
    );
}

#[test]
fn first_entry_otherwise_not_last() {
    let kt = v(&["first@R", "second@R", "last@R"]);
    assert_eq!(
        choose_principal(&kt, &v(&["vm"])).as_deref(),
        Some("first@R")
    );
    assert_eq!(choose_principal(&[], &v(&["vm"])), None);
}

#[test]
fn settings_defaults_and_values() {
    let s = Settings::from_env(|_| None).unwrap();
    assert_eq!(s.user, "root");
    assert_eq!(s.uid, 0);
    assert_eq!(s.keytab, "/etc/krb5.keytab");
    assert_eq!((s.lifetime, s.renew_int, s.error_int), (36000, 35000, 60));
    assert_eq!(s.principal, None);
    assert_eq!(s.ccache, None);
    assert_eq!(s.syslog_prio, "local3.notice");
    let s = Settings::from_env(|k| {
        Some(
            match k {
                "AUKS_PRIV_USER" => "0",
                "AUKS_PRIV_LIFETIME" => "10h",
                "AUKS_PRIV_RENEW_INT" => "20",
                "AUKS_PRIV_ERROR_INT" => "5s",
                "AUKS_PRIV_CCACHE" => "FILE:/tmp/x",
                "AUKS_PRIV_PRINC" => "host/a@B",
                "AUKS_KINIT_OPTS" => "-f",
                _ => return None,
            }
            .to_string(),
        )
    })
    .unwrap();
    assert_eq!((s.lifetime, s.renew_int, s.error_int), (36000, 20, 5));
    assert_eq!(s.ccache.as_deref(), Some("FILE:/tmp/x"));
    assert_eq!(s.principal.as_deref(), Some("host/a@B"));
    assert_eq!(s.ignored, vec!["AUKS_KINIT_OPTS".to_string()]);
    for bad in ["abc", "0", "-5", "1x", ""] {
        let r = Settings::from_env(|k| (k == "AUKS_PRIV_RENEW_INT").then(|| bad.to_string()));
        if bad.is_empty() {
            assert!(r.is_ok());
        } else {
            assert!(r.is_err(), "{bad:?}");
        }
    }
    assert!(
        Settings::from_env(|k| (k == "AUKS_PRIV_USER").then(|| "no-such-user-xyz".into())).is_err()
    );
}

#[test]
fn root_ccache_out_of_tmp() {
    let s = Settings::from_env(|_| None).unwrap();
    let ctx = Context::new().unwrap();
    assert_eq!(s.target_ccache(&ctx).unwrap(), ROOT_CCACHE);
    assert!(ROOT_CCACHE.starts_with(&format!("FILE:{ROOT_CCACHE_DIR}/")));
}

#[test]
fn ccache_of_someone_else_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("krb5cc_0");
    let name = format!("FILE:{}", f.display());
    assert_eq!(check_owned_ccache(&name, 0), Ok(()), "missing is fine");
    std::fs::write(&f, b"x").unwrap();
    let me = nix::unistd::geteuid().as_raw();
    assert_eq!(check_owned_ccache(&name, me), Ok(()));
    let e = check_owned_ccache(&name, me + 1).unwrap_err();
    assert!(e.contains("belongs to uid") && e.contains("refused"), "{e}");
    std::fs::remove_file(&f).unwrap();
    nix::unistd::mkfifo(&f, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let e = check_owned_ccache(f.to_str().unwrap(), me).unwrap_err();
    assert!(e.contains("not a regular file"), "{e}");
    assert_eq!(check_owned_ccache("KEYRING:persistent:0", 0), Ok(()));
    // the directory: created 0700, refused when others may write it
    let dir = d.path().join("auks");
    ensure_root_dir(&dir).unwrap();
    let m = std::fs::metadata(&dir).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o700);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    assert!(ensure_root_dir(&dir).unwrap_err().contains("refused"));
}

#[test]
fn wait_policy() {
    assert_eq!(wait_after_success(20, 1060, 1000), 20);
    assert_eq!(wait_after_success(35000, 1000 + 3600, 1000), 3240);
    assert_eq!(wait_after_success(35000, 1000, 1000), 1);
}
