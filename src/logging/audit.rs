//! The audit trail: one line per credential request (GET, ADD, REMOVE,
//! DUMP), saying who asked (principal and address), for which uid, and the
//! outcome, so that every credential handed out is attributable to a
//! person. Written at `info` (C level 1, the default `LogLevel` of auksd)
//! with the target `auks::audit`, in logfmt (`key=value`, values with
//! spaces or quotes double-quoted and escaped), which SIEMs parse as is:
//!
//! ```text
//! audit op=GET principal="host/node1@REALM" addr=10.0.0.7 uid=3001 outcome=ok
//! audit op=ADD principal="alice@REALM" addr=10.0.0.2 uid=3001 outcome=rejected reason="expired credential"
//! ```
//!
//! Never a ticket, key or password: only the fields of [`Audit`].

use std::fmt::Write as _;
use std::net::IpAddr;

/// The audited request types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Get,
    Add,
    Remove,
    Dump,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Get => "GET",
            Op::Add => "ADD",
            Op::Remove => "REMOVE",
            Op::Dump => "DUMP",
        }
    }
}

/// How a request ended (also the `outcome` label of the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Denied,
    NotFound,
    Rejected,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::NotFound => "not_found",
            Outcome::Rejected => "rejected",
            Outcome::Error => "error",
        }
    }
}

/// One audited request.
#[derive(Debug, Clone)]
pub struct Audit<'a> {
    pub op: Op,
    /// The authenticated client principal.
    pub principal: &'a str,
    /// The client address.
    pub addr: IpAddr,
    /// The uid whose credential is concerned (none for DUMP).
    pub uid: Option<u32>,
    pub outcome: Outcome,
    /// Why it was not `ok` (a reason text, never credential data).
    pub reason: Option<&'a str>,
}

/// `value` as a logfmt value: bare when it is made of safe characters,
/// else double-quoted with `\`, `"` and control characters escaped.
pub fn value(v: &str) -> String {
    let bare = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@/._-:+".contains(c));
    if bare {
        return v.to_string();
    }
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(s, "\\u{{{:x}}}", u32::from(c));
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// The audit line (without a trailing newline).
pub fn line(a: &Audit) -> String {
    let mut s = format!(
        "audit op={} principal={} addr={}",
        a.op.as_str(),
        value(a.principal),
        a.addr
    );
    if let Some(uid) = a.uid {
        let _ = write!(s, " uid={uid}");
    }
    let _ = write!(s, " outcome={}", a.outcome.as_str());
    if let Some(r) = a.reason {
        let _ = write!(s, " reason={}", value(r));
    }
    s
}

/// Log the audit line at `info` (target `auks::audit`).
pub fn record(a: &Audit) {
    ::log::info!(target: "auks::audit", "{}", line(a));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_logfmt() {
        let a = Audit {
            op: Op::Get,
            principal: "host/node1.example.org@EXAMPLE.ORG",
            addr: "10.0.0.7".parse().unwrap(),
            uid: Some(3001),
            outcome: Outcome::Ok,
            reason: None,
        };
        assert_eq!(
            line(&a),
            "audit op=GET principal=host/node1.example.org@EXAMPLE.ORG addr=10.0.0.7 uid=3001 outcome=ok"
        );
        let b = Audit {
            op: Op::Dump,
            principal: "eve \"x\"=1@R",
            addr: "::1".parse().unwrap(),
            uid: None,
            outcome: Outcome::Denied,
            reason: Some("no admin role\nfake=1"),
        };
        assert_eq!(
            line(&b),
            "audit op=DUMP principal=\"eve \\\"x\\\"=1@R\" addr=::1 outcome=denied reason=\"no admin role\\nfake=1\""
        );
    }

    #[test]
    fn values_cannot_forge_fields_or_lines() {
        for v in ["a b", "a=b", "a\"b", "a\nb", "a\rb", "", "a\u{1b}[31m"] {
            let q = value(v);
            assert!(q.starts_with('"') && q.ends_with('"'), "{v:?} -> {q}");
            assert!(!q.contains('\n') && !q.contains('\r') && !q.contains('\u{1b}'));
            assert!(!q[1..q.len() - 1].replace("\\\"", "").contains('"'));
        }
        assert_eq!(value("alice@R"), "alice@R");
    }
}
