//! Standard input and output of `auks`: text lines, and the `--send` /
//! `--receive` credential blob, which is read and written unbuffered so
//! that the only copy of the credential is a zeroizing one.

use crate::Failure;
use auks::proto;
use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::AsFd;
use zeroize::Zeroizing;

/// Write to stderr, ignoring errors (there is nowhere left to report them).
pub fn err_line(msg: &str) {
    let _ = writeln!(io::stderr().lock(), "{msg}");
}

/// Write to stdout; `Err` on a write error (e.g. closed pipe).
pub fn out_text(text: &str) -> io::Result<()> {
    let mut o = io::stdout().lock();
    o.write_all(text.as_bytes())?;
    o.flush()
}

/// Print `text` on stdout: the exit status, 0, or 1 when stdout cannot be
/// written.
pub fn print(text: &str) -> u8 {
    match out_text(text) {
        Ok(()) => 0,
        Err(e) => {
            report_output_error(&e);
            1
        }
    }
}

/// Report that stdout cannot be written.
pub fn report_output_error(e: &io::Error) {
    // A reader that went away (`auks -D | head -1`) is not worth a message.
    if e.kind() != io::ErrorKind::BrokenPipe {
        err_line(&format!("auks: cannot write to standard output: {e}"));
    }
}

/// Write bytes to stdout without going through std's buffer, so the only
/// copy of the credential is the caller's zeroizing one.
pub fn write_raw_stdout(data: &[u8]) -> io::Result<()> {
    let fd = io::stdout().as_fd().try_clone_to_owned()?;
    let mut f = File::from(fd);
    f.write_all(data)?;
    f.flush()
}

/// Read the `--receive` blob from stdin, bounded and unbuffered.
pub fn read_blob() -> Result<Zeroizing<Vec<u8>>, Failure> {
    const SLACK: usize = 64;
    let limit = proto::SEND_BLOB_PREFIX + 4 + proto::RECORD_LEN + SLACK;
    let stdin = io::stdin();
    if stdin.is_terminal() {
        return Err(Failure::Usage(
            "standard input is a terminal: pipe a blob written by 'auks --send' into --receive"
                .into(),
        ));
    }
    let fd = stdin
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| Failure::Input(format!("cannot read standard input: {e}")))?;
    let mut f = File::from(fd);
    // Fixed-size buffer: never reallocated, so no unzeroed copy is left.
    let mut buf = Zeroizing::new(vec![0u8; limit + 1]);
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Failure::Input(format!("cannot read standard input: {e}"))),
        }
    }
    if n > limit {
        return Err(Failure::Input(format!(
            "more than {limit} bytes on standard input: not a credential blob written by 'auks --send'"
        )));
    }
    buf.truncate(n);
    Ok(buf)
}
