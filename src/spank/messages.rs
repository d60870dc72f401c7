//! What the user reads (srun/sbatch stderr) when something goes wrong, in
//! plain words with what to do; slurmd.log gets the full detail.

use crate::client::ClientError;
use crate::cred::CredError;

/// Outcome of the submit-side ADD, as the plugin acts on it.
#[derive(Debug, PartialEq, Eq)]
pub enum SubmitFailure {
    /// The user has no readable credential cache (C: −100604).
    NoCcache,
    /// Anything else: the message for the user.
    Other(String),
}

/// True when the error means "no credential cache to read".
pub fn is_no_ccache(e: &ClientError) -> bool {
    match e {
        ClientError::LocalCred(CredError::CcacheUnreadable { .. }) => true,
        ClientError::LocalCred(CredError::Krb5(k)) => k.is_ccache_missing(),
        _ => false,
    }
}

/// Classify a failed submit-side ADD.
pub fn submit_failure(e: &ClientError) -> SubmitFailure {
    if is_no_ccache(e) {
        return SubmitFailure::NoCcache;
    }
    let what = match e {
        ClientError::Unreachable(d) => format!("auksd is unreachable ({d})"),
        ClientError::LocalCred(CredError::NoTgt { .. }) => {
            "your credential cache holds no Kerberos TGT: run kinit".to_string()
        }
        ClientError::Auth { reason, .. } => {
            format!("cannot authenticate to auksd with your ticket ({reason}); run kinit")
        }
        other => other.to_string(),
    };
    SubmitFailure::Other(format!(
        "auks: cannot forward your Kerberos credential: {what}"
    ))
}

/// Notice when forwarding is skipped because there is no ccache.
pub const NO_CCACHE_NOTICE: &str =
    "auks: no Kerberos credential cache found: the job runs without Kerberos credential forwarding";

/// Error when `enforced` and there is no ccache.
pub const ENFORCED_NO_CCACHE: &str =
    "auks: no Kerberos credential cache found and this cluster requires one: run kinit, then submit again";

/// Message for the user when the compute node could not get the job's
/// credential from auksd.
pub fn fetch_failure(uid: u32, e: &ClientError) -> String {
    match e {
        ClientError::NotFound { .. } => format!(
            "auks: no credential stored for uid {uid} in auksd; submit with --auks=yes after kinit"
        ),
        ClientError::Unreachable(d) => format!(
            "auks: auksd is unreachable from this node ({d}); the job step has no Kerberos credential"
        ),
        ClientError::Auth { endpoint, reason } => format!(
            "auks: this node cannot authenticate to auksd at {endpoint} ({reason}); the job step has no Kerberos credential (ask your administrator)"
        ),
        ClientError::PermissionDenied { endpoint, .. } => format!(
            "auks: auksd at {endpoint} refused to give this node the credential of uid {uid}; the job step has no Kerberos credential (ask your administrator)"
        ),
        other => format!(
            "auks: cannot get the Kerberos credential of uid {uid}: {other}; the job step has no Kerberos credential"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krb5;

    fn k(code: i32) -> krb5::Error {
        krb5::Error {
            op: "krb5_cc_get_principal",
            code,
            message: "x".into(),
        }
    }

    #[test]
    fn no_ccache_detection() {
        let e = ClientError::LocalCred(CredError::CcacheUnreadable {
            ccache: "FILE:/tmp/krb5cc_1".into(),
            source: k(-1765328189),
        });
        assert_eq!(submit_failure(&e), SubmitFailure::NoCcache);
        let e = ClientError::LocalCred(CredError::Krb5(k(libc::ENOENT)));
        assert_eq!(submit_failure(&e), SubmitFailure::NoCcache);
        let e = ClientError::LocalCred(CredError::NoTgt {
            ccache: "FILE:/x".into(),
        });
        match submit_failure(&e) {
            SubmitFailure::Other(m) => assert!(m.contains("run kinit"), "{m}"),
            f => panic!("{f:?}"),
        }
    }

    #[test]
    fn unreachable_is_said_plainly() {
        let e = ClientError::Unreachable("127.0.0.1:1 (primary): connection refused".into());
        match submit_failure(&e) {
            SubmitFailure::Other(m) => assert!(m.contains("auksd is unreachable"), "{m}"),
            f => panic!("{f:?}"),
        }
        assert!(fetch_failure(2000, &e).contains("auksd is unreachable"));
    }

    #[test]
    fn not_found_message_is_the_documented_one() {
        let e = ClientError::NotFound {
            uid: 2000,
            endpoint: "127.0.0.1:12345".into(),
        };
        assert_eq!(
            fetch_failure(2000, &e),
            "auks: no credential stored for uid 2000 in auksd; submit with --auks=yes after kinit"
        );
    }

    #[test]
    fn enforced_message_says_kinit() {
        assert!(ENFORCED_NO_CCACHE.contains("run kinit"));
        assert!(!NO_CCACHE_NOTICE.contains('\n'));
    }
}
