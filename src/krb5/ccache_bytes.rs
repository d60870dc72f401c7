//! The bytes libkrb5 writes for a FILE credential cache, made in Rust:
//! [`file_ccache_bytes`]. A FILE ccache written through libkrb5 is opened,
//! locked, written, unlocked and closed once to initialise it and once
//! more per credential, after an `unlink` of the name; auksd does that for
//! every ADD it stores, 100 000 times in an auksdrenewer pass. With the
//! bytes made here, the caller writes the file with one `open` and one
//! `write` ([`crate::cred`]'s `store_beside`).
//!
//! Format version 4 (MIT `doc/formats/ccache_file_format.rst`), big-endian,
//! the version libkrb5 writes unless krb5.conf sets `ccache_type`:
//!
//! ```text
//! file        := 05 04, u16 header length, header, principal, credential*
//! header      := (u16 tag, u16 length, value)*   tag 1: the KDC time offset
//! principal   := u32 name type, u32 component count, data realm, data*
//! credential  := principal client, principal server,
//!                u16 enctype, data key,
//!                u32 authtime, u32 starttime, u32 endtime, u32 renew-till,
//!                u8 is-skey, u32 ticket flags,
//!                u32 count, (u16 address type, data address)*,
//!                u32 count, (u16 authdata type, data authdata)*,
//!                data ticket, data second ticket
//! data        := u32 length, bytes
//! ```
//!
//! Values are written as libkrb5 writes them: 16-bit fields keep the low
//! 16 bits of their 32-bit value, times and flags their 32 bits. The
//! header holds the KDC time offset only when the context applies one; a
//! context with an offset is declined (`None`: write through libkrb5), so
//! the bytes are libkrb5's byte for byte (tested against it).
//! (A site whose krb5.conf asks for `ccache_type = 3` gets version 4
//! here, which every reader takes.)

use zeroize::Zeroizing;

use super::context::Context;
use super::creds::Creds;
use super::ffi;
use super::principal::raw_parts;

