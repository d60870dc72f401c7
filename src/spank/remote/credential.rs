//! Fetching and storing the job's credential: GET it from auksd as this
//! node (default ccache, `ccache=` or `keytab=`), keep a valid ccache the
//! job already names in `KRB5CCNAME`, otherwise create a per-job ccache as
//! the job user and store it there, run the `HelperScript`; at the end of
//! the step, destroy that ccache.

use super::{current_mode, Job, JobCcache, StepEnv, StepState};
use crate::aukspriv::{check_owned_ccache, ROOT_CCACHE};
use crate::client::{Client, ClientError};
use crate::cred::{self, Placement};
use crate::krb5::{Ccache, Context, Keytab, Principal};
use crate::proto::CredRecord;
use crate::renew::{run_helper_with, HelperOutcome, RunAs};
use crate::spank::args::{self, CcacheKind, HostAuth, Mode, PluginArgs};
use crate::spank::glue::{log_error, log_info, log_verbose};
use crate::spank::messages;
use crate::spank::probe::{self, Ignored};
use crate::spank::spawn::{self, Identity};

/// Why the credential could not be fetched.
enum FetchError {
    Client(ClientError),
    /// The node could not use its own credential (`keytab=`, or a host
    /// ccache that is refused).
    HostKeytab(String),
}

/// Get the credential and store it for the step (`st.job`, `st.ccache`,
/// `KRB5CCNAME`). The error is the message for the user.
pub(super) fn fetch_and_store(
    env: &dyn StepEnv,
    a: &PluginArgs,
    option: Option<Mode>,
    st: &mut StepState,
) -> Result<(), String> {
    match current_mode(env, a, option) {
        Mode::Disabled => {
            log_verbose("auks: disabled for this step");
            return Ok(());
        }
        Mode::Enabled | Mode::Done => {}
    }
    let job = match (env.job_uid(), env.job_gid(), env.job_id()) {
        (Ok(uid), Ok(gid), Ok(jobid)) => Job { uid, gid, jobid },
        (u, g, j) => {
            return Err(format!(
                "auks: cannot identify the job (uid: {u:?}, gid: {g:?}, job id: {j:?})"
            ))
        }
    };
    st.job = Some(job);

    // An existing, valid ccache named by the job's KRB5CCNAME is kept.
    if let Some(name) = env.getenv("KRB5CCNAME", 4096).filter(|n| !n.is_empty()) {
        let checked = st
            .phases
            .time("check_user_ccache", || user_ccache(&job, &name));
        match checked.map_err(|e| format!("auks: {e}"))? {
            UserCcache::Valid => {
                log_info(&format!(
                    "auks: job {} uid {}: keeping the valid credential cache {name} named by KRB5CCNAME",
                    job.jobid, job.uid
                ));
                if a.spankstackcred {
                    std::env::set_var("KRB5CCNAME", &name);
                }
                st.ccache = Some(JobCcache { name, ours: false });
                return Ok(());
            }
            UserCcache::NotValid(why) => log_verbose(&format!(
                "auks: job {} uid {}: KRB5CCNAME not kept: {why}",
                job.jobid, job.uid
            )),
            UserCcache::Refused(why) => {
                let msg = format!(
                    "auks: KRB5CCNAME={why}: ignored, the step uses a credential cache of its own"
                );
                log_info(&format!("{msg} (job {} uid {})", job.jobid, job.uid));
                st.notice = Some(msg);
            }
        }
    }

    let client = Client::from_config_file(a.conf.as_deref()).map_err(|e| {
        format!(
            "auks: configuration problem on this node ({e}); the job step has no Kerberos credential"
        )
    })?;
    let helper = client.conf.api.helper_script.clone();
    let rec = match st
        .phases
        .time("get", || get_cred(client, &a.host_auth, job.uid))
    {
        Ok(r) => r,
        Err(FetchError::Client(e)) => {
            log_info(&format!(
                "auks: job {} uid {}: GET from auksd failed: {e}",
                job.jobid, job.uid
            ));
            return Err(messages::fetch_failure(job.uid, &e));
        }
        Err(FetchError::HostKeytab(e)) => {
            return Err(format!(
                "auks: this node cannot get its own Kerberos ticket ({e}); the job step has no Kerberos credential (ask your administrator)"
            ))
        }
    };
    log_info(&format!(
        "auks: job {} uid {}: got the credential of {} (valid until {}) from auksd",
        job.jobid, job.uid, rec.principal, rec.endtime
    ));

    let stored = st
        .phases
        .time("store", || create_and_store(&job, a, &rec.data));
    drop(rec);
    let cc = stored.map_err(|e| {
        format!(
            "auks: cannot store the Kerberos credential of uid {} on this node: {e}",
            job.uid
        )
    })?;
    log_info(&format!(
        "auks: job {} uid {}: credential stored in {}",
        job.jobid, job.uid, cc.name
    ));
    st.ccache = Some(cc.clone());
    let identity = Identity::new(job.uid, job.gid, env.job_groups());

    if let Err(e) = env.setenv("KRB5CCNAME", &cc.name) {
        log_error(&format!(
            "auks: cannot set KRB5CCNAME in the job environment: {e}"
        ));
    }
    if a.spankstackcred {
        std::env::set_var("KRB5CCNAME", &cc.name);
        log_info(&format!(
            "auks: spankstackcred: KRB5CCNAME={} in slurmstepd's environment for the next plugins",
            std::env::var("KRB5CCNAME").unwrap_or_default()
        ));
    }
    if let Some(h) = helper {
        st.phases
            .time("helper", || run_job_helper(&identity, &h, &cc.name));
    }
    st.identity = Some(identity);
    Ok(())
}

