//! Unit tests of the repository (no KDC needed).

use super::*;
use crate::cred;
use zeroize::Zeroizing;

fn rec(uid: u32, end: i64, till: i64) -> CredRecord {
    CredRecord {
        principal: format!("u{uid}@R"),
        uid,
        starttime: 0,
        endtime: end,
        renew_till: till,
        addressless: true,
        crossrealm: false,
        data: Zeroizing::new(vec![1, 2, 3]),
        status: 0,
    }
}

fn put(r: &Repo, c: CredRecord) {
    r.write_map().insert(c.uid, Arc::new(c));
}

#[test]
fn replacement_policy() {
    let old = rec(1, 100, 1000);
    assert!(
        newer_or_equal(&rec(1, 50, 1001), &old),
        "later renew_till wins"
    );
    assert!(newer_or_equal(&rec(1, 100, 1000), &old), "equal wins");
    assert!(newer_or_equal(&rec(1, 101, 1000), &old), "later end wins");
    assert!(
        !newer_or_equal(&rec(1, 99, 1000), &old),
        "earlier end loses"
    );
    assert!(
        !newer_or_equal(&rec(1, 500, 999), &old),
        "earlier renew_till loses"
    );
}

#[test]
fn staleness() {
    assert!(is_stale(&rec(1, 99, 0), 100));
    assert!(!is_stale(&rec(1, 100, 0), 100));
    assert!(is_stale(&rec(1, 200, 150), 160));
    assert!(
        !is_stale(&rec(1, 200, 0), 160),
        "not renewable, still valid"
    );
}

#[test]
fn file_names() {
    assert_eq!(uid_of_file_name("aukscc_1000"), Some(1000));
    assert_eq!(uid_of_file_name("aukscc_0"), Some(0));
    assert_eq!(uid_of_file_name("aukscc_01"), None);
    assert_eq!(uid_of_file_name("aukscc_1000.bak"), None);
    assert_eq!(uid_of_file_name("aukscc_"), None);
    assert_eq!(uid_of_file_name("aukscc_4294967296"), None);
    assert_eq!(uid_of_file_name("krb5cc_1000"), None);
}

#[test]
fn dump_order_is_c_order() {
    let r = Repo::new(Path::new("/nonexistent"));
    for uid in [500, 2, 1000] {
        put(&r, rec(uid, 1, 1));
    }
    let uids: Vec<u32> = r
        .dump(Duration::ZERO)
        .unwrap()
        .iter()
        .map(|c| c.uid)
        .collect();
    assert_eq!(uids, vec![1000, 2, 500]);
}

#[test]
fn dump_waits_for_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let r = Repo::open(dir.path());
    assert!(r.dump(Duration::from_millis(10)).is_none());
    let s = r.load_all(2);
    assert_eq!((s.loaded, s.failed), (0, 0));
    assert_eq!(r.dump(Duration::ZERO).unwrap().len(), 0);
}

#[test]
fn load_reports_bad_files_and_removes_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("aukscc_7"), b"not a ccache").unwrap();
    std::fs::write(dir.path().join("aukscc_x"), b"x").unwrap();
    std::fs::create_dir(dir.path().join(".auks-abc")).unwrap();
    std::fs::write(dir.path().join(".auks-abc/ccache"), b"half").unwrap();
    std::fs::write(dir.path().join(".auks-k3J9x0PqZ2aB"), b"half").unwrap();
    let r = Repo::open(dir.path());
    let s = r.load_all(4);
    assert_eq!((s.loaded, s.failed, s.ignored), (0, 1, 1), "{s:?}");
    assert_eq!(s.leftovers_removed, 2);
    assert!(!dir.path().join(".auks-abc").exists());
    assert!(!dir.path().join(".auks-k3J9x0PqZ2aB").exists());
    assert!(dir.path().join("aukscc_7").exists(), "bad files stay");
    assert!(r.is_loaded());
}

