//! srun's ADD on a thread of srun, without libkrb5, when the usual case
//! allows it; else the helper process of [`super::preadd`].
//!
//! The helper process costs about 2.5 ms of CPU per step (a process
//! start, libkrb5 loaded and initialised, its own exit) on the machine
//! that also runs srun, slurmctld and slurmd. What an ADD needs of
//! Kerberos is small when the user's ccache is a FILE ccache that already
//! holds a service ticket for auksd (it does after the first ADD: the
//! ticket is stored there): read the file ([`crate::ccache_file`]),
//! encode the TGT as KRB-CRED, and run the session's Kerberos steps with
//! its AES-SHA1 session key ([`crate::krb5::PlainClient`]). That is done
//! on a thread while srun waits for its allocation.
//!
//! A thread of srun must not read the environment: srun sets variables
//! meanwhile, and the C library's `setenv` may free the array `getenv`
//! walks. libkrb5 reads it (its configuration, its trace, the default
//! ccache name) and so does the resolver. So the main thread, in
//! `init_post_opt`, does all of that: it reads `KRB5CCNAME` (or finds the
//! default name, below), checks and copies the file without blocking
//! ([`super::probe`]), decides whether this ADD can be made here, and
//! resolves auksd's address; the thread only computes, connects and
//! talks. Nothing it does logs: its notes are shown by `local_user_init`.
//!
//! Used when all of these hold, else the helper runs as before:
//! - the ccache is a FILE ccache: `KRB5CCNAME` names one, or is unset
//!   and the Kerberos configuration files (`KRB5_CONFIG`, else
//!   `/etc/krb5.conf`) neither set `default_ccache_name` nor include
//!   other files, so that libkrb5's default is its built-in
//!   `FILE:/tmp/krb5cc_%{uid}`;
//! - it holds a local TGT without addresses that has not expired, and a
//!   service ticket for auksd's principal (valid 30 s more, AES-SHA1
//!   session key) issued to the same client;
//! - no `CrossRealm` is configured, and auksd's principal names its realm
//!   and needs no quoting.
//!
//! Any failure of the thread (auksd down, a refusal, an answer it cannot
//! read) makes `local_user_init` do the ADD in srun the usual way, which
//! tries every server in every round and words every error as before.

use super::helper::Note;
use super::local::Outcome;
use super::probe::{self, Probed};
use crate::ccache_file::{self, FileCcache, FileCred};
use crate::client::TICKET_MARGIN;
use crate::config::{ClientConfig, Endpoint};
use crate::krb5::{ClientName, PlainClient, PlainTicket};
use crate::proto::{self, Reply, Request};
use crate::session::plain::{self, PlainLimits};
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};
use zeroize::Zeroizing;

/// The thread's stack (given: std would read `RUST_MIN_STACK`).
const STACK: usize = 256 * 1024;
/// Largest Kerberos configuration file read to find the default name.
const CONF_MAX: u64 = 1 << 20;

/// What the thread needs, gathered by the main thread.
pub struct Prepared {
    /// The ccache's bytes (it holds session keys).
    file: Zeroizing<Vec<u8>>,
    server: (Vec<u8>, Vec<Vec<u8>>),
    addrs: Vec<SocketAddr>,
    limits: PlainLimits,
}

/// Why the quick path is not taken (said with `srun -v`).
pub type NotHere = String;

/// The main thread's part: `Ok` when the thread can make this ADD.
pub fn prepare(conf: &ClientConfig) -> Result<Prepared, NotHere> {
    if conf.common.cross_realm.is_some() {
        return Err("CrossRealm is set".into());
    }
    let euid = nix::unistd::geteuid().as_raw();
    let name = match std::env::var("KRB5CCNAME").ok().filter(|n| !n.is_empty()) {
        Some(n) => n,
        None => default_file_ccache(euid)?,
    };
    if !(name.starts_with('/') || name.starts_with("FILE:")) {
        return Err(format!("{name} is not a FILE ccache"));
    }
    let file = match probe::probe(&name, euid) {
        Ok(Probed::File { copy, .. }) => read_all(copy).map_err(|e| format!("{name}: {e}"))?,
        Ok(Probed::Other(_)) => return Err(format!("{name} is not a FILE ccache")),
        Err(e) => return Err(e.to_string()),
    };
    prepared(conf, file).map_err(|e| format!("{name}: {e}"))
}

