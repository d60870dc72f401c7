//! Safe wrapper over the subset of MIT libkrb5 that AUKS needs.
//!
//! This module and [`crate::spank`] are the only places with `unsafe` code.
//! Every libkrb5 object is owned by an RAII type that frees it exactly once;
//! borrowed objects carry the lifetime of the [`Context`] they belong to.
//! Every failing call becomes an [`Error`] carrying libkrb5's own message.
//!
//! Secrets: credential contents are freed with `krb5_free_cred_contents`,
//! which wipes the session key; KRB-CRED and KRB-PRIV plaintext buffers are
//! copied into [`Zeroizing`] vectors and the library's copies are wiped
//! before they are freed.
//!
//! No I/O happens here: the handshake is split into its Kerberos steps
//! (`mk_req`/`rd_rep` on the client, `rd_req`/`mk_rep`/`mk_error` on the
//! server) so that [`crate::session`] can frame and bound every read itself.

#[allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code,
    clippy::all
)]
mod ffi {
    include!(concat!(env!("OUT_DIR"), "/krb5_bindings.rs"));
}

pub mod password;

use std::ffi::{CStr, CString};
use std::net::IpAddr;
use std::os::raw::{c_char, c_int};
use std::ptr;
use zeroize::Zeroizing;

/// Kerberos ticket flag bits kept when asking the KDC for a derived ticket
/// (forwardable | proxiable | may-postdate | renewable), as AUKS does.
const KEPT_TICKET_FLAGS: i32 = 0x5480_0000;

/// Error returned by every libkrb5 call: the operation, the numeric code and
/// libkrb5's own message for it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{op}: {message}")]
pub struct Error {
    /// What we were doing (e.g. "krb5_cc_resolve").
    pub op: &'static str,
    /// The libkrb5 (com_err) code; 0 for errors detected on the Rust side.
    pub code: i32,
    /// libkrb5's message for `code`, or our own description.
    pub message: String,
}

impl Error {
    fn local(op: &'static str, message: impl Into<String>) -> Self {
        Error {
            op,
            code: 0,
            message: message.into(),
        }
    }

    /// True when the error says a credential cache does not exist / cannot
    /// be read (the `-100604` case of the C implementation).
    pub fn is_ccache_missing(&self) -> bool {
        let c = self.code;
        c == ffi::KRB5_FCC_NOFILE
            || c == ffi::KRB5_CC_NOTFOUND
            || c == ffi::KRB5_CC_BADNAME
            || c == ffi::KRB5_FCC_PERM
            || c == ffi::KRB5_CC_FORMAT
            || c == libc::ENOENT
    }

    /// True when the KDC or the ticket said the credential expired.
    pub fn is_expired(&self) -> bool {
        self.code == ffi::KRB5KRB_AP_ERR_TKT_EXPIRED || self.code == ffi::KRB5KDC_ERR_TGT_REVOKED
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A libkrb5 context. Not `Sync`: one per thread or per connection.
pub struct Context {
    raw: ffi::krb5_context,
}

// SAFETY: an MIT krb5_context may be used from any thread as long as it is
// not used from two threads at once; `Context` is not `Sync`, so moving it
// is all `Send` allows.
unsafe impl Send for Context {}

impl Context {
    /// Create a context from the system (or `KRB5_CONFIG`) configuration.
    pub fn new() -> Result<Self> {
        let mut raw: ffi::krb5_context = ptr::null_mut();
        // SAFETY: krb5_init_context writes a new context into `raw` and
        // returns 0, or returns an error code and leaves it unusable.
        let code = unsafe { ffi::krb5_init_context(&mut raw) };
        if code != 0 {
            return Err(Error {
                op: "krb5_init_context",
                code,
                message: format!(
                    "cannot initialise Kerberos (error {code}); check krb5.conf / KRB5_CONFIG"
                ),
            });
        }
        Ok(Context { raw })
    }

    fn error(&self, op: &'static str, code: ffi::krb5_error_code) -> Error {
        // SAFETY: the context is valid; krb5_get_error_message returns a
        // newly allocated NUL-terminated string (never NULL in MIT) that we
        // copy and release with krb5_free_error_message.
        let message = unsafe {
            let m = ffi::krb5_get_error_message(self.raw, code);
            if m.is_null() {
                format!("error {code}")
            } else {
                let s = CStr::from_ptr(m).to_string_lossy().into_owned();
                ffi::krb5_free_error_message(self.raw, m);
                s
            }
        };
        Error { op, code, message }
    }

    fn check(&self, op: &'static str, code: ffi::krb5_error_code) -> Result<()> {
        if code == 0 {
            Ok(())
        } else {
            Err(self.error(op, code))
        }
    }

    /// Name of the default credential cache (`KRB5CCNAME` or krb5.conf).
    pub fn default_ccache_name(&self) -> Result<String> {
        // SAFETY: returns a pointer owned by the context (valid until the
        // next call that changes the default name); copied at once.
        let p = unsafe { ffi::krb5_cc_default_name(self.raw) };
        if p.is_null() {
            return Err(Error::local(
                "krb5_cc_default_name",
                "no default ccache name",
            ));
        }
        // SAFETY: non-NULL, NUL-terminated string owned by the context.
        Ok(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }

    /// Current time according to libkrb5 (honours clock offsets).
    pub fn now(&self) -> i64 {
        let mut t: ffi::krb5_timestamp = 0;
        // SAFETY: writes one timestamp.
        let code = unsafe { ffi::krb5_timeofday(self.raw, &mut t) };
        if code != 0 {
            return chrono::Utc::now().timestamp();
        }
        ts(t)
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: raw was created by krb5_init_context and is freed once;
        // every object borrowing the context has been dropped (lifetimes).
        unsafe { ffi::krb5_free_context(self.raw) }
    }
}

/// Kerberos timestamps are 32-bit; interpret them as unsigned so that
/// dates after 2038 keep working (MIT does the same).
fn ts(t: ffi::krb5_timestamp) -> i64 {
    i64::from(t as u32)
}

fn cstring(op: &'static str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::local(op, "string contains a NUL byte"))
}

/// Escape a realm or component for use in a principal string.
fn escape_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '/' | '@' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An owned principal.
pub struct Principal<'a> {
    ctx: &'a Context,
    raw: ffi::krb5_principal,
}

impl<'a> Principal<'a> {
    /// Parse a principal name (`name/inst@REALM`; the default realm is
    /// appended when none is given).
    pub fn parse(ctx: &'a Context, name: &str) -> Result<Self> {
        let c = cstring("krb5_parse_name", name)?;
        let mut raw: ffi::krb5_principal = ptr::null_mut();
        // SAFETY: valid context and NUL-terminated string; on success raw
        // owns a new principal.
        ctx.check("krb5_parse_name", unsafe {
            ffi::krb5_parse_name(ctx.raw, c.as_ptr(), &mut raw)
        })?;
        Ok(Principal { ctx, raw })
    }

    /// `krbtgt/TARGET@ISSUER`.
    pub fn tgs(ctx: &'a Context, target_realm: &str, issuer_realm: &str) -> Result<Self> {
        Principal::parse(
            ctx,
            &format!(
                "krbtgt/{}@{}",
                escape_component(target_realm),
                escape_component(issuer_realm)
            ),
        )
    }

    fn copy_of(ctx: &'a Context, p: ffi::krb5_const_principal) -> Result<Self> {
        let mut raw: ffi::krb5_principal = ptr::null_mut();
        // SAFETY: p is a valid principal owned by a live libkrb5 object;
        // krb5_copy_principal allocates an independent copy.
        ctx.check("krb5_copy_principal", unsafe {
            ffi::krb5_copy_principal(ctx.raw, p, &mut raw)
        })?;
        Ok(Principal { ctx, raw })
    }

    /// The full name, `name/inst@REALM`.
    pub fn name(&self) -> Result<String> {
        unparse(self.ctx, self.raw)
    }

    /// The realm of this principal.
    pub fn realm(&self) -> String {
        // SAFETY: raw is a valid principal; realm is a krb5_data of
        // `length` bytes (not NUL-terminated).
        unsafe { data_string(&(*self.raw).realm) }
    }

    /// The name components (without the realm).
    pub fn components(&self) -> Vec<String> {
        // SAFETY: raw is valid; data points to `length` krb5_data entries.
        unsafe {
            let p = &*self.raw;
            let n = usize::try_from(p.length).unwrap_or(0);
            (0..n).map(|i| data_string(&*p.data.add(i))).collect()
        }
    }

    /// Local account name for this principal (`auth_to_local` rules).
    pub fn local_name(&self) -> Result<String> {
        let mut buf = [0 as c_char; 512];
        // SAFETY: buf is writable for its length; libkrb5 writes a
        // NUL-terminated name of at most lnsize bytes.
        self.ctx.check("krb5_aname_to_localname", unsafe {
            ffi::krb5_aname_to_localname(
                self.ctx.raw,
                self.raw,
                buf.len() as c_int,
                buf.as_mut_ptr(),
            )
        })?;
        // SAFETY: NUL-terminated by libkrb5 on success.
        Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned())
    }
}

impl Drop for Principal<'_> {
    fn drop(&mut self) {
        // SAFETY: raw is owned by self and freed once.
        unsafe { ffi::krb5_free_principal(self.ctx.raw, self.raw) }
    }
}