#[test]
fn undecodable_data_is_never_taken_for_the_stored_credential() {
    // (the real "same credential again" case, which needs tickets from
    // a KDC, is tested in tests/cli.rs)
    let dir = tempfile::tempdir().unwrap();
    let ctx = Context::new().unwrap();
    let r = Repo::new(dir.path());
    put(&r, rec(7, 1000, 2000));
    std::fs::write(r.file_of(7), b"on disk").unwrap();
    assert!(matches!(
        r.add(&ctx, rec(7, 1000, 2000), |_, _| Ok(())),
        Err(RepoError::Write { .. })
    ));
    assert!(!cred::same_tickets(&ctx, &[1, 2, 3], &[1, 2, 3]));
    assert_eq!(std::fs::read(r.file_of(7)).unwrap(), b"on disk");
}

#[test]
fn refused_changes_touch_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = Context::new().unwrap();
    let r = Repo::new(dir.path());
    put(&r, rec(7, 1000, 2000));
    std::fs::write(r.file_of(7), b"kept").unwrap();
    let no = || Refusal::new(1, "no", "no");
    assert!(matches!(
        r.add(&ctx, rec(7, 5000, 6000), |_, _| Err::<(), _>(no())),
        Err(RepoError::Refused(_))
    ));
    assert!(matches!(
        r.remove(&ctx, 7, |_| Err(no())),
        Err(RepoError::Refused(_))
    ));
    assert_eq!(std::fs::read(r.file_of(7)).unwrap(), b"kept");
    assert_eq!(r.get(&ctx, 7).unwrap().endtime, 1000);
}

#[test]
fn a_panic_while_holding_a_lock_does_not_poison_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = Context::new().unwrap();
    let r = Repo::new(dir.path());
    put(&r, rec(8, 1000, 0));
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _m = r.write_map();
        let _s = r.stripe(8);
        panic!("boom");
    }));
    assert!(r.get(&ctx, 8).is_some());
    assert!(r.remove(&ctx, 8, |_| Ok(())).is_ok());
    assert_eq!(r.len(), 0);
}

#[test]
fn remove_missing_is_not_found_and_clean_removes_files() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = Context::new().unwrap();
    let r = Repo::new(dir.path());
    assert!(matches!(
        r.remove(&ctx, 7, |_| Ok(())),
        Err(RepoError::NotFound)
    ));
    std::fs::write(r.file_of(7), b"x").unwrap();
    put(&r, rec(7, 10, 0));
    put(&r, rec(8, 1000, 0));
    let gone = r.clean(100);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].0, 7);
    assert!(!r.file_of(7).exists());
    assert!(r.get(&ctx, 8).is_some());
}

/// An unencrypted KRB-CRED holding one ticket `t` (enough for the reader
/// of `krb5::compare_credentials`).
fn krb_cred(t: u8) -> Vec<u8> {
    crate::krb5::krb_cred_build::krb_cred(&[&[t]], &[b"info"], 0, &[])
}

#[test]
fn an_add_that_changes_nothing_does_not_wait_for_the_stripe() {
    let dir = tempfile::tempdir().unwrap();
    let r = Repo::new(dir.path());
    let mut c = rec(9, 1000, 2000);
    c.data = Zeroizing::new(krb_cred(b'T'));
    put(&r, c.clone());
    std::fs::write(r.file_of(9), b"stored").unwrap();
    let held = r.stripe(9);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let again = c.clone();
        let (r, tx) = (&r, tx.clone());
        s.spawn(move || {
            let ctx = Context::new().unwrap();
            let _ = tx.send(r.add(&ctx, again, |_, _| Ok(())).map(|x| x.0));
        });
        let got = rx.recv_timeout(Duration::from_secs(10));
        drop(held);
        assert!(
            matches!(got, Ok(Ok(AddOutcome::Unchanged))),
            "an unchanged ADD waited for the stripe or failed: {:?}",
            got.map(|r| r.map_err(|e| e.to_string()))
        );
    });
    // Another ticket is a change: it is written under the stripe.
    let mut other = rec(9, 1000, 2000);
    other.data = Zeroizing::new(krb_cred(b'U'));
    let ctx = Context::new().unwrap();
    assert!(matches!(
        r.add(&ctx, other, |_, _| Ok(())),
        Err(RepoError::Write { .. })
    ));
    assert_eq!(std::fs::read(r.file_of(9)).unwrap(), b"stored");
}
