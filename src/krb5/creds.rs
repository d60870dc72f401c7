//! [`Creds`]: one Kerberos credential (ticket + session key) owned by Rust.
//! Its contents are freed, and the session key wiped, by
//! `krb5_free_cred_contents` on drop. Accessors expose what AUKS needs:
//! principals, TGT classification, times, flags and the ticket bytes.

use std::ptr;

use super::context::Context;
use super::data::{data_string, ts};
use super::error::Result;
use super::ffi;
use super::principal::{unparse, Principal};

/// A credential (ticket + session key). The contents are freed, and the
/// session key wiped, by `krb5_free_cred_contents` on drop.
pub struct Creds<'a> {
    pub(super) ctx: &'a Context,
    /// Boxed so that its address is stable while libkrb5 holds a pointer.
    pub(super) raw: Box<ffi::krb5_creds>,
}

impl<'a> Creds<'a> {
    /// Take ownership of a `krb5_creds` allocated by libkrb5 (as returned
    /// by krb5_get_credentials & co): its contents move into a Box and the
    /// outer allocation is released with `free`, as krb5_free_creds does.
    ///
    /// # Safety
    /// `p` must be a non-NULL, malloc-allocated krb5_creds owned by the
    /// caller and not used afterwards.
    pub(super) unsafe fn from_lib(ctx: &'a Context, p: *mut ffi::krb5_creds) -> Self {
        // SAFETY: the caller guarantees p is a valid, owned, malloc'd
        // krb5_creds; its contents are moved out bit for bit and the outer
        // block is released with the allocator libkrb5 used.
        let raw = unsafe {
            let raw = Box::new(ptr::read(p));
            libc::free(p.cast());
            raw
        };
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
        // SAFETY: server is a valid principal for the life of self; its
        // `data` holds `length` components, each a valid krb5_data.
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

    /// Start time (the auth time when the ticket has no explicit start).
    pub fn starttime(&self) -> i64 {
        if self.raw.times.starttime != 0 {
            ts(self.raw.times.starttime)
        } else {
            ts(self.raw.times.authtime)
        }
    }

    /// End of validity.
    pub fn endtime(&self) -> i64 {
        ts(self.raw.times.endtime)
    }

    /// End of the renewable period, 0 when the ticket is not renewable.
    pub fn renew_till(&self) -> i64 {
        ts(self.raw.times.renew_till)
    }

    /// Marked invalid by the KDC (a postdated ticket not yet validated):
    /// not usable for authentication.
    pub fn is_invalid(&self) -> bool {
        self.flags() & ffi::TKT_FLG_INVALID as i32 != 0
    }

    /// The ticket flags (`TKT_FLG_*` bits) as libkrb5 stores them.
    pub fn flags(&self) -> i32 {
        self.raw.ticket_flags
    }

    /// True when the ticket names client addresses.
    pub fn has_addresses(&self) -> bool {
        // SAFETY: addresses is NULL or a NULL-terminated array owned by self.
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

    /// True for a ccache configuration entry (`X-CACHECONF:` server).
    pub(super) fn is_config_entry(&self) -> bool {
        // SAFETY: server is a valid principal owned by self.
        unsafe { ffi::lib().krb5_is_config_principal(self.ctx.raw, self.raw.server) != 0 }
    }

    /// The raw credential, for libkrb5 calls that read (or, per their
    /// contract, copy) it; valid as long as `self` is.
    pub(super) fn as_mut_ptr(&mut self) -> *mut ffi::krb5_creds {
        &mut *self.raw
    }
}

impl Drop for Creds<'_> {
    fn drop(&mut self) {
        // SAFETY: the contents are owned by self and freed once; MIT wipes
        // the keyblock before freeing it.
        unsafe { ffi::lib().krb5_free_cred_contents(self.ctx.raw, &mut *self.raw) }
    }
}

/// Ticketless credentials built without a KDC, for the unit tests of this
/// module and of the ccache.
#[cfg(test)]
pub(super) mod fake {
    use super::*;

    /// Times (auth, start, end, renew-till) and flags of a fake credential.
    pub struct Fake {
        pub times: [i32; 4],
        pub flags: i32,
    }

