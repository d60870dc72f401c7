//! The credential fetched while slurmstepd sets the step up: at
//! `init_post_opt` the plugin starts `<renewer> --spank-fetch`, a helper
//! process that does what [`super::fetcher`] does (GET from auksd as this
//! node, create the job's ccache as the user) and reports on its standard
//! output; `user_init` collects the report. The GET and the ccache then
//! cost the step nothing: slurmstepd spends about 2 ms between the two
//! hooks on its own set-up (I/O, cgroups, privileges), and the helper runs
//! meanwhile on the other CPU. In the hook itself the same work costs
//! about 2 ms (libkrb5's loading, the authenticated exchange, the ccache).
//!
//! Why a process and not a thread: between the two hooks slurmstepd drops
//! its effective ids (`setresuid` in every thread, by the C library), so a
//! thread could lose root while reading the node's own ccache; and a
//! process of its own leaves slurmstepd without libkrb5 at all. The helper
//! starts as root (the node's ccache or keytab); see [`crate::spank::helper`]
//! for how it is started, read and bounded.
//!
//! Report lines after the greeting (tab-separated; text has no control
//! characters): notes; `P <phase> <nanoseconds>`; `S <1|0> <ccache>`
//! stored; `F <text>` failed, the message for the user; `.` the end.

use super::fetcher::{self, Fetched};
use super::{Job, JobCcache};
pub use crate::spank::helper::{budget, HelperFailed};
use crate::spank::helper::{clean, Helper, Note, NOTE_MAX};
use crate::spank::spawn::Identity;
use std::time::Duration;

/// First argument of the helper mode of the `auks` binary.
pub const HELPER_ARG: &str = "--spank-fetch";
/// The helper's greeting.
pub const HELLO: &str = "auks-spank-fetch 1";

/// A helper started by [`Prefetch::start`].
pub struct Prefetch(Helper);

impl Prefetch {
    /// Start the helper for `job` (`argv`: the plugstack arguments, which
    /// the helper parses as the plugin did). Call as root.
    pub fn start(
        program: &std::path::Path,
        argv: &[String],
        job: &Job,
        budget: Duration,
    ) -> std::io::Result<Prefetch> {
        let ids = [
            job.uid.to_string(),
            job.gid.to_string(),
            job.jobid.to_string(),
        ];
        let mut args: Vec<&str> = vec![HELPER_ARG];
        args.extend(ids.iter().map(String::as_str));
        args.push("--");
        args.extend(argv.iter().map(String::as_str));
        let root = Identity {
            uid: 0,
            gid: 0,
            groups: nix::unistd::getgroups()?
                .into_iter()
                .map(|g| g.as_raw())
                .collect(),
        };
        Ok(Prefetch(Helper::start(
            program,
            &args,
            Some(&root),
            HELLO,
            budget,
        )?))
    }

    /// Ask the node's fetch agent at `socket` instead
    /// ([`super::agent`]): the same report, from a process already
    /// running. Call as root.
    pub fn ask_agent(
        socket: &std::path::Path,
        argv: &[String],
        job: &Job,
        budget: Duration,
    ) -> std::io::Result<Prefetch> {
        let out = super::agent::ask(socket, job, argv)?;
        Ok(Prefetch(Helper::reading(out, HELLO, budget)))
    }

    /// Wait for the report and reap the helper.
    pub fn collect(self) -> Result<Fetched, HelperFailed> {
        let text = self.0.collect()?;
        decode(&text).map_err(HelperFailed::NoReport)
    }
}

/// The report of `f` (after the greeting, which
/// [`crate::spank::helper::serve`] writes).
pub fn encode(f: &Fetched) -> String {
    let mut out = String::new();
    for n in &f.notes {
        out.push_str(&n.line());
    }
    for (name, d) in &f.phases {
        out.push_str(&format!("P\t{}\t{}\n", clean(name, 32), d.as_nanos()));
    }
    match &f.result {
        Some(Ok(cc)) if clean(&cc.name, usize::MAX) == cc.name => {
            out.push_str(&format!("S\t{}\t{}\n", u8::from(cc.ours), cc.name))
        }
        Some(Ok(cc)) => out.push_str(&format!(
            "F\tauks: unusable credential cache name {:?}\n",
            clean(&cc.name, NOTE_MAX)
        )),
        Some(Err(m)) => out.push_str(&format!("F\t{}\n", clean(m, NOTE_MAX))),
        None => out.push_str("F\tauks: the credential helper had no result\n"),
    }
    out.push_str(".\n");
    out
}

