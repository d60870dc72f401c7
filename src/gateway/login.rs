//! The Kerberos half of a request, run on tokio's blocking pool:
//! 1. a password login (AS exchange: forwardable, renewable, addressless),
//!    verified against the gateway's keytab so that a spoofed KDC cannot
//!    mint access; every bad-credential case gives the same answer;
//! 2. the ADD of that fresh TGT to auksd, authenticated *as the user* with
//!    that same TGT (the `user` ACL role is enough), through the AUKS client
//!    with its primary/secondary fail-over.

use super::error::{ApiError, Backend};
use auks::client::{Client, ClientError};
use auks::config::ClientConfig;
use auks::krb5::password::{self, LoginFailure, LoginOptions};
use auks::krb5::{self, Ccache, Context, Keytab, Principal};
use std::path::PathBuf;
use zeroize::Zeroizing;

/// What the login needs from the configuration.
#[derive(Debug, Clone)]
pub struct LoginSettings {
    pub realm: Option<String>,
    pub keytab: PathBuf,
    pub verify_principal: String,
    pub ticket_lifetime: i32,
    pub renew_lifetime: i32,
}

/// A verified login: who the user is locally and their TGT as a KRB-CRED.
pub struct VerifiedLogin {
    pub principal: String,
    pub local_name: String,
    pub uid: u32,
    pub home: PathBuf,
    /// The fresh TGT, unencrypted KRB-CRED (as AUKS stores it).
    pub krb_cred: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for VerifiedLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedLogin")
            .field("principal", &self.principal)
            .field("local_name", &self.local_name)
            .field("uid", &self.uid)
            .finish_non_exhaustive()
    }
}

fn internal(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("{what}: {e}"))
}

/// Password login + verification (blocking: call from `spawn_blocking`).
/// The reason of a refused login goes to the log only (`log_reason`), never
/// to the client.
pub fn login(
    s: &LoginSettings,
    user: &str,
    password_bytes: &[u8],
    log_reason: &mut Option<String>,
) -> Result<VerifiedLogin, ApiError> {
    let ctx = Context::new().map_err(|e| internal("Kerberos", e))?;
    let name = match &s.realm {
        Some(r) => format!("{user}@{r}"),
        None => user.to_string(),
    };
    let client = Principal::parse(&ctx, &name).map_err(|_| ApiError::Unauthorized)?;
    let principal = client.name().map_err(|e| internal("Kerberos", e))?;
    let opts = LoginOptions {
        lifetime: Some(s.ticket_lifetime),
        renew_lifetime: (s.renew_lifetime > 0).then_some(s.renew_lifetime),
        forwardable: true,
        addressless: true,
    };
    let mut tgt = match password::get_tgt_with_password(&ctx, &client, password_bytes, opts) {
        Ok(t) => t,
        Err(e) => {
            return Err(match password::classify_login_error(&e) {
                LoginFailure::BadCredentials => {
                    *log_reason = Some(format!("{principal}: {e}"));
                    ApiError::Unauthorized
                }
                LoginFailure::KdcUnreachable => ApiError::Unavailable {
                    backend: Backend::Kdc,
                    message: e.message.clone(),
                },
                LoginFailure::Other => ApiError::BadGateway {
                    backend: Backend::Kdc,
                    message: e.to_string(),
                },
            })
        }
    };
    let keytab = Keytab::resolve(&ctx, &keytab_name(&s.keytab))
        .map_err(|e| internal("gateway keytab", e))?;
    let server =
        Principal::parse(&ctx, &s.verify_principal).map_err(|e| internal("verify_principal", e))?;
    if let Err(e) = password::verify_tgt(&ctx, &mut tgt, &server, &keytab) {
        if password::is_keytab_problem(&e) {
            return Err(internal(
                &format!("gateway keytab {} (verify_principal)", s.keytab.display()),
                e,
            ));
        }
        if password::classify_login_error(&e) == LoginFailure::KdcUnreachable {
            return Err(ApiError::Unavailable {
                backend: Backend::Kdc,
                message: e.message.clone(),
            });
        }
        *log_reason = Some(format!(
            "{principal}: the TGT failed verification against the gateway keytab \
             (spoofed KDC?): {e}"
        ));
        return Err(ApiError::Unauthorized);
    }
    let local_name = client.local_name().map_err(|e| {
        *log_reason = Some(format!("{principal}: no local account name: {e}"));
        ApiError::Unauthorized
    })?;
    let account = match nix::unistd::User::from_name(&local_name) {
        Ok(Some(u)) => u,
        Ok(None) => {
            *log_reason = Some(format!("{principal}: no local account {local_name:?}"));
            return Err(ApiError::Unauthorized);
        }
        Err(e) => return Err(internal("account lookup", e)),
    };
    let krb_cred =
        krb5::encode_krb_cred(&ctx, &mut [&mut tgt]).map_err(|e| internal("KRB-CRED", e))?;
    Ok(VerifiedLogin {
        principal,
        local_name,
        uid: account.uid.as_raw(),
        home: account.dir,
        krb_cred,
    })
}

