//! Compute side (slurmstepd, S_CTX_REMOTE): fetch the job user's
//! credential from auksd, store it in a per-job ccache owned by the user,
//! run the renewer, and leave nothing behind (spec §10.3–10.5, with the
//! fixes listed in §11 items 19–20).

use super::args::{self, CcacheKind, HostAuth, Mode, PluginArgs, SyncMode};
use super::glue::{log_error, log_info, log_verbose};
use super::ids::{Switch, Target};
use super::messages;
use crate::client::{Client, ClientError};
use crate::cred::{self, Placement};
use crate::krb5::{Ccache, Context, Keytab, Principal};
use crate::proto::CredRecord;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the renewer gets to exit after SIGTERM before SIGKILL.
const RENEWER_GRACE: Duration = Duration::from_secs(2);
/// How long a HelperScript may run.
const HELPER_LIMIT: Duration = Duration::from_secs(30);

/// The job's identity on this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Job {
    pub uid: u32,
    pub gid: u32,
    pub jobid: u32,
}

impl Job {
    fn as_user(&self) -> std::io::Result<Switch> {
        Switch::to(Target {
            uid: self.uid,
            gid: self.gid,
            real: true,
            drop_groups: true,
        })
    }

    /// [`Job::as_user`] for the end-of-step work; a failure is logged
    /// ("cannot switch to uid N to <purpose>").
    fn as_user_to(&self, purpose: &str) -> Option<Switch> {
        self.as_user()
            .map_err(|e| {
                log_error(&format!(
                    "auks: cannot switch to uid {} to {purpose}: {e}",
                    self.uid
                ))
            })
            .ok()
    }
}

/// The ccache the tasks use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobCcache {
    /// Value given to `KRB5CCNAME`.
    pub name: String,
    /// Created by us (destroyed at the end) or the user's own, kept.
    pub ours: bool,
}

/// Per-step state of the compute side.
#[derive(Default)]
pub struct StepState {
    pub job: Option<Job>,
    pub ccache: Option<JobCcache>,
    pub renewer: Option<Child>,
    /// When the renewer was sent its stop signal, and whether that was
    /// SIGKILL already.
    pub renewer_signalled: Option<(Instant, bool)>,
    pub exited_tasks: u32,
    pub synced: bool,
    /// A failure of the fetch, reported to the user from `user_init`:
    /// in `init_post_opt` slurmstepd is not yet connected to srun, so an
    /// error logged there only reaches slurmd.log.
    pub failure: Option<String>,
}

/// What the step needs from Slurm (implemented over the SPANK handle).
pub trait StepEnv {
    fn job_uid(&self) -> Result<u32, String>;
    fn job_gid(&self) -> Result<u32, String>;
    fn job_id(&self) -> Result<u32, String>;
    fn local_task_count(&self) -> Result<u32, String>;
    /// A variable of the job environment; `None` when unset or longer
    /// than `max` bytes.
    fn getenv(&self, name: &str, max: usize) -> Option<String>;
    fn setenv(&self, name: &str, value: &str) -> Result<(), String>;
}

/// Mode on the compute side: job uid for `minimum_uid`, job environment
/// for `SLURM_SPANK_AUKS` (at most 4 bytes, as C), then `--auks`/default.
pub fn current_mode(env: &dyn StepEnv, a: &PluginArgs, option: Option<Mode>) -> Mode {
    let uid = if a.minimum_uid > 0 {
        match env.job_uid() {
            Ok(u) => Some(u),
            Err(e) => {
                log_error(&format!("auks: cannot get the job uid: {e}"));
                None
            }
        }
    } else {
        None
    };
    let var = env.getenv(args::ENV_MODE, 4);
    let mode = args::resolve_mode(
        a.minimum_uid,
        uid,
        args::env_mode(var.as_deref(), true),
        option,
        a.default_mode,
    );
    if a.minimum_uid > 0 && mode == Mode::Disabled && uid.is_some_and(|u| u < a.minimum_uid) {
        log_verbose(&format!(
            "auks: uid {} is below minimum_uid={}: disabled",
            uid.unwrap_or(0),
            a.minimum_uid
        ));
    }
    mode
}

