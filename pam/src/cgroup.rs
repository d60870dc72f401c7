//! Which Slurm job step the calling process belongs to, from its own
//! `/proc/self/cgroup` (root-controlled: a process cannot be moved by an
//! unprivileged user into another cgroup unless it is theirs).
//!
//! proctrack/cgroup (v1) puts an adopted ssh session in
//! `/slurm/uid_<uid>/job_<job>/step_extern` of its hierarchies
//! (`/slurm_<node>/...` with several slurmd per host); cgroup/v2 uses
//! `.../job_<job>/step_extern/...` without the uid level.

/// The job step a process is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobStep {
    /// From the `uid_<n>` level (cgroup v1 only).
    pub uid: Option<u32>,
    pub jobid: u32,
    pub step: String,
}

fn number(s: &str, prefix: &str) -> Option<u32> {
    let n = s.strip_prefix(prefix)?;
    if n.is_empty() || n.len() > 10 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// The job step of one cgroup path: the first `job_<n>/step_<s>` pair
/// (preceded by `uid_<n>` on v1) under a level whose name starts with
/// `slurm`.
fn of_path(path: &str) -> Option<JobStep> {
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let start = parts.iter().position(|p| p.starts_with("slurm"))?;
    let rest = &parts[start + 1..];
    for i in 0..rest.len().saturating_sub(1) {
        if let Some(jobid) = number(rest[i], "job_") {
            let step = rest[i + 1].strip_prefix("step_")?;
            if step.is_empty()
                || step.len() > 16
                || !step.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return None;
            }
            let uid = if i > 0 {
                number(rest[i - 1], "uid_")
            } else {
                None
            };
            return Some(JobStep {
                uid,
                jobid,
                step: step.to_string(),
            });
        }
    }
    None
}

/// Outcome of reading the cgroup file.
#[derive(Debug, PartialEq, Eq)]
pub enum Membership {
    /// Not in any Slurm job step.
    None,
    In(JobStep),
    /// The hierarchies disagree (refused: never guess).
    Ambiguous(Vec<JobStep>),
}

/// Parse the text of `/proc/<pid>/cgroup` (`id:controllers:path` lines).
/// Hierarchies that agree on the job are merged (the uid from any v1
/// hierarchy is kept).
pub fn parse(text: &str) -> Membership {
    let mut found: Vec<JobStep> = Vec::new();
    for line in text.lines().take(64) {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(_), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let Some(js) = of_path(path) else { continue };
        match found
            .iter_mut()
            .find(|f| f.jobid == js.jobid && f.step == js.step)
        {
            Some(f) if f.uid.is_none() => f.uid = js.uid,
            Some(f) if js.uid.is_some() && f.uid != js.uid => found.push(js),
            Some(_) => {}
            None => found.push(js),
        }
    }
    match found.len() {
        0 => Membership::None,
        1 => Membership::In(found.remove(0)),
        _ => Membership::Ambiguous(found),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn js(uid: Option<u32>, jobid: u32, step: &str) -> Membership {
        Membership::In(JobStep {
            uid,
            jobid,
            step: step.into(),
        })
    }

    #[test]
    fn v1_adopted_session() {
        let text = "12:pids:/\n11:freezer:/slurm/uid_2000/job_42/step_extern\n\
                    4:memory:/slurm/uid_2000/job_42/step_extern\n1:name=systemd:/\n0::/\n";
        assert_eq!(parse(text), js(Some(2000), 42, "extern"));
        let node = "7:freezer:/slurm_vm/uid_2000/job_7/step_extern\n";
        assert_eq!(parse(node), js(Some(2000), 7, "extern"));
    }

    #[test]
    fn v2_adopted_session() {
        let text = "0::/system.slice/slurmstepd.scope/job_42/step_extern/user/task_special\n";
        assert_eq!(parse(text), js(None, 42, "extern"));
    }

    #[test]
    fn not_in_a_job() {
        assert_eq!(parse(""), Membership::None);
        assert_eq!(parse("11:freezer:/\n0::/user.slice/x\n"), Membership::None);
        assert_eq!(parse("11:freezer:/slurm/system\n"), Membership::None);
        assert_eq!(parse("11:freezer:/job_42/step_extern\n"), Membership::None);
        assert_eq!(
            parse("11:freezer:/slurm/uid_2000/job_x/step_extern\n"),
            Membership::None
        );
        assert_eq!(
            parse("11:freezer:/slurm/uid_2000/job_42/step_a.b\n"),
            Membership::None
        );
        assert_eq!(parse("garbage\n::\n"), Membership::None);
    }

    #[test]
    fn disagreeing_hierarchies_are_ambiguous() {
        let text = "11:freezer:/slurm/uid_2000/job_42/step_extern\n\
                    4:memory:/slurm/uid_2000/job_43/step_extern\n";
        assert!(matches!(parse(text), Membership::Ambiguous(v) if v.len() == 2));
        let text = "11:freezer:/slurm/uid_2000/job_42/step_extern\n\
                    4:memory:/slurm/uid_2001/job_42/step_extern\n";
        assert!(matches!(parse(text), Membership::Ambiguous(_)));
    }

    #[test]
    fn the_first_job_level_counts() {
        // a sub-cgroup the user made inside their own job cannot name
        // another job
        let text = "11:freezer:/slurm/uid_2000/job_42/step_extern/x/slurm/uid_2001/job_9/step_0\n";
        assert_eq!(parse(text), js(Some(2000), 42, "extern"));
    }
}
