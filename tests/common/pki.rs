//! Throw-away test PKIs made with the `openssl` command: a self-signed CA
//! and certificates it signs (P-256 keys, two days). Used by the etcd TLS
//! cluster (tests/common/etcd.rs) and the gateway's HTTPS listener
//! (tests/gateway_support).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::process::{out, run_cmd};

/// Key options of every key made here (P-256 is openssl's prime256v1).
const EC_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
];

/// Runs `openssl args` in `dir`; panics with its output unless it succeeds.
pub fn openssl(dir: &Path, args: &[&str]) {
    let mut c = Command::new("openssl");
    c.current_dir(dir).args(args);
    let o = run_cmd(&mut c, None, Duration::from_secs(30));
    assert!(o.status.success(), "openssl {args:?} failed\n{}", out(&o));
}

/// Makes a self-signed CA in `dir`: `ca.key` and `ca.pem`, subject `/CN=<cn>`.
pub fn make_ca(dir: &Path, cn: &str) {
    let subj = format!("/CN={cn}");
    let mut a = vec!["req", "-x509"];
    a.extend(EC_KEY);
    a.extend([
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", &subj,
    ]);
    openssl(dir, &a);
}

/// Makes `<name>.key` and `<name>.pem` in `dir`, subject `subj`, signed by
/// the CA of [`make_ca`], with the extensions of `dir/ext.cnf` (its section
/// `section`, or the whole file when `None`).
pub fn make_signed(dir: &Path, name: &str, subj: &str, section: Option<&str>) {
    let (key, csr, pem) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    let mut a = vec!["req"];
    a.extend(EC_KEY);
    a.extend(["-keyout", &key, "-out", &csr, "-subj", subj]);
    openssl(dir, &a);
    let mut x = vec![
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        &pem,
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ];
    if let Some(s) = section {
        x.extend(["-extensions", s]);
    }
    openssl(dir, &x);
}
