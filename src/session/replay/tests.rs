use super::*;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

const NOW: i64 = 1_800_000_000;
const NAME: &str = "auksd_test";

fn tag(n: u8) -> Tag {
    tag_of(&[n; 40])
}

fn journal(dir: &Path, n: u8) -> PathBuf {
    dir.join(format!("{NAME}.replay.{n}"))
}

/// A private directory (0700), as the packaged unit's KRB5RCACHEDIR.
fn private_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}

fn replayed(r: Result<(), ReplayError>) -> bool {
    matches!(r, Err(ReplayError::Replayed))
}

#[test]
fn a_tag_is_refused_the_second_time_until_it_expires() {
    let (c, _) = ReplayCache::open(None, NAME, 300, NOW);
    c.record(tag(1), NOW, NOW, false).unwrap();
    c.record(tag(2), NOW, NOW, false).unwrap();
    assert!(replayed(c.record(tag(1), NOW, NOW + 1, false)));
    // Still refused while libkrb5 would accept the authenticator's time
    // (ctime + skew) and a minute more, also when libkrb5's cache was used.
    assert!(replayed(c.record(tag(1), NOW, NOW + 300, true)));
    assert!(replayed(c.record(tag(1), NOW, NOW + 360, false)));
    // Forgotten once libkrb5 refuses it by its time anyway.
    c.record(tag(1), NOW, NOW + 362, false).unwrap();
    assert!(!c.library_needed(NOW + 362));
}

#[test]
fn a_future_authenticator_is_kept_until_its_own_time_passes() {
    let (c, _) = ReplayCache::open(None, NAME, 300, NOW);
    c.record(tag(1), NOW + 250, NOW, false).unwrap();
    assert!(replayed(c.record(tag(1), NOW + 250, NOW + 549, false)));
}

#[test]
fn a_larger_skew_noted_later_keeps_tags_longer() {
    let (c, _) = ReplayCache::open(None, NAME, 300, NOW);
    c.note_skew(900);
    c.note_skew(100);
    c.record(tag(1), NOW, NOW, false).unwrap();
    assert!(replayed(c.record(tag(1), NOW, NOW + 899, false)));
}

