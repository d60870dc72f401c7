//! FILE ccaches written field by field for the tests of `tests.rs` and
//! `creds_tests.rs`, in any format version.

/// A FILE ccache of format `v` under construction; the positions of its
/// length fields and counts are recorded for the garbage tests.
pub(super) struct CcFile {
    pub v: u16,
    pub out: Vec<u8>,
    pub lengths: Vec<usize>,
    pub counts: Vec<usize>,
}

/// What a credential holds after its client and server principals.
pub(super) struct Fields<'a> {
    pub enctype: u16,
    pub key: &'a [u8],
    pub times: [u32; 4],
    pub is_skey: u8,
    pub flags: u32,
    pub addresses: &'a [(u16, Vec<u8>)],
    pub authdata: &'a [(u16, Vec<u8>)],
    pub ticket: &'a [u8],
    pub second: &'a [u8],
}

impl CcFile {
    /// The file header, with the v4 time offset tag if `offset` is
    /// given; the default principal comes next.
    pub fn header(v: u16, offset: Option<(i32, i32)>) -> Self {
        let mut f = CcFile {
            v,
            out: (0x0500 + v).to_be_bytes().to_vec(),
            lengths: vec![],
            counts: vec![],
        };
        if v == 4 {
            match offset {
                Some((s, us)) => {
                    for x in [12u16, 1, 8] {
                        f.out.extend_from_slice(&x.to_be_bytes());
                    }
                    f.out.extend_from_slice(&s.to_be_bytes());
                    f.out.extend_from_slice(&us.to_be_bytes());
                }
                None => f.out.extend_from_slice(&[0, 0]),
            }
        }
        f
    }

    /// An integer, in host byte order in v1 and v2, else big-endian.
    fn int(&mut self, ne: &[u8], be: &[u8]) {
        self.out.extend_from_slice(if self.v < 3 { ne } else { be });
    }

    pub fn u16(&mut self, n: u16) {
        self.int(&n.to_ne_bytes(), &n.to_be_bytes());
    }

    pub fn u32(&mut self, n: u32) {
        self.int(&n.to_ne_bytes(), &n.to_be_bytes());
    }

    pub fn count(&mut self, n: usize) {
        self.counts.push(self.out.len());
        self.u32(n as u32);
    }

    pub fn data(&mut self, d: &[u8]) {
        self.lengths.push(self.out.len());
        self.u32(d.len() as u32);
        self.out.extend_from_slice(d);
    }

    /// A principal of name type `name_type` (not written in v1).
    pub fn principal(&mut self, name_type: i32, comps: &[&str], realm: &str) {
        if self.v != 1 {
            self.u32(name_type as u32);
        }
        self.count(comps.len() + usize::from(self.v == 1));
        self.data(realm.as_bytes());
        for c in comps {
            self.data(c.as_bytes());
        }
    }

    /// The rest of a credential after its server: key, times, flags,
    /// addresses, authdata, tickets.
    pub fn fields(&mut self, f: &Fields<'_>) {
        self.u16(f.enctype);
        if self.v == 3 {
            self.u16(f.enctype);
        }
        self.data(f.key);
        for t in f.times {
            self.u32(t);
        }
        self.out.push(f.is_skey);
        self.u32(f.flags);
        for list in [f.addresses, f.authdata] {
            self.count(list.len());
            for (t, d) in list {
                self.u16(*t);
                self.data(d);
            }
        }
        self.data(f.ticket);
        self.data(f.second);
    }
}
