//! [`AuthContext`]: the Kerberos state of one AUKS session (keys, sequence
//! numbers, addresses, replay cache) and the steps of its handshake
//! (`mk_req`/`rd_rep` on the client, `rd_req`/`mk_rep` on the server) and
//! of its KRB-PRIV messages. No I/O: [`crate::session`] moves the bytes.

use std::ptr;

use super::address::KrbAddr;
use super::ap_client;
use super::ap_parts;
use super::ap_server;
use super::ccache::Ccache;
use super::context::Context;
use super::creds::Creds;
use super::data::{take_data, ts};
use super::error::{Error, Result};
use super::ffi;
use super::keytab::Keytab;
use super::libdata::LibData;
use super::principal::{unparse, Principal};
use super::priv_rust::RustPriv;

/// A libkrb5 key reference of ours, released once when dropped.
pub(super) struct Key<'c> {
    pub(super) ctx: &'c Context,
    pub(super) raw: ffi::krb5_key,
}

impl Drop for Key<'_> {
    fn drop(&mut self) {
        // SAFETY: raw is a reference obtained from libkrb5 (a getter of
        // the auth context) that nothing else releases.
        unsafe { ffi::lib().krb5_k_free_key(self.ctx.raw, self.raw) };
    }
}

/// An auth context: the session state (keys, sequence numbers, addresses)
/// of one AUKS connection.
pub struct AuthContext<'a> {
    pub(super) ctx: &'a Context,
    pub(super) raw: ffi::krb5_auth_context,
    /// Whether the handshake put a session key in the context. Until it
    /// has, the steps that use the key (`mk_rep`, `rd_rep`, `mk_priv`,
    /// `rd_priv`) are refused here: libkrb5 does not always check for it
    /// (`krb5_mk_rep` on a fresh context dereferences NULL).
    keyed: bool,
    /// The addresses last set, as (type, bytes): checked against those of
    /// a message read in place ([`AuthContext::rd_priv_in_place`]).
    pub(super) local_addr: Option<(i32, Vec<u8>)>,
    pub(super) remote_addr: Option<(i32, Vec<u8>)>,
    /// A message was read in place by libkrb5's in-place call: the receive
    /// sequence number libkrb5 keeps was not advanced, so nothing more may
    /// be received (messages opened by `auks_kcrypto` are counted in
    /// [`AuthContext::rust`] instead).
    pub(super) recv_spent: bool,
    /// Likewise, a message was sent in place: nothing more may be sent.
    pub(super) send_spent: bool,
    /// KRB-PRIV sealed and opened in Rust for the AES-SHA1 enctypes
    /// ([`super::priv_rust`]).
    pub(super) rust: RustPriv<'a>,
    /// Client: the AP-REQ was made in Rust ([`super::ap_client`]) and its
    /// AP-REP is awaited.
    pub(super) rust_sent: Option<ap_client::Sent>,
    /// Server: the AP-REQ was verified in Rust ([`super::ap_server`]);
    /// what the AP-REP and the replay cache need.
    rust_rep: Option<ap_server::RepState>,
    /// Server: libkrb5's replay cache is attached (its `krb5_rd_req` must
    /// see every AP-REQ).
    lib_rcache: bool,
}

impl<'a> AuthContext<'a> {
    /// A fresh auth context with the given flags (AUKS sessions use
    /// `DO_SEQUENCE` only; KRB-CRED encoding uses none).
    pub(super) fn with_flags(ctx: &'a Context, flags: u32) -> Result<Self> {
        let mut raw: ffi::krb5_auth_context = ptr::null_mut();
        // SAFETY: raw receives an owned auth context.
        ctx.check("krb5_auth_con_init", unsafe {
            ffi::lib().krb5_auth_con_init(ctx.raw, &mut raw)
        })?;
        let ac = AuthContext {
            ctx,
            raw,
            keyed: false,
            local_addr: None,
            remote_addr: None,
            recv_spent: false,
            send_spent: false,
            rust: RustPriv::default(),
            rust_sent: None,
            rust_rep: None,
            lib_rcache: false,
        };
        // SAFETY: valid auth context.
        ctx.check("krb5_auth_con_setflags", unsafe {
            ffi::lib().krb5_auth_con_setflags(ctx.raw, ac.raw, flags as i32)
        })?;
        Ok(ac)
    }

