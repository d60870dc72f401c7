//! Authorization of requests (spec §5.3) as pure functions of the
//! requester's principal, its ACL role and the stored record: no socket,
//! no lock, no file. The worker asks these functions and applies the answer.
//!
//! | request | guest | user                         | admin |
//! |---------|-------|------------------------------|-------|
//! | PING    | yes   | yes                          | yes   |
//! | ADD     | yes, own principal, never displacing another's valid credential | yes, own principal, same | any |
//! | GET     | no    | own principal's credential   | any   |
//! | REMOVE  | no    | own principal's credential   | any   |
//! | DUMP    | no    | no                           | yes   |
//!
//! A principal without any role is refused everything.

use crate::acl::Role;
use crate::proto::{reason, CredRecord};
use crate::timefmt::fmt_time;

/// A refused request: wire reason code, text sent to the client, note for
/// the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: i32,
    pub text: String,
    pub note: String,
}

impl Refusal {
    pub fn new(code: i32, text: impl Into<String>, note: impl Into<String>) -> Self {
        Refusal {
            code,
            text: text.into(),
            note: note.into(),
        }
    }
}

/// The answer to a principal that has no role in the ACL.
pub fn no_role(client: &str) -> Refusal {
    Refusal::new(
        reason::ACL_DENIED,
        format!("permission denied by auksd ACL: principal {client} has no role"),
        "no matching ACL rule",
    )
}

/// GET/REMOVE: guests may not; users only for a credential of their own
/// principal; admins for any stored credential.
fn owned<'r>(
    role: Role,
    client: &str,
    uid: u32,
    stored: Option<&'r CredRecord>,
    what: &str,
) -> Result<&'r CredRecord, Refusal> {
    if role == Role::Guest {
        return Err(Refusal::new(
            reason::NOT_AUTHORIZED,
            "requester is not authorized to do that (guest role)",
            format!("guest may not {what}"),
        ));
    }
    match stored {
        None => Err(Refusal::new(
            reason::NOT_FOUND,
            format!("no credential stored for uid {uid}"),
            "not found",
        )),
        Some(r) if role != Role::Admin && r.principal != client => Err(Refusal::new(
            reason::PRINCIPAL_MISMATCH,
            format!("the credential of uid {uid} belongs to another principal"),
            format!("stored principal is {}", r.principal),
        )),
        Some(r) => Ok(r),
    }
}

/// GET of `uid`: the record to send, or why not (an expired record is
/// refused as not found).
pub fn get<'r>(
    role: Role,
    client: &str,
    uid: u32,
    stored: Option<&'r CredRecord>,
    now: i64,
) -> Result<&'r CredRecord, Refusal> {
    let r = owned(role, client, uid, stored, "get")?;
    if super::repo::is_stale(r, now) {
        return Err(Refusal::new(
            reason::NOT_FOUND,
            format!(
                "no valid credential stored for uid {uid}: the stored one expired (end {} , renewable until {})",
                fmt_time(r.endtime),
                fmt_time(r.renew_till)
            ),
            "stored credential expired",
        ));
    }
    Ok(r)
}

/// REMOVE of `uid`.
pub fn remove(
    role: Role,
    client: &str,
    uid: u32,
    stored: Option<&CredRecord>,
) -> Result<(), Refusal> {
    owned(role, client, uid, stored, "remove").map(|_| ())
}

/// DUMP: admins only.
pub fn dump(role: Role) -> Result<(), Refusal> {
    if role == Role::Admin {
        Ok(())
    } else {
        Err(Refusal::new(
            reason::NOT_AUTHORIZED,
            "requester is not authorized to do that (dump needs the admin role)",
            "dump needs admin",
        ))
    }
}

/// ADD, the checks that need only the received credential: it must be
/// addressless, and a non-admin may only add its own principal's.
pub fn add_received(role: Role, client: &str, new: &CredRecord) -> Result<(), Refusal> {
    if !new.addressless {
        return Err(Refusal::new(
            reason::NOT_ADDRESSLESS,
            "received credential is not addressless",
            format!("principal {} not addressless", new.principal),
        ));
    }
    if role != Role::Admin && new.principal != client {
        return Err(Refusal::new(
            reason::PRINCIPAL_MISMATCH,
            format!(
                "requester {client} may only add its own credential, not {}",
                new.principal
            ),
            format!("credential of {}", new.principal),
        ));
    }
    Ok(())
}