#[test]
fn the_journal_keeps_tags_across_a_restart_in_files_of_mode_0600() {
    let dir = private_dir();
    let (c, note) = ReplayCache::open(Some(dir.path()), NAME, 300, NOW);
    assert!(note.contains("0 authenticators"), "{note}");
    assert!(!c.library_needed(NOW));
    c.record(tag(1), NOW, NOW, false).unwrap();
    c.record(tag(2), NOW - 400, NOW, false).unwrap();
    drop(c);
    let mode = std::fs::metadata(journal(dir.path(), 0))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let (c, note) = ReplayCache::open(Some(dir.path()), NAME, 300, NOW + 10);
    assert!(note.contains("2 authenticators"), "{note}");
    assert!(!c.library_needed(NOW + 10));
    assert!(replayed(c.record(tag(1), NOW, NOW + 10, false)));
    assert!(replayed(c.record(tag(2), NOW, NOW + 10, false)));
    c.record(tag(3), NOW, NOW + 10, false).unwrap();
    // Compacted on load: expired records are not written back.
    drop(c);
    let (c, note) = ReplayCache::open(Some(dir.path()), NAME, 300, NOW + 370);
    assert!(note.contains("1 authenticators"), "{note}");
    assert_eq!(c.len(), 1);
    assert!(!journal(dir.path(), 1).exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".new"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_record_cut_short_ends_the_journal() {
    let dir = private_dir();
    let (c, _) = ReplayCache::open(Some(dir.path()), NAME, 300, NOW);
    c.record(tag(1), NOW, NOW, false).unwrap();
    drop(c);
    let mut f = OpenOptions::new()
        .append(true)
        .open(journal(dir.path(), 0))
        .unwrap();
    f.write_all(&[7u8; RECORD - 1]).unwrap();
    drop(f);
    let (c, note) = ReplayCache::open(Some(dir.path()), NAME, 300, NOW + 1);
    assert!(note.contains("1 authenticators"), "{note}");
    assert_eq!(c.len(), 1);
    assert!(!c.library_needed(NOW + 1));
}

#[test]
fn the_older_journal_file_is_dropped_when_all_it_holds_has_expired() {
    let dir = private_dir();
    // skew 0: the files rotate every 2 minutes.
    let (c, _) = ReplayCache::open(Some(dir.path()), NAME, 0, NOW);
    c.record(tag(1), NOW, NOW, false).unwrap();
    c.record(tag(2), NOW + 121, NOW + 121, false).unwrap();
    assert!(journal(dir.path(), 1).exists(), "rotated to file 1");
    let size = |n| std::fs::metadata(journal(dir.path(), n)).unwrap().len();
    assert_eq!((size(0), size(1)), (RECORD as u64, RECORD as u64));
    c.record(tag(3), NOW + 242, NOW + 242, false).unwrap();
    assert_eq!((size(0), size(1)), (RECORD as u64, RECORD as u64));
    let mut first = [0u8; RECORD];
    File::open(journal(dir.path(), 0))
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    assert_eq!(first[..16], tag(3), "file 0 holds only the newest tag");
}

#[test]
fn a_full_cache_hands_over_to_libkrb5s_and_back() {
    let dir = private_dir();
    let (c, _) = ReplayCache::with_capacity(Some(dir.path()), NAME, 300, NOW, 2, 1);
    c.record(tag(1), NOW, NOW, false).unwrap();
    c.record(tag(2), NOW, NOW, false).unwrap();
    assert!(!c.library_needed(NOW));
    assert!(matches!(
        c.record(tag(3), NOW, NOW, false),
        Err(ReplayError::HandingOver)
    ));
    assert!(c.library_needed(NOW + 1));
    // A session that chose before the hand-over is refused.
    assert!(matches!(
        c.record(tag(4), NOW, NOW + 1, false),
        Err(ReplayError::HandingOver)
    ));
    // With libkrb5's cache in use, new authenticators are accepted, and
    // those in memory are still refused.
    c.record(tag(5), NOW + 1, NOW + 1, true).unwrap();
    assert!(replayed(c.record(tag(1), NOW, NOW + 1, true)));
    // Once everything stored only in libkrb5's cache has expired (and the
    // memory has room again), this cache alone is used.
    assert!(c.library_needed(NOW + 662));
    assert!(!c.library_needed(NOW + 664));
    c.record(tag(6), NOW + 664, NOW + 664, false).unwrap();
}

#[test]
fn a_restart_uses_libkrb5s_cache_while_its_file_holds_fresh_authenticators() {
    let dir = private_dir();
    let euid = rustix::process::geteuid().as_raw();
    let mit = dir.path().join(format!("krb5_{euid}.rcache2"));
    std::fs::write(&mit, b"x").unwrap();
    let written = File::open(&mit).unwrap().metadata().unwrap().mtime();
    let (c, note) = ReplayCache::open(Some(dir.path()), NAME, 300, written + 5);
    assert!(note.contains("libkrb5's file cache, written"), "{note}");
    assert!(c.library_needed(written + 600));
    assert!(!c.library_needed(written + 663));
    // An old file does not matter.
    let (c, note) = ReplayCache::open(Some(dir.path()), NAME, 300, written + 1000);
    assert!(!note.contains("libkrb5"), "{note}");
    assert!(!c.library_needed(written + 1000));
}

#[test]
fn an_untrusted_journal_hands_over_for_good_but_what_was_read_stays_refused() {
    let dir = private_dir();
    let (c, _) = ReplayCache::open(Some(dir.path()), NAME, 300, NOW);
    c.record(tag(1), NOW, NOW, false).unwrap();
    drop(c);
    // File 1 writable by others: not trusted; file 0 is still read.
    std::fs::write(journal(dir.path(), 1), [0u8; RECORD]).unwrap();
    std::fs::set_permissions(
        journal(dir.path(), 1),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let (c, note) = ReplayCache::open(Some(dir.path()), NAME, 300, NOW + 1);
    assert!(note.contains("libkrb5's file cache is used"), "{note}");
    assert!(c.library_needed(NOW + 100_000));
    assert!(replayed(c.record(tag(1), NOW, NOW + 2, true)));
    // Nothing new is accepted without libkrb5's cache.
    assert!(matches!(
        c.record(tag(2), NOW + 2, NOW + 2, false),
        Err(ReplayError::HandingOver)
    ));
    c.record(tag(3), NOW + 2, NOW + 2, true).unwrap();
    // A symbolic link is not followed.
    let dir = private_dir();
    std::os::unix::fs::symlink("/etc/passwd", journal(dir.path(), 1)).unwrap();
    let (c, note) = ReplayCache::open(Some(dir.path()), NAME, 300, NOW);
    assert!(note.contains("libkrb5's file cache is used"), "{note}");
    assert!(c.library_needed(NOW));
}

#[test]
fn a_directory_others_may_write_to_without_the_sticky_bit_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let (c, note) = ReplayCache::open(Some(dir.path()), NAME, 300, NOW);
    assert!(note.contains("not sticky"), "{note}");
    assert!(c.library_needed(NOW));
    // Sticky, as /var/tmp: trusted.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let (c, note) = ReplayCache::open(Some(dir.path()), NAME, 300, NOW);
    assert!(!c.library_needed(NOW), "{note}");
}

#[test]
fn many_tags_across_the_shards_are_kept_then_swept() {
    let (c, _) = ReplayCache::open(None, NAME, 300, NOW);
    let tags: Vec<Tag> = (0..10_000u32).map(|i| tag_of(&i.to_le_bytes())).collect();
    for t in &tags {
        c.record(*t, NOW, NOW, false).unwrap();
    }
    assert_eq!(c.len(), tags.len());
    for t in tags.iter().step_by(97) {
        assert!(replayed(c.record(*t, NOW, NOW + 1, false)));
    }
    // Once expired, each shard drops its tags at its next sweep (a record
    // in that shard): one new tag per first byte reaches them all.
    let later = NOW + 302 + GRACE + SWEEP_EVERY;
    let mut fresh = 0u32;
    let mut seen_first = [false; 256];
    while seen_first.iter().any(|s| !s) {
        let t = tag_of(&(1_000_000 + fresh).to_le_bytes());
        fresh += 1;
        if !seen_first[usize::from(t[0])] {
            seen_first[usize::from(t[0])] = true;
            c.record(t, later, later, false).unwrap();
        }
    }
    assert_eq!(c.len(), 256);
}

#[test]
fn tags_differ_with_the_ciphertext() {
    assert_ne!(tag_of(b"a"), tag_of(b"b"));
    assert_eq!(tag_of(b"a"), tag_of(b"a"));
}