    /// The context this auth context belongs to.
    pub fn context(&self) -> &'a Context {
        self.ctx
    }

    /// Auth context for an AUKS session (§2.3): DO_SEQUENCE only.
    pub fn for_session(ctx: &'a Context) -> Result<Self> {
        Self::with_flags(ctx, ffi::KRB5_AUTH_CONTEXT_DO_SEQUENCE)
    }

    /// Set the local/remote addresses (ports never set, §2.3).
    pub fn set_addrs(&mut self, local: KrbAddr, remote: KrbAddr) -> Result<()> {
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
            ffi::lib().krb5_auth_con_setaddrs(self.ctx.raw, self.raw, &mut la, &mut ra)
        })?;
        self.local_addr = Some((lt, lb));
        self.remote_addr = Some((rt, rb));
        Ok(())
    }

    /// Server side: choose the replay cache. `enabled` uses the library's
    /// default server replay cache (as `krb5_recvauth` does); disabled
    /// attaches `none:` (spec §2.3, `ReplayCache = no`).
    pub fn set_replay_cache(&mut self, enabled: bool, server: &Principal<'_>) -> Result<()> {
        self.lib_rcache = enabled;
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
                ffi::lib().krb5_get_server_rcache(self.ctx.raw, &piece, &mut rc)
            })?;
        } else {
            // SAFETY: static NUL-terminated name; rc receives a handle.
            self.ctx.check("k5_rc_resolve", unsafe {
                ffi::lib().k5_rc_resolve(self.ctx.raw, c"none:".as_ptr(), &mut rc)
            })?;
        }
        // SAFETY: the auth context takes ownership of rc and closes it in
        // krb5_auth_con_free (MIT >= 1.18).
        self.ctx.check("krb5_auth_con_setrcache", unsafe {
            ffi::lib().krb5_auth_con_setrcache(self.ctx.raw, self.raw, rc)
        })
    }

    /// Client step of the handshake: get a service ticket for `server`
    /// from `ccache` and build the AP-REQ (mutual auth, fresh subkey,
    /// sequence numbers), as `krb5_sendauth` does.
    pub fn mk_req(&mut self, ccache: &Ccache<'_>, server: &Principal<'_>) -> Result<Vec<u8>> {
        let client = ccache.principal()?;
        let mut creds = self.get_service_creds(ccache, &client, server)?;
        self.mk_req_with(&mut creds)
    }

    /// [`AuthContext::mk_req`] with a service ticket already in hand (read
    /// from the ccache by the caller): no ccache and no KDC access.
    /// For an AES-SHA1 session key the AP-REQ is made in Rust
    /// ([`super::ap_client`], the same bytes), unless every KRB-PRIV of
    /// this context is left to libkrb5.
    pub fn mk_req_with(&mut self, creds: &mut Creds<'_>) -> Result<Vec<u8>> {
        if !self.rust.is_off() {
            if let Some((etype, key)) = ap_client::rust_session_key(creds) {
                let req = ap_client::mk_req(self.ctx, creds, etype, key)?;
                self.set_subkey(req.etype, &req.subkey)?;
                self.rust.local_base = Some(req.seq);
                self.rust_sent = Some(req.sent);
                self.keyed = true;
                return Ok(req.ap_req);
            }
        }
        let mut out = ffi::krb5_data::default();
        // SAFETY: valid auth context (may be replaced in place by libkrb5,
        // hence &mut), creds and output buffer; in_data NULL = no checksum.
        self.ctx.check("krb5_mk_req_extended", unsafe {
            ffi::lib().krb5_mk_req_extended(
                self.ctx.raw,
                &mut self.raw,
                (ffi::AP_OPTS_MUTUAL_REQUIRED | ffi::AP_OPTS_USE_SUBKEY) as i32,
                ptr::null_mut(),
                creds.as_mut_ptr(),
                &mut out,
            )
        })?;
        self.keyed = true;
        self.share_subkey()?;
        Ok(take_data(self.ctx, &mut out, false).to_vec())
    }

    /// Make the sending subkey the same libkrb5 key object as the
    /// receiving one. libkrb5 sets the two from the same key but as two
    /// objects, and caches the keys it derives for a key usage (two per
    /// usage, each a `krb5int_nfold` and a few AES blocks) in the object:
    /// with one object, the KRB-PRIV keys of a session (usage 13, the
    /// same in both directions) are derived once instead of once per
    /// direction and again after the handshake. Nothing changes on the
    /// wire. No receiving subkey (an AP-REQ without one): nothing to do.
    fn share_subkey(&self) -> Result<()> {
        let mut raw: ffi::krb5_key = ptr::null_mut();
        // SAFETY: valid auth context; raw receives a new reference to the
        // receiving subkey, or NULL when there is none.
        self.ctx.check("krb5_auth_con_getrecvsubkey_k", unsafe {
            ffi::lib().krb5_auth_con_getrecvsubkey_k(self.ctx.raw, self.raw, &mut raw)
        })?;
        if raw.is_null() {
            return Ok(());
        }
        let key = Key { ctx: self.ctx, raw };
        // SAFETY: valid auth context and key; the auth context takes a
        // reference of its own (and releases the sending subkey it held);
        // ours is released when `key` is dropped.
        self.ctx.check("krb5_auth_con_setsendsubkey_k", unsafe {
            ffi::lib().krb5_auth_con_setsendsubkey_k(self.ctx.raw, self.raw, key.raw)
        })
    }

    /// Make `key` (of `etype`) both subkeys of this context, one libkrb5
    /// key object (see [`AuthContext::share_subkey`]).
    fn set_subkey(&self, etype: i32, key: &[u8]) -> Result<()> {
        let mut kb = ffi::krb5_keyblock {
            magic: 0,
            enctype: etype,
            length: key.len() as u32,
            // libkrb5 copies the contents and never writes through this.
            contents: key.as_ptr().cast_mut(),
        };
        // SAFETY: valid auth context; kb points to `key`, alive for the
        // call, which libkrb5 copies into a key object of its own.
        self.ctx.check("krb5_auth_con_setrecvsubkey", unsafe {
            ffi::lib().krb5_auth_con_setrecvsubkey(self.ctx.raw, self.raw, &mut kb)
        })?;
        self.share_subkey()
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
            ffi::lib().krb5_get_credentials(self.ctx.raw, 0, ccache.raw, &mut in_creds, &mut out)
        })?;
        // SAFETY: out is a freshly allocated krb5_creds owned by us.
        Ok(unsafe { Creds::from_lib(self.ctx, out) })
    }

    /// Client step: verify the AP-REP (mutual authentication).
    pub fn rd_rep(&mut self, ap_rep: &[u8]) -> Result<()> {
        self.require_key("krb5_rd_rep")?;
        if let Some(sent) = self.rust_sent.take() {
            let rep = ap_client::rd_rep(&sent, ap_rep)?;
            if let Some((etype, key)) = rep.subkey {
                self.set_subkey(etype, &key)?;
            }
            self.rust.remote_base = Some(rep.seq);
            return Ok(());
        }
        let input = data_of(ap_rep)?;
        let mut repl: *mut ffi::krb5_ap_rep_enc_part = ptr::null_mut();
        // SAFETY: input points to a live buffer; repl is freed below.
        let code = unsafe { ffi::lib().krb5_rd_rep(self.ctx.raw, self.raw, &input, &mut repl) };
        if !repl.is_null() {
            // SAFETY: allocated by krb5_rd_rep, freed once.
            unsafe { ffi::lib().krb5_free_ap_rep_enc_part(self.ctx.raw, repl) };
        }
        self.ctx.check("krb5_rd_rep", code)?;
        // An AP-REP that carries a subkey replaced both of ours.
        self.share_subkey()
    }

    /// Server step: verify an AP-REQ with the keytab; returns the client
    /// principal name and whether mutual authentication was requested.
    pub fn rd_req(
        &mut self,
        ap_req: &[u8],
        server: &Principal<'_>,
        keytab: &Keytab<'_>,
    ) -> Result<(String, bool)> {
        // The usual AP-REQ is verified in Rust; any other, or any that
        // fails a check there, by libkrb5 (see ap_server).
        if !self.rust.is_off() && !self.lib_rcache {
            if let Some(a) = ap_server::verify(self.ctx, ap_req, server, keytab, self.ctx.now()) {
                self.set_subkey(a.subkey.0, &a.subkey.1)?;
                self.rust.remote_base = Some(a.remote_seq);
                self.rust_rep = Some(a.rep);
                self.keyed = true;
                return Ok((a.client, a.mutual));
            }
        }
        let input = data_of(ap_req)?;
        let mut options: ffi::krb5_flags = 0;
        let mut ticket: *mut ffi::krb5_ticket = ptr::null_mut();
        // SAFETY: valid auth context, input buffer, server principal and
        // keytab; ticket is freed below.
        let code = unsafe {
            ffi::lib().krb5_rd_req(
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
            unsafe { ffi::lib().krb5_free_ticket(self.ctx.raw, ticket) };
        }
        let mutual = options as u32 & ffi::AP_OPTS_MUTUAL_REQUIRED != 0;
        let client = result?;
        self.keyed = true;
        self.share_subkey()?;
        Ok((client, mutual))
    }

    /// Server side, after a successful [`rd_req`](Self::rd_req): the
    /// client's time in the authenticator (seconds since the epoch), for a
    /// replay cache of our own.
    pub fn authenticator_time(&self) -> Result<i64> {
        self.require_key("krb5_auth_con_getauthenticator")?;
        if let Some(r) = &self.rust_rep {
            return Ok(r.ctime_secs);
        }
        let mut a: *mut ffi::krb5_authenticator = ptr::null_mut();
        // SAFETY: valid auth context; a receives a copy freed below.
        self.ctx.check("krb5_auth_con_getauthenticator", unsafe {
            ffi::lib().krb5_auth_con_getauthenticator(self.ctx.raw, self.raw, &mut a)
        })?;
        if a.is_null() {
            return Err(Error::local(
                "krb5_auth_con_getauthenticator",
                "no authenticator",
            ));
        }
        // SAFETY: non-NULL authenticator owned by us, read once and freed
        // once.
        let t = unsafe {
            let t = (*a).ctime;
            ffi::lib().krb5_free_authenticator(self.ctx.raw, a);
            t
        };
        Ok(ts(t))
    }

    /// Server step: build the AP-REP.
    pub fn mk_rep(&mut self) -> Result<Vec<u8>> {
        self.require_key("krb5_mk_rep")?;
        if let Some(r) = &self.rust_rep {
            let seq = ap_parts::seq_number("krb5_mk_rep")?;
            let rep = ap_server::mk_rep(r, seq)?;
            self.rust.local_base = Some(seq);
            return Ok(rep);
        }
        let mut out = ffi::krb5_data::default();
        // SAFETY: valid auth context and output buffer.
        self.ctx.check("krb5_mk_rep", unsafe {
            ffi::lib().krb5_mk_rep(self.ctx.raw, self.raw, &mut out)
        })?;
        Ok(take_data(self.ctx, &mut out, false).to_vec())
    }

    /// Encrypt one application message as KRB-PRIV (key usage 13, the
    /// session subkey, next sequence number). Neither the plaintext nor the
    /// message is copied: the result is libkrb5's own buffer.
    pub fn mk_priv(&self, plain: &[u8]) -> Result<LibData<'a>> {
        self.require_send("krb5_mk_priv")?;
        if self.rust.sent > 0 || self.rust.has_bases() {
            return Err(Error::local(
                "krb5_mk_priv",
                "messages were sealed without libkrb5: its sequence number is behind",
            ));
        }
        let input = data_of(plain)?;
        let mut out = ffi::krb5_data::default();
        // SAFETY: input points to `plain`, alive for the call and only read
        // (the parameter is `const krb5_data *`); out is taken over below.
        let code = unsafe {
            ffi::lib().krb5_mk_priv(self.ctx.raw, self.raw, &input, &mut out, ptr::null_mut())
        };
        let out = LibData::take(self.ctx, &mut out);
        self.ctx.check("krb5_mk_priv", code)?;
        Ok(out)
    }

    /// Decrypt and verify one KRB-PRIV (addresses and sequence number are
    /// checked by libkrb5). The message is read in place and the plaintext
    /// is libkrb5's own buffer (wiped when dropped): no copy of either.
    pub fn rd_priv(&self, msg: &[u8]) -> Result<LibData<'a>> {
        self.require_receive("krb5_rd_priv")?;
        if self.rust.received > 0 || self.rust.has_bases() {
            return Err(Error::local(
                "krb5_rd_priv",
                "messages were opened without libkrb5: its sequence number is behind",
            ));
        }
        let input = data_of(msg)?;
        let mut out = ffi::krb5_data::default();
        // SAFETY: input points to `msg`, alive for the call and only read
        // (the parameter is `const krb5_data *`); out is taken over below.
        let code = unsafe {
            ffi::lib().krb5_rd_priv(self.ctx.raw, self.raw, &input, &mut out, ptr::null_mut())
        };
        let out = LibData::take(self.ctx, &mut out);
        self.ctx.check("krb5_rd_priv", code)?;
        Ok(out)
    }

    /// Refuse to receive before the handshake, or after a message was
    /// read in place.
    pub(super) fn require_receive(&self, op: &'static str) -> Result<()> {
        self.require_key(op)?;
        if self.recv_spent {
            return Err(Error::local(
                op,
                "a message was read in place: this session receives nothing more",
            ));
        }
        Ok(())
    }

    /// Refuse to send before the handshake, or after a message was sent
    /// in place.
    pub(super) fn require_send(&self, op: &'static str) -> Result<()> {
        self.require_key(op)?;
        if self.send_spent {
            return Err(Error::local(
                op,
                "a message was sent in place: this session sends nothing more",
            ));
        }
        Ok(())
    }

    /// Refuse `op` before the handshake has set a session key.
    fn require_key(&self, op: &'static str) -> Result<()> {
        if self.keyed {
            Ok(())
        } else {
            Err(Error::local(
                op,
                "no session key: the authentication handshake has not completed",
            ))
        }
    }
}