/// GET the job user's credential, authenticated as this node.
fn get_cred(client: Client, auth: &HostAuth, uid: u32) -> Result<CredRecord, FetchError> {
    match auth {
        HostAuth::DefaultCcache | HostAuth::Ccache(_) => {
            let name = host_ccache(auth).map_err(FetchError::HostKeytab)?;
            client
                .with_auth_ccache(Some(name))
                .get(uid)
                .map_err(FetchError::Client)
        }
        HostAuth::Keytab { keytab, principal } => {
            with_keytab_ccache(keytab, principal.as_deref(), |cc| {
                client.with_auth_ccache(Some(cc.to_string())).get(uid)
            })
            .map_err(FetchError::HostKeytab)?
            .map_err(FetchError::Client)
        }
    }
}

/// The node's own ccache: `hostcredcache=`, else slurmstepd's
/// `KRB5CCNAME` (set by the site for slurmd), else aukspriv's
/// [`ROOT_CCACHE`] when it exists, else libkrb5's default (the C AUKS's
/// `/tmp/krb5cc_0`). A FILE ccache that is not a regular file of root's is
/// refused: a user who created `/tmp/krb5cc_0` must not choose the
/// identity this node shows to auksd.
fn host_ccache(auth: &HostAuth) -> Result<String, String> {
    let name = match auth {
        HostAuth::Ccache(n) => n.clone(),
        _ => match std::env::var("KRB5CCNAME").ok().filter(|n| !n.is_empty()) {
            Some(n) => n,
            None if std::path::Path::new(&ROOT_CCACHE["FILE:".len()..]).exists() => {
                ROOT_CCACHE.to_string()
            }
            None => Context::new()
                .and_then(|c| c.default_ccache_name())
                .map_err(|e| format!("no default credential cache: {e}"))?,
        },
    };
    check_owned_ccache(&name, 0).map_err(|e| format!("host {e}"))?;
    Ok(name)
}

/// Get a TGT from the host keytab into a private MEMORY ccache, run `f`
/// with its name, and destroy it.
fn with_keytab_ccache<R>(
    keytab: &str,
    principal: Option<&str>,
    f: impl FnOnce(&str) -> R,
) -> Result<R, String> {
    let ctx = Context::new().map_err(|e| e.to_string())?;
    let kt = Keytab::resolve(&ctx, keytab).map_err(|e| format!("keytab {keytab}: {e}"))?;
    let pname = match principal {
        Some(p) => p.to_string(),
        None => {
            let names = kt
                .principals()
                .map_err(|e| format!("cannot read keytab {keytab}: {e}"))?;
            let host = nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default();
            let fqdn = crate::spank::canonical_hostname(&host).unwrap_or_else(|| host.clone());
            args::pick_host_principal(&names, &fqdn, &host).ok_or_else(|| {
                format!(
                    "keytab {keytab} has no key for host/{fqdn} or host/{host}; name one with keytab={keytab}:PRINCIPAL"
                )
            })?
        }
    };
    let client = Principal::parse(&ctx, &pname).map_err(|e| e.to_string())?;
    let mut tgt = kt
        .get_tgt(&client, None, None)
        .map_err(|e| format!("cannot get a TGT for {pname} from keytab {keytab}: {e}"))?;
    let cc = Ccache::new_unique(&ctx, "MEMORY").map_err(|e| e.to_string())?;
    let filled = cc
        .initialize(&client)
        .and_then(|()| cc.store(&mut tgt))
        .and_then(|()| cc.full_name());
    drop(tgt);
    let name = match filled {
        Ok(n) => n,
        Err(e) => {
            let _ = cc.destroy();
            return Err(e.to_string());
        }
    };
    let r = f(&name);
    if let Err(e) = cc.destroy() {
        log_verbose(&format!("auks: cannot destroy {name}: {e}"));
    }
    Ok(r)
}

