//! Prometheus's own check of a metrics text (`promtool check metrics`,
//! Debian package `prometheus`), shared by the metrics tests.

use std::io::Write;
use std::process::{Command, Stdio};

/// `promtool check metrics` on `text`: `None` when promtool is not
/// installed, else whether it accepted the text and what it said.
pub fn promtool(text: &str) -> Option<(bool, String)> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let msg = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), msg))
}