/// A `krb5_data` reading `buf` for a libkrb5 call that takes it as
/// `const krb5_data *` (never written through); refused above 4 GiB.
fn data_of(buf: &[u8]) -> Result<ffi::krb5_data> {
    let length = u32::try_from(buf.len())
        .map_err(|_| Error::local("krb5_data", "message larger than 4 GiB"))?;
    Ok(ffi::krb5_data {
        magic: 0,
        length,
        data: buf.as_ptr().cast_mut().cast(),
    })
}

impl Drop for AuthContext<'_> {
    fn drop(&mut self) {
        // SAFETY: frees the auth context (and its keys and replay cache) once.
        unsafe {
            ffi::lib().krb5_auth_con_free(self.ctx.raw, self.raw);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn session_context_takes_addresses_and_a_replay_cache() {
        let ctx = Context::new().unwrap();
        let mut ac = AuthContext::for_session(&ctx).unwrap();
        let ip = KrbAddr::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        ac.set_addrs(ip, KrbAddr::Dummy).unwrap();
        let server = Principal::parse(&ctx, "auks/server@EXAMPLE.ORG").unwrap();
        ac.set_replay_cache(false, &server).unwrap();
    }

    #[test]
    fn keyless_context_refuses_to_protect_data() {
        let ctx = Context::new().unwrap();
        let mut ac = AuthContext::for_session(&ctx).unwrap();
        // Refused on the Rust side (code 0), before libkrb5 is reached:
        // krb5_mk_rep itself would dereference the missing key (SIGSEGV).
        let refused = |r: Result<()>| {
            let e = r.expect_err("no key: must fail");
            assert_eq!(e.code, 0, "{e}");
            assert!(e.message.contains("no session key"), "{e}");
            e.op
        };
        assert_eq!(refused(ac.mk_rep().map(drop)), "krb5_mk_rep");
        assert_eq!(refused(ac.rd_rep(b"\x6f\x00")), "krb5_rd_rep");
        assert_eq!(refused(ac.mk_priv(b"secret").map(drop)), "krb5_mk_priv");
        let msg = b"\x75\x03\x02\x01\x05";
        assert_eq!(refused(ac.rd_priv(msg).map(drop)), "krb5_rd_priv");
    }

    #[test]
    fn garbage_ap_messages_are_errors_not_crashes() {
        let ctx = Context::new().unwrap();
        let mut ac = AuthContext::for_session(&ctx).unwrap();
        let server = Principal::parse(&ctx, "auks/server@EXAMPLE.ORG").unwrap();
        let name = format!("MEMORY:auks-rs-ac-test-{}", std::process::id());
        let kt = Keytab::resolve(&ctx, &name).unwrap();
        let e = ac.rd_req(&[0x6e, 0x01, 0x00], &server, &kt).err().unwrap();
        assert_eq!(e.op, "krb5_rd_req");
        assert_ne!(e.code, 0);
    }
}
