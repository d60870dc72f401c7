//! The one error type of the krb5 layer: which libkrb5 operation failed,
//! its com_err code and libkrb5's own message, plus the two classifications
//! the upper layers act on (missing ccache, expired credential).

use super::ffi;

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
    /// An error detected on the Rust side (code 0); told to a Kerberos
    /// peer as a KRB-ERROR's text (code `KRB_ERR_GENERIC`).
    pub fn local(op: &'static str, message: impl Into<String>) -> Self {
        Error {
            op,
            code: 0,
            message: message.into(),
        }
    }

    /// A replayed AP-REQ, found by a replay cache of our own: the code
    /// libkrb5's own replay cache gives (`KRB_AP_ERR_REPEAT`), so the
    /// client sees the same KRB-ERROR.
    pub fn replayed() -> Self {
        Error {
            op: "replay cache",
            code: ffi::KRB5KRB_AP_ERR_REPEAT,
            message: "Request is a replay".into(),
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

    /// True when libkrb5 itself could not be loaded (see `ffi::load`).
    pub fn is_library_missing(&self) -> bool {
        self.op == super::context::DLOPEN_OP
    }

    /// True when the KDC or the ticket said the credential expired.
    pub fn is_expired(&self) -> bool {
        self.code == ffi::KRB5KRB_AP_ERR_TKT_EXPIRED || self.code == ffi::KRB5KDC_ERR_TGT_REVOKED
    }
}

/// Result of every operation of the krb5 layer.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    fn with_code(code: i32) -> Error {
        Error {
            op: "test",
            code,
            message: "m".into(),
        }
    }

    #[test]
    fn display_names_the_operation_and_the_message() {
        let e = Error::local("krb5_cc_resolve", "string contains a NUL byte");
        assert_eq!(e.code, 0);
        assert_eq!(e.to_string(), "krb5_cc_resolve: string contains a NUL byte");
    }

    #[test]
    fn missing_ccache_codes_are_recognised() {
        for c in [
            ffi::KRB5_FCC_NOFILE,
            ffi::KRB5_CC_NOTFOUND,
            ffi::KRB5_CC_BADNAME,
            ffi::KRB5_FCC_PERM,
            ffi::KRB5_CC_FORMAT,
            libc::ENOENT,
        ] {
            assert!(with_code(c).is_ccache_missing(), "code {c}");
        }
        assert!(!with_code(0).is_ccache_missing());
        assert!(!with_code(ffi::KRB5KRB_AP_ERR_TKT_EXPIRED).is_ccache_missing());
    }

    #[test]
    fn expiry_codes_are_recognised() {
        assert!(with_code(ffi::KRB5KRB_AP_ERR_TKT_EXPIRED).is_expired());
        assert!(with_code(ffi::KRB5KDC_ERR_TGT_REVOKED).is_expired());
        assert!(!with_code(ffi::KRB5_FCC_NOFILE).is_expired());
        assert!(!with_code(0).is_expired());
    }
}