fn keytab_name(p: &std::path::Path) -> String {
    format!("FILE:{}", p.display())
}

/// ADD the login's TGT to auksd, authenticated as the user (blocking).
pub fn add_to_auksd(conf: &ClientConfig, login: &VerifiedLogin) -> Result<(), ApiError> {
    let ctx = Context::new().map_err(|e| internal("Kerberos", e))?;
    let mut creds =
        krb5::decode_krb_cred(&ctx, &login.krb_cred).map_err(|e| internal("KRB-CRED", e))?;
    let client = creds[0]
        .client_principal()
        .map_err(|e| internal("KRB-CRED", e))?;
    // A private in-memory ccache holds the user's TGT while it
    // authenticates the ADD; it is destroyed right after.
    let cc = Ccache::new_unique(&ctx, "MEMORY").map_err(|e| internal("MEMORY ccache", e))?;
    let result = (|| {
        cc.initialize(&client)
            .map_err(|e| internal("MEMORY ccache", e))?;
        cc.store(&mut creds[0])
            .map_err(|e| internal("MEMORY ccache", e))?;
        let name = cc.full_name().map_err(|e| internal("MEMORY ccache", e))?;
        Client::new(conf.clone())
            .with_auth_ccache(Some(name))
            .add(login.krb_cred.clone())
            .map_err(auksd_error)
    })();
    let _ = cc.destroy();
    result
}

/// Map an AUKS client error to the API error naming auksd.
pub fn auksd_error(e: ClientError) -> ApiError {
    match e {
        ClientError::Unreachable(m) => ApiError::Unavailable {
            backend: Backend::Auksd,
            message: format!("cannot reach auksd at {m}"),
        },
        ClientError::Config(c) => ApiError::Internal(format!("auks.conf: {c}")),
        e @ ClientError::LocalCred(_) => ApiError::Internal(e.to_string()),
        e => ApiError::BadGateway {
            backend: Backend::Auksd,
            message: e.to_string(),
        },
    }
}

/// Health probe of the KDC and the keytab: an AS exchange for the
/// verification principal with its key (blocking).
pub fn probe_kdc(s: &LoginSettings) -> Result<(), String> {
    let ctx = Context::new().map_err(|e| e.to_string())?;
    let kt = Keytab::resolve(&ctx, &keytab_name(&s.keytab)).map_err(|e| e.to_string())?;
    let p = Principal::parse(&ctx, &s.verify_principal).map_err(|e| e.to_string())?;
    kt.get_tgt(&p, Some(300), None)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Start-up check: the keytab holds the verification principal's key.
pub fn check_keytab(s: &LoginSettings) -> Result<(), String> {
    let ctx = Context::new().map_err(|e| e.to_string())?;
    let kt = Keytab::resolve(&ctx, &keytab_name(&s.keytab)).map_err(|e| e.to_string())?;
    let want = Principal::parse(&ctx, &s.verify_principal)
        .and_then(|p| p.name())
        .map_err(|e| format!("verify_principal {:?}: {e}", s.verify_principal))?;
    let have = kt.principals().map_err(|e| e.to_string())?;
    if have.iter().any(|p| p == &want) {
        Ok(())
    } else {
        Err(format!(
            "keytab {} has no key for verify_principal {want} (it holds: {})",
            s.keytab.display(),
            if have.is_empty() {
                "nothing".into()
            } else {
                have.join(", ")
            }
        ))
    }
}
