//! A pure-Rust reader of the MIT FILE credential cache format, to answer
//! "does this cache hold a TGT that has not expired?" without loading
//! libkrb5 (a step inside an allocation checks the job's own ccache,
//! issue 9), and to forward the user's TGTs without it: [`read_creds`]
//! reads every credential with its key and ticket (`creds`), and
//! [`encode_krb_cred_at`] makes of them the unencrypted KRB-CRED libkrb5's
//! `krb5_mk_ncred` makes, byte for byte given its time stamp (`krb_cred`).
//!
//! [`tgt_endtime`] computes what `tgt_endtime` in
//! `spank/remote/credential.rs` computes through libkrb5: the realm of the
//! default principal; over the credentials in file order, the LAST
//! `krbtgt/R@R` (a local TGT) and the FIRST `krbtgt/X@R` with `X != R` (a
//! cross-realm TGT issued by the realm); the earlier end time of the two,
//! `None` without a local TGT. It also returns the KDC time offset of the
//! header, which libkrb5 (`kdc_timesync`, on by default) applies to "now"
//! after reading the file: compare the end time with [`TgtEnd::kdc_now`].
//! (A site with `kdc_timesync = false` in krb5.conf has libkrb5 ignore the
//! offset; this reader does not read krb5.conf and always applies it: the
//! check is then off by the KDC's clock difference, a few seconds.)
//!
//! Format (MIT `doc/formats/ccache_file_format.rst`, `cc_file.c`,
//! `ccmarshal.c`): a big-endian version `05 0N`; in version 4 a header of
//! tagged fields (tag 1: the KDC time offset); the default principal; then
//! credentials until the end of the file. Versions 3 and 4 are big-endian,
//! versions 1 and 2 (still readable by libkrb5, written only when
//! krb5.conf says `ccache_type = 1|2`) use the host's byte order; all four
//! are read. Anything else is [`CcacheFileError::BadVersion`].
//!
//! libkrb5's reading rules are followed where they decide the answer:
//! - a credential cut short by the end of the file ends the list (libkrb5
//!   returns `KRB5_CC_END`): the credentials before it count; a cut in the
//!   header or the default principal is [`CcacheFileError::Truncated`];
//! - a length field larger than the whole file is an error
//!   ([`CcacheFileError::Length`]), as libkrb5's `KRB5_CC_FORMAT`;
//! - removed entries (end time 0 and a non-zero auth time: MIT >= 1.18
//!   marks them with auth time -1, MIT >= 1.22 and Heimdal skip any
//!   non-zero auth time) are skipped; configuration entries
//!   (`krb5_ccache_conf_data/..@X-CACHECONF:`) need no skipping, as they
//!   are never `krbtgt/..` servers;
//! - times are 32-bit unsigned (MIT since 1.17).
//!
//! Known differences, on inputs libkrb5 never writes: names are compared
//! as bytes (the libkrb5 path compares lossy UTF-8 strings); a principal
//! component count that leaves no room for the realm (2^32-1, or 0 in
//! version 1: libkrb5's counter wraps and it reads on misaligned) is an
//! error here, where libkrb5 reports an error or the end of the list.
//!
//! Bounded and panic-free: the file (at most `max_len` bytes) is read once
//! into a buffer wiped on drop (it holds session keys), every length is
//! checked against the bytes left before it is used, the only other
//! allocations are the lists of [`read_creds`] (names, credentials,
//! addresses, authdata), which grow as their items are read, and key and
//! ticket bytes are borrowed, never copied.

use std::io::{Read, Seek, SeekFrom};
use zeroize::Zeroizing;

mod creds;
mod krb_cred;

pub use creds::{read_creds, FileCcache, FileCred, Principal};
pub use krb_cred::{encode_krb_cred, encode_krb_cred_at, kdc_time_of_day};

