//! The job record: where the auks SPANK plugin put a job's credential
//! cache on this node, so that `pam_auks_adopt` can hand it to an ssh session
//! that `pam_slurm_adopt` adopted into the job.
//!
//! One small text file per job step that created a ccache, in a directory
//! only root can write ([`DEFAULT_DIR`]), named `<jobid>.<uid>.<step>`:
//!
//! ```text
//! auks-record 1
//! uid=2000
//! jobid=42
//! step=extern
//! ccache=FILE:/tmp/krb5cc_2000_42_AbC123
//! ```
//!
//! This file is the format (pure); [`store`] writes, removes and reads
//! records with the trust checks (owner root, mode 0600, no symlink, one
//! link, bounded size).

pub mod store;

use thiserror::Error;

/// Where the plugin writes records (tmpfs: gone at reboot, like the jobs).
pub const DEFAULT_DIR: &str = "/run/auks/jobs";
/// First line of every record.
const MAGIC: &str = "auks-record 1";
/// Largest record accepted (a ccache name is at most [`MAX_CCACHE`]).
pub const MAX_RECORD: u64 = 4096;
/// Longest ccache name accepted.
pub const MAX_CCACHE: usize = 1024;

/// Everything that can go wrong with a record.
#[derive(Debug, Error)]
pub enum RecordError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}: not trusted: {1}")]
    Untrusted(String, String),
    #[error("malformed record: {0}")]
    Malformed(String),
    #[error("record is for {what} {found}, expected {expected}")]
    Mismatch {
        what: &'static str,
        found: String,
        expected: String,
    },
}

impl RecordError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> RecordError {
        RecordError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Which step of the job wrote the record.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// The extern step (lives as long as the job on every node):
    /// preferred.
    Extern,
    /// The batch script's step (first node only, whole job).
    Batch,
    /// A numbered step (`srun`), possibly shorter than the job.
    Number(u32),
}

/// Slurm's special step ids (slurm.h, 22.05).
pub const SLURM_BATCH_SCRIPT: u32 = 0xffff_fffb;
pub const SLURM_EXTERN_CONT: u32 = 0xffff_fffc;

impl Step {
    /// From Slurm's step id (`S_JOB_STEPID`); `None` for the other special
    /// ids (interactive, pending), which never hold a ccache.
    pub fn from_slurm(id: u32) -> Option<Step> {
        match id {
            SLURM_EXTERN_CONT => Some(Step::Extern),
            SLURM_BATCH_SCRIPT => Some(Step::Batch),
            n if n < 0xffff_fff0 => Some(Step::Number(n)),
            _ => None,
        }
    }

    /// The name used in file names and records.
    pub fn name(&self) -> String {
        match self {
            Step::Extern => "extern".into(),
            Step::Batch => "batch".into(),
            Step::Number(n) => n.to_string(),
        }
    }

    pub fn parse(s: &str) -> Option<Step> {
        match s {
            "extern" => Some(Step::Extern),
            "batch" => Some(Step::Batch),
            n if !n.is_empty() && n.len() <= 10 && n.bytes().all(|b| b.is_ascii_digit()) => {
                n.parse().ok().map(Step::Number)
            }
            _ => None,
        }
    }
}

/// One record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub uid: u32,
    pub jobid: u32,
    pub step: Step,
    /// The value for `KRB5CCNAME` (`FILE:/tmp/...`, `DIR:...`,
    /// `KEYRING:...`, `KCM:...` or a plain path).
    pub ccache: String,
}

/// File name of a record: `<jobid>.<uid>.<step>`.
pub fn file_name(jobid: u32, uid: u32, step: &Step) -> String {
    format!("{jobid}.{uid}.{}", step.name())
}

/// The step of a record file named for `jobid` and `uid`, if the name is
/// one.
pub fn step_of_name(name: &str, jobid: u32, uid: u32) -> Option<Step> {
    let rest = name.strip_prefix(&format!("{jobid}.{uid}."))?;
    Step::parse(rest)
}

/// A ccache name we are willing to put in an environment variable: not
/// empty, bounded, printable ASCII without spaces.
pub fn valid_ccache_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_CCACHE && s.bytes().all(|b| b.is_ascii_graphic())
}