/// Why the credential could not be fetched.
enum FetchError {
    Client(ClientError),
    /// `keytab=`: the node could not get its own TGT.
    HostKeytab(String),
}

/// `slurm_spank_init_post_opt` in slurmstepd: fetch and store. A failure
/// is logged to slurmd.log now and kept for [`report_failure`] (user_init),
/// the first hook whose errors reach the user's srun.
pub fn fetch(env: &dyn StepEnv, a: &PluginArgs, option: Option<Mode>, st: &mut StepState) -> i32 {
    if let Err(msg) = fetch_inner(env, a, option, st) {
        log_info(&format!("{msg} [reported to the user at task launch]"));
        st.failure = Some(msg);
    }
    0
}

/// `slurm_spank_user_init`: tell the user why the step has no credential
/// (and fail the step when the plugin is `required`).
pub fn report_failure(st: &mut StepState) -> i32 {
    match st.failure.take() {
        Some(msg) => {
            log_error(&msg);
            -1
        }
        None => 0,
    }
}

fn fetch_inner(
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
        if usable_user_ccache(&job, &name).map_err(|e| format!("auks: {e}"))? {
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
    }

    let client = Client::from_config_file(a.conf.as_deref()).map_err(|e| {
        format!(
            "auks: configuration problem on this node ({e}); the job step has no Kerberos credential"
        )
    })?;
    let helper = client.conf.api.helper_script.clone();
    let rec = match get_cred(client, &a.host_auth, job.uid) {
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

    let stored = create_and_store(&job, a, &rec.data);
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
        run_helper(&job, &h, &cc.name);
    }
    Ok(())
}

/// GET the job user's credential, authenticated as this node.
fn get_cred(client: Client, auth: &HostAuth, uid: u32) -> Result<CredRecord, FetchError> {
    match auth {
        HostAuth::DefaultCcache => client.get(uid).map_err(FetchError::Client),
        HostAuth::Ccache(name) => client
            .with_auth_ccache(Some(name.clone()))
            .get(uid)
            .map_err(FetchError::Client),
        HostAuth::Keytab { keytab, principal } => {
            with_keytab_ccache(keytab, principal.as_deref(), |cc| {
                client.with_auth_ccache(Some(cc.to_string())).get(uid)
            })
            .map_err(FetchError::HostKeytab)?
            .map_err(FetchError::Client)
        }
    }
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
            let fqdn = super::canonical_hostname(&host).unwrap_or_else(|| host.clone());
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

/// As the job user: does `name` hold a TGT that has not expired?
fn usable_user_ccache(job: &Job, name: &str) -> Result<bool, String> {
    let _user = job
        .as_user()
        .map_err(|e| format!("cannot switch to uid {}: {e}", job.uid))?;
    // A FILE name must be a regular file the user can see: never open a
    // FIFO or a device (it could block slurmstepd) on the job's behalf.
    if args::ccache_type_of(name) == "FILE" {
        let path = name.strip_prefix("FILE:").unwrap_or(name);
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => {}
            _ => return Ok(false),
        }
    }
    let ctx = match Context::new() {
        Ok(c) => c,
        Err(_) => return Ok(false),
    };
    let Ok(data) = cred::extract_from_ccache(&ctx, Some(name)) else {
        return Ok(false);
    };
    Ok(cred::meta(&ctx, &data).is_ok_and(|m| m.endtime > ctx.now()))
}