/// The FILE ccache libkrb5 would write for `creds`: initialised with the
/// client of the first one, then each stored in order (as
/// `krb5_cc_initialize` and `krb5_cc_store_cred` write them in a fresh
/// file). `None` when the context applies a KDC time offset (libkrb5
/// writes it in the header), when `creds` is empty, or when a value has
/// no place in the format (a length over 32 bits).
pub fn file_ccache_bytes(ctx: &Context, creds: &[Creds<'_>]) -> Option<Zeroizing<Vec<u8>>> {
    if time_offset(ctx) != (0, 0) {
        return None;
    }
    let first = creds.first()?;
    let mut out = Zeroizing::new(Vec::with_capacity(
        64 + creds.iter().map(|c| c.ticket().len() + 256).sum::<usize>(),
    ));
    out.extend_from_slice(&[0x05, 0x04, 0x00, 0x00]);
    principal(&mut out, first.raw.client)?;
    for c in creds {
        credential(&mut out, &c.raw)?;
    }
    Some(out)
}

/// The context's KDC time offset (seconds, microseconds); (0, 0) when it
/// applies none.
fn time_offset(ctx: &Context) -> (i32, i32) {
    let (mut s, mut us) = (0, 0);
    // SAFETY: a valid context; the two out-pointers are live locals.
    let rc = unsafe { ffi::lib().krb5_get_time_offsets(ctx.raw, &mut s, &mut us) };
    if rc != 0 {
        // Unknown: let libkrb5 write the file.
        return (1, 0);
    }
    (s, us)
}

fn u16_of(out: &mut Vec<u8>, v: i32) {
    // libkrb5 keeps the low 16 bits of an enctype or address type.
    out.extend_from_slice(&(v as u32 as u16).to_be_bytes());
}

fn u32_of(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn data(out: &mut Vec<u8>, bytes: &[u8]) -> Option<()> {
    u32_of(out, u32::try_from(bytes.len()).ok()?);
    out.extend_from_slice(bytes);
    Some(())
}

/// `len` bytes at `p` (none when NULL or empty).
///
/// # Safety
/// `p` must be NULL or point to `len` bytes alive for `'a`.
unsafe fn bytes<'a>(p: *const u8, len: u32) -> &'a [u8] {
    if p.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: the caller's guarantee.
    unsafe { std::slice::from_raw_parts(p, len as usize) }
}

fn principal(out: &mut Vec<u8>, p: ffi::krb5_principal) -> Option<()> {
    // SAFETY: `p` is a principal of creds the caller holds (or NULL).
    let (realm, comps) = unsafe { raw_parts(p) }?;
    // SAFETY: raw_parts returned Some: `p` is a valid principal.
    let name_type = unsafe { (*p).type_ };
    u32_of(out, name_type as u32);
    u32_of(out, u32::try_from(comps.len()).ok()?);
    data(out, realm)?;
    for c in comps {
        data(out, c)?;
    }
    Some(())
}

/// A NULL-terminated libkrb5 list of (type, length, contents) entries:
/// its count, then each entry.
///
/// # Safety
/// `list` must be NULL or a NULL-terminated array of valid entries.
unsafe fn typed_list<T>(
    out: &mut Vec<u8>,
    list: *mut *mut T,
    parts: impl Fn(&T) -> (i32, *const u8, u32),
) -> Option<()> {
    let mut entries: Vec<&T> = Vec::new();
    if !list.is_null() {
        let mut i = 0;
        // SAFETY: a NULL-terminated array (the caller's guarantee); each
        // entry is read only up to the terminator.
        while let Some(e) = unsafe { (*list.add(i)).as_ref() } {
            entries.push(e);
            i += 1;
        }
    }
    u32_of(out, u32::try_from(entries.len()).ok()?);
    for e in entries {
        let (t, p, len) = parts(e);
        u16_of(out, t);
        // SAFETY: an entry's contents are `length` bytes it owns.
        data(out, unsafe { bytes(p, len) })?;
    }
    Some(())
}

fn credential(out: &mut Vec<u8>, c: &ffi::krb5_creds) -> Option<()> {
    principal(out, c.client)?;
    principal(out, c.server)?;
    u16_of(out, c.keyblock.enctype);
    // SAFETY: the keyblock's contents are `length` bytes owned by `c`.
    data(out, unsafe {
        bytes(c.keyblock.contents, c.keyblock.length)
    })?;
    for t in [
        c.times.authtime,
        c.times.starttime,
        c.times.endtime,
        c.times.renew_till,
    ] {
        u32_of(out, t as u32);
    }
    out.push(c.is_skey as u8);
    u32_of(out, c.ticket_flags as u32);
    // SAFETY: `addresses` and `authdata` are NULL or NULL-terminated
    // arrays of entries owned by `c`.
    unsafe {
        typed_list(out, c.addresses, |a: &ffi::krb5_address| {
            (a.addrtype, a.contents.cast_const(), a.length)
        })?;
        typed_list(out, c.authdata, |a: &ffi::krb5_authdata| {
            (a.ad_type, a.contents.cast_const(), a.length)
        })?;
    }
    // SAFETY: both tickets are `length` bytes owned by `c`.
    unsafe {
        data(out, bytes(c.ticket.data.cast(), c.ticket.length))?;
        data(
            out,
            bytes(c.second_ticket.data.cast(), c.second_ticket.length),
        )?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krb5::ccache::Ccache;
    use crate::krb5::creds::fake::{creds, Fake};

    /// A malloc'd copy of `b` (freed by `krb5_free_cred_contents`).
    fn c_copy(b: &[u8]) -> *mut u8 {
        // SAFETY: a fresh allocation of b.len() (at least 1) bytes, filled
        // from `b`; libkrb5 frees it with `free`.
        unsafe {
            let p = libc::malloc(b.len().max(1)).cast::<u8>();
            assert!(!p.is_null());
            std::ptr::copy_nonoverlapping(b.as_ptr(), p, b.len());
            p
        }
    }

    /// A malloc'd NULL-terminated array of `entries` (boxed by malloc too).
    fn c_list<T>(entries: Vec<T>) -> *mut *mut T {
        // SAFETY: fresh allocations, each entry moved into its own block;
        // the array ends with NULL; libkrb5 frees them with `free`.
        unsafe {
            let arr =
                libc::calloc(entries.len() + 1, std::mem::size_of::<*mut T>()).cast::<*mut T>();
            assert!(!arr.is_null());
            for (i, e) in entries.into_iter().enumerate() {
                let p = libc::malloc(std::mem::size_of::<T>()).cast::<T>();
                assert!(!p.is_null());
                p.write(e);
                *arr.add(i) = p;
            }
            arr
        }
    }

    fn with_key_and_ticket(c: &mut Creds<'_>, enctype: i32, key: &[u8], ticket: &[u8]) {
        c.raw.keyblock.enctype = enctype;
        c.raw.keyblock.length = key.len() as u32;
        c.raw.keyblock.contents = c_copy(key);
        c.raw.ticket.length = ticket.len() as u32;
        c.raw.ticket.data = c_copy(ticket).cast();
    }

    /// What libkrb5 writes for `creds` in a new FILE ccache.
    fn libkrb5_file(ctx: &Context, creds: &mut [Creds<'_>]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cc");
        let cc = Ccache::resolve(ctx, &format!("FILE:{}", path.display())).unwrap();
        cc.initialize(&creds[0].client_principal().unwrap())
            .unwrap();
        for c in creds.iter_mut() {
            cc.store(c).unwrap();
        }
        std::fs::read(&path).unwrap()
    }

    #[test]
    fn the_bytes_are_those_libkrb5_writes() {
        let ctx = Context::new().unwrap();
        let after_2038 = 2_208_988_800_u32 as i32;
        let mut tgt = creds(
            &ctx,
            "alice@A.ORG",
            "krbtgt/A.ORG@A.ORG",
            Fake {
                times: [1_764_000_000, 1_764_000_100, 1_764_036_000, after_2038],
                flags: 0x40e1_0000u32 as i32,
            },
        );
        with_key_and_ticket(&mut tgt, 18, &[7; 32], b"\x61\x03tkt");
        let mut cross = creds(
            &ctx,
            "alice@A.ORG",
            "krbtgt/B.ORG@A.ORG",
            Fake {
                times: [1, 0, 3, 0],
                flags: -1,
            },
        );
        with_key_and_ticket(&mut cross, 17, &[9; 16], &[0xa5; 300]);
        // Everything libkrb5 writes and a KRB-CRED never carries: an
        // enctype outside 16 bits, addresses, authdata, a second ticket,
        // is_skey, odd principal bytes.
        let mut odd = creds(
            &ctx,
            "x/\u{e9}t\u{e9}@A.ORG",
            "host/node-1.a.org@A.ORG",
            Fake {
                times: [0, 0, 0, 0],
                flags: 0,
            },
        );
        with_key_and_ticket(&mut odd, -128, &[], b"");
        odd.raw.is_skey = 1;
        odd.raw.second_ticket.length = 5;
        odd.raw.second_ticket.data = c_copy(b"other").cast();
        odd.raw.addresses = c_list(vec![
            ffi::krb5_address {
                magic: 0,
                addrtype: 2,
                length: 4,
                contents: c_copy(&[127, 0, 0, 1]),
            },
            ffi::krb5_address {
                magic: 0,
                addrtype: 0x1_0018,
                length: 16,
                contents: c_copy(&[0xfe; 16]),
            },
        ]);
        odd.raw.authdata = c_list(vec![ffi::krb5_authdata {
            magic: 0,
            ad_type: 1,
            length: 3,
            contents: c_copy(b"ad!"),
        }]);
        let mut all = [tgt, cross, odd];
        for n in 1..=all.len() {
            let ours = file_ccache_bytes(&ctx, &all[..n]).expect("no time offset");
            assert_eq!(
                *ours,
                libkrb5_file(&ctx, &mut all[..n]),
                "{n} credential(s)"
            );
        }
        assert!(file_ccache_bytes(&ctx, &[]).is_none());
    }

    #[test]
    fn a_context_with_a_kdc_time_offset_is_left_to_libkrb5() {
        let ctx = Context::new().unwrap();
        let tgt = || {
            let fake = Fake {
                times: [1, 0, 3, 0],
                flags: 0,
            };
            creds(&ctx, "alice@A.ORG", "krbtgt/A.ORG@A.ORG", fake)
        };
        let c = tgt();
        assert!(file_ccache_bytes(&ctx, std::slice::from_ref(&c)).is_some());
        drop(c);
        let now = ctx.now();
        // SAFETY: a valid context owned by this test.
        let rc = unsafe { ffi::lib().krb5_set_real_time(ctx.raw, (now + 30) as i32, 0) };
        assert_eq!(rc, 0);
        let c = tgt();
        assert!(file_ccache_bytes(&ctx, std::slice::from_ref(&c)).is_none());
    }
}