/// # Safety
/// `d` must describe `length` readable bytes (or have length 0).
unsafe fn data_string(d: &ffi::krb5_data) -> String {
    if d.length == 0 || d.data.is_null() {
        return String::new();
    }
    let s = std::slice::from_raw_parts(d.data as *const u8, d.length as usize);
    String::from_utf8_lossy(s).into_owned()
}

fn unparse(ctx: &Context, p: ffi::krb5_const_principal) -> Result<String> {
    let mut out: *mut c_char = ptr::null_mut();
    // SAFETY: p is a valid principal; out receives a string that we copy
    // and free with krb5_free_unparsed_name.
    ctx.check("krb5_unparse_name", unsafe {
        ffi::krb5_unparse_name(ctx.raw, p, &mut out)
    })?;
    // SAFETY: out is a NUL-terminated string allocated by libkrb5.
    let s = unsafe { CStr::from_ptr(out) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: freed once, with the matching deallocator.
    unsafe { ffi::krb5_free_unparsed_name(ctx.raw, out) };
    Ok(s)
}

/// A credential (ticket + session key). The contents are freed, and the
/// session key wiped, by `krb5_free_cred_contents` on drop.
pub struct Creds<'a> {
    ctx: &'a Context,
    raw: Box<ffi::krb5_creds>,
}

impl<'a> Creds<'a> {
    /// Take ownership of a `krb5_creds` allocated by libkrb5 (as returned
    /// by krb5_get_credentials & co): its contents move into a Box and the
    /// outer allocation is released with `free`, as krb5_free_creds does.
    ///
    /// # Safety
    /// `p` must be a non-NULL, malloc-allocated krb5_creds owned by the
    /// caller and not used afterwards.
    unsafe fn from_lib(ctx: &'a Context, p: *mut ffi::krb5_creds) -> Self {
        let raw = Box::new(ptr::read(p));
        libc::free(p.cast());
        Creds { ctx, raw }
    }

    /// Client principal name.
    pub fn client(&self) -> Result<String> {
        unparse(self.ctx, self.raw.client)
    }