    /// A credential for `client` → `server` with no ticket and no key.
    pub fn creds<'a>(ctx: &'a Context, client: &str, server: &str, f: Fake) -> Creds<'a> {
        let c = Principal::parse(ctx, client).unwrap();
        let s = Principal::parse(ctx, server).unwrap();
        let mut raw = Box::<ffi::krb5_creds>::default();
        // SAFETY: both principals are valid; the copies become owned by
        // `raw` and are freed by Creds::drop.
        unsafe {
            assert_eq!(
                ffi::lib().krb5_copy_principal(ctx.raw, c.raw, &mut raw.client),
                0
            );
            assert_eq!(
                ffi::lib().krb5_copy_principal(ctx.raw, s.raw, &mut raw.server),
                0
            );
        }
        let [authtime, starttime, endtime, renew_till] = f.times;
        raw.times = ffi::krb5_ticket_times {
            authtime,
            starttime,
            endtime,
            renew_till,
        };
        raw.ticket_flags = f.flags;
        Creds { ctx, raw }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{creds, Fake};
    use super::*;

    const PLAIN: Fake = Fake {
        times: [100, 0, 200, 0],
        flags: 0,
    };

    #[test]
    fn tgts_are_classified_by_their_server() {
        let ctx = Context::new().unwrap();
        let local = creds(&ctx, "u@A.ORG", "krbtgt/A.ORG@A.ORG", PLAIN);
        assert_eq!(local.tgt_realms(), Some(("A.ORG".into(), "A.ORG".into())));
        assert!(local.is_local_tgt());
        assert!(!local.is_cross_realm_tgt());

        let cross = creds(&ctx, "u@A.ORG", "krbtgt/B.ORG@A.ORG", PLAIN);
        assert_eq!(cross.tgt_realms(), Some(("B.ORG".into(), "A.ORG".into())));
        assert!(cross.is_cross_realm_tgt());
        assert!(!cross.is_local_tgt());

        // A TGT of another realm is neither local nor issued by ours.
        let foreign = creds(&ctx, "u@A.ORG", "krbtgt/B.ORG@B.ORG", PLAIN);
        assert!(!foreign.is_local_tgt());
        assert!(!foreign.is_cross_realm_tgt());

        let service = creds(&ctx, "u@A.ORG", "host/node1@A.ORG", PLAIN);
        assert_eq!(service.tgt_realms(), None);
        assert!(!service.is_local_tgt());
        assert_eq!(service.client_realm(), "A.ORG");
    }

    #[test]
    fn principals_are_copied_out() {
        let ctx = Context::new().unwrap();
        let c = creds(&ctx, "u/x@A.ORG", "host/node1@A.ORG", PLAIN);
        assert_eq!(c.client().unwrap(), "u/x@A.ORG");
        assert_eq!(c.client_principal().unwrap().name().unwrap(), "u/x@A.ORG");
        let s = c.server_principal().unwrap();
        drop(c);
        assert_eq!(s.name().unwrap(), "host/node1@A.ORG");
    }

    #[test]
    fn times_flags_and_empty_ticket() {
        let ctx = Context::new().unwrap();
        let c = creds(&ctx, "u@A.ORG", "krbtgt/A.ORG@A.ORG", PLAIN);
        assert_eq!(c.starttime(), 100, "start falls back to the auth time");
        assert_eq!(c.endtime(), 200);
        assert_eq!(c.renew_till(), 0);
        assert_eq!(c.flags(), 0);
        assert!(!c.has_addresses());
        assert!(c.ticket().is_empty());
        assert!(!c.is_config_entry());

        let flags = (ffi::TKT_FLG_RENEWABLE | ffi::TKT_FLG_FORWARDABLE) as i32;
        let r = creds(
            &ctx,
            "u@A.ORG",
            "krbtgt/A.ORG@A.ORG",
            Fake {
                times: [100, 150, 200, i32::MIN],
                flags,
            },
        );
        assert_eq!(r.starttime(), 150);
        assert_eq!(r.renew_till(), 1 << 31, "times are unsigned");
        assert_eq!(r.flags(), flags);
    }
}
