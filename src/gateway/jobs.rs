//! The job description of `POST /v1/jobs` (strict JSON: unknown fields are
//! refused), its validation, its translation to slurmrestd's OpenAPI
//! `job/submit` body, and the job summary the API returns.
//!
//! The credential reaches the job through the job environment, with
//! `--auks=done` semantics (it is already in auksd): the AUKS protocol's own
//! `SLURM_SPANK_AUKS=done` (spec §10.3, what `sbatch --auks=done` leaves in
//! the job environment), which the plugin reads in slurmstepd. Slurm 22.05's
//! REST API has no `spank_job_env`, and `SLURM_SPANK__SLURM_SPANK_OPTION_auks_auks`
//! in the job environment alone is *not* turned into the option for the
//! batch step (checked by scripts/gateway-tests.sh, case `spank_option`); it
//! is set too, for Slurm releases that do. Neither can be overridden by the
//! request.

use super::error::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The SPANK option variable that Slurm turns into `--auks=done` on the node.
pub const SPANK_OPTION_VAR: &str = "SLURM_SPANK__SLURM_SPANK_OPTION_auks_auks";
/// The AUKS plugin's own mode variable (spec §10.3).
pub const AUKS_MODE_VAR: &str = "SLURM_SPANK_AUKS";

/// Largest environment accepted (variables).
const MAX_ENV_VARS: usize = 1024;

/// `POST /v1/jobs` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// The batch script (must start with `#!`).
    pub script: String,
    pub name: Option<String>,
    pub partition: Option<String>,
    /// Time limit in minutes.
    pub time_limit: Option<u32>,
    pub nodes: Option<u32>,
    pub tasks: Option<u32>,
    pub cpus_per_task: Option<u32>,
    /// Memory per node in MiB.
    pub memory_mb: Option<u64>,
    /// Absolute working directory (default: the user's home).
    pub working_directory: Option<String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Standard output / error paths (Slurm patterns such as `%j` allowed).
    pub output: Option<String>,
    pub error: Option<String>,
}

fn invalid(m: impl Into<String>) -> ApiError {
    ApiError::InvalidJob(m.into())
}

fn check_text(field: &str, v: &str, max: usize) -> Result<(), ApiError> {
    if v.is_empty() {
        return Err(invalid(format!("`{field}` is empty")));
    }
    if v.len() > max {
        return Err(invalid(format!("`{field}` is longer than {max} bytes")));
    }
    if v.chars().any(|c| c.is_control()) {
        return Err(invalid(format!("`{field}` contains control characters")));
    }
    Ok(())
}

fn positive(field: &str, v: Option<u32>) -> Result<(), ApiError> {
    match v {
        Some(0) => Err(invalid(format!("`{field}` must be at least 1"))),
        _ => Ok(()),
    }
}

fn valid_env_name(n: &str) -> bool {
    let mut b = n.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
        && n.len() <= 256
}

impl JobRequest {
    /// Parse and validate a request body.
    pub fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        let req: JobRequest = serde_json::from_slice(body).map_err(|e| {
            if e.is_data() {
                invalid(format!("job description: {e}"))
            } else {
                ApiError::BadRequest(format!("malformed JSON: {e}"))
            }
        })?;
        req.validate()?;
        Ok(req)
    }

    fn validate(&self) -> Result<(), ApiError> {
        if self.script.is_empty() {
            return Err(invalid("`script` is empty: send the batch script"));
        }
        if !self.script.starts_with("#!") {
            return Err(invalid(
                "`script` must start with an interpreter line such as #!/bin/bash",
            ));
        }
        if self.script.contains('\0') {
            return Err(invalid("`script` contains a NUL byte"));
        }
        if let Some(n) = &self.name {
            check_text("name", n, 200)?;
        }
        if let Some(p) = &self.partition {
            check_text("partition", p, 200)?;
        }
        for (f, v) in [("output", &self.output), ("error", &self.error)] {
            if let Some(v) = v {
                check_text(f, v, 4096)?;
            }
        }
        if let Some(d) = &self.working_directory {
            check_text("working_directory", d, 4096)?;
            if !Path::new(d).is_absolute() {
                return Err(invalid("`working_directory` must be an absolute path"));
            }
        }
        positive("time_limit", self.time_limit)?;
        positive("nodes", self.nodes)?;
        positive("tasks", self.tasks)?;
        positive("cpus_per_task", self.cpus_per_task)?;
        if self.memory_mb == Some(0) {
            return Err(invalid("`memory_mb` must be at least 1"));
        }
        if self.environment.len() > MAX_ENV_VARS {
            return Err(invalid(format!(
                "`environment` has more than {MAX_ENV_VARS} variables"
            )));
        }
        for (k, v) in &self.environment {
            if !valid_env_name(k) {
                return Err(invalid(format!(
                    "`environment`: {k:?} is not a variable name"
                )));
            }
            if k.starts_with("SLURM_SPANK") || k == "KRB5CCNAME" {
                return Err(invalid(format!(
                    "`environment`: {k} is set by the gateway and cannot be overridden"
                )));
            }
            if v.contains('\0') {
                return Err(invalid(format!("`environment`: {k} contains a NUL byte")));
            }
        }
        Ok(())
    }

    /// The slurmrestd OpenAPI (v0.0.36..v0.0.38) `job/submit` body for
    /// `user` (home directory `home`).
    pub fn to_slurm(&self, user: &str, home: &Path) -> Value {
        let home_s = home.display().to_string();
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        env.insert("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into());
        env.insert("HOME".into(), home_s.clone());
        env.insert("USER".into(), user.into());
        env.insert("LOGNAME".into(), user.into());
        for (k, v) in &self.environment {
            env.insert(k.clone(), v.clone());
        }
        env.insert(SPANK_OPTION_VAR.into(), "done".into());
        env.insert(AUKS_MODE_VAR.into(), "done".into());
        let mut job = serde_json::Map::new();
        job.insert("environment".into(), json!(env));
        job.insert(
            "current_working_directory".into(),
            json!(self.working_directory.clone().unwrap_or(home_s)),
        );
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                job.insert(k.into(), v);
            }
        };
        put("name", self.name.as_ref().map(|v| json!(v)));
        put("partition", self.partition.as_ref().map(|v| json!(v)));
        put("time_limit", self.time_limit.map(|v| json!(v)));
        put("minimum_nodes", self.nodes.map(|v| json!(v)));
        put("maximum_nodes", self.nodes.map(|v| json!(v)));
        put("tasks", self.tasks.map(|v| json!(v)));
        put("cpus_per_task", self.cpus_per_task.map(|v| json!(v)));
        put("memory_per_node", self.memory_mb.map(|v| json!(v)));
        put("standard_output", self.output.as_ref().map(|v| json!(v)));
        put("standard_error", self.error.as_ref().map(|v| json!(v)));
        json!({ "script": self.script, "job": Value::Object(job) })
    }
}