    /// Client principal (copy).
    pub fn client_principal(&self) -> Result<Principal<'a>> {
        Principal::copy_of(self.ctx, self.raw.client)
    }

    /// Server principal name.
    pub fn server(&self) -> Result<String> {
        unparse(self.ctx, self.raw.server)
    }

    /// Server principal (copy).
    pub fn server_principal(&self) -> Result<Principal<'a>> {
        Principal::copy_of(self.ctx, self.raw.server)
    }

    /// Realm of the client principal.
    pub fn client_realm(&self) -> String {
        // SAFETY: client is a valid principal for the life of self.
        unsafe { data_string(&(*self.raw.client).realm) }
    }

    /// `Some(target)` when the server is `krbtgt/target@issuer`: (target, issuer).
    pub fn tgt_realms(&self) -> Option<(String, String)> {
        // SAFETY: server is a valid principal for the life of self.
        unsafe {
            let s = &*self.raw.server;
            if s.length != 2 || s.data.is_null() {
                return None;
            }
            let first = data_string(&*s.data);
            if first != "krbtgt" {
                return None;
            }
            Some((data_string(&*s.data.add(1)), data_string(&s.realm)))
        }
    }

    /// True for a local TGT: `krbtgt/R@R` with R the client's realm.
    pub fn is_local_tgt(&self) -> bool {
        match self.tgt_realms() {
            Some((t, i)) => t == i && i == self.client_realm(),
            None => false,
        }
    }

    /// True for a cross-realm TGT issued by the client's realm: `krbtgt/X@R`, X != R.
    pub fn is_cross_realm_tgt(&self) -> bool {
        match self.tgt_realms() {
            Some((t, i)) => t != i && i == self.client_realm(),
            None => false,
        }
    }

    pub fn authtime(&self) -> i64 {
        ts(self.raw.times.authtime)
    }
    /// Start time (the auth time when the ticket has no explicit start).
    pub fn starttime(&self) -> i64 {
        if self.raw.times.starttime != 0 {
            ts(self.raw.times.starttime)
        } else {
            ts(self.raw.times.authtime)
        }
    }
    pub fn endtime(&self) -> i64 {
        ts(self.raw.times.endtime)
    }
    /// End of the renewable period, 0 when the ticket is not renewable.
    pub fn renew_till(&self) -> i64 {
        ts(self.raw.times.renew_till)
    }
    pub fn flags(&self) -> i32 {
        self.raw.ticket_flags
    }
    pub fn is_renewable(&self) -> bool {
        self.raw.ticket_flags as u32 & ffi::TKT_FLG_RENEWABLE != 0
    }
    pub fn is_forwardable(&self) -> bool {
        self.raw.ticket_flags as u32 & ffi::TKT_FLG_FORWARDABLE != 0
    }

    /// True when the ticket names client addresses.
    pub fn has_addresses(&self) -> bool {
        // SAFETY: addresses is NULL or a NULL-terminated array.
        !self.raw.addresses.is_null() && unsafe { !(*self.raw.addresses).is_null() }
    }

    /// The ticket as issued by the KDC (DER, encrypted for its service):
    /// the same bytes mean the same ticket.
    pub fn ticket(&self) -> &[u8] {
        let t = &self.raw.ticket;
        if t.data.is_null() || t.length == 0 {
            return &[];
        }
        // SAFETY: ticket.data points to ticket.length bytes owned by these
        // creds, which outlive the returned borrow.
        unsafe { std::slice::from_raw_parts(t.data.cast::<u8>(), t.length as usize) }
    }

    fn is_config_entry(&self) -> bool {
        // SAFETY: server is a valid principal.
        unsafe { ffi::krb5_is_config_principal(self.ctx.raw, self.raw.server) != 0 }
    }

    fn as_mut_ptr(&mut self) -> *mut ffi::krb5_creds {
        &mut *self.raw
    }
}

impl Drop for Creds<'_> {
    fn drop(&mut self) {
        // SAFETY: the contents are owned by self and freed once; MIT wipes
        // the keyblock before freeing it.
        unsafe { ffi::krb5_free_cred_contents(self.ctx.raw, &mut *self.raw) }
    }
}

/// A credential cache handle. Dropping it closes the handle (the cache
/// itself remains unless [`Ccache::destroy`] is called).
pub struct Ccache<'a> {
    ctx: &'a Context,
    raw: ffi::krb5_ccache,
}

impl<'a> Ccache<'a> {
    /// The default ccache (`KRB5CCNAME`, krb5.conf, or the library default).
    pub fn default(ctx: &'a Context) -> Result<Self> {
        let mut raw: ffi::krb5_ccache = ptr::null_mut();
        // SAFETY: valid context; raw receives an owned handle on success.
        ctx.check("krb5_cc_default", unsafe {
            ffi::krb5_cc_default(ctx.raw, &mut raw)
        })?;
        Ok(Ccache { ctx, raw })
    }

    /// Resolve a ccache by name (`TYPE:residual`; plain paths are FILE).
    pub fn resolve(ctx: &'a Context, name: &str) -> Result<Self> {
        let c = cstring("krb5_cc_resolve", name)?;
        let mut raw: ffi::krb5_ccache = ptr::null_mut();
        // SAFETY: valid context and string; raw receives an owned handle.
        ctx.check("krb5_cc_resolve", unsafe {
            ffi::krb5_cc_resolve(ctx.raw, c.as_ptr(), &mut raw)
        })?;
        Ok(Ccache { ctx, raw })
    }

    /// Create a new unique ccache of the given type (e.g. "FILE",
    /// "KEYRING", "KCM", "DIR", "MEMORY").
    pub fn new_unique(ctx: &'a Context, cc_type: &str) -> Result<Self> {
        let t = cstring("krb5_cc_new_unique", cc_type)?;
        let mut raw: ffi::krb5_ccache = ptr::null_mut();
        // SAFETY: valid context and type string; hint may be NULL.
        ctx.check("krb5_cc_new_unique", unsafe {
            ffi::krb5_cc_new_unique(ctx.raw, t.as_ptr(), ptr::null(), &mut raw)
        })?;
        Ok(Ccache { ctx, raw })
    }