/// What the job's own `KRB5CCNAME` names.
enum UserCcache {
    /// The user's, with a TGT that has not expired: kept.
    Valid,
    /// Missing, empty or expired (not worth a message to the user).
    NotValid(String),
    /// Something that must not be used (a FIFO, someone else's file, ...).
    Refused(String),
}

/// As the job user: does `name` hold a TGT of the user's that has not
/// expired? The name is checked without ever blocking ([`probe`]).
fn user_ccache(job: &Job, name: &str) -> Result<UserCcache, String> {
    let _user = job
        .as_user()
        .map_err(|e| format!("cannot switch to uid {}: {e}", job.uid))?;
    let probed = match probe::probe(name, job.uid) {
        Ok(p) => p,
        Err(Ignored::Missing(why)) => return Ok(UserCcache::NotValid(why)),
        Err(Ignored::Refused(why)) => return Ok(UserCcache::Refused(why)),
    };
    // FILE (and DIR) caches: the private copy, read without libkrb5 (a
    // step inside an allocation then never loads it); other types through
    // libkrb5. Either way: the TGT's end time, and "now" on the KDC's
    // clock (libkrb5 applies the cache's time offset once it has read it).
    let checked = match &probed {
        probe::Probed::File { copy, .. } => {
            crate::ccache_file::tgt_endtime(copy, probe::CCACHE_MAX)
                .map(|t| (t.endtime, t.kdc_now(chrono::Utc::now().timestamp())))
                .map_err(|e| e.to_string())
        }
        probe::Probed::Other(_) => {
            let ctx = match Context::new() {
                Ok(c) => c,
                Err(e) => return Ok(UserCcache::NotValid(e.to_string())),
            };
            tgt_endtime(&ctx, &probed.krb5_name())
                .map(|end| (end, ctx.now()))
                .map_err(|e| e.to_string())
        }
    };
    Ok(match checked {
        Ok((Some(end), now)) if end > now => UserCcache::Valid,
        Ok((Some(_), _)) => UserCcache::NotValid(format!("{name}: the TGT has expired")),
        Ok((None, _)) => UserCcache::NotValid(format!("{name}: no TGT of its principal's realm")),
        Err(e) => UserCcache::NotValid(format!("{name}: {e}")),
    })
}

/// End time of the TGTs `cred::extract_from_ccache` would take from the
/// ccache `name` (the last local TGT of the default principal's realm and
/// the first cross-realm one it issued; the earlier end of the two), read
/// straight from the ticket list: a step that keeps the job's cache (an
/// `srun` inside a batch job) checks it without encoding and decoding a
/// KRB-CRED. `None` when there is no local TGT.
fn tgt_endtime(ctx: &Context, name: &str) -> Result<Option<i64>, crate::krb5::Error> {
    let cc = Ccache::resolve(ctx, name)?;
    let realm = cc.principal()?.realm();
    let (mut local, mut cross) = (None, None);
    for c in cc.creds()? {
        match c.tgt_realms() {
            Some((target, issuer)) if issuer == realm && target == realm => {
                local = Some(c.endtime())
            }
            Some((_, issuer)) if issuer == realm && cross.is_none() => cross = Some(c.endtime()),
            _ => {}
        }
    }
    Ok(local.map(|l| cross.map_or(l, |x: i64| x.min(l))))
}

/// Six random bytes for a job ccache name, as a suffix. The kernel's
/// generator; should it fail, a time-based value (uniqueness is still
/// enforced by RENAME_NOREPLACE; only predictability suffers).
fn random6() -> String {
    let mut b = [0u8; 6];
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
            ^ std::process::id();
        b[..4].copy_from_slice(&t.to_le_bytes());
    }
    args::random_suffix(&b)
}