/// A job as the API shows it.
#[derive(Debug, Serialize)]
pub struct JobSummary {
    pub job_id: u32,
    pub user: String,
    pub name: Value,
    pub state: Value,
    pub reason: Value,
    pub exit_code: Value,
    pub partition: Value,
    pub submit_time: Value,
    pub start_time: Value,
    pub end_time: Value,
}

impl JobSummary {
    /// From one element of slurmrestd's `jobs` array; `None` if it has no
    /// job id or user name.
    pub fn from_slurm(j: &Value) -> Option<Self> {
        let job_id = u32::try_from(j.get("job_id")?.as_u64()?).ok()?;
        let user = j.get("user_name")?.as_str()?.to_string();
        let f = |k: &str| j.get(k).cloned().unwrap_or(Value::Null);
        Some(JobSummary {
            job_id,
            user,
            name: f("name"),
            state: f("job_state"),
            reason: f("state_reason"),
            exit_code: f("exit_code"),
            partition: f("partition"),
            submit_time: f("submit_time"),
            start_time: f("start_time"),
            end_time: f("end_time"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_job_gets_home_env_and_auks_done() {
        let r = JobRequest::from_json(br##"{"script":"#!/bin/sh\nklist\n"}"##).unwrap();
        let v = r.to_slurm("alice", Path::new("/home/alice"));
        assert_eq!(v["script"], "#!/bin/sh\nklist\n");
        assert_eq!(v["job"]["current_working_directory"], "/home/alice");
        assert_eq!(v["job"]["environment"][SPANK_OPTION_VAR], "done");
        assert_eq!(v["job"]["environment"][AUKS_MODE_VAR], "done");
        assert_eq!(v["job"]["environment"]["USER"], "alice");
        assert!(v["job"].get("partition").is_none());
    }

    #[test]
    fn options_are_translated() {
        let r = JobRequest::from_json(
            br##"{"script":"#!/bin/sh\n","name":"n","partition":"debug","time_limit":5,
                 "nodes":1,"tasks":2,"cpus_per_task":1,"memory_mb":100,
                 "working_directory":"/tmp","environment":{"A":"1"},
                 "output":"/tmp/o-%j","error":"/tmp/e-%j"}"##,
        )
        .unwrap();
        let v = r.to_slurm("bob", Path::new("/home/bob"));
        let j = &v["job"];
        assert_eq!(j["name"], "n");
        assert_eq!(j["time_limit"], 5);
        assert_eq!(j["tasks"], 2);
        assert_eq!(j["memory_per_node"], 100);
        assert_eq!(j["current_working_directory"], "/tmp");
        assert_eq!(j["environment"]["A"], "1");
        assert_eq!(j["standard_output"], "/tmp/o-%j");
    }

    #[test]
    fn bad_jobs_are_refused_with_reasons() {
        let cases: &[(&[u8], &str)] = &[
            (br##"{"script":""}"##, "empty"),
            (br##"{"script":"echo hi"}"##, "interpreter"),
            (
                br##"{"script":"#!/bin/sh","colour":"red"}"##,
                "unknown field",
            ),
            (br##"{"script":"#!/bin/sh","tasks":0}"##, "tasks"),
            (
                br##"{"script":"#!/bin/sh","working_directory":"rel"}"##,
                "absolute",
            ),
            (
                br##"{"script":"#!/bin/sh","environment":{"SLURM_SPANK_AUKS":"no"}}"##,
                "overridden",
            ),
            (
                br##"{"script":"#!/bin/sh","environment":{"1A":"x"}}"##,
                "variable name",
            ),
            (br##"{"script":"#!/bin/sh","tasks":"two"}"##, "invalid type"),
        ];
        for (body, want) in cases {
            let e = JobRequest::from_json(body).unwrap_err();
            assert!(matches!(e, ApiError::InvalidJob(_)), "{e:?}");
            assert!(e.to_string().contains(want), "{e} lacks {want}");
        }
        let e = JobRequest::from_json(b"{not json").unwrap_err();
        assert!(matches!(e, ApiError::BadRequest(_)), "{e:?}");
    }

    #[test]
    fn summary_from_slurm() {
        let j = json!({"job_id": 7, "user_name": "alice", "job_state": "RUNNING",
                       "state_reason": "None", "exit_code": 0, "name": "x"});
        let s = JobSummary::from_slurm(&j).unwrap();
        assert_eq!((s.job_id, s.user.as_str()), (7, "alice"));
        assert_eq!(s.state, "RUNNING");
        assert!(JobSummary::from_slurm(&json!({"job_id": 7})).is_none());
    }
}