    /// Full name, `TYPE:residual`.
    pub fn full_name(&self) -> Result<String> {
        let mut out: *mut c_char = ptr::null_mut();
        // SAFETY: valid handle; out receives a string freed below.
        self.ctx.check("krb5_cc_get_full_name", unsafe {
            ffi::krb5_cc_get_full_name(self.ctx.raw, self.raw, &mut out)
        })?;
        // SAFETY: out is a NUL-terminated string allocated by libkrb5.
        let s = unsafe { CStr::from_ptr(out) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: freed once with the matching function.
        unsafe { ffi::krb5_free_string(self.ctx.raw, out) };
        Ok(s)
    }

    /// The type of this ccache ("FILE", "KEYRING", ...).
    pub fn cc_type(&self) -> String {
        // SAFETY: returns a static string owned by the ccache ops table.
        let p = unsafe { ffi::krb5_cc_get_type(self.ctx.raw, self.raw) };
        if p.is_null() {
            return String::new();
        }
        // SAFETY: non-NULL NUL-terminated static string.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    /// The residual part of the name (the path for FILE caches).
    pub fn residual(&self) -> String {
        // SAFETY: returns a string owned by the handle; copied at once.
        let p = unsafe { ffi::krb5_cc_get_name(self.ctx.raw, self.raw) };
        if p.is_null() {
            return String::new();
        }
        // SAFETY: non-NULL NUL-terminated string valid while self lives.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    /// Default principal of the cache.
    pub fn principal(&self) -> Result<Principal<'a>> {
        let mut raw: ffi::krb5_principal = ptr::null_mut();
        // SAFETY: valid handle; raw receives an owned principal.
        self.ctx.check("krb5_cc_get_principal", unsafe {
            ffi::krb5_cc_get_principal(self.ctx.raw, self.raw, &mut raw)
        })?;
        Ok(Principal { ctx: self.ctx, raw })
    }

    /// Empty the cache and set its default principal.
    pub fn initialize(&self, principal: &Principal<'_>) -> Result<()> {
        // SAFETY: valid handle and principal (copied by libkrb5).
        self.ctx.check("krb5_cc_initialize", unsafe {
            ffi::krb5_cc_initialize(self.ctx.raw, self.raw, principal.raw)
        })
    }

    /// Store one credential.
    pub fn store(&self, creds: &mut Creds<'_>) -> Result<()> {
        // SAFETY: valid handle and creds; libkrb5 copies what it stores.
        self.ctx.check("krb5_cc_store_cred", unsafe {
            ffi::krb5_cc_store_cred(self.ctx.raw, self.raw, creds.as_mut_ptr())
        })
    }

    /// All credentials in the cache (configuration entries skipped).
    pub fn creds(&self) -> Result<Vec<Creds<'a>>> {
        let mut cursor: ffi::krb5_cc_cursor = ptr::null_mut();
        // SAFETY: valid handle; the cursor is ended below on every path.
        self.ctx.check("krb5_cc_start_seq_get", unsafe {
            ffi::krb5_cc_start_seq_get(self.ctx.raw, self.raw, &mut cursor)
        })?;
        let mut out = Vec::new();
        let result = loop {
            let mut raw = Box::<ffi::krb5_creds>::default();
            // SAFETY: valid handle and cursor; raw is zeroed storage that
            // receives owned contents on success.
            let code =
                unsafe { ffi::krb5_cc_next_cred(self.ctx.raw, self.raw, &mut cursor, &mut *raw) };
            if code == ffi::KRB5_CC_END {
                break Ok(());
            }
            if code != 0 {
                break Err(self.ctx.error("krb5_cc_next_cred", code));
            }
            let c = Creds { ctx: self.ctx, raw };
            if !c.is_config_entry() {
                out.push(c);
            }
        };
        // SAFETY: ends the sequence started above.
        unsafe { ffi::krb5_cc_end_seq_get(self.ctx.raw, self.raw, &mut cursor) };
        result.map(|()| out)
    }

    /// Make this cache the primary one of its collection (errors ignored
    /// by callers that only try).
    pub fn switch_to(&self) -> Result<()> {
        // SAFETY: valid handle.
        self.ctx.check("krb5_cc_switch", unsafe {
            ffi::krb5_cc_switch(self.ctx.raw, self.raw)
        })
    }

    /// Whether the cache type supports collections (`switch`).
    pub fn supports_switch(&self) -> bool {
        let t = match CString::new(self.cc_type()) {
            Ok(t) => t,
            Err(_) => return false,
        };
        // SAFETY: valid context and type string.
        unsafe { ffi::krb5_cc_support_switch(self.ctx.raw, t.as_ptr()) != 0 }
    }

    /// Destroy the cache (removes the file / keyring entry).
    pub fn destroy(self) -> Result<()> {
        let me = std::mem::ManuallyDrop::new(self);
        // SAFETY: krb5_cc_destroy also closes the handle, so Drop must not
        // run (ManuallyDrop).
        me.ctx.check("krb5_cc_destroy", unsafe {
            ffi::krb5_cc_destroy(me.ctx.raw, me.raw)
        })
    }
}

impl Drop for Ccache<'_> {
    fn drop(&mut self) {
        // SAFETY: closes the handle once.
        unsafe {
            ffi::krb5_cc_close(self.ctx.raw, self.raw);
        }
    }
}

/// A keytab handle.
pub struct Keytab<'a> {
    ctx: &'a Context,
    raw: ffi::krb5_keytab,
}

impl<'a> Keytab<'a> {
    /// Resolve a keytab by name (a plain path is a FILE keytab).
    pub fn resolve(ctx: &'a Context, name: &str) -> Result<Self> {
        let c = cstring("krb5_kt_resolve", name)?;
        let mut raw: ffi::krb5_keytab = ptr::null_mut();
        // SAFETY: valid context and string; raw receives an owned handle.
        ctx.check("krb5_kt_resolve", unsafe {
            ffi::krb5_kt_resolve(ctx.raw, c.as_ptr(), &mut raw)
        })?;
        Ok(Keytab { ctx, raw })
    }

    /// The distinct principal names in the keytab, in file order.
    pub fn principals(&self) -> Result<Vec<String>> {
        let mut cursor: ffi::krb5_kt_cursor = ptr::null_mut();
        // SAFETY: valid handle; ended below.
        self.ctx.check("krb5_kt_start_seq_get", unsafe {
            ffi::krb5_kt_start_seq_get(self.ctx.raw, self.raw, &mut cursor)
        })?;
        let mut out: Vec<String> = Vec::new();
        let result = loop {
            let mut entry = ffi::krb5_keytab_entry::default();
            // SAFETY: valid handle/cursor; entry receives owned contents,
            // freed (and the key wiped) right after use.
            let code =
                unsafe { ffi::krb5_kt_next_entry(self.ctx.raw, self.raw, &mut entry, &mut cursor) };
            if code == ffi::KRB5_KT_END {
                break Ok(());
            }
            if code != 0 {
                break Err(self.ctx.error("krb5_kt_next_entry", code));
            }
            let name = unparse(self.ctx, entry.principal);
            // SAFETY: frees the entry contents once.
            unsafe { ffi::krb5_free_keytab_entry_contents(self.ctx.raw, &mut entry) };
            match name {
                Ok(n) if !out.contains(&n) => out.push(n),
                Ok(_) => {}
                Err(e) => break Err(e),
            }
        };
        // SAFETY: ends the sequence started above.
        unsafe { ffi::krb5_kt_end_seq_get(self.ctx.raw, self.raw, &mut cursor) };
        result.map(|()| out)
    }

