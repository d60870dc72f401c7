//! Real-KDC test harness shared by the integration tests (`mod common;`).
//!
//! Everything here is real: a throw-away MIT KDC (`krb5kdc`) in a temporary directory,
//! real local accounts (`useradd`), and the real `auksd` / `auks` binaries of this crate.
//! Nothing mutates the environment of the test process: every child gets the realm's
//! variables explicitly, so tests can run in parallel threads.
//!
//! Tests are expected to run as root (they create accounts and drop to them).
//! Every helper panics with a descriptive message on failure.
#![allow(dead_code)]

mod accounts;
mod alicefx;
mod auksd;
mod cli;
pub mod etcd;
mod files;
pub mod load;
mod pki;
mod ports;
mod process;
mod promtool;
mod realm;

// Each test file uses a part of the harness only.
#[allow(unused_imports)]
pub use accounts::*;
#[allow(unused_imports)]
pub use alicefx::*;
#[allow(unused_imports)]
pub use auksd::*;
#[allow(unused_imports)]
pub use cli::*;
#[allow(unused_imports)]
pub use files::*;
#[allow(unused_imports)]
pub use pki::*;
#[allow(unused_imports)]
pub use ports::*;
#[allow(unused_imports)]
pub use process::*;
#[allow(unused_imports)]
pub use promtool::*;
#[allow(unused_imports)]
pub use realm::*;