/// Why a ccache file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CcacheFileError {
    #[error("cannot read the credential cache: {0}")]
    Io(#[from] std::io::Error),
    #[error("the credential cache is larger than {0} bytes")]
    TooLong(u64),
    #[error("not a credential cache file (format version {0:#06x})")]
    BadVersion(u16),
    #[error("the credential cache ends within its header or default principal")]
    Truncated,
    #[error("malformed credential cache: a field of {0} bytes in a file of {1} bytes")]
    Length(u32, usize),
    #[error("malformed credential cache: {0}")]
    Format(&'static str),
}

/// What [`tgt_endtime`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TgtEnd {
    /// The end time of the TGTs (see the module doc), `None` without a
    /// local TGT of the default principal's realm.
    pub endtime: Option<i64>,
    /// The header's KDC time offset (seconds, microseconds), if any.
    pub time_offset: Option<(i32, i32)>,
}

impl TgtEnd {
    /// The current time as libkrb5 sees it after reading this cache:
    /// `now` (Unix seconds) plus the KDC offset, as a 32-bit unsigned
    /// Kerberos time (`krb5_timeofday` ignores the microseconds).
    pub fn kdc_now(&self, now: i64) -> i64 {
        let t = now.wrapping_add(self.time_offset.map_or(0, |(s, _)| i64::from(s)));
        i64::from(t as u32)
    }
}

/// Read the whole FILE ccache `r` (from its start, whatever its current
/// offset; at most `max_len` bytes) and compute its TGT end time.
pub fn tgt_endtime<R: Read + Seek>(mut r: R, max_len: u64) -> Result<TgtEnd, CcacheFileError> {
    let size = r.seek(SeekFrom::End(0))?;
    if size > max_len {
        return Err(CcacheFileError::TooLong(max_len));
    }
    let size = usize::try_from(size).map_err(|_| CcacheFileError::TooLong(max_len))?;
    r.seek(SeekFrom::Start(0))?;
    // Sized once: a growing Vec would leave unwiped copies of the keys.
    let mut buf = Zeroizing::new(vec![0u8; size]);
    r.read_exact(&mut buf)?;
    tgt_endtime_of(&buf)
}

/// [`tgt_endtime`] over the bytes of a whole ccache file: the TGTs
/// [`FileCcache::tgts`] chooses in what [`read_creds`] reads.
pub fn tgt_endtime_of(file: &[u8]) -> Result<TgtEnd, CcacheFileError> {
    let cc = read_creds(file)?;
    let (local, cross) = cc.tgts();
    let end = |c: &FileCred<'_>| i64::from(c.endtime);
    Ok(TgtEnd {
        endtime: local.map(|l| cross.map_or(end(l), |x| end(x).min(end(l)))),
        time_offset: cc.time_offset,
    })
}

/// Why reading stopped.
enum Stop {
    /// The file ended within the item.
    Short,
    /// The item is malformed.
    Bad(CcacheFileError),
}

impl Stop {
    /// Outside the list of credentials, a short read is an error.
    fn into_error(self) -> CcacheFileError {
        match self {
            Stop::Short => CcacheFileError::Truncated,
            Stop::Bad(e) => e,
        }
    }
}