    /// Get a TGT for `client` from this keytab (AS exchange).
    pub fn get_tgt(
        &self,
        client: &Principal<'_>,
        lifetime: Option<i32>,
        renew_lifetime: Option<i32>,
    ) -> Result<Creds<'a>> {
        let mut opt: *mut ffi::krb5_get_init_creds_opt = ptr::null_mut();
        // SAFETY: allocates an options struct freed below.
        self.ctx.check("krb5_get_init_creds_opt_alloc", unsafe {
            ffi::krb5_get_init_creds_opt_alloc(self.ctx.raw, &mut opt)
        })?;
        // SAFETY: opt is valid; setters only store values. An empty address
        // list asks for an addressless ticket.
        unsafe {
            if let Some(l) = lifetime {
                ffi::krb5_get_init_creds_opt_set_tkt_life(opt, l);
            }
            if let Some(r) = renew_lifetime {
                ffi::krb5_get_init_creds_opt_set_renew_life(opt, r);
            }
        }
        let mut raw = Box::<ffi::krb5_creds>::default();
        // SAFETY: valid context, creds storage, principal, keytab, options;
        // on success raw owns the new credential contents.
        let code = unsafe {
            ffi::krb5_get_init_creds_keytab(
                self.ctx.raw,
                &mut *raw,
                client.raw,
                self.raw,
                0,
                ptr::null(),
                opt,
            )
        };
        // SAFETY: frees the options allocated above.
        unsafe { ffi::krb5_get_init_creds_opt_free(self.ctx.raw, opt) };
        self.ctx.check("krb5_get_init_creds_keytab", code)?;
        Ok(Creds { ctx: self.ctx, raw })
    }
}

impl Drop for Keytab<'_> {
    fn drop(&mut self) {
        // SAFETY: closes the handle once.
        unsafe {
            ffi::krb5_kt_close(self.ctx.raw, self.raw);
        }
    }
}

/// Address placed in the auth context for KRB-PRIV s-address/r-address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KrbAddr {
    /// An IP address (IPv4-mapped IPv6 is turned into IPv4, as a C peer
    /// on IPv4 would see it).
    Ip(IpAddr),
    /// The NAT-mode placeholder: type 2, 5 bytes "dummy" (spec §2.5).
    Dummy,
}

impl KrbAddr {
    fn parts(&self) -> (i32, Vec<u8>) {
        match self {
            KrbAddr::Dummy => (ffi::ADDRTYPE_INET as i32, b"dummy".to_vec()),
            KrbAddr::Ip(IpAddr::V4(a)) => (ffi::ADDRTYPE_INET as i32, a.octets().to_vec()),
            KrbAddr::Ip(IpAddr::V6(a)) => match a.to_ipv4_mapped() {
                Some(v4) => (ffi::ADDRTYPE_INET as i32, v4.octets().to_vec()),
                None => (ffi::ADDRTYPE_INET6 as i32, a.octets().to_vec()),
            },
        }
    }
}

/// An auth context: the session state (keys, sequence numbers, addresses)
/// of one AUKS connection.
pub struct AuthContext<'a> {
    ctx: &'a Context,
    raw: ffi::krb5_auth_context,
}

impl<'a> AuthContext<'a> {
    /// A fresh auth context with the given flags (AUKS sessions use
    /// `DO_SEQUENCE` only; KRB-CRED encoding uses none).
    fn with_flags(ctx: &'a Context, flags: u32) -> Result<Self> {
        let mut raw: ffi::krb5_auth_context = ptr::null_mut();
        // SAFETY: raw receives an owned auth context.
        ctx.check("krb5_auth_con_init", unsafe {
            ffi::krb5_auth_con_init(ctx.raw, &mut raw)
        })?;
        let ac = AuthContext { ctx, raw };
        // SAFETY: valid auth context.
        ctx.check("krb5_auth_con_setflags", unsafe {
            ffi::krb5_auth_con_setflags(ctx.raw, ac.raw, flags as i32)
        })?;
        Ok(ac)
    }

    /// Auth context for an AUKS session (§2.3): DO_SEQUENCE only.
    pub fn for_session(ctx: &'a Context) -> Result<Self> {
        Self::with_flags(ctx, ffi::KRB5_AUTH_CONTEXT_DO_SEQUENCE)
    }

    /// Set the local/remote addresses (ports never set, §2.3).
    pub fn set_addrs(&self, local: KrbAddr, remote: KrbAddr) -> Result<()> {
        let (lt, mut lb) = local.parts();
        let (rt, mut rb) = remote.parts();
        let mut la = ffi::krb5_address {
            magic: 0,
            addrtype: lt,
            length: lb.len() as u32,
            contents: lb.as_mut_ptr(),
        };
        let mut ra = ffi::krb5_address {
            magic: 0,
            addrtype: rt,
            length: rb.len() as u32,
            contents: rb.as_mut_ptr(),
        };
        // SAFETY: the address structs point to live buffers; libkrb5 copies
        // them into the auth context.
        self.ctx.check("krb5_auth_con_setaddrs", unsafe {
            ffi::krb5_auth_con_setaddrs(self.ctx.raw, self.raw, &mut la, &mut ra)
        })
    }

    /// Server side: choose the replay cache. `enabled` uses the library's
    /// default server replay cache (as `krb5_recvauth` does); disabled
    /// attaches `none:` (spec §2.3, `ReplayCache = no`).
    pub fn set_replay_cache(&self, enabled: bool, server: &Principal<'_>) -> Result<()> {
        let mut rc: ffi::krb5_rcache = ptr::null_mut();
        if enabled {
            let comp = server.components().into_iter().next().unwrap_or_default();
            let mut bytes = comp.into_bytes();
            let piece = ffi::krb5_data {
                magic: 0,
                length: bytes.len() as u32,
                data: bytes.as_mut_ptr().cast(),
            };
            // SAFETY: piece points to a live buffer; rc receives a handle.
            self.ctx.check("krb5_get_server_rcache", unsafe {
                ffi::krb5_get_server_rcache(self.ctx.raw, &piece, &mut rc)
            })?;
        } else {
            // SAFETY: static NUL-terminated name; rc receives a handle.
            self.ctx.check("k5_rc_resolve", unsafe {
                ffi::k5_rc_resolve(self.ctx.raw, c"none:".as_ptr(), &mut rc)
            })?;
        }
        // SAFETY: the auth context takes ownership of rc and closes it in
        // krb5_auth_con_free (MIT >= 1.18).
        self.ctx.check("krb5_auth_con_setrcache", unsafe {
            ffi::krb5_auth_con_setrcache(self.ctx.raw, self.raw, rc)
        })
    }

