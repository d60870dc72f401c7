//! Frames of `krb5_write_message` (4-byte big-endian length + data), read
//! and written under a deadline; announced lengths are bounded before any
//! allocation.

use super::{Result, SessionError, GROW_FROM};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Map an I/O error of `what` to the session error a caller can act on.
pub(super) fn io_err(what: &'static str, e: io::Error) -> SessionError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => SessionError::TimedOut { what },
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => SessionError::Closed { what },
        _ => SessionError::Io { what, source: e },
    }
}

/// How far the socket timeout armed for a read or write may be from the
/// time left before the deadline without being armed again: a read or
/// write then ends at most this long after its deadline.
const REARM_SLACK: Duration = Duration::from_millis(5);

/// Size of a [`TimedStream`]'s read buffer: a frame's length and its
/// data (an AP-REP, a request, a GET reply) usually arrive together and
/// are then read with one `recv` instead of two.
const READ_BUFFER: usize = 4096;

/// A socket whose read and write timeouts (`SO_RCVTIMEO`, `SO_SNDTIMEO`)
/// are set only when the time left before a deadline has moved away from
/// the armed value by more than [`REARM_SLACK`]: one `setsockopt` per
/// direction in a session of a few milliseconds, where arming before every
/// read and write took eight. Small reads go through a buffer (what it
/// holds is what the peer sent on the wire: lengths and ciphertext; it is
/// zeroed when the stream is dropped all the same).
pub struct TimedStream {
    stream: TcpStream,
    read_armed: Option<Duration>,
    write_armed: Option<Duration>,
    rbuf: Vec<u8>,
    rpos: usize,
    rend: usize,
}

impl Drop for TimedStream {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.rbuf);
    }
}

impl TimedStream {
    /// Wrap `stream`, whose timeouts are armed at its first read or write.
    pub fn new(stream: TcpStream) -> Self {
        TimedStream {
            stream,
            read_armed: None,
            write_armed: None,
            rbuf: Vec::new(),
            rpos: 0,
            rend: 0,
        }
    }

    /// Wrap `stream` whose first bytes, `early`, were already read from it
    /// (what a client sent after its AP-REQ without waiting for the
    /// AP-REP): they are read first.
    pub fn with_early(stream: TcpStream, early: Vec<u8>) -> Self {
        let rend = early.len();
        let mut s = TimedStream::new(stream);
        if rend > 0 {
            s.rbuf = early;
            s.rbuf.resize(rend.max(READ_BUFFER), 0);
            s.rend = rend;
        }
        s
    }

    /// How many bytes were received and not read yet.
    pub(super) fn buffered(&self) -> usize {
        self.rend - self.rpos
    }

    /// Whether the bytes received and not read yet hold a whole frame:
    /// reading it will not wait for the peer.
    pub(super) fn holds_frame(&self) -> bool {
        let b = &self.rbuf[self.rpos..self.rend];
        b.len() >= 4
            && (b.len() - 4) as u64 >= u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Read some of `dst` (0: the peer closed), from the buffer when it
    /// holds anything, else from the socket within `left`: through the
    /// buffer for a small `dst`, directly into a large one.
    fn read_some(&mut self, dst: &mut [u8], left: Duration) -> io::Result<usize> {
        if self.rpos < self.rend {
            let n = (self.rend - self.rpos).min(dst.len());
            dst[..n].copy_from_slice(&self.rbuf[self.rpos..self.rpos + n]);
            self.rpos += n;
            return Ok(n);
        }
        self.arm(true, left)?;
        if dst.len() >= READ_BUFFER {
            return self.stream.read(dst);
        }
        if self.rbuf.is_empty() {
            self.rbuf = vec![0; READ_BUFFER];
        }
        let got = self.stream.read(&mut self.rbuf)?;
        let n = got.min(dst.len());
        dst[..n].copy_from_slice(&self.rbuf[..n]);
        (self.rpos, self.rend) = (n, got);
        Ok(n)
    }

    /// `SO_RCVTIMEO` (`read`) or `SO_SNDTIMEO` within [`REARM_SLACK`] of
    /// `left` (which is never zero).
    fn arm(&mut self, read: bool, left: Duration) -> io::Result<()> {
        let armed = if read {
            &mut self.read_armed
        } else {
            &mut self.write_armed
        };
        if armed.is_some_and(|a| a.max(left) - a.min(left) <= REARM_SLACK) {
            return Ok(());
        }
        // An error leaves the old value unknown: arm again next time.
        *armed = None;
        if read {
            self.stream.set_read_timeout(Some(left))?;
        } else {
            self.stream.set_write_timeout(Some(left))?;
        }
        *armed = Some(left);
        Ok(())
    }
}

/// Move `len` bytes through `stream` before `deadline`: `step(stream,
/// done, left)` arms the socket timeout for `left` and transfers from
/// offset `done`, returning how many bytes moved (0: the peer closed).
fn transfer_by(
    stream: &mut TimedStream,
    len: usize,
    deadline: Instant,
    what: &'static str,
    mut step: impl FnMut(&mut TimedStream, usize, Duration) -> io::Result<usize>,
) -> Result<()> {
    let mut done = 0;
    while done < len {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(SessionError::TimedOut { what });
        }
        match step(stream, done, left) {
            Ok(0) => return Err(SessionError::Closed { what }),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A timeout armed up to REARM_SLACK short of the deadline:
            // wait on until the deadline itself.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) && Instant::now() < deadline => {}
            Err(e) => return Err(io_err(what, e)),
        }
    }
    Ok(())
}