/// A cursor over the file's bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Host byte order (format versions 1 and 2) instead of big-endian.
    native: bool,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], Stop> {
        let end = self.pos.checked_add(n).ok_or(Stop::Short)?;
        let s = self.buf.get(self.pos..end).ok_or(Stop::Short)?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Stop> {
        self.bytes(N)?.try_into().map_err(|_| Stop::Short)
    }

    fn u16(&mut self) -> Result<u16, Stop> {
        let b = self.array()?;
        Ok(if self.native {
            u16::from_ne_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }

    fn u32(&mut self) -> Result<u32, Stop> {
        let b = self.array()?;
        Ok(if self.native {
            u32::from_ne_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    /// A 32-bit length and that many bytes; a length beyond the whole
    /// file is malformed (libkrb5's `load_data`).
    fn data(&mut self) -> Result<&'a [u8], Stop> {
        let n = self.u32()?;
        match usize::try_from(n) {
            Ok(len) if len <= self.buf.len() => self.bytes(len),
            _ => Err(Stop::Bad(CcacheFileError::Length(n, self.buf.len()))),
        }
    }

    /// The version (1 to 4) and, in version 4, the first time offset.
    fn header(&mut self) -> Result<(u16, Option<(i32, i32)>), Stop> {
        let bad = |what| Stop::Bad(CcacheFileError::Format(what));
        let raw = u16::from_be_bytes(self.array()?);
        let version = match raw {
            0x0501..=0x0504 => raw - 0x0500,
            _ => return Err(Stop::Bad(CcacheFileError::BadVersion(raw))),
        };
        let mut offset = None;
        if version == 4 {
            let mut left = self.u16()?;
            while left > 0 {
                if left < 4 {
                    return Err(bad("header field"));
                }
                let (tag, len) = (self.u16()?, self.u16()?);
                if len > left - 4 {
                    return Err(bad("header field length"));
                }
                if tag == 1 {
                    if len != 8 {
                        return Err(bad("time offset field"));
                    }
                    let (s, us) = (self.u32()? as i32, self.u32()? as i32);
                    offset = offset.or(Some((s, us)));
                } else {
                    self.bytes(usize::from(len))?;
                }
                left -= 4 + len;
            }
        }
        Ok((version, offset))
    }

    /// A principal (`ccmarshal.c`: the name type, absent in version 1;
    /// the component count, which counts the realm in version 1; the
    /// realm; the components).
    fn principal(&mut self, version: u16) -> Result<Principal<'a>, Stop> {
        let name_type = match version {
            1 => 0, // KRB5_NT_UNKNOWN
            _ => self.u32()? as i32,
        };
        let count = self.u32()?;
        // Version 1 counts the realm; elsewhere libkrb5 adds one for it.
        let count = match version {
            1 => count.checked_sub(1),
            _ => count.checked_add(1).map(|_| count),
        }
        .ok_or(Stop::Bad(CcacheFileError::Format(
            "principal component count",
        )))?;
        let realm = self.data()?;
        // Each component takes at least 4 bytes: the file bounds the loop
        // and the vector, which grows as components are read.
        let mut components = Vec::new();
        for _ in 0..count {
            components.push(self.data()?);
        }
        Ok(Principal {
            name_type,
            realm,
            components,
        })
    }

    /// A 32-bit count of {16-bit type, data} entries (addresses, authdata).
    fn typed_list(&mut self) -> Result<Vec<(u16, &'a [u8])>, Stop> {
        let mut list = Vec::new();
        // Each entry takes at least 6 bytes: the file bounds the count.
        for _ in 0..self.u32()? {
            let t = self.u16()?;
            list.push((t, self.data()?));
        }
        Ok(list)
    }

    fn cred(&mut self, version: u16) -> Result<FileCred<'a>, Stop> {
        let client = self.principal(version)?;
        let server = self.principal(version)?;
        // Sign-extended, as libkrb5 reads it (enctypes may be negative).
        let key_enctype = i32::from(self.u16()? as i16);
        if version == 3 {
            self.u16()?; // the enctype again
        }
        let key = self.data()?;
        let authtime = self.u32()?;
        let starttime = self.u32()?;
        let endtime = self.u32()?;
        let renew_till = self.u32()?;
        let [is_skey] = self.array()?;
        let flags = self.u32()?;
        let addresses = self.typed_list()?;
        let authdata = self.typed_list()?;
        let ticket = self.data()?;
        let second_ticket = self.data()?;
        Ok(FileCred {
            client,
            server,
            key_enctype,
            key,
            authtime,
            starttime,
            endtime,
            renew_till,
            is_skey: is_skey != 0,
            flags,
            addresses,
            authdata,
            ticket,
            second_ticket,
        })
    }
}

#[cfg(test)]
mod creds_tests;
#[cfg(test)]
mod test_builder;
#[cfg(test)]
mod tests;
