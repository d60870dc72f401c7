//! The renewal policy, pure and shared by both renewers (`auks -R` and
//! auksdrenewer): [`decide`] says what to do with a credential now, and
//! [`next_check`] how long the per-job renewer sleeps before looking again.
//! No I/O here: every rule is unit-tested below with plain numbers.

use crate::cred::CredMeta;
use crate::timefmt::fmt_time;

/// The times of a credential that matter for renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    pub starttime: i64,
    pub endtime: i64,
    /// 0 when the ticket is not renewable.
    pub renew_till: i64,
}

impl From<&CredMeta> for Times {
    fn from(m: &CredMeta) -> Self {
        Times {
            starttime: m.starttime,
            endtime: m.endtime,
            renew_till: m.renew_till,
        }
    }
}

impl From<&crate::proto::CredRecord> for Times {
    fn from(r: &crate::proto::CredRecord) -> Self {
        Times {
            starttime: r.starttime,
            endtime: r.endtime,
            renew_till: r.renew_till,
        }
    }
}

/// Why a credential cannot be renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// `endtime == starttime` (or earlier): not a usable ticket.
    ZeroLife,
    /// `endtime <= now`.
    Expired { endtime: i64 },
    /// No renewable period.
    NotRenewable,
    /// The ticket already ends at (or after) the end of its renewable
    /// period, or that period is over: the KDC cannot extend it.
    PeriodOver { renew_till: i64 },
}

impl Why {
    /// True when nothing can ever make this credential usable again.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Why::ZeroLife | Why::Expired { .. })
    }
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::ZeroLife => f.write_str("the ticket has no lifetime (end time = start time)"),
            Why::Expired { endtime } => write!(f, "the ticket expired at {}", fmt_time(*endtime)),
            Why::NotRenewable => f.write_str("the ticket is not renewable"),
            Why::PeriodOver { renew_till } => write!(
                f,
                "the renewable period ends at {}, not after the ticket itself: the KDC cannot extend it",
                fmt_time(*renew_till)
            ),
        }
    }
}

/// What to do with a credential now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// More than `MinLifeTime` remains; due at `due_at`.
    NotDue { due_at: i64 },
    /// Renew now.
    Renew,
    /// A renewal would be due but cannot be done at the KDC.
    Impossible(Why),
}

/// The renewal decision (pure). Order of the tests:
/// 1. no lifetime ⇒ impossible; 2. expired ⇒ impossible; 3. more than
///    `min_lifetime` seconds left ⇒ not due (whatever the renewability);
/// 4. not renewable, or already ending at `renew_till` ⇒ impossible;
/// 5. otherwise renew.
pub fn decide(t: &Times, now: i64, min_lifetime: u64) -> Decision {
    let min = i64::try_from(min_lifetime).unwrap_or(i64::MAX);
    if t.endtime <= t.starttime {
        return Decision::Impossible(Why::ZeroLife);
    }
    if t.endtime <= now {
        return Decision::Impossible(Why::Expired { endtime: t.endtime });
    }
    let remaining = t.endtime - now;
    if remaining > min {
        return Decision::NotDue {
            due_at: t.endtime.saturating_sub(min),
        };
    }
    if t.renew_till <= 0 {
        return Decision::Impossible(Why::NotRenewable);
    }
    if t.endtime >= t.renew_till || t.renew_till <= now {
        return Decision::Impossible(Why::PeriodOver {
            renew_till: t.renew_till,
        });
    }
    Decision::Renew
}

