//! Credential renewal: the per-job renewer behind `auks -R once|loop`
//! (spec §8.3), the `auksdrenewer` daemon that keeps the credentials
//! stored in auksd alive (§6), and the `HelperScript` hook (§8.4).
//!
//! # Renewal policy
//!
//! One pure function, [`decide`], is shared by both renewers. A credential
//! is renewed whenever its remaining life (`endtime - now`) is at most
//! `MinLifeTime`, and this is repeated until the end of its renewable
//! period: the last stretch up to `renew_till` is covered (fixing §11.18,
//! where a credential whose lifetime was not longer than `MinLifeTime` was
//! abandoned). Renewal stops being attempted when it cannot help: the
//! ticket is not renewable, has no lifetime, has expired, or already ends
//! at `renew_till` (the KDC caps a renewed ticket there).
//!
//! The per-job renewer prefers a credential held by auksd for its uid, but
//! only when it is really fresher (same principal, later end time; fixing
//! §11.17), and otherwise renews at the KDC; a cross-realm TGT the
//! credential held (or the configured `CrossRealm`) is re-acquired after a
//! KDC renewal, which drops it. In loop mode it checks again exactly when
//! the credential becomes due, and at least every `Delay` seconds; while a
//! renewal is due (it failed, or the ticket lifetime is not longer than
//! `MinLifeTime`) it checks again after half the remaining life, and while
//! a renewal is impossible it checks again at expiry (auksd may receive a
//! fresher credential meanwhile): always at least 1 s, at most `Delay`
//! apart, so it looks again before the credential expires ([`next_check`]).
//! It stops by itself when its ccache disappears (the job ended: exit 0)
//! or when the credential has expired (exit 11).
//!
//! # Files
//! - [`policy`]: [`decide`] and [`next_check`], pure;
//! - [`job`]: the per-job renewer ([`JobRenewer`], [`run_cli`]), stopped
//!   by [`Stop`] ([`stop`]);
//! - [`auksdrenewer`]: one pass over auksd's store ([`renewer_pass`]) and
//!   the daemon around it ([`run_renewer`]);
//! - [`helper`]: the one `HelperScript` runner, also used by the plugin.

pub mod auksdrenewer;
pub mod helper;
pub mod job;
pub mod policy;
pub mod stop;

pub use auksdrenewer::{renewer_pass, run_renewer, PassStats, RenewerError, RenewerOptions};
pub use helper::{run_helper, run_helper_with, HelperOutcome, RunAs, HELPER_TIMEOUT};
pub use job::{run_cli, JobRenewer, RenewError, Source, Step};
pub use policy::{decide, next_check, Decision, Times, Why};
pub use stop::Stop;

/// Exit status of `auks -R` when the helper script failed.
pub const EXIT_HELPER: i32 = 10;
/// Exit status of `auks -R` when renewal is impossible or failed.
pub const EXIT_IMPOSSIBLE: i32 = 11;
/// Exit status of `auks -R` for a local credential cache problem (as the
/// other `auks` actions).
pub const EXIT_CCACHE: i32 = 7;
