//! The repository's pure rules: which of two credentials wins, when one
//! is stale, and which file names hold a cache.

use crate::proto::CredRecord;

/// The C replacement policy: the new credential wins if its renewable
/// period ends later, or ends at the same time and it expires no sooner.
pub fn newer_or_equal(new: &CredRecord, old: &CredRecord) -> bool {
    new.renew_till > old.renew_till
        || (new.renew_till == old.renew_till && new.endtime >= old.endtime)
}

/// Whether the cleaner must drop a credential at `now` (§5.6).
pub fn is_stale(rec: &CredRecord, now: i64) -> bool {
    rec.endtime < now || (rec.renew_till > 0 && rec.renew_till < now)
}

/// The uid of a cache file name `aukscc_<uid>` (canonical decimal only).
pub fn uid_of_file_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("aukscc_")?;
    let uid: u32 = digits.parse().ok()?;
    (uid.to_string() == digits).then_some(uid)
}