    /// Client step of the handshake: get a service ticket for `server`
    /// from `ccache` and build the AP-REQ (mutual auth, fresh subkey,
    /// sequence numbers), as `krb5_sendauth` does.
    pub fn mk_req(&mut self, ccache: &Ccache<'_>, server: &Principal<'_>) -> Result<Vec<u8>> {
        let client = ccache.principal()?;
        let mut creds = self.get_service_creds(ccache, &client, server)?;
        let mut out = ffi::krb5_data::default();
        // SAFETY: valid auth context (may be replaced in place by libkrb5,
        // hence &mut), creds and output buffer; in_data NULL = no checksum.
        self.ctx.check("krb5_mk_req_extended", unsafe {
            ffi::krb5_mk_req_extended(
                self.ctx.raw,
                &mut self.raw,
                (ffi::AP_OPTS_MUTUAL_REQUIRED | ffi::AP_OPTS_USE_SUBKEY) as i32,
                ptr::null_mut(),
                creds.as_mut_ptr(),
                &mut out,
            )
        })?;
        Ok(self.take_data(&mut out, false).to_vec())
    }

    fn get_service_creds(
        &self,
        ccache: &Ccache<'_>,
        client: &Principal<'_>,
        server: &Principal<'_>,
    ) -> Result<Creds<'a>> {
        let mut in_creds = ffi::krb5_creds {
            client: client.raw,
            server: server.raw,
            ..Default::default()
        };
        let mut out: *mut ffi::krb5_creds = ptr::null_mut();
        // SAFETY: in_creds borrows the two principals (not freed here);
        // out receives an allocated credential we take ownership of.
        self.ctx.check("krb5_get_credentials", unsafe {
            ffi::krb5_get_credentials(self.ctx.raw, 0, ccache.raw, &mut in_creds, &mut out)
        })?;
        // SAFETY: out is a freshly allocated krb5_creds owned by us.
        Ok(unsafe { Creds::from_lib(self.ctx, out) })
    }

    /// Client step: verify the AP-REP (mutual authentication).
    pub fn rd_rep(&self, ap_rep: &[u8]) -> Result<()> {
        let mut buf = ap_rep.to_vec();
        let input = data_for(&mut buf);
        let mut repl: *mut ffi::krb5_ap_rep_enc_part = ptr::null_mut();
        // SAFETY: input points to a live buffer; repl is freed below.
        let code = unsafe { ffi::krb5_rd_rep(self.ctx.raw, self.raw, &input, &mut repl) };
        if !repl.is_null() {
            // SAFETY: allocated by krb5_rd_rep, freed once.
            unsafe { ffi::krb5_free_ap_rep_enc_part(self.ctx.raw, repl) };
        }
        self.ctx.check("krb5_rd_rep", code)
    }

    /// Server step: verify an AP-REQ with the keytab; returns the client
    /// principal name and whether mutual authentication was requested.
    pub fn rd_req(
        &mut self,
        ap_req: &[u8],
        server: &Principal<'_>,
        keytab: &Keytab<'_>,
    ) -> Result<(String, bool)> {
        let mut buf = ap_req.to_vec();
        let input = data_for(&mut buf);
        let mut options: ffi::krb5_flags = 0;
        let mut ticket: *mut ffi::krb5_ticket = ptr::null_mut();
        // SAFETY: valid auth context, input buffer, server principal and
        // keytab; ticket is freed below.
        let code = unsafe {
            ffi::krb5_rd_req(
                self.ctx.raw,
                &mut self.raw,
                &input,
                server.raw,
                keytab.raw,
                &mut options,
                &mut ticket,
            )
        };
        let result = self.ctx.check("krb5_rd_req", code).and_then(|()| {
            // SAFETY: on success ticket and its decrypted part are valid.
            unsafe {
                if ticket.is_null() || (*ticket).enc_part2.is_null() {
                    return Err(Error::local("krb5_rd_req", "ticket has no decrypted part"));
                }
                unparse(self.ctx, (*(*ticket).enc_part2).client)
            }
        });
        if !ticket.is_null() {
            // SAFETY: allocated by krb5_rd_req, freed once.
            unsafe { ffi::krb5_free_ticket(self.ctx.raw, ticket) };
        }
        let mutual = options as u32 & ffi::AP_OPTS_MUTUAL_REQUIRED != 0;
        result.map(|c| (c, mutual))
    }

    /// Server step: build the AP-REP.
    pub fn mk_rep(&self) -> Result<Vec<u8>> {
        let mut out = ffi::krb5_data::default();
        // SAFETY: valid auth context and output buffer.
        self.ctx.check("krb5_mk_rep", unsafe {
            ffi::krb5_mk_rep(self.ctx.raw, self.raw, &mut out)
        })?;
        Ok(self.take_data(&mut out, false).to_vec())
    }

    /// Encrypt one application message as KRB-PRIV (key usage 13, the
    /// session subkey, next sequence number).
    pub fn mk_priv(&self, plain: &[u8]) -> Result<Vec<u8>> {
        let mut buf = Zeroizing::new(plain.to_vec());
        let input = data_for(&mut buf);
        let mut out = ffi::krb5_data::default();
        // SAFETY: input points to a live buffer; out is freed by take_data.
        self.ctx.check("krb5_mk_priv", unsafe {
            ffi::krb5_mk_priv(self.ctx.raw, self.raw, &input, &mut out, ptr::null_mut())
        })?;
        Ok(self.take_data(&mut out, false).to_vec())
    }

    /// Decrypt and verify one KRB-PRIV (addresses and sequence number are
    /// checked by libkrb5).
    pub fn rd_priv(&self, msg: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let mut buf = msg.to_vec();
        let input = data_for(&mut buf);
        let mut out = ffi::krb5_data::default();
        // SAFETY: input points to a live buffer; out is wiped and freed by
        // take_data.
        self.ctx.check("krb5_rd_priv", unsafe {
            ffi::krb5_rd_priv(self.ctx.raw, self.raw, &input, &mut out, ptr::null_mut())
        })?;
        Ok(self.take_data(&mut out, true))
    }

    /// Copy a libkrb5-allocated krb5_data into a Rust buffer and free it
    /// (wiping it first when it holds secrets).
    fn take_data(&self, d: &mut ffi::krb5_data, secret: bool) -> Zeroizing<Vec<u8>> {
        take_data(self.ctx, d, secret)
    }
}