/// ADD against what is stored for the uid (§11.11): a non-admin may not
/// displace another principal's valid credential. Ok carries the other
/// principal an admin is about to displace, if any.
pub fn add_over(
    role: Role,
    new: &CredRecord,
    stored: Option<&CredRecord>,
    now: i64,
) -> Result<Option<String>, Refusal> {
    let other = stored
        .filter(|old| old.principal != new.principal && !super::repo::is_stale(old, now))
        .map(|old| old.principal.clone());
    match other {
        Some(other) if role != Role::Admin => Err(Refusal::new(
            reason::NOT_AUTHORIZED,
            format!(
                "uid {} already holds a valid credential of principal {other}",
                new.uid
            ),
            format!("uid {} holds {other}", new.uid),
        )),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    const NOW: i64 = 1_000_000;
    const ROLES: [Role; 3] = [Role::Guest, Role::User, Role::Admin];

    fn rec(principal: &str, uid: u32, end: i64) -> CredRecord {
        CredRecord {
            principal: principal.into(),
            uid,
            starttime: 0,
            endtime: end,
            renew_till: end + 100,
            addressless: true,
            crossrealm: false,
            data: Zeroizing::new(vec![1]),
            status: 0,
        }
    }

    fn code<T>(r: Result<T, Refusal>) -> Option<i32> {
        r.err().map(|e| e.code)
    }

    #[test]
    fn get_and_remove_matrix() {
        let own = rec("alice@R", 1000, NOW + 10);
        let other = rec("bob@R", 1000, NOW + 10);
        // (role, stored, expected code; None = allowed)
        let cases: [(Role, Option<&CredRecord>, Option<i32>); 9] = [
            (Role::Guest, Some(&own), Some(reason::NOT_AUTHORIZED)),
            (Role::Guest, None, Some(reason::NOT_AUTHORIZED)),
            (Role::Guest, Some(&other), Some(reason::NOT_AUTHORIZED)),
            (Role::User, Some(&own), None),
            (Role::User, None, Some(reason::NOT_FOUND)),
            (Role::User, Some(&other), Some(reason::PRINCIPAL_MISMATCH)),
            (Role::Admin, Some(&own), None),
            (Role::Admin, None, Some(reason::NOT_FOUND)),
            (Role::Admin, Some(&other), None),
        ];
        for (role, stored, want) in cases {
            assert_eq!(
                code(get(role, "alice@R", 1000, stored, NOW)),
                want,
                "get {role:?} {stored:?}"
            );
            assert_eq!(
                code(remove(role, "alice@R", 1000, stored)),
                want,
                "remove {role:?} {stored:?}"
            );
        }
    }

    #[test]
    fn get_of_an_expired_record_is_not_found_but_remove_is_allowed() {
        let old = rec("alice@R", 1000, NOW - 1);
        for role in [Role::User, Role::Admin] {
            let e = get(role, "alice@R", 1000, Some(&old), NOW).unwrap_err();
            assert_eq!(e.code, reason::NOT_FOUND);
            assert!(e.text.contains("expired"), "{}", e.text);
            assert!(remove(role, "alice@R", 1000, Some(&old)).is_ok());
        }
    }

    #[test]
    fn dump_needs_admin() {
        assert_eq!(code(dump(Role::Guest)), Some(reason::NOT_AUTHORIZED));
        assert_eq!(code(dump(Role::User)), Some(reason::NOT_AUTHORIZED));
        assert_eq!(code(dump(Role::Admin)), None);
    }

    #[test]
    fn add_received_matrix() {
        let own = rec("alice@R", 1000, NOW + 10);
        let foreign = rec("bob@R", 1001, NOW + 10);
        let mut bound = own.clone();
        bound.addressless = false;
        for role in ROLES {
            assert_eq!(code(add_received(role, "alice@R", &own)), None, "{role:?}");
            assert_eq!(
                code(add_received(role, "alice@R", &bound)),
                Some(reason::NOT_ADDRESSLESS),
                "{role:?}"
            );
            let want = (role != Role::Admin).then_some(reason::PRINCIPAL_MISMATCH);
            assert_eq!(
                code(add_received(role, "alice@R", &foreign)),
                want,
                "{role:?}"
            );
        }
    }

    #[test]
    fn add_over_matrix() {
        let new = rec("alice@R", 1000, NOW + 10);
        let mine = rec("alice@R", 1000, NOW + 5);
        let theirs = rec("bob@R", 1000, NOW + 5);
        let theirs_expired = rec("bob@R", 1000, NOW - 500);
        for role in ROLES {
            assert_eq!(add_over(role, &new, None, NOW), Ok(None), "{role:?}");
            assert_eq!(add_over(role, &new, Some(&mine), NOW), Ok(None), "{role:?}");
            assert_eq!(
                add_over(role, &new, Some(&theirs_expired), NOW),
                Ok(None),
                "{role:?}"
            );
            let r = add_over(role, &new, Some(&theirs), NOW);
            if role == Role::Admin {
                assert_eq!(r, Ok(Some("bob@R".into())));
            } else {
                assert_eq!(code(r), Some(reason::NOT_AUTHORIZED), "{role:?}");
            }
        }
    }

    #[test]
    fn no_role_is_acl_denied() {
        let r = no_role("eve@R");
        assert_eq!(r.code, reason::ACL_DENIED);
        assert!(r.text.contains("eve@R"));
    }
}