impl Record {
    pub fn encode(&self) -> String {
        format!(
            "{MAGIC}\nuid={}\njobid={}\nstep={}\nccache={}\n",
            self.uid,
            self.jobid,
            self.step.name(),
            self.ccache
        )
    }

    /// Parse a record: exactly the five lines of [`Record::encode`], in
    /// that order.
    pub fn decode(text: &str) -> Result<Record, RecordError> {
        let bad = |m: &str| RecordError::Malformed(m.to_string());
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("no final newline"))?;
        let lines: Vec<&str> = body.split('\n').collect();
        if lines.len() != 5 || lines[0] != MAGIC {
            return Err(bad("not an auks record (version 1)"));
        }
        let field = |line: &str, key: &str| -> Result<String, RecordError> {
            line.strip_prefix(key)
                .and_then(|l| l.strip_prefix('='))
                .map(str::to_string)
                .ok_or_else(|| bad(&format!("expected {key}=")))
        };
        let number = |line: &str, key: &str| -> Result<u32, RecordError> {
            let v = field(line, key)?;
            if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(&format!("bad {key}")));
            }
            v.parse().map_err(|_| bad(&format!("bad {key}")))
        };
        let uid = number(lines[1], "uid")?;
        let jobid = number(lines[2], "jobid")?;
        let step = Step::parse(&field(lines[3], "step")?).ok_or_else(|| bad("bad step"))?;
        let ccache = field(lines[4], "ccache")?;
        if !valid_ccache_name(&ccache) {
            return Err(bad("bad ccache name"));
        }
        Ok(Record {
            uid,
            jobid,
            step,
            ccache,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record {
            uid: 2000,
            jobid: 42,
            step: Step::Extern,
            ccache: "FILE:/tmp/krb5cc_2000_42_AbC123".into(),
        }
    }

    #[test]
    fn round_trip() {
        let r = sample();
        assert_eq!(Record::decode(&r.encode()).unwrap(), r);
        let n = Record {
            step: Step::Number(3),
            ..sample()
        };
        assert_eq!(Record::decode(&n.encode()).unwrap(), n);
    }

    #[test]
    fn malformed_records_are_refused() {
        let good = sample().encode();
        for bad in [
            String::new(),
            good.trim_end().to_string(),
            good.replace("auks-record 1", "auks-record 2"),
            good.replace("uid=2000", "uid=-1"),
            good.replace("uid=2000", "uid=99999999999"),
            good.replace("uid=2000", "uid="),
            good.replace("jobid=42", "job=42"),
            good.replace("step=extern", "step=../x"),
            good.replace("FILE:/tmp/krb5cc_2000_42_AbC123", ""),
            good.replace("FILE:/tmp/krb5cc", "FILE:/tmp/a b"),
            format!("{good}extra=1\n"),
            good.replacen('\n', "\r\n", 1),
        ] {
            assert!(Record::decode(&bad).is_err(), "accepted {bad:?}");
        }
        let long = good.replace(
            "FILE:/tmp/krb5cc_2000_42_AbC123",
            &format!("FILE:/{}", "a".repeat(MAX_CCACHE)),
        );
        assert!(Record::decode(&long).is_err());
    }

    #[test]
    fn names_and_steps() {
        assert_eq!(file_name(42, 2000, &Step::Extern), "42.2000.extern");
        assert_eq!(step_of_name("42.2000.extern", 42, 2000), Some(Step::Extern));
        assert_eq!(step_of_name("42.2000.7", 42, 2000), Some(Step::Number(7)));
        assert_eq!(step_of_name("42.2001.extern", 42, 2000), None);
        assert_eq!(step_of_name("420.2000.extern", 42, 2000), None);
        assert_eq!(step_of_name("42.2000.extern.tmp", 42, 2000), None);
        assert_eq!(Step::from_slurm(0xffff_fffc), Some(Step::Extern));
        assert_eq!(Step::from_slurm(0xffff_fffb), Some(Step::Batch));
        assert_eq!(Step::from_slurm(0), Some(Step::Number(0)));
        assert_eq!(Step::from_slurm(0xffff_fffd), None);
        // preference: extern, then batch, then the lowest step number
        let mut v = vec![Step::Number(2), Step::Batch, Step::Number(0), Step::Extern];
        v.sort();
        assert_eq!(
            v,
            vec![Step::Extern, Step::Batch, Step::Number(0), Step::Number(2)]
        );
    }
}