impl Drop for AuthContext<'_> {
    fn drop(&mut self) {
        // SAFETY: frees the auth context (and its keys and replay cache) once.
        unsafe {
            ffi::krb5_auth_con_free(self.ctx.raw, self.raw);
        }
    }
}

fn data_for(buf: &mut [u8]) -> ffi::krb5_data {
    ffi::krb5_data {
        magic: 0,
        length: buf.len() as u32,
        data: buf.as_mut_ptr().cast(),
    }
}

fn take_data(ctx: &Context, d: &mut ffi::krb5_data, secret: bool) -> Zeroizing<Vec<u8>> {
    let out = if d.data.is_null() || d.length == 0 {
        Vec::new()
    } else {
        // SAFETY: libkrb5 filled d with `length` bytes at `data`.
        unsafe { std::slice::from_raw_parts(d.data as *const u8, d.length as usize) }.to_vec()
    };
    if secret && !d.data.is_null() {
        // SAFETY: wipes the library's copy before it is freed.
        unsafe { ptr::write_bytes(d.data, 0, d.length as usize) };
    }
    // SAFETY: frees the contents allocated by libkrb5 once.
    unsafe { ffi::krb5_free_data_contents(ctx.raw, d) };
    Zeroizing::new(out)
}

/// Build a KRB-ERROR for a failed AP-REQ (what `krb5_recvauth` sends).
pub fn mk_error(ctx: &Context, server: &Principal<'_>, err: &Error) -> Result<Vec<u8>> {
    let text = CString::new(err.message.replace('\0', " ")).unwrap_or_default();
    let bytes = text.as_bytes_with_nul();
    let mut e = ffi::krb5_error::default();
    let mut usec: i32 = 0;
    // SAFETY: writes two integers.
    unsafe { ffi::krb5_us_timeofday(ctx.raw, &mut e.stime, &mut usec) };
    e.susec = usec;
    e.server = server.raw;
    let base = i64::from(ffi::ERROR_TABLE_BASE_krb5);
    let num = i64::from(err.code) - base;
    e.error = if (0..=127).contains(&num) {
        num as u32
    } else {
        (i64::from(ffi::KRB5KRB_ERR_GENERIC) - base) as u32
    };
    e.text = ffi::krb5_data {
        magic: 0,
        length: bytes.len() as u32,
        data: bytes.as_ptr() as *mut c_char,
    };
    let mut out = ffi::krb5_data::default();
    // SAFETY: e borrows the server principal and text (not freed here).
    ctx.check("krb5_mk_error", unsafe {
        ffi::krb5_mk_error(ctx.raw, &e, &mut out)
    })?;
    Ok(take_data(ctx, &mut out, false).to_vec())
}

/// Decode a KRB-ERROR received instead of the sendauth "ok"; returns the
/// error text (or code).
pub fn rd_error(ctx: &Context, msg: &[u8]) -> String {
    let mut buf = msg.to_vec();
    let input = data_for(&mut buf);
    let mut e: *mut ffi::krb5_error = ptr::null_mut();
    // SAFETY: input points to a live buffer; e is freed below.
    let code = unsafe { ffi::krb5_rd_error(ctx.raw, &input, &mut e) };
    if code != 0 || e.is_null() {
        return "server sent an undecodable KRB-ERROR".to_string();
    }
    // SAFETY: e is a valid decoded error until freed.
    let s = unsafe {
        let text = data_string(&(*e).text);
        let text = text.trim_end_matches('\0').to_string();
        let n = (*e).error;
        ffi::krb5_free_error(ctx.raw, e);
        if text.is_empty() {
            let full = ctx.error("krb5_rd_error", ffi::ERROR_TABLE_BASE_krb5 + n as i32);
            full.message
        } else {
            text
        }
    };
    s
}

/// Serialise credentials as an unencrypted KRB-CRED (RFC 6448, etype 0),
/// with a keyless, flag-less auth context, as AUKS does (§4.1).
pub fn encode_krb_cred(ctx: &Context, creds: &mut [&mut Creds<'_>]) -> Result<Zeroizing<Vec<u8>>> {
    if creds.is_empty() {
        return Err(Error::local("krb5_mk_ncred", "no credential to encode"));
    }
    let ac = AuthContext::with_flags(ctx, 0)?;
    let mut ptrs: Vec<*mut ffi::krb5_creds> = creds.iter_mut().map(|c| c.as_mut_ptr()).collect();
    ptrs.push(ptr::null_mut());
    let mut der: *mut ffi::krb5_data = ptr::null_mut();
    // SAFETY: ptrs is a NULL-terminated array of valid creds; der receives
    // an allocated krb5_data freed below.
    ctx.check("krb5_mk_ncred", unsafe {
        ffi::krb5_mk_ncred(
            ctx.raw,
            ac.raw,
            ptrs.as_mut_ptr(),
            &mut der,
            ptr::null_mut(),
        )
    })?;
    // SAFETY: der is valid; its contents hold session keys in clear, so
    // take_data wipes them; the outer struct is freed with free().
    let out = unsafe {
        let v = take_data(ctx, &mut *der, true);
        libc::free(der.cast());
        v
    };
    Ok(out)
}

/// Decode an unencrypted KRB-CRED (keyless auth context, so only etype-0
/// KRB-CREDs are accepted). Tickets come back in message order.
pub fn decode_krb_cred<'a>(ctx: &'a Context, der: &[u8]) -> Result<Vec<Creds<'a>>> {
    let ac = AuthContext::with_flags(ctx, 0)?;
    let mut buf = Zeroizing::new(der.to_vec());
    let mut input = data_for(&mut buf);
    let mut arr: *mut *mut ffi::krb5_creds = ptr::null_mut();
    // SAFETY: input points to a live buffer; arr receives a NULL-terminated
    // array of allocated creds that we take over one by one.
    ctx.check("krb5_rd_cred", unsafe {
        ffi::krb5_rd_cred(ctx.raw, ac.raw, &mut input, &mut arr, ptr::null_mut())
    })?;
    let mut out = Vec::new();
    if !arr.is_null() {
        // SAFETY: arr is NULL-terminated; each element is an allocated
        // krb5_creds we take ownership of; then the array itself is freed.
        unsafe {
            let mut i = 0;
            loop {
                let p = *arr.add(i);
                if p.is_null() {
                    break;
                }
                out.push(Creds::from_lib(ctx, p));
                i += 1;
            }
            libc::free(arr.cast());
        }
    }
    if out.is_empty() {
        return Err(Error::local("krb5_rd_cred", "KRB-CRED holds no ticket"));
    }
    Ok(out)
}