/// Parse a report (after its greeting); an error names what is wrong with
/// it.
pub fn decode(text: &str) -> Result<Fetched, String> {
    let mut f = Fetched::default();
    let mut ended = false;
    for line in text.lines() {
        if ended {
            return Err("text after the end of the report".into());
        }
        let mut it = line.splitn(3, '\t');
        let (tag, a, b) = (it.next().unwrap_or(""), it.next(), it.next());
        match (tag, a, b) {
            (tag, Some(t), None) if Note::parse(tag, t).is_some() => {
                f.notes.extend(Note::parse(tag, t))
            }
            ("P", Some(n), Some(ns)) => {
                let ns: u64 = ns.parse().map_err(|_| format!("bad phase time {ns:?}"))?;
                f.phases.push((n.into(), Duration::from_nanos(ns)));
            }
            ("S", Some(ours @ ("0" | "1")), Some(name)) if f.result.is_none() => {
                f.result = Some(Ok(JobCcache {
                    name: name.into(),
                    ours: ours == "1",
                }))
            }
            ("F", Some(m), None) if f.result.is_none() => f.result = Some(Err(m.into())),
            (".", None, None) if f.result.is_some() => ended = true,
            _ => return Err(format!("unexpected report line {:?}", clean(line, 80))),
        }
    }
    if !ended {
        return Err("the report ended early".into());
    }
    Ok(f)
}

/// The helper mode of the `auks` binary: `auks --spank-fetch UID GID
/// JOBID -- PLUGSTACK-ARGS...` (`args` without the program name and
/// [`HELPER_ARG`]). Writes the report on standard output; returns the
/// exit status (0 once a report was written, 1 for bad arguments).
pub fn helper_main(args: &[String]) -> i32 {
    let num = |i: usize| args.get(i).and_then(|s| s.parse::<u32>().ok());
    let (Some(uid), Some(gid), Some(jobid), Some("--")) =
        (num(0), num(1), num(2), args.get(3).map(String::as_str))
    else {
        eprintln!("usage: auks {HELPER_ARG} UID GID JOBID -- PLUGSTACK-ARGS... (used by the auks SPANK plugin)");
        return 1;
    };
    let job = Job { uid, gid, jobid };
    crate::spank::helper::serve(HELLO, &args[4..], |a| {
        encode(&fetcher::fetch_and_create(&job, a))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip() {
        let f = Fetched {
            notes: vec![
                Note::Info("auks: got\tit\nfrom auksd".into()),
                Note::Verbose("v".into()),
                Note::Error("e".into()),
            ],
            phases: vec![("get".into(), Duration::from_micros(1234))],
            result: Some(Ok(JobCcache {
                name: "FILE:/tmp/krb5cc_1000_7_AbC123".into(),
                ours: true,
            })),
        };
        let back = decode(&encode(&f)).unwrap();
        assert_eq!(back.notes[0], Note::Info("auks: got it from auksd".into()));
        assert_eq!(back.notes[1..], f.notes[1..]);
        assert_eq!(back.phases, f.phases);
        assert_eq!(back.result, f.result);

        let failed = Fetched {
            result: Some(Err("auks: no credential".into())),
            ..Fetched::default()
        };
        assert_eq!(decode(&encode(&failed)).unwrap(), failed);
    }

    #[test]
    fn bad_reports_are_refused() {
        for bad in [
            "",
            "I\tx\n",
            "S\t1\tFILE:/x\n",
            "S\t2\tFILE:/x\n.\n",
            "F\tx\nS\t1\tFILE:/x\n.\n",
            "F\tx\n.\nI\tmore\n",
            "P\tget\tsoon\nF\tx\n.\n",
            "X\ty\nF\tx\n.\n",
            ".\n",
        ] {
            assert!(decode(bad).is_err(), "accepted {bad:?}");
        }
        assert!(decode("F\tx\n.\n").is_ok());
    }

    #[test]
    fn a_name_with_control_characters_is_not_reported_as_stored() {
        let f = Fetched {
            result: Some(Ok(JobCcache {
                name: "FILE:/tmp/a\nb".into(),
                ours: true,
            })),
            ..Fetched::default()
        };
        assert!(matches!(decode(&encode(&f)).unwrap().result, Some(Err(_))));
    }

    #[test]
    fn long_notes_are_cut() {
        let f = Fetched {
            notes: vec![Note::Info("é".repeat(NOTE_MAX))],
            result: Some(Err("x".into())),
            ..Fetched::default()
        };
        let back = decode(&encode(&f)).unwrap();
        let Note::Info(t) = &back.notes[0] else {
            panic!()
        };
        assert!(t.len() <= NOTE_MAX && t.starts_with('é'));
    }
}