/// Create the per-job ccache as the job user (real and effective ids) and
/// store the credential in it.
fn create_and_store(job: &Job, a: &PluginArgs, data: &[u8]) -> Result<JobCcache, String> {
    let _user = job
        .as_user()
        .map_err(|e| format!("cannot switch to uid {}: {e}", job.uid))?;
    // A context made now expands %{uid} in krb5.conf to the job user.
    let ctx = Context::new().map_err(|e| e.to_string())?;
    let default_name = ctx.default_ccache_name().unwrap_or_default();
    let default_type = args::ccache_type_of(&default_name).to_string();
    match args::ccache_kind(&default_type, a.force_file_ccache) {
        CcacheKind::File => {
            if default_type != "FILE" && !a.force_file_ccache {
                log_verbose(&format!(
                    "auks: default ccache type {default_type} is not usable for jobs: using a FILE ccache"
                ));
            }
            let mut last = String::new();
            for _ in 0..8 {
                let path = args::job_ccache_path(job.uid, job.jobid, &random6());
                // force_file_ccache: plain path in KRB5CCNAME, as C.
                let name = if a.force_file_ccache {
                    path.clone()
                } else {
                    format!("FILE:{path}")
                };
                match cred::store_krb_cred(
                    &ctx,
                    data,
                    Some(&format!("FILE:{path}")),
                    Placement::New,
                ) {
                    Ok(_) => return Ok(JobCcache { name, ours: true }),
                    Err(e) => {
                        last = e.to_string();
                        if !std::path::Path::new(&path).exists() {
                            break;
                        }
                    }
                }
            }
            Err(last)
        }
        CcacheKind::Collection => {
            let name = {
                let cc = Ccache::new_unique(&ctx, &default_type).map_err(|e| {
                    format!("cannot create a new {default_type} credential cache: {e}")
                })?;
                cc.full_name().map_err(|e| e.to_string())?
            };
            if let Err(e) = cred::store_krb_cred(&ctx, data, Some(&name), Placement::Replace) {
                if let Ok(cc) = Ccache::resolve(&ctx, &name) {
                    let _ = cc.destroy();
                }
                return Err(e.to_string());
            }
            if a.cc_switch {
                match Ccache::resolve(&ctx, &name) {
                    Ok(cc) if cc.supports_switch() => {
                        if let Err(e) = cc.switch_to() {
                            log_verbose(&format!("auks: krb5_cc_switch to {name} failed: {e}"));
                        }
                    }
                    _ => {}
                }
            }
            Ok(JobCcache { name, ours: true })
        }
    }
}

/// Run the api HelperScript once as the job user, started as
/// [`spawn`] describes (result only logged). SIGKILL if slurmstepd dies.
fn run_job_helper(id: &Identity, script: &std::path::Path, ccache: &str) {
    let setup = |cmd: &mut std::process::Command| spawn::prepare(cmd, id, libc::SIGKILL);
    match run_helper_with(script, Some(ccache), RunAs::JobUserSetUp, setup) {
        Ok(HelperOutcome::Ran) => log_verbose(&format!(
            "auks: helper script {} succeeded",
            script.display()
        )),
        Ok(HelperOutcome::Skipped(why)) => log_info(&format!("auks: {why}")),
        Err(e) => log_info(&format!("auks: helper script failed: {e}")),
    }
}

/// Destroy the ccache we created, as the job user. Returns the hook's
/// status (-1 when it could not be destroyed).
pub(super) fn destroy(job: &Job, cc: &JobCcache) -> i32 {
    let Some(user) = job.as_user_to(&format!("destroy {}", cc.name)) else {
        return -1;
    };
    let result =
        Context::new().and_then(|ctx| Ccache::resolve(&ctx, &cc.name).and_then(|c| c.destroy()));
    drop(user);
    match result {
        Ok(()) => {
            log_info(&format!("auks: job {}: destroyed {}", job.jobid, cc.name));
            0
        }
        Err(e) if e.is_ccache_missing() => {
            log_verbose(&format!("auks: {} was already gone", cc.name));
            0
        }
        Err(e) => {
            log_error(&format!("auks: cannot destroy {}: {e}", cc.name));
            -1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::random6;

    #[test]
    fn ccache_suffixes_are_random() {
        let a = random6();
        assert_eq!(a.len(), 6);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()), "{a}");
        // 62^6 values: 16 draws that are not all different mean no entropy.
        let mut seen: Vec<String> = (0..16).map(|_| random6()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 16, "{seen:?}");
    }
}