/// A TGS request using `tgt` for `server`, with the given KDC options
/// (plus the ticket's forwardable/proxiable/postdate/renewable bits) and
/// no addresses (§4.3–4.5).
fn tgs_request<'a>(
    ctx: &'a Context,
    tgt: &mut Creds<'a>,
    server: &Principal<'_>,
    options: u32,
) -> Result<Creds<'a>> {
    let client = tgt.client_principal()?;
    let mut in_creds = ffi::krb5_creds {
        client: client.raw,
        server: server.raw,
        ..Default::default()
    };
    let kdcopt = options as i32 | (tgt.flags() & KEPT_TICKET_FLAGS);
    let mut out: *mut ffi::krb5_creds = ptr::null_mut();
    // SAFETY: tgt and in_creds are valid (in_creds borrows two principals
    // that outlive the call); NULL address list = addressless; out receives
    // an allocated credential we take over.
    ctx.check("krb5_get_cred_via_tkt", unsafe {
        ffi::krb5_get_cred_via_tkt(
            ctx.raw,
            tgt.as_mut_ptr(),
            kdcopt,
            ptr::null(),
            &mut in_creds,
            &mut out,
        )
    })?;
    // SAFETY: out is a freshly allocated krb5_creds owned by us.
    Ok(unsafe { Creds::from_lib(ctx, out) })
}

/// Get an addressless copy of a TGT (FORWARDED | CANONICALIZE, §4.3).
pub fn addressless_tgt<'a>(ctx: &'a Context, tgt: &mut Creds<'a>) -> Result<Creds<'a>> {
    let server = tgt.server_principal()?;
    tgs_request(
        ctx,
        tgt,
        &server,
        ffi::KDC_OPT_FORWARDED | ffi::KDC_OPT_CANONICALIZE,
    )
}

/// Get a cross-realm TGT `krbtgt/TARGET@<realm of tgt's server>` (§4.4).
///
/// Unlike the C AUKS this is a plain TGS request (CANONICALIZE + the kept
/// ticket flags), not a FORWARDED one: an MIT KDC refuses FORWARDED for a
/// server other than the TGT's own ("server didn't match ticket"), so the
/// C recipe never obtains the ticket. The source TGT is addressless at this
/// point (ADD makes it so first), and the KDC copies its (absent) addresses.
pub fn cross_realm_tgt<'a>(
    ctx: &'a Context,
    tgt: &mut Creds<'a>,
    target: &str,
) -> Result<Creds<'a>> {
    let issuer = tgt
        .tgt_realms()
        .map(|(_, i)| i)
        .unwrap_or_else(|| tgt.client_realm());
    let server = Principal::tgs(ctx, target, &issuer)?;
    tgs_request(ctx, tgt, &server, ffi::KDC_OPT_CANONICALIZE)
}

/// Renew a TGT at the KDC (RENEW | CANONICALIZE, §4.5).
pub fn renew_tgt<'a>(ctx: &'a Context, tgt: &mut Creds<'a>) -> Result<Creds<'a>> {
    let server = tgt.server_principal()?;
    tgs_request(
        ctx,
        tgt,
        &server,
        ffi::KDC_OPT_RENEW | ffi::KDC_OPT_CANONICALIZE,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_unparse_principal() {
        let ctx = Context::new().unwrap();
        let p = Principal::parse(&ctx, "alice/admin@EXAMPLE.ORG").unwrap();
        assert_eq!(p.name().unwrap(), "alice/admin@EXAMPLE.ORG");
        assert_eq!(p.realm(), "EXAMPLE.ORG");
        assert_eq!(p.components(), vec!["alice", "admin"]);
        let t = Principal::tgs(&ctx, "A.ORG", "B.ORG").unwrap();
        assert_eq!(t.name().unwrap(), "krbtgt/A.ORG@B.ORG");
    }

    #[test]
    fn errors_carry_libkrb5_message() {
        let ctx = Context::new().unwrap();
        let cc = Ccache::resolve(&ctx, "FILE:/nonexistent/dir/ccache").unwrap();
        let e = cc.principal().err().expect("missing ccache must fail");
        assert!(e.code != 0);
        assert!(!e.message.is_empty());
        assert!(e.is_ccache_missing(), "{e:?}");
    }

    #[test]
    fn garbage_krb_cred_is_an_error_not_a_crash() {
        let ctx = Context::new().unwrap();
        assert!(decode_krb_cred(&ctx, b"").is_err());
        assert!(decode_krb_cred(&ctx, &[0x76, 0x82, 0xff, 0xff, 1, 2, 3]).is_err());
    }

    #[test]
    fn memory_ccache_round_trip_without_kdc() {
        let ctx = Context::new().unwrap();
        let cc = Ccache::new_unique(&ctx, "MEMORY").unwrap();
        let p = Principal::parse(&ctx, "bob@EXAMPLE.ORG").unwrap();
        cc.initialize(&p).unwrap();
        assert_eq!(cc.principal().unwrap().name().unwrap(), "bob@EXAMPLE.ORG");
        assert!(cc.creds().unwrap().is_empty());
        assert_eq!(cc.cc_type(), "MEMORY");
        cc.destroy().unwrap();
    }
}