fn random6() -> String {
    let mut b = [0u8; 6];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        // Uniqueness is still enforced by RENAME_NOREPLACE; only
        // predictability suffers.
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

/// Run the api HelperScript once as the job user (result only logged).
fn run_helper(job: &Job, script: &std::path::Path, ccache: &str) {
    let mut cmd = Command::new(script);
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("KRB5CCNAME", ccache)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir("/")
        .uid(job.uid)
        .gid(job.gid);
    match cmd.spawn() {
        Ok(mut child) => {
            let start = Instant::now();
            loop {
                match child.try_wait() {
                    Ok(Some(s)) => {
                        log_verbose(&format!("auks: helper script {} {s}", script.display()));
                        return;
                    }
                    Ok(None) if start.elapsed() < HELPER_LIMIT => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Ok(None) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        log_info(&format!(
                            "auks: helper script {} killed after {}s",
                            script.display(),
                            HELPER_LIMIT.as_secs()
                        ));
                        return;
                    }
                    Err(_) => return,
                }
            }
        }
        Err(e) => log_info(&format!(
            "auks: cannot run helper script {}: {e}",
            script.display()
        )),
    }
}

/// `slurm_spank_user_init`: start `<renewer> -R loop` as the job user
/// with every id dropped, in its own process group, stdio on /dev/null.
/// Only when we created the ccache.
pub fn start_renewer(a: &PluginArgs, st: &mut StepState) -> i32 {
    let (Some(job), Some(cc)) = (st.job, st.ccache.as_ref()) else {
        return 0;
    };
    if !cc.ours || st.renewer.is_some() {
        return 0;
    }
    let mut cmd = Command::new(&a.renewer);
    cmd.arg("-R")
        .arg("loop")
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("KRB5CCNAME", &cc.name)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir("/")
        .uid(job.uid)
        .gid(job.gid)
        .process_group(0);
    if let Some(conf) = &a.conf {
        cmd.env("AUKS_CONF", conf);
    }
    if let Some(k) = std::env::var_os("KRB5_CONFIG") {
        cmd.env("KRB5_CONFIG", k);
    }
    // In user_init this thread runs with euid = user and real/saved uid 0.
    // Drop ids in the child from root (setgid, setgroups, setuid set all
    // of real, effective and saved): raise this thread's euid to 0 just
    // around the fork; the child's post-fork code is std's raw calls.
    let spawned = match Switch::to_effective_root() {
        Ok(root) => {
            let r = cmd.spawn();
            if let Err(e) = root.restore() {
                log_error(&format!("auks: cannot restore thread ids: {e}"));
                std::process::abort();
            }
            r
        }
        Err(e) => Err(e),
    };
    match spawned {
        Ok(child) => {
            log_info(&format!(
                "auks: job {} uid {}: credential renewer {} started (pid {})",
                job.jobid,
                job.uid,
                a.renewer.display(),
                child.id()
            ));
            st.renewer = Some(child);
            0
        }
        Err(e) => {
            log_error(&format!(
                "auks: cannot start the credential renewer {}: {e}; the credential will not be renewed",
                a.renewer.display()
            ));
            0
        }
    }
}

fn sync_once(a: &PluginArgs, st: &mut StepState) {
    if a.sync == SyncMode::All && !st.synced {
        st.synced = true;
        log_info("auks: calling sync() to flush dirty pages while the ticket is valid");
        nix::unistd::sync();
    }
}

/// Outcome of waiting for the renewer.
fn reaped(child: &mut Child) -> bool {
    match child.try_wait() {
        Ok(Some(_)) => true,
        Ok(None) => false,
        // ECHILD: slurmstepd reaped it already.
        Err(_) => true,
    }
}