/// Read exactly `buf.len()` bytes before `deadline`.
fn read_exact_by(
    stream: &mut TimedStream,
    buf: &mut [u8],
    deadline: Instant,
    what: &'static str,
) -> Result<()> {
    transfer_by(stream, buf.len(), deadline, what, |s, done, left| {
        s.read_some(&mut buf[done..], left)
    })
}

/// Write all of `buf` before `deadline`.
pub(super) fn write_all(
    stream: &mut TimedStream,
    buf: &[u8],
    deadline: Instant,
    what: &'static str,
) -> Result<()> {
    transfer_by(stream, buf.len(), deadline, what, |s, done, left| {
        s.arm(false, left)?;
        s.stream.write(&buf[done..])
    })
}

/// Read the single status byte of the sendauth version reply.
pub(super) fn read_byte(
    stream: &mut TimedStream,
    deadline: Instant,
    what: &'static str,
) -> Result<u8> {
    let mut byte = [0u8; 1];
    read_exact_by(stream, &mut byte, deadline, what)?;
    Ok(byte[0])
}

/// Read one `krb5_write_message` frame (4-byte big-endian length + data),
/// refusing lengths above `max` before allocating anything.
pub fn read_frame(
    stream: &mut TimedStream,
    max: usize,
    deadline: Instant,
    what: &'static str,
) -> Result<Vec<u8>> {
    let mut len = [0u8; 4];
    read_exact_by(stream, &mut len, deadline, what)?;
    let n = u32::from_be_bytes(len);
    if n as u64 > max as u64 {
        return Err(SessionError::TooLarge {
            what,
            len: n.into(),
            max,
        });
    }
    let n = n as usize;
    if n <= GROW_FROM {
        let mut data = vec![0u8; n];
        read_exact_by(stream, &mut data, deadline, what)?;
        return Ok(data);
    }
    // A large frame (a DUMP reply): memory follows what the peer really
    // sent, one chunk at a time, never the announced length alone.
    let mut data: Vec<u8> = Vec::with_capacity(GROW_FROM);
    while data.len() < n {
        let chunk = (n - data.len()).min(data.len().max(GROW_FROM));
        let at = data.len();
        data.resize(at + chunk, 0);
        read_exact_by(stream, &mut data[at..], deadline, what)?;
    }
    Ok(data)
}

/// The earlier of `now + timeout` and `deadline`.
pub(super) fn bound(timeout: Duration, deadline: Option<Instant>) -> Instant {
    let t = Instant::now() + timeout;
    deadline.map_or(t, |d| d.min(t))
}

/// Append one frame (length prefix + data) to `out`.
pub(super) fn push_frame(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
}

