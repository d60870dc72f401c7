//! The job record (`auks_record`): in slurmstepd, after the credential
//! was stored in a ccache this step created, write where it is
//! (`/run/auks/jobs/<jobid>.<uid>.<step>`, root, 0600, atomic) so that
//! `pam_auks_adopt` can give it to ssh sessions adopted into the job; remove it
//! at the end of the step, before the ccache is destroyed.
//!
//! The record path is kept here (one step per slurmstepd), so the hooks
//! only call [`after_fetch`] and [`remove`].

use super::glue::{log_error, log_info, log_verbose};
use super::remote::StepState;
use auks_record::{store, Record, Step};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

static WRITTEN: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Write the record of this step's ccache, if the step created one.
/// `step_id` is Slurm's `S_JOB_STEPID`. Failures are logged only (ssh
/// sessions then simply get no credential).
#[cfg_attr(test, allow(dead_code))]
pub fn after_fetch(step_id: Result<u32, String>, st: &StepState) {
    after_fetch_in(Path::new(auks_record::DEFAULT_DIR), step_id, st)
}

fn after_fetch_in(dir: &Path, step_id: Result<u32, String>, st: &StepState) {
    let (Some(job), Some(cc)) = (st.job, st.ccache.as_ref()) else {
        return;
    };
    if !cc.ours {
        return;
    }
    let step = match step_id {
        Ok(id) => match Step::from_slurm(id) {
            Some(s) => s,
            None => return,
        },
        Err(e) => {
            log_error(&format!(
                "auks: cannot get the step id for the job record: {e}"
            ));
            return;
        }
    };
    let rec = Record {
        uid: job.uid,
        jobid: job.jobid,
        step,
        ccache: cc.name.clone(),
    };
    match store::write(dir, &rec) {
        Ok(path) => {
            log_verbose(&format!("auks: job record {}", path.display()));
            *WRITTEN.lock().unwrap_or_else(|p| p.into_inner()) = Some(path);
        }
        Err(e) => log_info(&format!(
            "auks: job {}: cannot write the job record for ssh sessions: {e}",
            job.jobid
        )),
    }
}

/// Remove the record this step wrote, if any.
pub fn remove() {
    let taken = WRITTEN.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(path) = taken {
        if let Err(e) = store::remove(&path) {
            log_error(&format!("auks: cannot remove the job record: {e}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spank::remote::{Job, JobCcache};

    #[test]
    fn written_for_our_ccache_only_and_removed() {
        let dir = std::env::temp_dir().join(format!("auks-spank-record-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let jobs = dir.join("jobs");
        let mut st = StepState {
            job: Some(Job {
                uid: 2000,
                gid: 2000,
                jobid: 42,
            }),
            ccache: Some(JobCcache {
                name: "FILE:/tmp/krb5cc_2000_42_AbC123".into(),
                ours: false,
            }),
            ..StepState::default()
        };
        after_fetch_in(&jobs, Ok(0xffff_fffc), &st);
        assert!(
            !jobs.join("42.2000.extern").exists(),
            "not for the user's own ccache"
        );
        st.ccache.as_mut().unwrap().ours = true;
        after_fetch_in(&jobs, Ok(0xffff_fffc), &st);
        let f = store::find(&jobs, 42, 2000).unwrap();
        assert_eq!(f.record.unwrap().ccache, "FILE:/tmp/krb5cc_2000_42_AbC123");
        remove();
        assert!(!jobs.join("42.2000.extern").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