/// Poll for the child's exit until `limit`: every 0.5 ms at first (a
/// renewer answers SIGTERM within a millisecond or two and every step
/// waits for it), backing off to 10 ms.
fn wait_until(child: &mut Child, limit: Duration) -> bool {
    let start = Instant::now();
    let mut pause = Duration::from_micros(500);
    loop {
        if reaped(child) {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// Whether SIGTERM would reach process `pid` (not blocked, not ignored),
/// from `/proc/<pid>/status`. Unknown = yes.
fn sigterm_deliverable(pid: i32) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    args::signal_deliverable(&text, libc::SIGTERM)
}

/// Tell the renewer to stop, without waiting for it: SIGTERM to its
/// process group (SIGKILL when SIGTERM could not reach it). Signals are
/// sent with the job user's real and effective uid, so only the user's
/// processes can ever be hit. Called when the last local task exits, so
/// the end of the step does not wait while the renewer exits;
/// [`stop_renewer`] reaps it.
pub fn signal_renewer(a: &PluginArgs, st: &mut StepState) {
    if st.renewer_signalled.is_some() {
        return;
    }
    let Some(child) = st.renewer.as_mut() else {
        return;
    };
    let pid = child.id() as i32;
    if reaped(child) {
        log_verbose(&format!(
            "auks: credential renewer (pid {pid}) had already exited"
        ));
        st.renewer = None;
        return;
    }
    sync_once(a, st);
    let Some(job) = st.job else { return };
    let Some(user) = job.as_user_to("stop the renewer") else {
        return;
    };
    use nix::sys::signal::{kill, Signal};
    // std's Command keeps the forking thread's signal mask, and slurmstepd
    // blocks SIGTERM: a renewer that does not unblock it would only wait
    // out the grace period, so it gets SIGKILL at once.
    let sig = if sigterm_deliverable(pid) {
        Signal::SIGTERM
    } else {
        Signal::SIGKILL
    };
    let _ = kill(nix::unistd::Pid::from_raw(-pid), sig);
    drop(user);
    st.renewer_signalled = Some((Instant::now(), sig == Signal::SIGKILL));
}

/// Stop the renewer: signal it if not done yet ([`signal_renewer`]),
/// SIGKILL when it has not exited a grace period after SIGTERM, reap it,
/// and kill whatever it left in its process group.
pub fn stop_renewer(a: &PluginArgs, st: &mut StepState) {
    signal_renewer(a, st);
    let Some(mut child) = st.renewer.take() else {
        return;
    };
    let Some((since, mut killed)) = st.renewer_signalled else {
        // Could not switch ids to signal it: leave it (it stops by itself
        // once the ccache is destroyed).
        return;
    };
    let pid = child.id() as i32;
    let Some(job) = st.job else { return };
    let Some(user) = job.as_user_to("stop the renewer") else {
        return;
    };
    let group = nix::unistd::Pid::from_raw(-pid);
    use nix::sys::signal::{kill, Signal};
    let left = RENEWER_GRACE.saturating_sub(since.elapsed());
    if !wait_until(&mut child, left) {
        let _ = kill(group, Signal::SIGKILL);
        killed = true;
        wait_until(&mut child, Duration::from_secs(5));
    }
    // Anything the renewer started in its group goes too.
    let _ = kill(group, Signal::SIGKILL);
    drop(user);
    log_info(&format!(
        "auks: job {}: credential renewer (pid {pid}) stopped{}",
        job.jobid,
        if killed { " with SIGKILL" } else { "" }
    ));
}

/// `slurm_spank_task_exit`: signal the renewer to stop when the last local
/// task exits (it is reaped in [`exit`]).
pub fn task_exit(env: &dyn StepEnv, a: &PluginArgs, st: &mut StepState) -> i32 {
    st.exited_tasks += 1;
    if st.renewer.is_none() {
        return 0;
    }
    match env.local_task_count() {
        Ok(n) if st.exited_tasks >= n => {
            log_verbose("auks: all local tasks exited: stopping the credential renewer");
            signal_renewer(a, st);
            0
        }
        Ok(_) => 0,
        Err(e) => {
            log_info(&format!("auks: cannot get the local task count: {e}"));
            0
        }
    }
}

/// `slurm_spank_exit`: stop the renewer if still there, sync, destroy the
/// ccache we created (as the user).
pub fn exit(a: &PluginArgs, st: &mut StepState) -> i32 {
    stop_renewer(a, st);
    let Some(cc) = st.ccache.take() else {
        return 0;
    };
    if !cc.ours {
        return 0;
    }
    sync_once(a, st);
    let Some(job) = st.job else { return 0 };
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