/// Split one complete frame off the front of `buf`: `None` while it is
/// incomplete, else its data and the number of bytes it used.
pub(super) fn take_frame(
    buf: &[u8],
    max: usize,
    what: &'static str,
) -> Result<Option<(Vec<u8>, usize)>> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let n = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if n as u64 > max as u64 {
        return Err(SessionError::TooLarge {
            what,
            len: n.into(),
            max,
        });
    }
    let end = 4 + n as usize;
    if buf.len() < end {
        return Ok(None);
    }
    Ok(Some((buf[4..end].to_vec(), end)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    /// The error of reading one frame of at most 1 KiB within `wait`.
    fn read_1k(b: TcpStream, wait: Duration) -> SessionError {
        read_frame(
            &mut TimedStream::new(b),
            1024,
            Instant::now() + wait,
            "test",
        )
        .unwrap_err()
    }

    #[test]
    fn frame_length_is_bounded_before_allocation() {
        let (mut a, b) = pair();
        a.write_all(&0xffff_ffffu32.to_be_bytes()).unwrap();
        let err = read_1k(b, Duration::from_secs(2));
        assert!(
            matches!(
                err,
                SessionError::TooLarge {
                    len: 0xffff_ffff,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn silent_peer_times_out() {
        let (_a, b) = pair();
        let t = Instant::now();
        let err = read_1k(b, Duration::from_millis(200));
        assert!(matches!(err, SessionError::TimedOut { .. }), "{err}");
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn timeout_is_armed_again_only_when_the_time_left_moves() {
        let (mut a, b) = pair();
        let mut t = TimedStream::new(b);
        a.write_all(&[0, 0, 0, 1, 7, 0, 0, 0, 1, 8]).unwrap();
        let long = Duration::from_secs(10);
        assert_eq!(
            read_frame(&mut t, 16, Instant::now() + long, "t").unwrap(),
            [7]
        );
        let armed = t.read_armed.expect("armed by the first read");
        assert!(armed <= long && armed > long - REARM_SLACK, "{armed:?}");
        // Nearly the same time left: the armed value is kept.
        assert_eq!(
            read_frame(&mut t, 16, Instant::now() + long, "t").unwrap(),
            [8]
        );
        assert_eq!(t.read_armed, Some(armed));
        // A much nearer deadline is armed again and honoured.
        let start = Instant::now();
        let err = read_frame(&mut t, 16, start + Duration::from_millis(200), "t").unwrap_err();
        assert!(matches!(err, SessionError::TimedOut { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(2));
        assert!(t
            .read_armed
            .is_some_and(|v| v <= Duration::from_millis(200)));
        assert_eq!(t.write_armed, None);
    }

    #[test]
    fn buffered_reads_keep_the_byte_stream_intact() {
        let (mut a, b) = pair();
        let big: Vec<u8> = (0..3 * READ_BUFFER + 7).map(|i| (i % 251) as u8).collect();
        let mut wire = vec![5u8];
        push_frame(&mut wire, &[1, 2, 3]);
        push_frame(&mut wire, &big);
        push_frame(&mut wire, &[9]);
        let writer = std::thread::spawn(move || {
            // In pieces that cut frames and lengths anywhere.
            for piece in wire.chunks(1000) {
                a.write_all(piece).unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
            a
        });
        let mut t = TimedStream::new(b);
        let by = Instant::now() + Duration::from_secs(10);
        assert_eq!(read_byte(&mut t, by, "t").unwrap(), 5);
        assert_eq!(read_frame(&mut t, 1 << 20, by, "t").unwrap(), [1, 2, 3]);
        assert_eq!(read_frame(&mut t, 1 << 20, by, "t").unwrap(), big);
        assert_eq!(read_frame(&mut t, 1 << 20, by, "t").unwrap(), [9]);
        drop(writer.join().unwrap());
        let err = read_frame(&mut t, 16, by, "t").unwrap_err();
        assert!(matches!(err, SessionError::Closed { .. }), "{err}");
    }

    #[test]
    fn truncated_frame_is_closed_error() {
        let (mut a, b) = pair();
        a.write_all(&[0, 0, 0, 10, 1, 2]).unwrap();
        drop(a);
        let err = read_1k(b, Duration::from_secs(2));
        assert!(matches!(err, SessionError::Closed { .. }), "{err}");
    }
}
