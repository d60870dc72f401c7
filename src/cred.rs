//! Credentials as AUKS moves them: an unencrypted KRB-CRED holding the
//! user's TGT (and optionally a cross-realm TGT), plus the metadata AUKS
//! derives from it (spec §4).
//!
//! Storing into a FILE ccache is atomic: the cache is written by libkrb5
//! under a temporary name, then renamed over the target (or, for a
//! brand-new per-job cache, onto a name that must not exist yet). A reader
//! never sees a half-written cache, and no step follows a symlink planted
//! at the target name. Where the target's directory is trusted (owned by
//! root or the caller, and sticky or writable by its owner only, as `/tmp`
//! or auksd's `CacheDir`) the temporary name is a random hidden file next
//! to the target, created with `O_EXCL` by libkrb5: nobody else can remove
//! or replace it there. Elsewhere it lives in a fresh private directory
//! (mode 0700) next to the target, which costs a `mkdir` and an `rmdir`
//! (a per-job cache is written in every job step).

use crate::krb5::{self, Ccache, Context, Creds};
use crate::proto::{CredRecord, MAX_CRED_DATA, MAX_PRINCIPAL_LEN};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Errors of the credential layer.
#[derive(Debug, thiserror::Error)]
pub enum CredError {
    #[error("unable to read credential cache {ccache}: {source}")]
    CcacheUnreadable {
        ccache: String,
        #[source]
        source: krb5::Error,
    },
    #[error("no TGT found in credential cache {ccache} (run kinit first)")]
    NoTgt { ccache: String },
    #[error("credential is not a valid unencrypted KRB-CRED: {0}")]
    BadKrbCred(#[source] krb5::Error),
    #[error("credential is {len} bytes, more than the {MAX_CRED_DATA} bytes AUKS can carry")]
    TooLarge { len: usize },
    #[error("principal name {0:?} is longer than {MAX_PRINCIPAL_LEN} characters")]
    PrincipalTooLong(String),
    #[error("principal {principal} does not map to a local account name: {source}")]
    NoLocalName {
        principal: String,
        #[source]
        source: krb5::Error,
    },
    #[error("principal {principal} maps to local name {name}, which has no account on this host")]
    NoSuchUser { principal: String, name: String },
    #[error("account lookup for {name} failed: {reason}")]
    AccountLookup { name: String, reason: String },
    #[error("cannot store credential into {ccache}: {reason}")]
    Store { ccache: String, reason: String },
    #[error("KDC request failed: {0}")]
    Kdc(#[source] krb5::Error),
    #[error(transparent)]
    Krb5(#[from] krb5::Error),
}

pub type Result<T> = std::result::Result<T, CredError>;

/// Extract the TGT (and a cross-realm TGT if present) from a ccache and
/// serialise it as an unencrypted KRB-CRED (§4.1). `None` = default ccache.
pub fn extract_from_ccache(ctx: &Context, ccache: Option<&str>) -> Result<Zeroizing<Vec<u8>>> {
    extract_with(ctx, ccache, |_, data| Ok(data))
}

/// The AUKS record of the TGT in the FILE ccache `ccache`, known to belong
/// to `uid` (the daemon's own cache file `aukscc_<uid>`): the times come
/// from the ccache entries, with neither an account lookup nor a second
/// decoding of the KRB-CRED.
pub fn record_from_ccache(ctx: &Context, ccache: &str, uid: u32) -> Result<CredRecord> {
    extract_with(ctx, Some(ccache), |tickets, data| {
        let first = tickets[0];
        let (starttime, endtime, renew_till) = times_of(tickets.iter().copied());
        Ok(CredRecord {
            principal: principal_of(first)?,
            uid,
            starttime,
            endtime,
            renew_till,
            addressless: !first.has_addresses(),
            crossrealm: tickets.len() > 1,
            data,
            status: 0,
        })
    })
}

/// The client principal of a TGT, refused when longer than the protocol
/// allows.
fn principal_of(first: &Creds<'_>) -> Result<String> {
    let principal = first.client()?;
    if principal.len() > MAX_PRINCIPAL_LEN {
        return Err(CredError::PrincipalTooLong(principal));
    }
    Ok(principal)
}

/// (starttime, endtime, renew_till) of a chain of tickets: the earliest
/// start and end, the latest renewal limit.
fn times_of<'c, 'k: 'c>(tickets: impl IntoIterator<Item = &'c Creds<'k>>) -> (i64, i64, i64) {
    tickets
        .into_iter()
        .fold(None, |acc: Option<(i64, i64, i64)>, c| {
            let (s, e, r) = (c.starttime(), c.endtime(), c.renew_till());
            Some(acc.map_or((s, e, r), |(s0, e0, r0)| (s0.min(s), e0.min(e), r0.max(r))))
        })
        .unwrap_or((0, 0, 0))
}

/// Find the local TGT (and a cross-realm one) of a ccache, serialise them
/// as a KRB-CRED and hand both to `then`.
fn extract_with<T>(
    ctx: &Context,
    ccache: Option<&str>,
    then: impl FnOnce(&[&Creds<'_>], Zeroizing<Vec<u8>>) -> Result<T>,
) -> Result<T> {
    let cc = match ccache {
        Some(n) => Ccache::resolve(ctx, n)?,
        None => Ccache::default(ctx)?,
    };
    let name = cc
        .full_name()
        .unwrap_or_else(|_| ccache.unwrap_or("").to_string());
    let unreadable = |source| CredError::CcacheUnreadable {
        ccache: name.clone(),
        source,
    };
    let princ = cc.principal().map_err(unreadable)?;
    let realm = princ.realm();
    let all = cc.creds().map_err(unreadable)?;
    let mut local: Option<Creds<'_>> = None;
    let mut cross: Option<Creds<'_>> = None;
    for c in all {
        let Some((target, issuer)) = c.tgt_realms() else {
            continue;
        };
        if issuer != realm {
            continue;
        }
        if target == realm {
            // the last local TGT wins, as in C
            local = Some(c);
        } else if cross.is_none() {
            cross = Some(c);
        }
        if local.is_some() && cross.is_some() {
            break;
        }
    }
    let Some(mut local) = local else {
        return Err(CredError::NoTgt { ccache: name });
    };
    let data = match cross.as_mut() {
        Some(x) => krb5::encode_krb_cred(ctx, &mut [&mut local, x])?,
        None => krb5::encode_krb_cred(ctx, &mut [&mut local])?,
    };
    let data = check_size(data)?;
    match &cross {
        Some(x) => then(&[&local, x], data),
        None => then(&[&local], data),
    }
}

fn check_size(data: Zeroizing<Vec<u8>>) -> Result<Zeroizing<Vec<u8>>> {
    if data.len() > MAX_CRED_DATA {
        return Err(CredError::TooLarge { len: data.len() });
    }
    Ok(data)
}

/// Look up a local account's uid; "no such user" is an error of its own
/// (the C code read an uninitialised struct in that case, §11.6).
pub fn uid_of(principal: &str, local_name: &str) -> Result<u32> {
    match nix::unistd::User::from_name(local_name) {
        Ok(Some(u)) => Ok(u.uid.as_raw()),
        Ok(None) => Err(CredError::NoSuchUser {
            principal: principal.to_string(),
            name: local_name.to_string(),
        }),
        Err(e) => Err(CredError::AccountLookup {
            name: local_name.to_string(),
            reason: e.to_string(),
        }),
    }
}

/// Metadata of a KRB-CRED without the uid mapping (§4.2).
pub struct CredMeta {
    pub principal: String,
    pub local_name: std::result::Result<String, krb5::Error>,
    pub starttime: i64,
    pub endtime: i64,
    pub renew_till: i64,
    pub addressless: bool,
    pub crossrealm: bool,
}

impl CredMeta {
    /// The AUKS record of the credential `data` these metadata describe,
    /// stored for `uid`.
    pub fn into_record(self, uid: u32, data: Zeroizing<Vec<u8>>) -> CredRecord {
        CredRecord {
            principal: self.principal,
            uid,
            starttime: self.starttime,
            endtime: self.endtime,
            renew_till: self.renew_till,
            addressless: self.addressless,
            crossrealm: self.crossrealm,
            data,
            status: 0,
        }
    }
}

/// Decode a KRB-CRED and compute its metadata.
pub fn meta(ctx: &Context, data: &[u8]) -> Result<CredMeta> {
    meta_of(&krb5::decode_krb_cred(ctx, data).map_err(CredError::BadKrbCred)?)
}

/// The metadata of decoded credentials (at least one).
fn meta_of(creds: &[Creds<'_>]) -> Result<CredMeta> {
    let first = creds
        .first()
        .ok_or(CredError::BadKrbCred(krb5::Error::local(
            "krb5_rd_cred",
            "no credential",
        )))?;
    let principal = principal_of(first)?;
    let local_name = first.client_principal()?.local_name();
    let (starttime, endtime, renew_till) = times_of(creds);
    Ok(CredMeta {
        principal,
        local_name,
        starttime,
        endtime,
        renew_till,
        addressless: !first.has_addresses(),
        crossrealm: creds.len() > 1,
    })
}

/// Whether two KRB-CREDs hold the same tickets (same ticket bytes, times
/// and flags, in the same order). Their encodings differ even then: each
/// KRB-CRED carries the time it was made. Two that carry the same tickets
/// and ticket-info byte for byte (the same TGT sent again), or different
/// tickets (a renewed TGT), are recognised without libkrb5
/// ([`krb5::compare_credentials`]); others are decoded.
/// Undecodable input: false.
pub fn same_tickets(ctx: &Context, a: &[u8], b: &[u8]) -> bool {
    // The same TGT sent again, or a renewed one: no need to decode.
    if let Some(same) = krb5::compare_credentials(a, b) {
        return same;
    }
    let (Ok(x), Ok(y)) = (krb5::decode_krb_cred(ctx, a), krb5::decode_krb_cred(ctx, b)) else {
        return false;
    };
    x.len() == y.len()
        && x.iter().zip(&y).all(|(p, q)| {
            !p.ticket().is_empty()
                && p.ticket() == q.ticket()
                && p.starttime() == q.starttime()
                && p.endtime() == q.endtime()
                && p.renew_till() == q.renew_till()
                && p.flags() == q.flags()
        })
}

/// Build the AUKS record for a KRB-CRED, mapping its principal to a local
/// uid on this host (§4.2).
pub fn record_from_krb_cred(ctx: &Context, data: Zeroizing<Vec<u8>>) -> Result<CredRecord> {
    let data = check_size(data)?;
    let m = meta(ctx, &data)?;
    record_of(m, data)
}

/// [`record_from_krb_cred`] and the FILE ccache [`store_krb_cred`] would
/// write for it ([`file_ccache_of`]) from one decoding: what auksd needs
/// for an ADD it may store (the two decodings were a seventh of its CPU
/// for the ADDs of a renewer pass).
pub fn record_and_file(
    ctx: &Context,
    data: Zeroizing<Vec<u8>>,
) -> Result<(CredRecord, Option<Zeroizing<Vec<u8>>>)> {
    let data = check_size(data)?;
    let creds = krb5::decode_krb_cred(ctx, &data).map_err(CredError::BadKrbCred)?;
    let m = meta_of(&creds)?;
    let file = krb5::file_ccache_bytes(ctx, &creds);
    drop(creds);
    Ok((record_of(m, data)?, file))
}

/// The record of `data` described by `m`, its principal mapped to a uid.
fn record_of(m: CredMeta, data: Zeroizing<Vec<u8>>) -> Result<CredRecord> {
    let uid = match m.local_name {
        Ok(ref name) => uid_of(&m.principal, name)?,
        Err(source) => {
            return Err(CredError::NoLocalName {
                principal: m.principal,
                source,
            })
        }
    };
    Ok(m.into_record(uid, data))
}

/// Return an addressless version of the credential: a no-op when the TGT
/// has no addresses, else a FORWARDED TGS request (§4.3).
pub fn make_addressless(ctx: &Context, data: Zeroizing<Vec<u8>>) -> Result<Zeroizing<Vec<u8>>> {
    // Read without libkrb5 when the strict reader takes it (auksd decodes
    // and checks what it receives anyway).
    if krb5::without_addresses(&data) == Some(true) {
        return Ok(data);
    }
    let mut creds = krb5::decode_krb_cred(ctx, &data).map_err(CredError::BadKrbCred)?;
    if !creds[0].has_addresses() {
        return Ok(data);
    }
    let mut fresh = krb5::addressless_tgt(ctx, &mut creds[0]).map_err(CredError::Kdc)?;
    check_size(krb5::encode_krb_cred(ctx, &mut [&mut fresh])?)
}

/// Append a cross-realm TGT for `realm` (§4.4). Returns the original when
/// it is already cross-realm.
pub fn add_cross_realm(
    ctx: &Context,
    data: Zeroizing<Vec<u8>>,
    realm: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    let mut creds = krb5::decode_krb_cred(ctx, &data).map_err(CredError::BadKrbCred)?;
    if creds.len() > 1 {
        return Ok(data);
    }
    let mut x = krb5::cross_realm_tgt(ctx, &mut creds[0], realm).map_err(CredError::Kdc)?;
    let first = &mut creds[0];
    check_size(krb5::encode_krb_cred(ctx, &mut [first, &mut x])?)
}

/// Renew the local TGT at the KDC (§4.5). The result holds the renewed
/// TGT only; callers that want a cross-realm ticket re-acquire it with
/// [`add_cross_realm`] (fixing §11.17, where it was silently lost).
pub fn renew_at_kdc(ctx: &Context, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    renew_tgt_of(ctx, data).map(|r| r.data)
}

/// A local TGT renewed at the KDC ([`renew_tgt_of`]).
pub struct RenewedTgt {
    /// The KRB-CRED of the renewed TGT alone.
    pub data: Zeroizing<Vec<u8>>,
    /// Its start, end and renew-till times.
    pub starttime: i64,
    pub endtime: i64,
    pub renew_till: i64,
    /// The target realm of the cross-realm TGT the source KRB-CRED held.
    pub cross_realm: Option<String>,
}

/// [`renew_at_kdc`], with what a renewer asks next (the renewed ticket's
/// times, the cross-realm TGT to re-acquire) read from the one decoding
/// of each KRB-CRED: a renewer's pass over 100 000 credentials decoded
/// each three times.
pub fn renew_tgt_of(ctx: &Context, data: &[u8]) -> Result<RenewedTgt> {
    let mut creds = krb5::decode_krb_cred(ctx, data).map_err(CredError::BadKrbCred)?;
    let cross_realm = creds
        .iter()
        .find(|c| c.is_cross_realm_tgt())
        .and_then(|c| c.tgt_realms().map(|(t, _)| t));
    let idx = creds
        .iter()
        .position(|c| c.is_local_tgt())
        .ok_or_else(|| CredError::NoTgt {
            ccache: "credential".into(),
        })?;
    let mut renewed = krb5::renew_tgt(ctx, &mut creds[idx]).map_err(CredError::Kdc)?;
    let (starttime, endtime, renew_till) = times_of([&renewed]);
    let data = check_size(krb5::encode_krb_cred(ctx, &mut [&mut renewed])?)?;
    Ok(RenewedTgt {
        data,
        starttime,
        endtime,
        renew_till,
        cross_realm,
    })
}

/// The FILE ccache [`store_krb_cred`] writes for `data`, made in Rust
/// ([`krb5::file_ccache_bytes`]); `Ok(None)` when only libkrb5 writes it.
pub fn file_ccache_of(ctx: &Context, data: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let creds = krb5::decode_krb_cred(ctx, data).map_err(CredError::BadKrbCred)?;
    Ok(krb5::file_ccache_bytes(ctx, &creds))
}

/// Whether FILE ccaches can be written in `dir` as files of ours: a
/// directory no one else can remove or replace them in (else
/// [`store_krb_cred`] writes in a private directory of its own first).
pub fn writable_in_place(dir: &Path) -> bool {
    trusted_dir(dir)
}

/// How a FILE ccache is placed at its final name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Atomically replace whatever is there (renewal, `auks -g`, auksd).
    Replace,
    /// The name must not exist yet (new per-job cache; like O_EXCL).
    New,
}

/// The path of a FILE credential cache or keytab name (`FILE:p` or a
/// plain `/p`), else `None`.
pub(crate) fn file_path_of(name: &str) -> Option<PathBuf> {
    if let Some(rest) = name.strip_prefix("FILE:") {
        return Some(PathBuf::from(rest));
    }
    if name.starts_with('/') {
        return Some(PathBuf::from(name));
    }
    None
}

fn init_and_store(cc: &Ccache<'_>, creds: &mut [Creds<'_>]) -> Result<()> {
    let client = creds[0].client_principal()?;
    cc.initialize(&client)?;
    for c in creds.iter_mut() {
        cc.store(c)?;
    }
    Ok(())
}

/// Store a KRB-CRED into a ccache (§4.7): initialised with the first
/// ticket's client, every ticket stored in order. `None` = default ccache.
/// Returns the full name of the ccache written.
pub fn store_krb_cred(
    ctx: &Context,
    data: &[u8],
    ccache: Option<&str>,
    placement: Placement,
) -> Result<String> {
    let mut creds = krb5::decode_krb_cred(ctx, data).map_err(CredError::BadKrbCred)?;
    let target = match ccache {
        Some(n) => n.to_string(),
        None => ctx.default_ccache_name()?,
    };
    let path = match file_path_of(&target) {
        Some(p) => p,
        None => {
            // KEYRING, KCM, DIR, MEMORY...: the backend replaces contents.
            let cc = Ccache::resolve(ctx, &target)?;
            if cc.cc_type() == "FILE" {
                return store_file(ctx, &mut creds, Path::new(&cc.residual()), placement);
            }
            init_and_store(&cc, &mut creds).map_err(|e| CredError::Store {
                ccache: target.clone(),
                reason: e.to_string(),
            })?;
            return Ok(cc.full_name().unwrap_or(target));
        }
    };
    store_file(ctx, &mut creds, &path, placement)
}

fn store_file(
    ctx: &Context,
    creds: &mut [Creds<'_>],
    path: &Path,
    placement: Placement,
) -> Result<String> {
    let shown = path.display().to_string();
    let fail = |reason: String| CredError::Store {
        ccache: format!("FILE:{shown}"),
        reason,
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| fail("not a file name".into()))?;
    let flags = match placement {
        Placement::Replace => nix::fcntl::RenameFlags::empty(),
        Placement::New => nix::fcntl::RenameFlags::RENAME_NOREPLACE,
    };
    let target = parent.join(file_name);
    if trusted_dir(&parent) {
        store_beside(ctx, creds, &parent, &target, flags).map_err(fail)?;
        return Ok(format!("FILE:{shown}"));
    }
    let dir = tempfile::Builder::new()
        .prefix(".auks-")
        .tempdir_in(&parent)
        .map_err(|e| {
            fail(format!(
                "cannot create a private directory in {}: {e}",
                parent.display()
            ))
        })?;
    let tmp = dir.path().join("ccache");
    {
        let cc = Ccache::resolve(ctx, &format!("FILE:{}", tmp.display()))?;
        init_and_store(&cc, creds).map_err(|e| fail(e.to_string()))?;
    }
    // The file libkrb5 created is mode 0600 and owned by our effective uid;
    // enforce the mode in case of an unusual umask.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| fail(e.to_string()))?;
    nix::fcntl::renameat2(None, &tmp, None, &target, flags).map_err(|e| fail(rename_error(e)))?;
    drop(dir);
    Ok(format!("FILE:{shown}"))
}

fn rename_error(e: nix::errno::Errno) -> String {
    match e {
        nix::errno::Errno::EEXIST => "the file already exists".to_string(),
        e => e.desc().to_string(),
    }
}

/// A directory where a hidden temporary file of ours cannot be removed or
/// replaced by anyone else: owned by root or by the caller, and sticky or
/// writable by its owner only.
fn trusted_dir(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::metadata(dir) else {
        return false;
    };
    let euid = nix::unistd::geteuid().as_raw();
    m.is_dir()
        && (m.uid() == 0 || m.uid() == euid)
        && (m.mode() & libc::S_ISVTX != 0 || m.mode() & 0o022 == 0)
}

/// Twelve random characters for a temporary name (the kernel's generator;
/// a time-based value should it fail: `O_EXCL` still guarantees a new file).
pub(crate) fn random_name() -> String {
    const SET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut b = [0u8; 12];
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ u128::from(std::process::id());
        b.copy_from_slice(&t.to_le_bytes()[..12]);
    }
    b.iter()
        .map(|x| SET[usize::from(*x) % SET.len()] as char)
        .collect()
}

/// [`store_file`] in a [`trusted_dir`]: `.auks-<random>` is written next
/// to `target` ([`write_new`]: created with `O_EXCL`, mode 0600, owned by
/// the caller), must then be a regular file of mode 0600 (checked without
/// following a symlink) and is renamed onto `target` with `flags`. The
/// temporary file is removed on failure.
fn store_beside(
    ctx: &Context,
    creds: &mut [Creds<'_>],
    dir: &Path,
    target: &Path,
    flags: nix::fcntl::RenameFlags,
) -> std::result::Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let tmp = dir.join(format!(".auks-{}", random_name()));
    let written = write_new(ctx, creds, &tmp).and_then(|()| {
        let m = std::fs::symlink_metadata(&tmp).map_err(|e| e.to_string())?;
        let euid = nix::unistd::geteuid().as_raw();
        if !m.file_type().is_file() || m.mode() & 0o7777 != 0o600 || m.uid() != euid {
            return Err("the new file is not a private regular file".to_string());
        }
        nix::fcntl::renameat2(None, &tmp, None, target, flags).map_err(rename_error)
    });
    if written.is_err() {
        // Only a file of ours can be removed from a sticky directory.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Write `creds` to the new file `tmp` (`O_EXCL`, mode 0600, owned by the
/// caller), as libkrb5 would: in one `write` of the bytes
/// [`krb5::file_ccache_bytes`] makes, else through libkrb5 (which opens,
/// locks and writes the file once per credential after its
/// initialisation: most of the cost of an ADD stored by auksd).
fn write_new(
    ctx: &Context,
    creds: &mut [Creds<'_>],
    tmp: &Path,
) -> std::result::Result<(), String> {
    if let Some(bytes) = krb5::file_ccache_bytes(ctx, creds) {
        use std::io::Write;
        let mut f = crate::private_file::create(tmp, false).map_err(|e| e.to_string())?;
        return f.write_all(&bytes).map_err(|e| e.to_string());
    }
    let cc = Ccache::resolve(ctx, &format!("FILE:{}", tmp.display())).map_err(|e| e.to_string())?;
    init_and_store(&cc, creds).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::{random_name, trusted_dir};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn trusted_directories() {
        assert!(
            trusted_dir(std::path::Path::new("/tmp")),
            "/tmp: root, sticky"
        );
        let d = tempfile::tempdir().unwrap();
        let set = |mode| std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(mode));
        set(0o700).unwrap();
        assert!(trusted_dir(d.path()), "ours, 0700");
        set(0o777).unwrap();
        assert!(!trusted_dir(d.path()), "world-writable, not sticky");
        set(0o1777).unwrap();
        assert!(trusted_dir(d.path()), "sticky");
        assert!(!trusted_dir(&d.path().join("missing")));
        if nix::unistd::geteuid().is_root() {
            set(0o755).unwrap();
            nix::unistd::chown(d.path(), Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
            assert!(!trusted_dir(d.path()), "someone else's directory");
        }
    }

    #[test]
    fn temporary_names_are_random() {
        let mut seen: Vec<String> = (0..16).map(|_| random_name()).collect();
        assert!(seen.iter().all(|n| n.len() == 12), "{seen:?}");
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 16, "{seen:?}");
    }
}
