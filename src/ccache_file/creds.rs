//! The whole content of a FILE ccache, borrowed from its bytes:
//! [`read_creds`] returns the header's version and KDC time offset, the
//! default principal and every credential in file order, with their keys,
//! addresses, authorization data and tickets, for a caller that forwards
//! them without libkrb5 ([`super::encode_krb_cred`]).
//!
//! The list is the one [`super::tgt_endtime_of`] walks (it is computed
//! from it): removed entries (end time 0, auth time not 0) are left out, a
//! credential cut short by the end of the file ends the list, a length
//! beyond the whole file is an error. Configuration entries
//! (`..@X-CACHECONF:`, [`FileCred::is_config_entry`]) are kept, as
//! `krb5_cc_next_cred` returns them.
//!
//! Values are what libkrb5 reads into a `krb5_creds`: the name type is 0
//! (`KRB5_NT_UNKNOWN`) in format version 1, which has none; the 16-bit
//! key enctype is sign-extended, as libkrb5 (1.20, tested) reads it;
//! address and authorization data types stay raw 16-bit values here;
//! `is_skey` is any non-zero byte.
//!
//! Nothing is copied: names, keys and tickets are slices of the file's
//! bytes, which the caller owns (and wipes: they hold session keys). The
//! vectors grow as their items are read, each item taking at least 4
//! bytes of the file: a count read from the file is never trusted to size
//! them.

use super::{CcacheFileError, Reader, Stop};

/// A principal name: its type, realm and components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal<'a> {
    /// The name type (`KRB5_NT_*`); 0 (`KRB5_NT_UNKNOWN`) in version 1.
    pub name_type: i32,
    pub realm: &'a [u8],
    pub components: Vec<&'a [u8]>,
}

impl<'a> Principal<'a> {
    /// Whether this is `components@realm`, compared as bytes (the name
    /// type is not compared, as `krb5_principal_compare` does not).
    pub fn is(&self, realm: &[u8], components: &[&[u8]]) -> bool {
        self.realm == realm && self.components == components
    }

    /// `(target, issuer)` for a `krbtgt/target@issuer` name.
    pub fn tgt_realms(&self) -> Option<(&'a [u8], &'a [u8])> {
        match self.components[..] {
            [b"krbtgt", target] => Some((target, self.realm)),
            _ => None,
        }
    }
}

/// One credential of the file (MIT `krb5_creds`).
#[derive(Clone)]
pub struct FileCred<'a> {
    pub client: Principal<'a>,
    pub server: Principal<'a>,
    /// The session key's enctype (16 bits in the file, sign-extended).
    pub key_enctype: i32,
    /// The session key, in the caller's buffer.
    pub key: &'a [u8],
    pub authtime: u32,
    /// 0 when the ticket has none (it starts at `authtime`).
    pub starttime: u32,
    pub endtime: u32,
    /// 0 when the ticket is not renewable.
    pub renew_till: u32,
    pub is_skey: bool,
    /// The ticket flags (`TKT_FLG_*`, bit 0 of KerberosFlags the highest).
    pub flags: u32,
    /// Client addresses: (16-bit address type, address).
    pub addresses: Vec<(u16, &'a [u8])>,
    /// Authorization data: (16-bit raw type, contents).
    pub authdata: Vec<(u16, &'a [u8])>,
    /// The Ticket, DER as the KDC issued it.
    pub ticket: &'a [u8],
    pub second_ticket: &'a [u8],
}

impl FileCred<'_> {
    /// A ccache configuration entry (`krb5_ccache_conf_data/..@X-CACHECONF:`),
    /// not a ticket.
    pub fn is_config_entry(&self) -> bool {
        self.server.realm == b"X-CACHECONF:"
            && self.server.components.first() == Some(&&b"krb5_ccache_conf_data"[..])
    }
}

/// The key is left out: a credential may be logged.
impl std::fmt::Debug for FileCred<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileCred")
            .field("client", &self.client)
            .field("server", &self.server)
            .field("key_enctype", &self.key_enctype)
            .field("key_len", &self.key.len())
            .field("authtime", &self.authtime)
            .field("starttime", &self.starttime)
            .field("endtime", &self.endtime)
            .field("renew_till", &self.renew_till)
            .field("is_skey", &self.is_skey)
            .field("flags", &format_args!("{:#010x}", self.flags))
            .field("addresses", &self.addresses)
            .field("authdata", &self.authdata.len())
            .field("ticket_len", &self.ticket.len())
            .field("second_ticket_len", &self.second_ticket.len())
            .finish()
    }
}

/// A whole FILE ccache, as [`read_creds`] reads it.
#[derive(Debug, Clone)]
pub struct FileCcache<'a> {
    /// The format version, 1 to 4 (the file starts with `05 0N`).
    pub version: u16,
    /// The header's KDC time offset (seconds, microseconds), version 4.
    pub time_offset: Option<(i32, i32)>,
    /// The default principal (the cache's owner).
    pub default: Principal<'a>,
    /// The credentials in file order, removed entries left out.
    pub creds: Vec<FileCred<'a>>,
}

impl<'a> FileCcache<'a> {
    /// The TGTs of the default principal's realm R, chosen as
    /// `extract_with` (src/cred.rs) and [`super::tgt_endtime_of`] choose
    /// them: the LAST local TGT `krbtgt/R@R` and the FIRST cross-realm
    /// TGT `krbtgt/X@R` (X != R).
    pub fn tgts(&self) -> (Option<&FileCred<'a>>, Option<&FileCred<'a>>) {
        let realm = self.default.realm;
        let (mut local, mut cross) = (None, None);
        for c in &self.creds {
            match c.server.tgt_realms() {
                Some((target, issuer)) if issuer == realm && target == realm => local = Some(c),
                Some((_, issuer)) if issuer == realm && cross.is_none() => cross = Some(c),
                _ => {}
            }
        }
        (local, cross)
    }
}

/// Read the bytes of a whole FILE ccache (see the module doc).
pub fn read_creds(file: &[u8]) -> Result<FileCcache<'_>, CcacheFileError> {
    let mut r = Reader {
        buf: file,
        pos: 0,
        native: false,
    };
    let (version, time_offset) = r.header().map_err(Stop::into_error)?;
    r.native = version < 3;
    let default = r.principal(version).map_err(Stop::into_error)?;
    let mut creds = Vec::new();
    loop {
        match r.cred(version) {
            // A removed entry.
            Ok(c) if c.endtime == 0 && c.authtime != 0 => {}
            Ok(c) => creds.push(c),
            Err(Stop::Short) => break,
            Err(Stop::Bad(e)) => return Err(e),
        }
    }
    Ok(FileCcache {
        version,
        time_offset,
        default,
        creds,
    })
}
