//! srun's ADD done while srun gets its allocation: at `init_post_opt`
//! the plugin starts `<renewer> --spank-add` (as the user, with srun's
//! environment), a helper process that does the submit-side ADD
//! ([`local::add`]: the same checks of `KRB5CCNAME`, the same messages)
//! and reports; `local_user_init`, which srun calls once the allocation
//! is granted and before the step is launched, collects the report, shows
//! its messages and exports `SLURM_SPANK_AUKS`. Between the two hooks
//! srun waits about 4 ms for slurmctld; the ADD (about 1 ms in srun) is
//! done meanwhile on the other CPU.
//!
//! Why a process and not a thread: srun sets dozens of environment
//! variables between the two hooks, and libkrb5 and the resolver read the
//! environment; the C library's `setenv` and `getenv` are not safe to run
//! at once. See [`crate::spank::helper`] for how it is started, read and
//! bounded.
//!
//! Report lines after the greeting: notes; `X no|done` the value for
//! `SLURM_SPANK_AUKS`; `R <status>` the hook status; `.` the end.

use super::helper::{Helper, HelperFailed, Note};
use super::local::{self, Outcome};
use std::path::Path;
use std::time::Duration;

/// First argument of the helper mode of the `auks` binary.
pub const HELPER_ARG: &str = "--spank-add";
/// The helper's greeting.
pub const HELLO: &str = "auks-spank-add 1";

/// A helper started by [`PreAdd::start`].
pub struct PreAdd(Helper);

impl PreAdd {
    /// Start the helper (`argv`: the plugstack arguments, which the helper
    /// parses as the plugin did), as the caller.
    pub fn start(program: &Path, argv: &[String], budget: Duration) -> std::io::Result<PreAdd> {
        let mut args: Vec<&str> = vec![HELPER_ARG, "--"];
        args.extend(argv.iter().map(String::as_str));
        Ok(PreAdd(Helper::start_in_thread(
            program, &args, HELLO, budget,
        )?))
    }

    /// Wait for the report and reap the helper.
    pub fn collect(self) -> Result<Outcome, HelperFailed> {
        let text = self.0.collect()?;
        decode(&text).map_err(HelperFailed::NoReport)
    }
}

/// The report of `o` (after the greeting, which [`super::helper::serve`]
/// writes).
pub fn encode(o: &Outcome) -> String {
    let mut out = String::new();
    for n in &o.notes {
        out.push_str(&n.line());
    }
    if let Some(v) = o.export {
        out.push_str(&format!("X\t{v}\n"));
    }
    out.push_str(&format!("R\t{}\n.\n", o.rc));
    out
}

/// Parse a report (after its greeting); an error names what is wrong.
pub fn decode(text: &str) -> Result<Outcome, String> {
    let mut o = Outcome::default();
    let (mut rc, mut ended) = (None, false);
    for line in text.lines() {
        if ended {
            return Err("text after the end of the report".into());
        }
        let (tag, rest) = line.split_once('\t').unwrap_or((line, ""));
        match (tag, rest) {
            ("X", "no") if o.export.is_none() && rc.is_none() => o.export = Some("no"),
            ("X", "done") if o.export.is_none() && rc.is_none() => o.export = Some("done"),
            ("R", v @ ("0" | "-1")) if rc.is_none() => rc = v.parse::<i32>().ok(),
            (".", "") if rc.is_some() => ended = true,
            (tag, t) if rc.is_none() && Note::parse(tag, t).is_some() => {
                o.notes.extend(Note::parse(tag, t))
            }
            _ => {
                return Err(format!(
                    "unexpected report line {:?}",
                    super::helper::clean(line, 80)
                ))
            }
        }
    }
    if !ended {
        return Err("the report ended early".into());
    }
    o.rc = rc.unwrap_or(-1);
    Ok(o)
}

/// The helper mode of the `auks` binary: `auks --spank-add --
/// PLUGSTACK-ARGS...` (`args` after [`HELPER_ARG`]). Writes the report on
/// standard output; returns the exit status (0 once a report was written,
/// 1 for bad arguments).
pub fn helper_main(args: &[String]) -> i32 {
    if args.first().map(String::as_str) != Some("--") {
        eprintln!("usage: auks {HELPER_ARG} -- PLUGSTACK-ARGS... (used by the auks SPANK plugin)");
        return 1;
    }
    super::helper::serve(HELLO, &args[1..], |a| encode(&local::add(a)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_round_trip() {
        for o in [
            Outcome {
                notes: vec![Note::Verbose("auks: forwarded".into())],
                export: Some("done"),
                rc: 0,
            },
            Outcome {
                notes: vec![Note::Verbose("v".into()), Note::Info("i".into())],
                export: Some("no"),
                rc: 0,
            },
            Outcome {
                notes: vec![Note::Error("auks: cannot forward".into())],
                export: None,
                rc: -1,
            },
        ] {
            assert_eq!(decode(&encode(&o)).unwrap(), o);
        }
    }

    #[test]
    fn bad_reports_are_refused() {
        for bad in [
            "",
            "R\t0\n",
            "X\tyes\nR\t0\n.\n",
            "R\t7\n.\n",
            "R\t0\nX\tdone\n.\n",
            "X\tno\nX\tdone\nR\t0\n.\n",
            "R\t0\n.\nI\tmore\n",
            "Q\tx\nR\t0\n.\n",
            ".\n",
        ] {
            assert!(decode(bad).is_err(), "accepted {bad:?}");
        }
    }
}