/// [`prepare`] once the ccache file is read (`file`, its bytes): `Ok` when
/// it allows this ADD, with auksd's addresses looked up.
pub fn prepared(conf: &ClientConfig, file: Zeroizing<Vec<u8>>) -> Result<Prepared, NotHere> {
    let ep = &conf.common.primary;
    let server = principal_parts(&ep.principal)?;
    let cc = ccache_file::read_creds(&file).map_err(|e| e.to_string())?;
    let now = kdc_now(&cc).0;
    usable(&cc, &server, now)?;
    let timeout = match conf.common.timeout {
        0 => Duration::from_secs(5),
        t => Duration::from_secs(t.min(600)),
    };
    let start = Instant::now();
    let mut addrs = endpoint_addrs(ep, start + timeout)?;
    let second = &conf.common.secondary;
    if !second.host.is_empty() && second.principal == ep.principal {
        if let Ok(more) = endpoint_addrs(second, start + timeout) {
            addrs.extend(more);
        }
    }
    addrs.dedup();
    Ok(Prepared {
        file,
        server,
        addrs,
        limits: PlainLimits {
            io_timeout: conf.common.io_timeout(),
            deadline: start + timeout * 2,
            nat: conf.common.nat,
            max_reply: proto::MAX_MESSAGE,
        },
    })
}

/// An ADD running on its thread.
pub struct QuickAdd {
    rx: mpsc::Receiver<Result<f64, String>>,
    deadline: Instant,
}

impl QuickAdd {
    /// Start the thread.
    pub fn start(p: Prepared) -> std::io::Result<QuickAdd> {
        let deadline = p.limits.deadline + Duration::from_secs(1);
        let (tx, rx) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("auks-add".into())
            .stack_size(STACK)
            .spawn(move || {
                let t0 = Instant::now();
                let r = p.run().map(|()| t0.elapsed().as_secs_f64() * 1000.0);
                let _ = tx.send(r);
            })?;
        Ok(QuickAdd { rx, deadline })
    }

    /// Its outcome; `Err` (why) when srun must make the ADD itself.
    pub fn collect(self) -> Result<Outcome, String> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(Ok(ms)) => Ok(Outcome {
                notes: vec![Note::Verbose(format!(
                    "auks: Kerberos credential forwarded to auksd (add={ms:.3}ms)"
                ))],
                export: Some("done"),
                rc: 0,
            }),
            Ok(Err(why)) => Err(why),
            Err(_) => Err("no answer in time".into()),
        }
    }
}

impl Prepared {
    /// The thread's work: the TGT as KRB-CRED, one ADD to the first
    /// server that answers. The ccache is read again from the bytes the
    /// main thread checked (its credentials borrow them).
    pub fn run(&self) -> Result<(), String> {
        let cc = ccache_file::read_creds(&self.file).map_err(|e| e.to_string())?;
        let (now, usec) = kdc_now(&cc);
        let (tgt, ticket) = usable(&cc, &self.server, now)?;
        // With the cross-realm TGT when there is one, as the libkrb5 path;
        // stamped as libkrb5 stamps it (its clock with the ccache's offset).
        let stamp = (now as u32, usec as i32);
        let data = match cc.tgts().1 {
            Some(x) => ccache_file::encode_krb_cred_at(&[tgt, x], stamp),
            None => ccache_file::encode_krb_cred_at(&[tgt], stamp),
        };
        if data.len() > proto::MAX_CRED_DATA {
            return Err("credential too large".into());
        }
        let comps: Vec<&[u8]> = ticket.client.components.to_vec();
        let t = PlainTicket {
            client: ClientName {
                realm: ticket.client.realm,
                name_type: ticket.client.name_type,
                components: &comps,
            },
            ticket: ticket.ticket,
            etype: ticket.key_enctype,
            key: ticket.key,
        };
        let add = proto::encode_request(&Request::Add(data));
        let close = proto::encode_request(&Request::Close);
        let mut last = String::from("no address");
        for addr in &self.addrs {
            match plain::request(*addr, &t, (now, usec), &add, &close, &self.limits) {
                Ok(plain) => {
                    return match proto::decode_reply(&plain) {
                        Ok(Reply::Add) => Ok(()),
                        Ok(other) => Err(format!("auksd answered {}", reply_name(&other))),
                        Err(e) => Err(e.to_string()),
                    }
                }
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(last)
    }
}

fn reply_name(r: &Reply) -> &'static str {
    match r {
        Reply::Error(_) => "an error",
        _ => "with another reply",
    }
}

/// The local TGT and the service ticket of `cc`, if this ADD can be made
/// here.
fn usable<'c>(
    cc: &'c FileCcache<'c>,
    (realm, comps): &(Vec<u8>, Vec<Vec<u8>>),
    now: i64,
) -> Result<(&'c FileCred<'c>, &'c FileCred<'c>), NotHere> {
    let (Some(tgt), _) = cc.tgts() else {
        return Err("no TGT in the ccache".into());
    };
    if i64::from(tgt.endtime) <= now {
        return Err("the TGT has expired".into());
    }
    if !tgt.addresses.is_empty() {
        return Err("the TGT has addresses".into());
    }
    let comps: Vec<&[u8]> = comps.iter().map(Vec::as_slice).collect();
    let same_client = |c: &FileCred<'_>| {
        c.client.realm == tgt.client.realm && c.client.components == tgt.client.components
    };
    let ticket = cc
        .creds
        .iter()
        .find(|c| {
            i64::from(c.endtime) > now + TICKET_MARGIN
                && c.flags & TKT_FLG_INVALID == 0
                && !c.is_skey
                && c.server.is(realm, &comps)
                && same_client(c)
        })
        .ok_or("no service ticket for auksd in the ccache yet")?;
    if !PlainClient::handles(ticket.key_enctype) {
        return Err(format!(
            "the auksd ticket's enctype {} is not AES-SHA1",
            ticket.key_enctype
        ));
    }
    Ok((tgt, ticket))
}

