use super::*;
use std::os::unix::fs::PermissionsExt;

const NOW: i64 = 1_800_000_000;

fn tag(n: u8) -> Tag {
    tag_of(&[n; 40])
}

const NAME: &str = "auksd_test";

fn journal(dir: &Path, n: u8) -> PathBuf {
    dir.join(format!("{NAME}.replay.{n}"))
}

#[test]
fn a_tag_is_refused_the_second_time_until_it_expires() {
    let (c, _) = ReplayCache::open(None, NAME, 300, NOW);
    c.record(tag(1), NOW, NOW, false).unwrap();
    c.record(tag(2), NOW, NOW, false).unwrap();
    assert!(matches!(
        c.record(tag(1), NOW, NOW + 1, false),
        Err(ReplayError::Replayed)
    ));
    // Still refused while libkrb5 would accept the authenticator's time
    // (ctime + skew), also when the library's cache was used too.
    assert!(matches!(
        c.record(tag(1), NOW, NOW + 300, true),
        Err(ReplayError::Replayed)
    ));
    // Forgotten once libkrb5 refuses it by its time anyway.
    c.record(tag(1), NOW, NOW + 302, false).unwrap();
    assert!(!c.library_needed(NOW + 302));
}

#[test]
fn a_future_authenticator_is_kept_until_its_own_time_passes() {
    let (c, _) = ReplayCache::open(None, NAME, 300, NOW);
    c.record(tag(1), NOW + 250, NOW, false).unwrap();
    assert!(matches!(
        c.record(tag(1), NOW + 250, NOW + 549, false),
        Err(ReplayError::Replayed)
    ));
}

#[test]
fn the_journal_keeps_tags_across_a_restart_in_files_of_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let (c, note) = ReplayCache::open(Some(dir.path()), NAME, 300, NOW);
    assert!(note.contains("0 authenticators"), "{note}");
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
    assert!(matches!(
        c.record(tag(1), NOW, NOW + 10, false),
        Err(ReplayError::Replayed)
    ));
    assert!(matches!(
        c.record(tag(2), NOW, NOW + 10, false),
        Err(ReplayError::Replayed)
    ));
    c.record(tag(3), NOW, NOW + 10, false).unwrap();
    // Compacted on load: expired records are not written back.
    drop(c);
    let (c, note) = ReplayCache::open(Some(dir.path()), NAME, 300, NOW + 305);
    assert!(note.contains("1 authenticators"), "{note}");
    assert_eq!(c.len(), 1);
    assert!(!journal(dir.path(), 1).exists());
}

#[test]
fn a_record_cut_short_ends_the_journal() {
    let dir = tempfile::tempdir().unwrap();
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
}

#[test]
fn the_older_journal_file_is_dropped_when_all_it_holds_has_expired() {
    let dir = tempfile::tempdir().unwrap();
    // skew 0: the files rotate every 60 s.
    let (c, _) = ReplayCache::open(Some(dir.path()), NAME, 0, NOW);
    c.record(tag(1), NOW, NOW, false).unwrap();
    c.record(tag(2), NOW + 61, NOW + 61, false).unwrap();
    assert!(journal(dir.path(), 1).exists(), "rotated to file 1");
    let size = |n| std::fs::metadata(journal(dir.path(), n)).unwrap().len();
    assert_eq!((size(0), size(1)), (RECORD as u64, RECORD as u64));
    c.record(tag(3), NOW + 122, NOW + 122, false).unwrap();
    assert_eq!((size(0), size(1)), (RECORD as u64, RECORD as u64));
    let mut first = [0u8; RECORD];
    File::open(journal(dir.path(), 0))
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    assert_eq!(first[..16], tag(3), "file 0 holds only the newest tag");
}

#[test]
fn a_full_cache_refuses_once_then_hands_over_to_libkrb5s_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = ReplayCache::with_capacity(Some(dir.path()), NAME, 300, NOW, 2, 1);
    c.record(tag(1), NOW, NOW, false).unwrap();
    c.record(tag(2), NOW, NOW, false).unwrap();
    assert!(!c.library_needed(NOW));
    assert!(matches!(
        c.record(tag(3), NOW, NOW, false),
        Err(ReplayError::Full)
    ));
    assert!(c.library_needed(NOW + 1));
    // With libkrb5's cache in use, new authenticators are accepted, and
    // those in memory are still refused.
    c.record(tag(4), NOW + 1, NOW + 1, true).unwrap();
    assert!(matches!(
        c.record(tag(1), NOW, NOW + 1, true),
        Err(ReplayError::Replayed)
    ));
    // The hand-over survives a restart (a mark in the journal).
    drop(c);
    let (c, _) = ReplayCache::with_capacity(Some(dir.path()), NAME, 300, NOW + 2, 2, 1);
    assert!(c.library_needed(NOW + 2));
    // Once everything stored only in libkrb5's cache has expired (and the
    // memory has room again), this cache alone is used.
    assert!(c.library_needed(NOW + 601));
    assert!(!c.library_needed(NOW + 625));
    c.record(tag(5), NOW + 625, NOW + 625, false).unwrap();
}

#[test]
fn a_journal_of_another_user_or_writable_by_others_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(journal(dir.path(), 0), [0u8; RECORD]).unwrap();
    std::fs::set_permissions(
        journal(dir.path(), 0),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let (c, note) = ReplayCache::open(Some(dir.path()), NAME, 300, NOW);
    assert!(note.contains("libkrb5's file cache is used"), "{note}");
    assert!(c.library_needed(NOW + 100_000));
    // A symbolic link is not followed.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc/passwd", journal(dir.path(), 1)).unwrap();
    let (c, note) = ReplayCache::open(Some(dir.path()), NAME, 300, NOW);
    assert!(note.contains("libkrb5's file cache is used"), "{note}");
    assert!(c.library_needed(NOW));
}

#[test]
fn tags_differ_with_the_ciphertext() {
    assert_ne!(tag_of(b"a"), tag_of(b"b"));
    assert_eq!(tag_of(b"a"), tag_of(b"a"));
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
        assert!(matches!(
            c.record(*t, NOW, NOW + 1, false),
            Err(ReplayError::Replayed)
        ));
    }
    // Once expired, each shard drops its tags at its next sweep (a record
    // in that shard): one new tag per first byte reaches them all.
    let later = NOW + 302 + SWEEP_EVERY;
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