/// Seconds to wait before the next check of a credential (pure):
/// - not due: until it becomes due, at most `delay`;
/// - due (a renewal failed, or the renewed ticket is still within the
///   threshold because its lifetime is not longer than `MinLifeTime`):
///   half of the remaining life;
/// - impossible but still valid: until it expires (auksd may meanwhile
///   receive a fresher credential, e.g. after the user's `kinit; auks -a`);
///
/// always at least 1 s and at most `delay` (itself at least 1 s).
pub fn next_check(d: &Decision, t: &Times, now: i64, delay: u64) -> u64 {
    let cap = delay.max(1);
    let secs = match d {
        Decision::NotDue { due_at } => due_at - now,
        Decision::Renew => (t.endtime - now) / 2,
        Decision::Impossible(_) => t.endtime - now,
    };
    u64::try_from(secs).unwrap_or(0).clamp(1, cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn t(start: i64, end: i64, till: i64) -> Times {
        Times {
            starttime: NOW + start,
            endtime: NOW + end,
            renew_till: if till == 0 { 0 } else { NOW + till },
        }
    }

    #[test]
    fn fresh_ticket_is_not_due() {
        // 60 s ticket just obtained, threshold 10 s
        let d = decide(&t(0, 60, 900), NOW, 10);
        assert_eq!(d, Decision::NotDue { due_at: NOW + 50 });
    }

    #[test]
    fn threshold_boundaries() {
        // remaining 41 > 40: not due; 40 <= 40: due; 39: due
        assert!(matches!(
            decide(&t(-19, 41, 900), NOW, 40),
            Decision::NotDue { .. }
        ));
        assert_eq!(decide(&t(-20, 40, 900), NOW, 40), Decision::Renew);
        assert_eq!(decide(&t(-21, 39, 900), NOW, 40), Decision::Renew);
        // one second left is still renewable
        assert_eq!(decide(&t(-59, 1, 900), NOW, 40), Decision::Renew);
    }

    #[test]
    fn short_lifetime_is_renewed_not_abandoned() {
        // §11.18: life (60) <= MinLifeTime (300) used to abort; now it renews
        assert_eq!(decide(&t(0, 60, 900), NOW, 300), Decision::Renew);
        // MinLifeTime 0: renew only at the very end (never, as endtime > now)
        assert!(matches!(
            decide(&t(0, 60, 900), NOW, 0),
            Decision::NotDue { .. }
        ));
    }

    #[test]
    fn end_of_renewable_period() {
        // endtime capped at renew_till: nothing more to gain
        assert_eq!(
            decide(&t(-30, 30, 30), NOW, 40),
            Decision::Impossible(Why::PeriodOver {
                renew_till: NOW + 30
            })
        );
        // renew_till just after endtime: still worth one more renewal
        assert_eq!(decide(&t(-30, 30, 31), NOW, 40), Decision::Renew);
        // renewable period over (inconsistent ticket: end after renew_till)
        assert_eq!(
            decide(&t(-30, 30, -1), NOW, 40),
            Decision::Impossible(Why::PeriodOver {
                renew_till: NOW - 1
            })
        );
        // capped but far from expiry: not due (nothing to do yet)
        assert!(matches!(
            decide(&t(0, 600, 600), NOW, 40),
            Decision::NotDue { .. }
        ));
    }

    #[test]
    fn after_renew_till_and_expired() {
        assert_eq!(
            decide(&t(-100, -10, -5), NOW, 40),
            Decision::Impossible(Why::Expired { endtime: NOW - 10 })
        );
        // endtime == now counts as expired
        assert_eq!(
            decide(&t(-60, 0, 900), NOW, 40),
            Decision::Impossible(Why::Expired { endtime: NOW })
        );
        assert!(Why::Expired { endtime: 0 }.is_terminal());
        assert!(!Why::NotRenewable.is_terminal());
    }

    #[test]
    fn zero_life_and_not_renewable() {
        assert_eq!(
            decide(&t(10, 10, 900), NOW, 40),
            Decision::Impossible(Why::ZeroLife)
        );
        assert_eq!(
            decide(&t(0, 0, 0), NOW, 40),
            Decision::Impossible(Why::ZeroLife)
        );
        assert!(Why::ZeroLife.is_terminal());
        // not renewable: nothing to do while fresh, impossible once due
        assert!(matches!(
            decide(&t(0, 60, 0), NOW, 10),
            Decision::NotDue { .. }
        ));
        assert_eq!(
            decide(&t(-55, 5, 0), NOW, 10),
            Decision::Impossible(Why::NotRenewable)
        );
    }

    #[test]
    fn huge_min_lifetime_does_not_overflow() {
        assert_eq!(decide(&t(0, 60, 900), NOW, u64::MAX), Decision::Renew);
    }

    #[test]
    fn sleep_policy() {
        let times = t(0, 60, 900);
        // wake up exactly when due, capped by Delay
        assert_eq!(next_check(&decide(&times, NOW, 10), &times, NOW, 60), 50);
        assert_eq!(next_check(&decide(&times, NOW, 10), &times, NOW, 5), 5);
        // due (ticket not longer than the threshold): half the remaining life
        assert_eq!(next_check(&Decision::Renew, &times, NOW, 60), 30);
        // impossible: until expiry, capped
        let d = Decision::Impossible(Why::NotRenewable);
        assert_eq!(next_check(&d, &t(0, 20, 0), NOW, 60), 20);
        assert_eq!(next_check(&d, &t(0, 20, 0), NOW, 7), 7);
        // never 0, even with Delay 0 or an expired credential
        assert_eq!(next_check(&Decision::Renew, &t(-60, 1, 900), NOW, 60), 1);
        assert_eq!(next_check(&d, &t(-60, -5, 0), NOW, 0), 1);
    }
}
