//! `auks --send` / `--receive`: a credential carried as a blob through a pipe.

use super::*;

#[track_caller]
fn check_blob(o: &Output) -> Vec<u8> {
    assert_eq!(o.status.code(), Some(0), "--send failed\n{}", out(o));
    let b = o.stdout.clone();
    assert!(
        b.len() > 12,
        "--send output too short ({} bytes)\n{}",
        b.len(),
        out(o)
    );
    let len = u64::from_le_bytes(b[..8].try_into().unwrap());
    assert_eq!(
        len,
        (b.len() - 8) as u64,
        "8-byte little-endian length prefix must equal size - 8"
    );
    assert_eq!(
        &b[8..12],
        &[0, 0, 0, 7],
        "payload starts with int32 BE 7 (CRED_DUMP_REQUEST)"
    );
    b
}

/// bats: "Auks client is able to dump a credential to a local file"
#[test]
fn send_writes_blob_to_stdout() {
    let fx = setup();
    assert_ok(&fx.alice(&["--add"]));
    // by the admin, for alice's uid
    let o = fx.admin(&["--send", "--uid", "3001"]);
    let blob = check_blob(&o);
    let file = fx.realm.path().join("auks_cred");
    fs::write(&file, &blob).unwrap();
    assert!(fs::metadata(&file).unwrap().len() > 8);
    // by alice herself, short -u and default uid
    check_blob(&fx.alice(&["--send", "-u", "3001"]));
    check_blob(&fx.alice(&["--send"]));
    assert_ok(&fx.admin(&["--remove", "--uid", "3001"]));
    // nothing stored any more: --send fails
    let o = fx.admin(&["--send", "-u", "3001"]);
    assert_fail_with(&o, 6, "no credential stored for uid 3001");
    assert!(o.stdout.is_empty(), "no blob on failure\n{}", out(&o));
}

/// bats: "Auks client is able to receive a credential from a pipe"
#[test]
fn send_pipe_receive() {
    let fx = setup();
    assert_ok(&fx.alice(&["--add"]));
    let blob = check_blob(&fx.alice(&["--send", "-u", "3001"]));
    let dest = fx.realm.user_dir(&fx.alice).join("auks_cred");
    assert!(!dest.exists());
    let o = AuksRun::new(&fx.realm, &fx.auksd.conf_path())
        .ccache(&fx.alice_cc)
        .user(&fx.alice)
        .args(&["-f", &fx.conf(), "--receive", "-C", &s(&dest)])
        .stdin(&blob)
        .run();
    assert_ok(&o);
    let (mode, owner) = mode_owner(&dest);
    assert_eq!(mode, 0o600, "received ccache mode");
    assert_eq!(owner, fx.alice.uid, "received ccache owner");
    assert_ok(&fx.admin(&["--remove", "--uid", "3001"]));
    assert!(fx.dump_rows().iter().all(|(_, p)| p != "alice@TEST.REALM"));
    // the received ccache is independent of the repository
    let k = fx.realm.klist(&dest);
    assert!(k.status.success(), "{}", out(&k));
    assert_eq!(fx.realm.ccache_principal(&dest), "alice@TEST.REALM");
}

/// bats: "Auks client is able to receive a credential with no krb5 tkt"
#[test]
fn receive_without_own_ticket() {
    let fx = setup();
    assert_ok(&fx.alice(&["--add"]));
    let blob = check_blob(&fx.admin(&["--send", "-u", "3001"]));
    assert_ok(&fx.admin(&["--remove", "--uid", "3001"]));

    // KRB5CCNAME=/dev/null as in the C suite
    let dest = fx.realm.user_dir(&fx.alice).join("auks_cred");
    let o = AuksRun::new(&fx.realm, &fx.auksd.conf_path())
        .user(&fx.alice)
        .env("KRB5CCNAME", "/dev/null")
        .args(&["-f", &fx.conf(), "--receive", "-C", &s(&dest)])
        .stdin(&blob)
        .run();
    assert_ok(&o);
    assert_eq!(fx.realm.ccache_principal(&dest), "alice@TEST.REALM");

    // a default ccache that does not exist, daemon stopped: still no daemon contact needed
    let mut fx = fx;
    fx.auksd.stop();
    let dest2 = fx.realm.user_dir(&fx.alice).join("auks_cred2");
    let missing = fx.realm.user_dir(&fx.alice).join("no-such-ccache");
    let o = AuksRun::new(&fx.realm, &fx.auksd.conf_path())
        .ccache(&missing)
        .user(&fx.alice)
        .args(&["--receive", "-C", &s(&dest2)])
        .stdin(&blob)
        .run();
    assert_ok(&o);
    assert_eq!(fx.realm.ccache_principal(&dest2), "alice@TEST.REALM");
    assert!(!missing.exists());
}

/// A truncated / garbage blob on stdin is refused without creating the ccache.
#[test]
fn receive_rejects_garbage() {
    let fx = setup();
    let dest = fx.realm.user_dir(&fx.alice).join("garbage_cred");
    for input in [
        &b""[..],
        &b"\x10\0\0\0\0\0\0\0\0\0\0\x07"[..],
        &[0xffu8; 300][..],
    ] {
        let o = AuksRun::new(&fx.realm, &fx.auksd.conf_path())
            .ccache(&fx.alice_cc)
            .user(&fx.alice)
            .args(&["--receive", "-C", &s(&dest)])
            .stdin(input)
            .run();
        assert!(
            !o.status.success(),
            "garbage blob must be refused\n{}",
            out(&o)
        );
        assert!(
            stderr_of(&o).starts_with("Auks API request failed : "),
            "{}",
            out(&o)
        );
        assert!(!dest.exists(), "no ccache from a garbage blob");
    }
}
