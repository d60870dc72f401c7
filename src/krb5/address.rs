//! [`KrbAddr`]: the sender/receiver addresses an AUKS auth context binds
//! its KRB-PRIV messages to (an IP address, or the NAT-mode placeholder).

use std::net::IpAddr;

use super::ffi;

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
    /// The krb5 address type and bytes.
    pub(super) fn parts(&self) -> (i32, Vec<u8>) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn addresses_as_a_c_peer_sees_them() {
        let inet = ffi::ADDRTYPE_INET as i32;
        assert_eq!(KrbAddr::Dummy.parts(), (inet, b"dummy".to_vec()));
        let v4 = Ipv4Addr::new(10, 1, 2, 3);
        assert_eq!(
            KrbAddr::Ip(IpAddr::V4(v4)).parts(),
            (inet, vec![10, 1, 2, 3])
        );
        let mapped = v4.to_ipv6_mapped();
        assert_eq!(
            KrbAddr::Ip(IpAddr::V6(mapped)).parts(),
            (inet, vec![10, 1, 2, 3])
        );
        let v6 = Ipv6Addr::LOCALHOST;
        assert_eq!(
            KrbAddr::Ip(IpAddr::V6(v6)).parts(),
            (ffi::ADDRTYPE_INET6 as i32, v6.octets().to_vec())
        );
    }
}
