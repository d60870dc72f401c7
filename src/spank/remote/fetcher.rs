//! Getting the job user's credential from auksd as this node and
//! creating the job's ccache with it: the part of a step's set-up that
//! needs libkrb5, root (the node's own ccache or keytab) and the network.
//! It runs in slurmstepd, or in the helper process of [`super::prefetch`]
//! (`auks --spank-fetch`), which is why it logs nothing itself: what it
//! has to say is returned as [`Note`]s, logged by slurmstepd.

use super::{Job, JobCcache};
use crate::aukspriv::{check_owned_ccache, ROOT_CCACHE};
use crate::client::{Client, ClientError};
use crate::cred::{self, Placement};
use crate::krb5::{Ccache, Context, Keytab, Principal};
use crate::proto::CredRecord;
use crate::spank::args::{self, CcacheKind, HostAuth, PluginArgs};
pub use crate::spank::helper::Note;
use crate::spank::messages;
use std::time::{Duration, Instant};

/// What [`fetch_and_create`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fetched {
    /// In the order the events happened.
    pub notes: Vec<Note>,
    /// Time of each phase (`get`, `store`).
    pub phases: Vec<(String, Duration)>,
    /// The ccache created, or the message for the user.
    pub result: Option<Result<JobCcache, String>>,
}

/// GET the credential of `job`'s user and store it in a new ccache of the
/// user's (`Fetched::result`, always set on return).
pub fn fetch_and_create(job: &Job, a: &PluginArgs) -> Fetched {
    let mut f = Fetched::default();
    let r = fetch_into(job, a, &mut f);
    f.result = Some(r);
    f
}

fn fetch_into(job: &Job, a: &PluginArgs, f: &mut Fetched) -> Result<JobCcache, String> {
    let client = Client::from_config_file(a.conf.as_deref()).map_err(|e| {
        format!(
            "auks: configuration problem on this node ({e}); the job step has no Kerberos credential"
        )
    })?;
    let t = Instant::now();
    let got = get_cred(client, &a.host_auth, job.uid, &mut f.notes);
    f.phases.push(("get".into(), t.elapsed()));
    let rec = match got {
        Ok(r) => r,
        Err(FetchError::Client(e)) => {
            f.notes.push(Note::Info(format!(
                "auks: job {} uid {}: GET from auksd failed: {e}",
                job.jobid, job.uid
            )));
            return Err(messages::fetch_failure(job.uid, &e));
        }
        Err(FetchError::HostKeytab(e)) => {
            return Err(format!(
                "auks: this node cannot get its own Kerberos ticket ({e}); the job step has no Kerberos credential (ask your administrator)"
            ))
        }
    };
    f.notes.push(Note::Info(format!(
        "auks: job {} uid {}: got the credential of {} (valid until {}) from auksd",
        job.jobid, job.uid, rec.principal, rec.endtime
    )));
    let t = Instant::now();
    let stored = create_and_store(job, a, &rec.data, &mut f.notes);
    f.phases.push(("store".into(), t.elapsed()));
    drop(rec);
    let cc = stored.map_err(|e| {
        format!(
            "auks: cannot store the Kerberos credential of uid {} on this node: {e}",
            job.uid
        )
    })?;
    f.notes.push(Note::Info(format!(
        "auks: job {} uid {}: credential stored in {}",
        job.jobid, job.uid, cc.name
    )));
    Ok(cc)
}

/// Why the credential could not be fetched.
enum FetchError {
    Client(ClientError),
    /// The node could not use its own credential (`keytab=`, or a host
    /// ccache that is refused).
    HostKeytab(String),
}

/// GET the job user's credential, authenticated as this node.
fn get_cred(
    client: Client,
    auth: &HostAuth,
    uid: u32,
    notes: &mut Vec<Note>,
) -> Result<CredRecord, FetchError> {
    match auth {
        HostAuth::DefaultCcache | HostAuth::Ccache(_) => {
            let name = host_ccache(auth).map_err(FetchError::HostKeytab)?;
            client
                .with_auth_ccache(Some(name))
                .get(uid)
                .map_err(FetchError::Client)
        }
        HostAuth::Keytab { keytab, principal } => {
            with_keytab_ccache(keytab, principal.as_deref(), notes, |cc| {
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
    notes: &mut Vec<Note>,
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
        notes.push(Note::Verbose(format!("auks: cannot destroy {name}: {e}")));
    }
    Ok(r)
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
fn create_and_store(
    job: &Job,
    a: &PluginArgs,
    data: &[u8],
    notes: &mut Vec<Note>,
) -> Result<JobCcache, String> {
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
                notes.push(Note::Verbose(format!(
                    "auks: default ccache type {default_type} is not usable for jobs: using a FILE ccache"
                )));
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
                            notes.push(Note::Verbose(format!(
                                "auks: krb5_cc_switch to {name} failed: {e}"
                            )));
                        }
                    }
                    _ => {}
                }
            }
            Ok(JobCcache { name, ours: true })
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