/// `TKT_FLG_INVALID`.
const TKT_FLG_INVALID: u32 = 0x0100_0000;

/// Now as libkrb5 sees it after reading `cc` (its KDC offset applied):
/// Unix seconds (a 32-bit Kerberos time) and microseconds.
fn kdc_now(cc: &FileCcache<'_>) -> (i64, u32) {
    let (s, us) = ccache_file::kdc_time_of_day(SystemTime::now(), cc.time_offset);
    (i64::from(s), u32::try_from(us).unwrap_or(0))
}

/// `name/instance@REALM` as (realm, components), when no quoting is
/// involved and the realm is given.
fn principal_parts(p: &str) -> Result<(Vec<u8>, Vec<Vec<u8>>), NotHere> {
    let bad = || format!("auksd principal {p:?} needs libkrb5 to be read");
    if p.contains('\\') {
        return Err(bad());
    }
    let (name, realm) = p.rsplit_once('@').ok_or_else(bad)?;
    if realm.is_empty() || name.is_empty() || name.contains('@') {
        return Err(bad());
    }
    let comps: Vec<Vec<u8>> = name.split('/').map(|c| c.as_bytes().to_vec()).collect();
    Ok((realm.as_bytes().to_vec(), comps))
}

/// The addresses of `ep`, looked up by `deadline` (from the main thread:
/// the resolver reads the environment).
fn endpoint_addrs(ep: &Endpoint, deadline: Instant) -> Result<Vec<SocketAddr>, NotHere> {
    crate::client::resolve(ep, Some(deadline))
}

/// libkrb5's default ccache when no configuration file names one:
/// `FILE:/tmp/krb5cc_<uid>`; an error when one may (see the module doc).
fn default_file_ccache(euid: u32) -> Result<String, NotHere> {
    let files = std::env::var("KRB5_CONFIG").unwrap_or_else(|_| "/etc/krb5.conf".into());
    for f in files.split(':').filter(|f| !f.is_empty()) {
        let text = match read_conf(&PathBuf::from(f)) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("{f}: {e}")),
        };
        if names_a_default(&text) {
            return Err(format!("{f} may name the default ccache"));
        }
    }
    Ok(format!("FILE:/tmp/krb5cc_{euid}"))
}

/// Whether a krb5.conf may set the default ccache name: it does, or it
/// includes other files or loads a module.
fn names_a_default(text: &str) -> bool {
    text.lines().map(str::trim_start).any(|l| {
        l.starts_with("include") || l.starts_with("module") || l.contains("default_ccache_name")
    })
}

fn read_conf(path: &std::path::Path) -> std::io::Result<String> {
    let f = std::fs::File::open(path)?;
    let mut s = String::new();
    f.take(CONF_MAX).read_to_string(&mut s)?;
    Ok(s)
}

/// The whole memory copy made by the probe (at most [`probe::CCACHE_MAX`]).
fn read_all(mut f: std::fs::File) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let n = f.seek(SeekFrom::End(0))?.min(probe::CCACHE_MAX);
    f.seek(SeekFrom::Start(0))?;
    // Sized once: a growing Vec would leave copies of the keys behind.
    let mut buf = Zeroizing::new(vec![0u8; n as usize]);
    f.read_exact(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_without_quoting() {
        let (r, c) = principal_parts("auks/host.example@EXAMPLE.ORG").unwrap();
        assert_eq!(r, b"EXAMPLE.ORG");
        assert_eq!(c, vec![b"auks".to_vec(), b"host.example".to_vec()]);
        assert!(principal_parts("auks/host").is_err());
        assert!(principal_parts("auks\\/x@R").is_err());
        assert!(principal_parts("@R").is_err());
        assert!(principal_parts("a@b@R").is_err());
    }

    #[test]
    fn configurations_that_may_name_the_default() {
        let plain = "[libdefaults]\n  default_realm = X\n  forwardable = true\n";
        assert!(!names_a_default(plain));
        assert!(names_a_default(
            "[libdefaults]\n default_ccache_name = KEYRING:persistent:%{uid}\n"
        ));
        assert!(names_a_default("includedir /etc/krb5.conf.d/\n"));
        assert!(names_a_default("include /etc/other.conf\n"));
        assert!(names_a_default("module /usr/lib/x.so:y\n"));
    }
}
