//! HTTP Basic credentials (RFC 7617): the user name, checked to be a plain
//! account name, and the password in a zeroized buffer. Nothing here is
//! ever logged.

use base64::Engine;
use zeroize::Zeroizing;

/// A user name and password from an `Authorization: Basic` header.
pub struct BasicCredentials {
    pub user: String,
    pub password: Zeroizing<Vec<u8>>,
}

/// Longest accepted header value (a generous bound for name + password).
const MAX_HEADER: usize = 4096;

/// Parse the `Authorization` header value; `None` = absent or unusable
/// (answered as 401 like a wrong password).
pub fn parse(header: Option<&[u8]>) -> Option<BasicCredentials> {
    let h = header?;
    if h.len() > MAX_HEADER {
        return None;
    }
    let (scheme, rest) = split_once(h, b' ')?;
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let rest = trim(rest);
    let decoded = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?,
    );
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = std::str::from_utf8(&decoded[..colon]).ok()?.to_string();
    if !valid_user_name(&user) {
        return None;
    }
    let password = Zeroizing::new(decoded[colon + 1..].to_vec());
    if password.is_empty() {
        return None;
    }
    Some(BasicCredentials { user, password })
}

/// A plain account name: letters, digits, `.`, `_`, `-`, at most 64 bytes,
/// not starting with `-` or `.` (no realm, no instance, no path).
pub fn valid_user_name(u: &str) -> bool {
    !u.is_empty()
        && u.len() <= 64
        && !u.starts_with(['-', '.'])
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn split_once(h: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = h.iter().position(|&b| b == sep)?;
    Some((&h[..i], &h[i + 1..]))
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |e| e + 1);
    &b[s..e]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(s: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
        .into_bytes()
    }

    #[test]
    fn parses_user_and_password() {
        let c = parse(Some(&hdr("alice:pa:ss word"))).unwrap();
        assert_eq!(c.user, "alice");
        assert_eq!(&c.password[..], b"pa:ss word");
    }

    #[test]
    fn refuses_bad_headers_and_names() {
        assert!(parse(None).is_none());
        assert!(parse(Some(b"Bearer abc")).is_none());
        assert!(parse(Some(b"Basic !!!")).is_none());
        assert!(parse(Some(&hdr("alice"))).is_none());
        assert!(parse(Some(&hdr("alice:"))).is_none());
        assert!(parse(Some(&hdr("alice@EVIL.REALM:pw"))).is_none());
        assert!(parse(Some(&hdr("host/x:pw"))).is_none());
        assert!(parse(Some(&hdr("-rf:pw"))).is_none());
        assert!(parse(Some(&vec![b'a'; 5000])).is_none());
    }
}
