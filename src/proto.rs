//! AUKS application message layer (specification §3): a pure, panic-free codec.
//!
//! This module only converts between byte buffers and typed values. It performs
//! no I/O, holds no state and contains no `unsafe`. The Kerberos session layer
//! (KRB-PRIV framing, §2.6) is handled elsewhere; the buffers seen here are the
//! decrypted `user-data` of one KRB-PRIV.
//!
//! # Wire format summary
//!
//! * Every integer is a big-endian `int32`; every message starts with its type.
//! * A credential record ("auks cred", §3.3) is
//!   `[129][principal: 129 bytes][uid][start][end][renew_till][addressless]`
//!   `[crossrealm][capacity D][length L][D bytes data][status]`.
//! * Uids and times are 32 bits on the wire. Times are decoded as *unsigned*
//!   32-bit Unix seconds, so they keep working after 2038 until early 2106
//!   (a C peer that sign-extends will misinterpret them after 2038, §11.9).
//!
//! # Decoders
//!
//! Decoders are strict (§11.8): a truncated message, trailing bytes after a
//! complete message, an unknown type, a principal field size other than 129, a
//! negative or oversized data capacity, a data length larger than the capacity,
//! an oversized ADD length or an impossible DUMP count are all reported as a
//! [`ProtoError`]. No length read from the wire is used to allocate memory
//! before it has been bounded and checked against the bytes actually present.
//! The only deliberate tolerance is the ERROR_REPLY extension (see
//! [`ErrorInfo`]): C servers never append anything to type 21, and newer
//! servers may append a reason that older clients ignore.
//!
//! # Encoders
//!
//! Encoders are infallible. In messages they emit *compact* records, whose
//! data capacity is the data length (no data padding): every 0.5.x receiver
//! uses the capacity from the wire (§3.3), and a GET_REPLY shrinks from
//! 32 941 bytes to about 1.5 KB, which matters because every job step waits
//! for one (with MIT's built-in crypto the 32 KB of padding cost ~0.8 ms of
//! AES per GET). The `--send` blob, a file format, keeps the full capacity
//! 32768. The principal field is always zero-padded (§11.7). Encoders expect
//! values that pass [`CredRecord::validate`] / [`Request::validate`] /
//! [`Reply::validate`]; every value produced by a decoder does. Nothing is ever
//! silently truncated: a record that fails validation is encoded (after a
//! `debug_assert!`, i.e. a panic in debug builds) as a *poisoned* record whose
//! bytes are all zero ([`MIN_RECORD_LEN`] bytes, or [`RECORD_LEN`] in the
//! full form), including the principal field size, which every conforming
//! receiver rejects and which carries no secret.
//!
//! Buffers holding credential material are [`Zeroizing`] so they are wiped on
//! drop; encoders size them exactly up front so no reallocation leaves stale
//! copies behind.

use std::fmt;

use thiserror::Error;
use zeroize::{Zeroize, Zeroizing};

/// Size of the principal field of a cred record on the wire (NUL included).
pub const PRINCIPAL_FIELD: usize = 129;
/// Maximum principal length in bytes (the field must hold a terminating NUL).
pub const MAX_PRINCIPAL_LEN: usize = 128;
/// Data capacity of the `--send` blob and of C's records, and the largest
/// capacity / data length / ADD length accepted by our decoders.
pub const MAX_CRED_DATA: usize = 32768;
/// Size of a cred record with data capacity 0 (everything but the data).
pub const MIN_RECORD_LEN: usize = 4 + PRINCIPAL_FIELD + 6 * 4 + 4 + 4 + 4;
/// Size of a full-capacity cred record (capacity [`MAX_CRED_DATA`], as C
/// sends and as in the `--send` blob): 32937, the largest valid record.
pub const RECORD_LEN: usize = MIN_RECORD_LEN + MAX_CRED_DATA;
/// Largest frame a KRB-PRIV can be carried in (its length prefix is 32
/// bits), less room for the KRB-PRIV encoding and encryption overhead: the
/// receive bound of a DUMP reply, whose size follows from the repository
/// size and not from a constant (a C daemon pads each record to
/// [`RECORD_LEN`], so 100 000 credentials take 3.3 GB).
pub const MAX_DUMP_MESSAGE: usize = u32::MAX as usize - 65536;
/// Most records a DUMP_REPLY may announce: one per uid of a site with a
/// million accounts. A receiver further checks that the announced count
/// fits in the bytes actually received; a daemon holding more answers DUMP
/// with an error saying so, never with a silently cut list.
pub const MAX_DUMP_RECORDS: usize = 1_000_000;
/// Upper bound for one decrypted message other than a DUMP_REPLY: a GET
/// reply holding a full-size record (the largest valid one).
pub const MAX_MESSAGE: usize = 4 + RECORD_LEN;
/// Maximum length in bytes of the reason text of the ERROR_REPLY extension.
pub const MAX_ERROR_REASON: usize = 1024;
/// Size of the length prefix of the `--send` blob (§3.8).
pub const SEND_BLOB_PREFIX: usize = 8;
/// Size of a GET_REPLY as we encode it: 32941.
pub const GET_REPLY_LEN: usize = 4 + RECORD_LEN;

/// Reason codes carried in the ERROR_REPLY extension (§11.1). Values that
/// exist in the C implementation keep the C numbers.
pub mod reason {
    pub const NOT_FOUND: i32 = -100002;
    pub const PRINCIPAL_MISMATCH: i32 = -300204;
    pub const NOT_AUTHORIZED: i32 = -300205;
    pub const NOT_ADDRESSLESS: i32 = -300206;
    pub const CORRUPTED: i32 = -300202;
    pub const UNKNOWN_REQUEST: i32 = -300201;
    pub const BAD_CRED: i32 = -100305;
    pub const NO_LOCAL_NAME: i32 = -100308;
    pub const NO_ACCOUNT: i32 = -100309;
    pub const UNLINK_FAILED: i32 = -100409;
    /// New: ADD refused because the stored credential is fresher.
    pub const NOT_FRESHER: i32 = -300207;
    /// New: the ACL gives the requester no role.
    pub const ACL_DENIED: i32 = -300208;
    /// New: the daemon failed internally (e.g. cannot write its cache).
    pub const INTERNAL: i32 = -300209;
}

/// Size of `rec` encoded by [`encode_record`] (compact: capacity = data length).
pub fn compact_record_len(rec: &CredRecord) -> usize {
    MIN_RECORD_LEN + rec.data.len().min(MAX_CRED_DATA)
}

/// Errors reported by the decoders and by the `validate` methods.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtoError {
    /// The buffer ended before a field was complete.
    #[error("message truncated: expected {needed} more bytes for {what}, {available} available")]
    Truncated {
        /// Field being read.
        what: &'static str,
        /// Bytes that field needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// A complete message was followed by extra bytes.
    #[error("{0} unexpected trailing bytes after a complete message")]
    TrailingBytes(usize),
    /// The message type value is not one we handle in this position.
    #[error("unknown message type {0}")]
    UnknownType(i32),
    /// A known message type in the wrong direction (e.g. a reply type where a
    /// request was expected).
    #[error("message type {got} is not valid in a {expected}")]
    UnexpectedType {
        /// The type that was received.
        got: MsgType,
        /// What kind of message was expected ("request", "reply", ...).
        expected: &'static str,
    },
    /// The principal field size of a cred record is not 129.
    #[error("principal field size {0} is invalid (must be 129)")]
    BadPrincipalFieldSize(i32),
    /// The 129-byte principal field contains no NUL terminator.
    #[error("principal field is not NUL-terminated")]
    PrincipalNotTerminated,
    /// The principal is not valid UTF-8.
    #[error("principal is not valid UTF-8")]
    PrincipalNotUtf8,
    /// The principal is longer than 128 bytes (validation only).
    #[error("principal is {0} bytes long (maximum 128)")]
    PrincipalTooLong(usize),
    /// The principal contains a NUL byte (validation only).
    #[error("principal contains a NUL byte")]
    PrincipalContainsNul,
    /// Data capacity outside `0..=32768`.
    #[error("credential data capacity {0} is invalid (must be 0..=32768)")]
    BadDataCapacity(i32),
    /// Data length negative or larger than the record's capacity.
    #[error("credential data length {length} is invalid (must be 0..={capacity})")]
    BadDataLength {
        /// Length read from the wire.
        length: i32,
        /// Capacity of the record.
        capacity: usize,
    },
    /// Credential data larger than 32768 bytes (validation only).
    #[error("credential data is {0} bytes long (maximum 32768)")]
    CredDataTooLarge(usize),
    /// A time that cannot be represented as unsigned 32-bit seconds
    /// (validation only).
    #[error("{field} {value} cannot be represented on the wire (must be 0..=4294967295)")]
    TimeOutOfRange {
        /// Which time field.
        field: &'static str,
        /// Its value.
        value: i64,
    },
    /// ADD_REQUEST length negative or larger than 32768.
    #[error("ADD request credential length {0} is invalid (must be 0..=32768)")]
    BadAddLength(i32),
    /// DUMP_REPLY count negative or larger than [`MAX_DUMP_RECORDS`].
    #[error("DUMP reply record count {0} is invalid (must be 0..={MAX_DUMP_RECORDS})")]
    BadDumpCount(i32),
    /// DUMP_REPLY count larger than the bytes that follow could hold.
    #[error("DUMP reply announces {count} records but only {available} bytes follow (at least {needed} needed)")]
    DumpCountExceedsMessage {
        /// Announced record count.
        count: usize,
        /// Minimum number of bytes those records need.
        needed: usize,
        /// Bytes present after the count.
        available: usize,
    },
    /// More than [`MAX_DUMP_RECORDS`] records in a DUMP reply (validation only).
    #[error("DUMP reply holds {0} records (maximum {MAX_DUMP_RECORDS})")]
    TooManyDumpRecords(usize),
    /// The `--send` blob length prefix matches the payload size in neither byte order.
    #[error("send blob length prefix (little-endian {le}, big-endian {be}) does not match the {actual} bytes that follow")]
    SendBlobLength {
        /// Prefix read as little-endian.
        le: u64,
        /// Prefix read as big-endian.
        be: u64,
        /// Actual payload size.
        actual: usize,
    },
}

/// AUKS message types (§3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum MsgType {
    PingRequest = 0,
    ListRequest = 1,
    AddRequest = 2,
    GetRequest = 3,
    RemoveRequest = 4,
    CloseRequest = 5,
    DumpRequest = 6,
    /// Never sent to the daemon; type tag of the `--send` blob.
    CredDumpRequest = 7,
    PingReply = 20,
    ErrorReply = 21,
    /// Defined by the C implementation, never sent.
    ListReply = 22,
    AddReply = 23,
    GetReply = 24,
    RemoveReply = 25,
    DumpReply = 26,
}

impl MsgType {
    /// Wire value.
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// Protocol name, as in the C sources (e.g. `GET_REPLY`).
    pub fn name(self) -> &'static str {
        match self {
            MsgType::PingRequest => "PING_REQUEST",
            MsgType::ListRequest => "LIST_REQUEST",
            MsgType::AddRequest => "ADD_REQUEST",
            MsgType::GetRequest => "GET_REQUEST",
            MsgType::RemoveRequest => "REMOVE_REQUEST",
            MsgType::CloseRequest => "CLOSE_REQUEST",
            MsgType::DumpRequest => "DUMP_REQUEST",
            MsgType::CredDumpRequest => "CRED_DUMP_REQUEST",
            MsgType::PingReply => "PING_REPLY",
            MsgType::ErrorReply => "ERROR_REPLY",
            MsgType::ListReply => "LIST_REPLY",
            MsgType::AddReply => "ADD_REPLY",
            MsgType::GetReply => "GET_REPLY",
            MsgType::RemoveReply => "REMOVE_REPLY",
            MsgType::DumpReply => "DUMP_REPLY",
        }
    }

    /// True for the request types (0..=7).
    pub fn is_request(self) -> bool {
        self.as_i32() < 20
    }
}

impl fmt::Display for MsgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.as_i32())
    }
}

impl From<MsgType> for i32 {
    fn from(t: MsgType) -> i32 {
        t.as_i32()
    }
}

impl TryFrom<i32> for MsgType {
    type Error = ProtoError;

    fn try_from(v: i32) -> Result<Self, ProtoError> {
        Ok(match v {
            0 => MsgType::PingRequest,
            1 => MsgType::ListRequest,
            2 => MsgType::AddRequest,
            3 => MsgType::GetRequest,
            4 => MsgType::RemoveRequest,
            5 => MsgType::CloseRequest,
            6 => MsgType::DumpRequest,
            7 => MsgType::CredDumpRequest,
            20 => MsgType::PingReply,
            21 => MsgType::ErrorReply,
            22 => MsgType::ListReply,
            23 => MsgType::AddReply,
            24 => MsgType::GetReply,
            25 => MsgType::RemoveReply,
            26 => MsgType::DumpReply,
            other => return Err(ProtoError::UnknownType(other)),
        })
    }
}

/// One credential record ("auks cred", §3.3).
///
/// `Debug` never prints the credential data, only its length.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CredRecord {
    /// Unparsed client principal: at most 128 bytes, no NUL.
    pub principal: String,
    /// Local uid (computed by the daemon, §4.2).
    pub uid: u32,
    /// Unix seconds, `0..=u32::MAX` (unsigned 32-bit on the wire).
    pub starttime: i64,
    /// Unix seconds, `0..=u32::MAX`.
    pub endtime: i64,
    /// Unix seconds, `0..=u32::MAX`; 0 if not renewable.
    pub renew_till: i64,
    /// No client addresses in the first ticket.
    pub addressless: bool,
    /// The KRB-CRED holds more than one ticket.
    pub crossrealm: bool,
    /// KRB-CRED DER, at most [`MAX_CRED_DATA`] bytes.
    pub data: Zeroizing<Vec<u8>>,
    /// AUKS status code (0 in practice).
    pub status: i32,
}

impl fmt::Debug for CredRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredRecord")
            .field("principal", &self.principal)
            .field("uid", &self.uid)
            .field("starttime", &self.starttime)
            .field("endtime", &self.endtime)
            .field("renew_till", &self.renew_till)
            .field("addressless", &self.addressless)
            .field("crossrealm", &self.crossrealm)
            .field("data", &format_args!("<{} bytes>", self.data.len()))
            .field("status", &self.status)
            .finish()
    }
}

impl CredRecord {
    /// Checks that the record can be encoded without loss: principal at most
    /// 128 bytes without NUL, data at most 32768 bytes, times in `0..=u32::MAX`.
    /// Records produced by [`decode_record`] always pass.
    pub fn validate(&self) -> Result<(), ProtoError> {
        if self.principal.len() > MAX_PRINCIPAL_LEN {
            return Err(ProtoError::PrincipalTooLong(self.principal.len()));
        }
        if self.principal.as_bytes().contains(&0) {
            return Err(ProtoError::PrincipalContainsNul);
        }
        if self.data.len() > MAX_CRED_DATA {
            return Err(ProtoError::CredDataTooLarge(self.data.len()));
        }
        for (field, value) in [
            ("starttime", self.starttime),
            ("endtime", self.endtime),
            ("renew_till", self.renew_till),
        ] {
            if u32::try_from(value).is_err() {
                return Err(ProtoError::TimeOutOfRange { field, value });
            }
        }
        Ok(())
    }
}

/// Diagnostic content of an ERROR_REPLY (§3.5, extension per §11.1).
///
/// On the wire: `[21]`, optionally followed by
/// `[int32 code][int32 len][len bytes UTF-8 reason]` with `len <= 1024`.
/// C clients ignore the extension. `ErrorInfo::default()` (both `None`) is the
/// plain 4-byte C ERROR_REPLY. When either field is `Some`, the encoder emits
/// the extension with `code.unwrap_or(0)` and `reason.unwrap_or("")`, and the
/// decoder then returns both as `Some`. Reasons longer than 1024 bytes are cut
/// at a character boundary by the encoder (this is the one place where
/// truncation is harmless: it is a diagnostic text).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorInfo {
    /// AUKS error code (e.g. −100002), if the server sent one.
    pub code: Option<i32>,
    /// Human-readable reason, if the server sent one. It comes from the peer:
    /// sanitise before printing to a terminal or log.
    pub reason: Option<String>,
}

/// A client request.
#[derive(Clone, PartialEq, Eq)]
pub enum Request {
    /// PING_REQUEST `[0]`.
    Ping,
    /// LIST_REQUEST `[1]` (the C server answers PING_REPLY).
    List,
    /// ADD_REQUEST `[2][L][L bytes KRB-CRED]`, L at most 32768.
    Add(Zeroizing<Vec<u8>>),
    /// GET_REQUEST `[3][uid]`.
    Get(u32),
    /// REMOVE_REQUEST `[4][uid]`.
    Remove(u32),
    /// CLOSE_REQUEST `[5]`; the server sends no reply.
    Close,
    /// DUMP_REQUEST `[6]`.
    Dump,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Ping => f.write_str("Ping"),
            Request::List => f.write_str("List"),
            Request::Add(d) => write!(f, "Add(<{} bytes>)", d.len()),
            Request::Get(u) => f.debug_tuple("Get").field(u).finish(),
            Request::Remove(u) => f.debug_tuple("Remove").field(u).finish(),
            Request::Close => f.write_str("Close"),
            Request::Dump => f.write_str("Dump"),
        }
    }
}

impl Request {
    /// Wire type of this request.
    pub fn msg_type(&self) -> MsgType {
        match self {
            Request::Ping => MsgType::PingRequest,
            Request::List => MsgType::ListRequest,
            Request::Add(_) => MsgType::AddRequest,
            Request::Get(_) => MsgType::GetRequest,
            Request::Remove(_) => MsgType::RemoveRequest,
            Request::Close => MsgType::CloseRequest,
            Request::Dump => MsgType::DumpRequest,
        }
    }

    /// Checks that the request can be encoded so that our decoder accepts it
    /// (ADD data at most 32768 bytes).
    pub fn validate(&self) -> Result<(), ProtoError> {
        match self {
            Request::Add(d) if d.len() > MAX_CRED_DATA => {
                Err(ProtoError::CredDataTooLarge(d.len()))
            }
            _ => Ok(()),
        }
    }
}

/// A server reply. LIST_REPLY (22) is never sent and is not represented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// PING_REPLY `[20]` (answer to PING and LIST).
    Ping,
    /// ERROR_REPLY `[21]` plus optional extension.
    Error(ErrorInfo),
    /// ADD_REPLY `[23]`.
    Add,
    /// GET_REPLY `[24][record]`.
    Get(CredRecord),
    /// REMOVE_REPLY `[25]`.
    Remove,
    /// DUMP_REPLY `[26][n][n records]`.
    Dump(Vec<CredRecord>),
}

impl Reply {
    /// Wire type of this reply.
    pub fn msg_type(&self) -> MsgType {
        match self {
            Reply::Ping => MsgType::PingReply,
            Reply::Error(_) => MsgType::ErrorReply,
            Reply::Add => MsgType::AddReply,
            Reply::Get(_) => MsgType::GetReply,
            Reply::Remove => MsgType::RemoveReply,
            Reply::Dump(_) => MsgType::DumpReply,
        }
    }

    /// Checks every record and the DUMP record count (at most
    /// [`MAX_DUMP_RECORDS`]; a daemon holding more must not send them all).
    pub fn validate(&self) -> Result<(), ProtoError> {
        match self {
            Reply::Get(rec) => rec.validate(),
            Reply::Dump(recs) => {
                if recs.len() > MAX_DUMP_RECORDS {
                    return Err(ProtoError::TooManyDumpRecords(recs.len()));
                }
                recs.iter().try_for_each(CredRecord::validate)
            }
            _ => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------
// Reading

/// Bounds-checked cursor over an input buffer; never panics.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ProtoError> {
        match self.buf.split_at_checked(n) {
            Some((head, tail)) => {
                self.buf = tail;
                Ok(head)
            }
            None => Err(ProtoError::Truncated {
                what,
                needed: n,
                available: self.buf.len(),
            }),
        }
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, ProtoError> {
        match self.buf.split_first_chunk::<4>() {
            Some((head, tail)) => {
                self.buf = tail;
                Ok(i32::from_be_bytes(*head))
            }
            None => Err(ProtoError::Truncated {
                what,
                needed: 4,
                available: self.buf.len(),
            }),
        }
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, ProtoError> {
        self.i32(what).map(|v| u32::from_ne_bytes(v.to_ne_bytes()))
    }

    fn finish(&self) -> Result<(), ProtoError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(ProtoError::TrailingBytes(n)),
        }
    }
}

fn read_record(r: &mut Reader<'_>) -> Result<CredRecord, ProtoError> {
    let field = r.i32("principal field size")?;
    if usize::try_from(field).ok() != Some(PRINCIPAL_FIELD) {
        return Err(ProtoError::BadPrincipalFieldSize(field));
    }
    let pfield = r.take(PRINCIPAL_FIELD, "principal")?;
    // Bytes after the first NUL are padding (not zeroed by C daemons, ignored).
    let plen = pfield
        .iter()
        .position(|&b| b == 0)
        .ok_or(ProtoError::PrincipalNotTerminated)?;
    let principal = std::str::from_utf8(pfield.get(..plen).unwrap_or_default())
        .map_err(|_| ProtoError::PrincipalNotUtf8)?
        .to_owned();
    let uid = r.u32("uid")?;
    let starttime = i64::from(r.u32("starttime")?);
    let endtime = i64::from(r.u32("endtime")?);
    let renew_till = i64::from(r.u32("renew_till")?);
    // C writes 0/1; any non-zero value is taken as true.
    let addressless = r.i32("addressless flag")? != 0;
    let crossrealm = r.i32("crossrealm flag")? != 0;
    let cap_raw = r.i32("data capacity")?;
    let capacity = match usize::try_from(cap_raw) {
        Ok(c) if c <= MAX_CRED_DATA => c,
        _ => return Err(ProtoError::BadDataCapacity(cap_raw)),
    };
    let len_raw = r.i32("data length")?;
    let length = match usize::try_from(len_raw) {
        Ok(l) if l <= capacity => l,
        _ => {
            return Err(ProtoError::BadDataLength {
                length: len_raw,
                capacity,
            })
        }
    };
    let area = r.take(capacity, "credential data")?;
    // length <= capacity == area.len(), so this cannot fail.
    let data = Zeroizing::new(area.get(..length).unwrap_or_default().to_vec());
    let status = r.i32("status")?;
    Ok(CredRecord {
        principal,
        uid,
        starttime,
        endtime,
        renew_till,
        addressless,
        crossrealm,
        data,
        status,
    })
}

/// Decodes one cred record at the start of `buf`; returns it and the number of
/// bytes consumed. Bytes after the record are not examined.
pub fn decode_record(buf: &[u8]) -> Result<(CredRecord, usize), ProtoError> {
    let mut r = Reader::new(buf);
    let rec = read_record(&mut r)?;
    Ok((rec, buf.len() - r.remaining()))
}

/// Decodes a request received by the daemon. CRED_DUMP_REQUEST (7) is rejected
/// as [`ProtoError::UnknownType`], as the C daemon does ("unknown request
/// type"); reply types give [`ProtoError::UnexpectedType`].
pub fn decode_request(buf: &[u8]) -> Result<Request, ProtoError> {
    let mut r = Reader::new(buf);
    let t = r.i32("message type")?;
    let req = match MsgType::try_from(t)? {
        MsgType::PingRequest => Request::Ping,
        MsgType::ListRequest => Request::List,
        MsgType::AddRequest => {
            let raw = r.i32("ADD credential length")?;
            let len = match usize::try_from(raw) {
                Ok(l) if l <= MAX_CRED_DATA => l,
                _ => return Err(ProtoError::BadAddLength(raw)),
            };
            let data = r.take(len, "ADD credential data")?;
            Request::Add(Zeroizing::new(data.to_vec()))
        }
        MsgType::GetRequest => Request::Get(r.u32("uid")?),
        MsgType::RemoveRequest => Request::Remove(r.u32("uid")?),
        MsgType::CloseRequest => Request::Close,
        MsgType::DumpRequest => Request::Dump,
        MsgType::CredDumpRequest => return Err(ProtoError::UnknownType(t)),
        got => {
            return Err(ProtoError::UnexpectedType {
                got,
                expected: "request",
            })
        }
    };
    r.finish()?;
    Ok(req)
}

/// Parses the optional ERROR_REPLY extension; anything malformed yields the
/// plain error (C servers never send trailing bytes, so be tolerant here).
/// Bytes after a well-formed extension are ignored (room for future fields).
fn read_error_ext(rest: &[u8]) -> ErrorInfo {
    let mut r = Reader::new(rest);
    let parsed = (|| {
        let code = r.i32("error code").ok()?;
        let len = usize::try_from(r.i32("error reason length").ok()?).ok()?;
        if len > MAX_ERROR_REASON {
            return None;
        }
        let bytes = r.take(len, "error reason").ok()?;
        let mut reason = String::from_utf8_lossy(bytes).into_owned();
        // Lossy replacement can grow the text; keep the encoder's bound.
        truncate_at_char(&mut reason, MAX_ERROR_REASON);
        Some(ErrorInfo {
            code: Some(code),
            reason: Some(reason),
        })
    })();
    parsed.unwrap_or_default()
}

/// Decodes a reply received by a client. LIST_REPLY (22) is rejected as
/// [`ProtoError::UnknownType`] (it is never sent); request types give
/// [`ProtoError::UnexpectedType`].
pub fn decode_reply(buf: &[u8]) -> Result<Reply, ProtoError> {
    let mut r = Reader::new(buf);
    let t = r.i32("message type")?;
    let rep = match MsgType::try_from(t)? {
        MsgType::PingReply => Reply::Ping,
        MsgType::ErrorReply => return Ok(Reply::Error(read_error_ext(r.buf))),
        MsgType::ListReply => return Err(ProtoError::UnknownType(t)),
        MsgType::AddReply => Reply::Add,
        MsgType::GetReply => Reply::Get(read_record(&mut r)?),
        MsgType::RemoveReply => Reply::Remove,
        MsgType::DumpReply => {
            let raw = r.i32("DUMP record count")?;
            let count = match usize::try_from(raw) {
                Ok(c) if c <= MAX_DUMP_RECORDS => c,
                _ => return Err(ProtoError::BadDumpCount(raw)),
            };
            // count <= MAX_DUMP_RECORDS, so this cannot overflow.
            let needed = count.saturating_mul(MIN_RECORD_LEN);
            if needed > r.remaining() {
                return Err(ProtoError::DumpCountExceedsMessage {
                    count,
                    needed,
                    available: r.remaining(),
                });
            }
            let mut recs = Vec::with_capacity(count);
            for _ in 0..count {
                recs.push(read_record(&mut r)?);
            }
            Reply::Dump(recs)
        }
        got => {
            return Err(ProtoError::UnexpectedType {
                got,
                expected: "reply",
            })
        }
    };
    r.finish()?;
    Ok(rep)
}

/// Decodes a `--send` blob (§3.8): `[8-byte length P][P bytes: int32 7 + record]`.
///
/// The prefix is a native-endian `size_t` in C; both byte orders are accepted,
/// whichever equals the number of bytes that follow (they must match exactly).
/// Unlike the C `--receive`, which does not check the type, only type 7
/// (CRED_DUMP_REQUEST) is accepted: anything else is not a blob we produced.
pub fn decode_send_blob(buf: &[u8]) -> Result<CredRecord, ProtoError> {
    let (prefix, payload) =
        buf.split_first_chunk::<SEND_BLOB_PREFIX>()
            .ok_or(ProtoError::Truncated {
                what: "send blob length prefix",
                needed: SEND_BLOB_PREFIX,
                available: buf.len(),
            })?;
    let le = u64::from_le_bytes(*prefix);
    let be = u64::from_be_bytes(*prefix);
    let actual = payload.len();
    let matches = |p: u64| usize::try_from(p).ok() == Some(actual);
    if !matches(le) && !matches(be) {
        return Err(ProtoError::SendBlobLength { le, be, actual });
    }
    let mut r = Reader::new(payload);
    let t = r.i32("message type")?;
    let ty = MsgType::try_from(t)?;
    if ty != MsgType::CredDumpRequest {
        return Err(ProtoError::UnexpectedType {
            got: ty,
            expected: "send blob (CRED_DUMP_REQUEST)",
        });
    }
    let rec = read_record(&mut r)?;
    r.finish()?;
    Ok(rec)
}

// ---------------------------------------------------------------------------
// Writing

fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends `n` zero bytes (chunked copy; much faster than `resize` in debug builds).
fn put_zeros(out: &mut Vec<u8>, mut n: usize) {
    const ZEROS: [u8; 4096] = [0; 4096];
    while n > 0 {
        let k = n.min(ZEROS.len());
        out.extend_from_slice(&ZEROS[..k]);
        n -= k;
    }
}

/// Wire int32 for a length that is known to be small.
fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Makes room for `additional` bytes without leaving a stale copy of `out`'s
/// (possibly secret) contents in freed memory.
fn reserve_zeroizing(out: &mut Vec<u8>, additional: usize) {
    if out.capacity() - out.len() >= additional {
        return;
    }
    let mut grown = Vec::with_capacity(out.len().saturating_add(additional));
    grown.extend_from_slice(out);
    out.zeroize(); // wipes contents and spare capacity
    *out = grown;
}

fn truncate_at_char(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

/// Appends one compact cred record (data capacity = data length;
/// [`compact_record_len`] bytes) to `out`: the form used in messages.
///
/// `rec` should pass [`CredRecord::validate`]. If it does not, this panics in
/// debug builds and otherwise appends a poisoned all-zero record (principal
/// field size 0, capacity 0), which receivers reject and which leaks
/// nothing. If `out` must grow, its old buffer is wiped first.
pub fn encode_record(rec: &CredRecord, out: &mut Vec<u8>) {
    encode_record_with(rec, false, out)
}

/// Appends one full-capacity cred record (capacity 32768, zeroed padding;
/// [`RECORD_LEN`] bytes) to `out`: the form of the `--send` blob. Invalid
/// records as in [`encode_record`] (poisoned, [`RECORD_LEN`] zero bytes).
pub fn encode_record_full(rec: &CredRecord, out: &mut Vec<u8>) {
    encode_record_with(rec, true, out)
}

fn encode_record_with(rec: &CredRecord, full: bool, out: &mut Vec<u8>) {
    let valid = rec.validate();
    debug_assert!(valid.is_ok(), "encoding an invalid cred record: {valid:?}");
    let capacity = if full || valid.is_err() {
        MAX_CRED_DATA
    } else {
        rec.data.len()
    };
    let len = if full {
        RECORD_LEN
    } else if valid.is_err() {
        MIN_RECORD_LEN
    } else {
        compact_record_len(rec)
    };
    reserve_zeroizing(out, len);
    if valid.is_err() {
        put_zeros(out, len);
        return;
    }
    let time = |t: i64| u32::try_from(t).unwrap_or(0);
    put_i32(out, len_i32(PRINCIPAL_FIELD));
    out.extend_from_slice(rec.principal.as_bytes());
    put_zeros(out, PRINCIPAL_FIELD - rec.principal.len());
    put_u32(out, rec.uid);
    put_u32(out, time(rec.starttime));
    put_u32(out, time(rec.endtime));
    put_u32(out, time(rec.renew_till));
    put_i32(out, i32::from(rec.addressless));
    put_i32(out, i32::from(rec.crossrealm));
    put_i32(out, len_i32(capacity));
    put_i32(out, len_i32(rec.data.len()));
    out.extend_from_slice(&rec.data);
    put_zeros(out, capacity - rec.data.len());
    put_i32(out, rec.status);
}

/// Encodes a request. `r` should pass [`Request::validate`]; an oversized ADD
/// (debug builds panic) is sent as is and rejected by the receiver.
pub fn encode_request(r: &Request) -> Zeroizing<Vec<u8>> {
    debug_assert!(r.validate().is_ok(), "encoding an invalid request: {r:?}");
    let size = match r {
        Request::Add(d) => 8 + d.len(),
        Request::Get(_) | Request::Remove(_) => 8,
        _ => 4,
    };
    let mut out = Zeroizing::new(Vec::with_capacity(size));
    put_i32(&mut out, r.msg_type().as_i32());
    match r {
        Request::Add(d) => match i32::try_from(d.len()) {
            Ok(l) => {
                put_i32(&mut out, l);
                out.extend_from_slice(d);
            }
            // Unrepresentable length: send an invalid one rather than a lie.
            Err(_) => put_i32(&mut out, -1),
        },
        Request::Get(uid) | Request::Remove(uid) => put_u32(&mut out, *uid),
        Request::Ping | Request::List | Request::Close | Request::Dump => {}
    }
    out
}

/// Encodes a reply. `r` should pass [`Reply::validate`] (debug builds panic
/// otherwise; see [`encode_record`] for invalid records).
pub fn encode_reply(r: &Reply) -> Zeroizing<Vec<u8>> {
    debug_assert!(r.validate().is_ok(), "encoding an invalid reply: {r:?}");
    let reason = match r {
        Reply::Error(info) if info.code.is_some() || info.reason.is_some() => {
            let mut s = info.reason.clone().unwrap_or_default();
            truncate_at_char(&mut s, MAX_ERROR_REASON);
            Some((info.code.unwrap_or(0), s))
        }
        _ => None,
    };
    let size = match r {
        Reply::Get(rec) => 4 + compact_record_len(rec),
        Reply::Dump(recs) => dump_reply_len(recs.iter()),
        _ => 4 + reason.as_ref().map_or(0, |(_, s)| 8 + s.len()),
    };
    let mut out = Zeroizing::new(Vec::with_capacity(size));
    put_i32(&mut out, r.msg_type().as_i32());
    match r {
        Reply::Error(_) => {
            if let Some((code, text)) = reason {
                put_i32(&mut out, code);
                put_i32(&mut out, len_i32(text.len()));
                out.extend_from_slice(text.as_bytes());
            }
        }
        Reply::Get(rec) => encode_record(rec, &mut out),
        Reply::Dump(recs) => put_dump(recs.iter(), &mut out),
        Reply::Ping | Reply::Add | Reply::Remove => {}
    }
    out
}

/// Size of the DUMP_REPLY [`encode_dump_reply`] makes of `recs`.
pub fn dump_reply_len<'a>(recs: impl Iterator<Item = &'a CredRecord>) -> usize {
    recs.fold(8usize, |n, r| n.saturating_add(compact_record_len(r)))
}

fn put_dump<'a>(recs: impl ExactSizeIterator<Item = &'a CredRecord>, out: &mut Vec<u8>) {
    put_i32(out, len_i32(recs.len()));
    for rec in recs {
        encode_record(rec, out);
    }
}

/// Encodes a DUMP_REPLY of shared records (what the daemon holds) without
/// first copying them into a [`Reply::Dump`]. At most
/// [`MAX_DUMP_RECORDS`] records and [`MAX_DUMP_MESSAGE`] bytes
/// ([`dump_reply_len`]) should be given; the buffer is sized exactly.
pub fn encode_dump_reply<R: AsRef<CredRecord>>(recs: &[R]) -> Zeroizing<Vec<u8>> {
    let size = dump_reply_len(recs.iter().map(AsRef::as_ref));
    let mut out = Zeroizing::new(Vec::with_capacity(size));
    put_i32(&mut out, MsgType::DumpReply.as_i32());
    put_dump(recs.iter().map(AsRef::as_ref), &mut out);
    out
}

/// Encodes a `--send` blob (§3.8) with a little-endian 8-byte length prefix
/// (what C produces on x86_64 and other little-endian hosts).
pub fn encode_send_blob(rec: &CredRecord) -> Zeroizing<Vec<u8>> {
    let payload = 4 + RECORD_LEN;
    let mut out = Zeroizing::new(Vec::with_capacity(SEND_BLOB_PREFIX + payload));
    out.extend_from_slice(&(payload as u64).to_le_bytes());
    put_i32(&mut out, MsgType::CredDumpRequest.as_i32());
    encode_record_full(rec, &mut out);
    out
}

// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(principal: &str, uid: u32, data: &[u8]) -> CredRecord {
        CredRecord {
            principal: principal.to_owned(),
            uid,
            starttime: 1_700_000_000,
            endtime: 1_700_036_000,
            renew_till: 1_700_604_800,
            addressless: true,
            crossrealm: false,
            data: Zeroizing::new(data.to_vec()),
            status: 0,
        }
    }

    fn sample() -> CredRecord {
        rec("alice@EXAMPLE.ORG", 1000, &[0x76, 0x82, 1, 2, 3, 4, 5])
    }

    /// Hand-builds a record with an arbitrary capacity and padding byte.
    fn raw_record(r: &CredRecord, cap: i32, len: i32, pad: u8) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&129i32.to_be_bytes());
        let mut p = r.principal.as_bytes().to_vec();
        p.push(0);
        p.resize(PRINCIPAL_FIELD, pad);
        v.extend_from_slice(&p);
        v.extend_from_slice(&r.uid.to_be_bytes());
        for t in [r.starttime, r.endtime, r.renew_till] {
            v.extend_from_slice(&(t as u32).to_be_bytes());
        }
        v.extend_from_slice(&i32::from(r.addressless).to_be_bytes());
        v.extend_from_slice(&i32::from(r.crossrealm).to_be_bytes());
        v.extend_from_slice(&cap.to_be_bytes());
        v.extend_from_slice(&len.to_be_bytes());
        let mut d = r.data.to_vec();
        d.resize(cap.max(0) as usize, pad);
        v.extend_from_slice(&d);
        v.extend_from_slice(&r.status.to_be_bytes());
        v
    }

    fn with_type(t: i32, body: &[u8]) -> Vec<u8> {
        let mut v = t.to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    fn all_requests() -> Vec<Request> {
        vec![
            Request::Ping,
            Request::List,
            Request::Add(Zeroizing::new(vec![1, 2, 3])),
            Request::Add(Zeroizing::new(Vec::new())),
            Request::Add(Zeroizing::new(vec![0xAB; MAX_CRED_DATA])),
            Request::Get(1000),
            Request::Get(u32::MAX),
            Request::Remove(0),
            Request::Close,
            Request::Dump,
        ]
    }

    fn all_replies() -> Vec<Reply> {
        let mut big = sample();
        big.data = Zeroizing::new(vec![7; MAX_CRED_DATA]);
        big.principal = "p".repeat(MAX_PRINCIPAL_LEN);
        big.starttime = 0;
        big.endtime = i64::from(u32::MAX);
        big.crossrealm = true;
        big.status = -5;
        vec![
            Reply::Ping,
            Reply::Error(ErrorInfo::default()),
            Reply::Error(ErrorInfo {
                code: Some(-100002),
                reason: Some("cred with matching uid not found".into()),
            }),
            Reply::Error(ErrorInfo {
                code: Some(1),
                reason: Some(String::new()),
            }),
            Reply::Add,
            Reply::Get(sample()),
            Reply::Get(big.clone()),
            Reply::Get(CredRecord::default()),
            Reply::Remove,
            Reply::Dump(Vec::new()),
            Reply::Dump(vec![sample(), big, rec("bob@X", 1001, b"")]),
        ]
    }

    #[test]
    fn constants() {
        assert_eq!(MIN_RECORD_LEN, 169);
        assert_eq!(RECORD_LEN, 32937);
        assert_eq!(GET_REPLY_LEN, 32941);
        assert_eq!(MAX_MESSAGE, 8 + 32937 * 4096);
        for v in [0, 1, 2, 3, 4, 5, 6, 7, 20, 21, 22, 23, 24, 25, 26] {
            assert_eq!(MsgType::try_from(v).unwrap().as_i32(), v);
        }
        for v in [-1, 8, 19, 27, i32::MAX, i32::MIN] {
            assert_eq!(MsgType::try_from(v), Err(ProtoError::UnknownType(v)));
        }
        assert!(MsgType::CredDumpRequest.is_request());
        assert!(!MsgType::PingReply.is_request());
    }

    #[test]
    fn request_round_trips_and_bytes() {
        for r in all_requests() {
            let enc = encode_request(&r);
            assert_eq!(decode_request(&enc).unwrap(), r);
        }
        assert_eq!(&encode_request(&Request::Ping)[..], [0, 0, 0, 0]);
        assert_eq!(&encode_request(&Request::List)[..], [0, 0, 0, 1]);
        assert_eq!(&encode_request(&Request::Close)[..], [0, 0, 0, 5]);
        assert_eq!(&encode_request(&Request::Dump)[..], [0, 0, 0, 6]);
        assert_eq!(
            &encode_request(&Request::Get(0x01020304))[..],
            [0, 0, 0, 3, 1, 2, 3, 4]
        );
        assert_eq!(
            &encode_request(&Request::Remove(u32::MAX))[..],
            [0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            &encode_request(&Request::Add(Zeroizing::new(vec![9, 8])))[..],
            [0, 0, 0, 2, 0, 0, 0, 2, 9, 8]
        );
    }

    #[test]
    fn reply_round_trips_and_sizes() {
        for r in all_replies() {
            let enc = encode_reply(&r);
            assert_eq!(decode_reply(&enc).unwrap(), r, "{r:?}");
            let expected = match &r {
                Reply::Get(rec) => Some(4 + MIN_RECORD_LEN + rec.data.len()),
                Reply::Dump(v) => Some(8 + v.iter().map(compact_record_len).sum::<usize>()),
                Reply::Error(ErrorInfo { code: None, .. }) => Some(4),
                Reply::Error(_) => None,
                _ => Some(4),
            };
            if let Some(n) = expected {
                assert_eq!(enc.len(), n);
            }
        }
        assert_eq!(
            &encode_reply(&Reply::Error(ErrorInfo::default()))[..],
            [0, 0, 0, 0x15]
        );
        assert_eq!(&encode_reply(&Reply::Ping)[..], [0, 0, 0, 20]);
        assert_eq!(&encode_reply(&Reply::Add)[..], [0, 0, 0, 23]);
        assert_eq!(&encode_reply(&Reply::Remove)[..], [0, 0, 0, 25]);
        assert_eq!(
            &encode_reply(&Reply::Dump(vec![]))[..],
            [0, 0, 0, 26, 0, 0, 0, 0]
        );
    }

    #[test]
    fn compact_record_layout() {
        let r = sample();
        let mut out = vec![0xEE; 3];
        encode_record(&r, &mut out);
        assert_eq!(out.len(), 3 + MIN_RECORD_LEN + 7);
        assert_eq!(out.len(), 3 + compact_record_len(&r));
        let b = &out[3..];
        assert_eq!(b[0..4], [0, 0, 0, 129]);
        let plen = r.principal.len();
        assert_eq!(&b[4..4 + plen], r.principal.as_bytes());
        assert!(b[4 + plen..133].iter().all(|&x| x == 0));
        // capacity = length = 7, then the data and the status
        assert_eq!(b[157..161], 7u32.to_be_bytes());
        assert_eq!(b[161..165], 7u32.to_be_bytes());
        assert_eq!(&b[165..172], &r.data[..]);
        assert_eq!(b[172..], [0, 0, 0, 0]);
        assert_eq!(decode_record(b).unwrap(), (r.clone(), MIN_RECORD_LEN + 7));
        // A GET_REPLY carries the compact record.
        let rep = encode_reply(&Reply::Get(r.clone()));
        assert_eq!(rep.len(), 4 + MIN_RECORD_LEN + 7);
        assert_eq!(decode_reply(&rep).unwrap(), Reply::Get(r));
    }

    #[test]
    fn full_record_layout_and_zero_padding() {
        let r = sample();
        let mut out = vec![0xEE; 3];
        encode_record_full(&r, &mut out);
        assert_eq!(out.len(), 3 + RECORD_LEN);
        let b = &out[3..];
        assert_eq!(b[0..4], [0, 0, 0, 129]);
        let plen = r.principal.len();
        assert_eq!(&b[4..4 + plen], r.principal.as_bytes());
        assert!(b[4 + plen..133].iter().all(|&x| x == 0));
        assert_eq!(b[133..137], 1000u32.to_be_bytes());
        assert_eq!(b[137..141], 1_700_000_000u32.to_be_bytes());
        assert_eq!(b[149..153], [0, 0, 0, 1]);
        assert_eq!(b[153..157], [0, 0, 0, 0]);
        assert_eq!(b[157..161], [0, 0, 0x80, 0]);
        assert_eq!(b[161..165], 7u32.to_be_bytes());
        assert_eq!(&b[165..172], &r.data[..]);
        assert!(b[172..165 + MAX_CRED_DATA].iter().all(|&x| x == 0));
        assert_eq!(b[165 + MAX_CRED_DATA..], [0, 0, 0, 0]);
        let (d, used) = decode_record(&out[3..]).unwrap();
        assert_eq!(used, RECORD_LEN);
        assert_eq!(d, r);
        // decode_record ignores what follows.
        let mut longer = out[3..].to_vec();
        longer.extend_from_slice(b"xyz");
        assert_eq!(decode_record(&longer).unwrap().1, RECORD_LEN);
    }

    #[test]
    fn debug_hides_data() {
        let mut r = sample();
        r.data = Zeroizing::new(b"SECRETSECRET".to_vec());
        let s = format!("{r:?}");
        assert!(s.contains("<12 bytes>"), "{s}");
        assert!(!s.contains("83, 69"), "{s}");
        assert!(s.contains("alice@EXAMPLE.ORG"));
        let s = format!("{:?}", Request::Add(r.data.clone()));
        assert_eq!(s, "Add(<12 bytes>)");
        let s = format!("{:?}", Reply::Get(r));
        assert!(s.contains("<12 bytes>") && !s.contains("69"), "{s}");
    }

    #[test]
    fn old_capacities_decode() {
        for cap in [0i32, 7, 2048, 4096, 32768] {
            let r = sample();
            let len = if cap < 7 { 0 } else { 7 };
            let mut want = r.clone();
            want.data = Zeroizing::new(r.data[..len as usize].to_vec());
            let raw = raw_record(&want, cap, len, 0xCC);
            assert_eq!(raw.len(), MIN_RECORD_LEN + cap as usize);
            let msg = with_type(24, &raw);
            assert_eq!(decode_reply(&msg).unwrap(), Reply::Get(want.clone()));
            let (d, used) = decode_record(&raw).unwrap();
            assert_eq!((d, used), (want.clone(), raw.len()));
            // Re-encoding normalises to a compact record.
            let enc = encode_reply(&Reply::Get(want.clone()));
            assert_eq!(enc.len(), 4 + MIN_RECORD_LEN + len as usize);
            assert_eq!(decode_reply(&enc).unwrap(), Reply::Get(want));
        }
    }

    #[test]
    fn garbage_after_principal_nul_is_ignored() {
        let r = sample();
        let raw = raw_record(&r, 16, 7, b'Z');
        assert_eq!(decode_record(&raw).unwrap().0, r);
    }

    #[test]
    fn bad_records_rejected() {
        let r = sample();
        let good = raw_record(&r, 2048, 7, 0);
        assert!(decode_record(&good).is_ok());

        for size in [128i32, 130, 0, -1] {
            let mut b = good.clone();
            b[0..4].copy_from_slice(&size.to_be_bytes());
            assert_eq!(
                decode_record(&b).unwrap_err(),
                ProtoError::BadPrincipalFieldSize(size)
            );
        }
        // 129 non-NUL principal bytes.
        let mut b = good.clone();
        b[4..133].fill(b'a');
        assert_eq!(
            decode_record(&b).unwrap_err(),
            ProtoError::PrincipalNotTerminated
        );
        // 128 chars + NUL is the maximum and fine.
        let mut b = good.clone();
        b[4..132].fill(b'a');
        b[132] = 0;
        assert_eq!(decode_record(&b).unwrap().0.principal, "a".repeat(128));
        // Invalid UTF-8.
        let mut b = good.clone();
        b[4] = 0xff;
        assert_eq!(decode_record(&b).unwrap_err(), ProtoError::PrincipalNotUtf8);
        // Capacity negative / too large.
        for cap in [-5i32, -1, i32::MIN, 32769, i32::MAX] {
            let mut b = good.clone();
            b[157..161].copy_from_slice(&cap.to_be_bytes());
            let e = decode_record(&b).unwrap_err();
            assert_eq!(e, ProtoError::BadDataCapacity(cap));
            if cap == -5 {
                assert_eq!(
                    e.to_string(),
                    "credential data capacity -5 is invalid (must be 0..=32768)"
                );
            }
        }
        // Length > capacity, negative length.
        for len in [2049i32, 32768, -1, i32::MIN] {
            let mut b = good.clone();
            b[161..165].copy_from_slice(&len.to_be_bytes());
            assert_eq!(
                decode_record(&b).unwrap_err(),
                ProtoError::BadDataLength {
                    length: len,
                    capacity: 2048
                }
            );
        }
        // Capacity larger than what is present.
        let mut b = good.clone();
        b[157..161].copy_from_slice(&4096i32.to_be_bytes());
        assert!(matches!(
            decode_record(&b).unwrap_err(),
            ProtoError::Truncated {
                what: "credential data",
                ..
            }
        ));
    }

    #[test]
    fn truncation_message_text() {
        let e = decode_request(&[0, 0, 0, 3]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "message truncated: expected 4 more bytes for uid, 0 available"
        );
        assert_eq!(
            decode_request(&[0, 0, 0, 3, 1, 2]).unwrap_err(),
            ProtoError::Truncated {
                what: "uid",
                needed: 4,
                available: 2
            }
        );
        assert!(matches!(
            decode_request(&[]).unwrap_err(),
            ProtoError::Truncated { .. }
        ));
        assert!(matches!(
            decode_reply(&[0, 0]).unwrap_err(),
            ProtoError::Truncated { .. }
        ));
    }

    #[test]
    fn every_truncation_of_get_and_dump_errors() {
        let get = encode_reply(&Reply::Get(sample()));
        for n in 0..get.len() {
            assert!(decode_reply(&get[..n]).is_err(), "prefix {n}");
        }
        assert!(decode_reply(&get).is_ok());
        let dump = encode_reply(&Reply::Dump(vec![sample(), rec("b@R", 2, &[1; 100])]));
        assert_eq!(dump.len(), 8 + 2 * MIN_RECORD_LEN + 7 + 100);
        for n in 0..dump.len() {
            assert!(decode_reply(&dump[..n]).is_err(), "prefix {n}");
        }
        assert!(decode_reply(&dump).is_ok());
        let blob = encode_send_blob(&sample());
        for n in 0..blob.len() {
            assert!(decode_send_blob(&blob[..n]).is_err(), "prefix {n}");
        }
        for r in all_requests() {
            let enc = encode_request(&r);
            for n in 0..enc.len() {
                assert!(decode_request(&enc[..n]).is_err());
            }
        }
    }

    #[test]
    fn trailing_bytes_rejected() {
        for r in all_requests() {
            let mut enc = encode_request(&r).to_vec();
            enc.push(0);
            assert_eq!(decode_request(&enc), Err(ProtoError::TrailingBytes(1)));
        }
        for r in all_replies() {
            if matches!(r, Reply::Error(_)) {
                continue;
            }
            let mut enc = encode_reply(&r).to_vec();
            enc.extend_from_slice(&[1, 2, 3]);
            assert_eq!(decode_reply(&enc), Err(ProtoError::TrailingBytes(3)));
        }
        let mut blob = encode_send_blob(&sample()).to_vec();
        blob.push(0);
        let n = (blob.len() - 8) as u64;
        blob[..8].copy_from_slice(&n.to_le_bytes());
        assert_eq!(decode_send_blob(&blob), Err(ProtoError::TrailingBytes(1)));
    }

    #[test]
    fn wrong_direction_and_unknown_types() {
        assert_eq!(
            decode_request(&[0, 0, 0, 7]),
            Err(ProtoError::UnknownType(7))
        );
        assert_eq!(
            decode_request(&[0, 0, 0, 99]),
            Err(ProtoError::UnknownType(99))
        );
        assert_eq!(
            decode_request(&[0, 0, 0, 20]),
            Err(ProtoError::UnexpectedType {
                got: MsgType::PingReply,
                expected: "request"
            })
        );
        assert_eq!(
            decode_reply(&[0, 0, 0, 3, 0, 0, 0, 0]),
            Err(ProtoError::UnexpectedType {
                got: MsgType::GetRequest,
                expected: "reply"
            })
        );
        assert_eq!(
            decode_reply(&[0, 0, 0, 22]),
            Err(ProtoError::UnknownType(22))
        );
        assert_eq!(
            decode_reply(&[0xff, 0xff, 0xff, 0xff]),
            Err(ProtoError::UnknownType(-1))
        );
    }

    #[test]
    fn add_length_checks() {
        assert_eq!(
            decode_request(&[0, 0, 0, 2, 0xff, 0xff, 0xff, 0xfb]),
            Err(ProtoError::BadAddLength(-5))
        );
        let mut m = with_type(2, &32769i32.to_be_bytes());
        m.extend(vec![0; 32769]);
        assert_eq!(decode_request(&m), Err(ProtoError::BadAddLength(32769)));
        assert!(matches!(
            decode_request(&with_type(2, &[0, 0, 0, 10, 1, 2])),
            Err(ProtoError::Truncated {
                needed: 10,
                available: 2,
                ..
            })
        ));
        // C sends `[2]` alone for an empty ADD; we require the length.
        assert!(decode_request(&[0, 0, 0, 2]).is_err());
    }

    #[test]
    fn dump_count_checks() {
        for c in [-1i32, i32::MIN, 4097, i32::MAX] {
            assert_eq!(
                decode_reply(&with_type(26, &c.to_be_bytes())),
                Err(ProtoError::BadDumpCount(c))
            );
        }
        assert_eq!(
            decode_reply(&with_type(26, &4096i32.to_be_bytes())),
            Err(ProtoError::DumpCountExceedsMessage {
                count: 4096,
                needed: 4096 * 169,
                available: 0
            })
        );
        // Count says 2, one record present.
        let mut body = 2i32.to_be_bytes().to_vec();
        body.extend(raw_record(&sample(), 400, 7, 0));
        assert!(matches!(
            decode_reply(&with_type(26, &body)),
            Err(ProtoError::Truncated { .. })
        ));
        // Count says 1, two records present.
        let mut body = 1i32.to_be_bytes().to_vec();
        body.extend(raw_record(&sample(), 0, 0, 0));
        body.extend(raw_record(&sample(), 0, 0, 0));
        assert_eq!(
            decode_reply(&with_type(26, &body)),
            Err(ProtoError::TrailingBytes(MIN_RECORD_LEN))
        );
        // Small-capacity records in a dump.
        let mut body = 3i32.to_be_bytes().to_vec();
        let mut r0 = sample();
        r0.data = Zeroizing::new(Vec::new());
        for _ in 0..3 {
            body.extend(raw_record(&r0, 0, 0, 0));
        }
        assert_eq!(
            decode_reply(&with_type(26, &body)),
            Ok(Reply::Dump(vec![r0.clone(), r0.clone(), r0]))
        );
    }

    #[test]
    fn error_reply_extension() {
        let plain = [0u8, 0, 0, 21];
        assert_eq!(decode_reply(&plain), Ok(Reply::Error(ErrorInfo::default())));
        let info = ErrorInfo {
            code: Some(-300205),
            reason: Some("requester is not authorized to do that".into()),
        };
        let enc = encode_reply(&Reply::Error(info.clone()));
        assert_eq!(enc.len(), 12 + 38);
        assert_eq!(&enc[..4], &plain);
        assert_eq!(decode_reply(&enc), Ok(Reply::Error(info.clone())));
        // Extra bytes after a well-formed extension are ignored.
        let mut longer = enc.to_vec();
        longer.extend_from_slice(b"future");
        assert_eq!(decode_reply(&longer), Ok(Reply::Error(info)));
        // Malformed extensions fall back to the plain error.
        let bad: [&[u8]; 6] = [
            &[0, 0, 0, 21, 1],
            &[0, 0, 0, 21, 0, 0, 0, 1],
            &[0, 0, 0, 21, 0, 0, 0, 1, 0, 0],
            &[0, 0, 0, 21, 0, 0, 0, 1, 0, 0, 0, 5, b'a'],
            &[0, 0, 0, 21, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff],
            &[0, 0, 0, 21, 0, 0, 0, 1, 0, 0, 4, 1],
        ];
        for b in bad {
            assert_eq!(decode_reply(b), Ok(Reply::Error(ErrorInfo::default())));
        }
        // Code only / reason only normalise to Some/Some.
        let enc = encode_reply(&Reply::Error(ErrorInfo {
            code: Some(7),
            reason: None,
        }));
        assert_eq!(
            decode_reply(&enc),
            Ok(Reply::Error(ErrorInfo {
                code: Some(7),
                reason: Some(String::new())
            }))
        );
        let enc = encode_reply(&Reply::Error(ErrorInfo {
            code: None,
            reason: Some("x".into()),
        }));
        assert_eq!(
            decode_reply(&enc),
            Ok(Reply::Error(ErrorInfo {
                code: Some(0),
                reason: Some("x".into())
            }))
        );
        // Long reasons are cut at a char boundary to 1024 bytes.
        let long = "é".repeat(600); // 1200 bytes
        let enc = encode_reply(&Reply::Error(ErrorInfo {
            code: Some(1),
            reason: Some(long),
        }));
        match decode_reply(&enc) {
            Ok(Reply::Error(ErrorInfo {
                reason: Some(s), ..
            })) => assert_eq!(s, "é".repeat(512)),
            other => panic!("{other:?}"),
        }
        // Invalid UTF-8 is replaced, code kept.
        let m = [0, 0, 0, 21, 0, 0, 0, 9, 0, 0, 0, 2, b'a', 0xff];
        assert_eq!(
            decode_reply(&m),
            Ok(Reply::Error(ErrorInfo {
                code: Some(9),
                reason: Some("a\u{fffd}".into())
            }))
        );
    }

    #[test]
    fn send_blob_both_endiannesses() {
        let r = sample();
        let le = encode_send_blob(&r);
        let p = (4 + RECORD_LEN) as u64;
        assert_eq!(le.len(), 8 + 4 + RECORD_LEN);
        assert_eq!(le[..8], p.to_le_bytes());
        assert_eq!(le[8..12], [0, 0, 0, 7]);
        assert_eq!(decode_send_blob(&le).unwrap(), r);
        let mut be = le.to_vec();
        be[..8].copy_from_slice(&p.to_be_bytes());
        assert_eq!(decode_send_blob(&be).unwrap(), r);
        // Small hand-built record, both orders.
        let mut payload = with_type(7, &raw_record(&r, 2048, 7, 0x55));
        let n = payload.len() as u64;
        for prefix in [n.to_le_bytes(), n.to_be_bytes()] {
            let mut b = prefix.to_vec();
            b.append(&mut payload.clone());
            assert_eq!(decode_send_blob(&b).unwrap(), r);
        }
        // Wrong length.
        let mut b = (n + 1).to_le_bytes().to_vec();
        b.append(&mut payload);
        assert!(matches!(
            decode_send_blob(&b),
            Err(ProtoError::SendBlobLength { .. })
        ));
        // Wrong type.
        let mut b = le.to_vec();
        b[11] = 24;
        assert_eq!(
            decode_send_blob(&b),
            Err(ProtoError::UnexpectedType {
                got: MsgType::GetReply,
                expected: "send blob (CRED_DUMP_REQUEST)"
            })
        );
        b[11] = 99;
        assert_eq!(decode_send_blob(&b), Err(ProtoError::UnknownType(99)));
        assert!(decode_send_blob(&[0; 8]).is_err());
        assert!(decode_send_blob(&[]).is_err());
    }

    #[test]
    fn validation() {
        assert!(sample().validate().is_ok());
        assert!(CredRecord::default().validate().is_ok());
        let mut r = sample();
        r.principal = "a".repeat(129);
        assert_eq!(r.validate(), Err(ProtoError::PrincipalTooLong(129)));
        r.principal = "a\0b".into();
        assert_eq!(r.validate(), Err(ProtoError::PrincipalContainsNul));
        let mut r = sample();
        r.data = Zeroizing::new(vec![0; MAX_CRED_DATA + 1]);
        assert_eq!(r.validate(), Err(ProtoError::CredDataTooLarge(32769)));
        let mut r = sample();
        r.endtime = -1;
        assert!(matches!(
            r.validate(),
            Err(ProtoError::TimeOutOfRange {
                field: "endtime",
                ..
            })
        ));
        r.endtime = i64::from(u32::MAX) + 1;
        assert!(r.validate().is_err());
        // Times after 2038 survive (unsigned on the wire).
        let mut r = sample();
        r.endtime = 4_000_000_000;
        let enc = encode_reply(&Reply::Get(r.clone()));
        assert_eq!(decode_reply(&enc), Ok(Reply::Get(r)));
        assert!(Request::Add(Zeroizing::new(vec![0; 32769]))
            .validate()
            .is_err());
        let many = Reply::Dump(vec![CredRecord::default(); MAX_DUMP_RECORDS + 1]);
        assert_eq!(many.validate(), Err(ProtoError::TooManyDumpRecords(4097)));
    }

    #[test]
    fn invalid_record_is_poisoned_not_truncated() {
        let mut r = sample();
        r.principal = "x".repeat(200);
        let result = std::panic::catch_unwind(|| {
            let mut out = Vec::new();
            encode_record(&r, &mut out);
            out
        });
        if cfg!(debug_assertions) {
            assert!(result.is_err());
        } else {
            let out = result.unwrap();
            assert_eq!(out.len(), MIN_RECORD_LEN);
            assert!(out.iter().all(|&b| b == 0));
            assert_eq!(
                decode_record(&out).unwrap_err(),
                ProtoError::BadPrincipalFieldSize(0)
            );
        }
    }

    #[test]
    fn reserve_keeps_contents() {
        let mut v = vec![1u8, 2, 3];
        v.shrink_to_fit();
        encode_record(&sample(), &mut v);
        assert_eq!(&v[..3], &[1, 2, 3]);
        assert_eq!(v.len(), 3 + compact_record_len(&sample()));
        let mut v = vec![1u8, 2, 3];
        v.shrink_to_fit();
        encode_record_full(&sample(), &mut v);
        assert_eq!(&v[..3], &[1, 2, 3]);
        assert_eq!(v.len(), 3 + RECORD_LEN);
    }

    // ---- deterministic randomized robustness test ----

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Decodes with every decoder; whatever decodes must re-encode and
    /// re-decode to the same value.
    fn check_all(buf: &[u8]) -> usize {
        let mut ok = 0;
        if let Ok(req) = decode_request(buf) {
            ok += 1;
            assert_eq!(decode_request(&encode_request(&req)).as_ref(), Ok(&req));
        }
        if let Ok(rep) = decode_reply(buf) {
            ok += 1;
            assert!(rep.validate().is_ok());
            assert_eq!(decode_reply(&encode_reply(&rep)).as_ref(), Ok(&rep));
        }
        if let Ok(rec) = decode_send_blob(buf) {
            ok += 1;
            assert_eq!(decode_send_blob(&encode_send_blob(&rec)).as_ref(), Ok(&rec));
        }
        if let Ok((rec, used)) = decode_record(buf) {
            ok += 1;
            assert!(used <= buf.len());
            let mut out = Vec::new();
            encode_record(&rec, &mut out);
            let n = compact_record_len(&rec);
            assert_eq!(decode_record(&out), Ok((rec.clone(), n)));
            let mut out = Vec::new();
            encode_record_full(&rec, &mut out);
            assert_eq!(decode_record(&out), Ok((rec, RECORD_LEN)));
        }
        ok
    }

    fn small_corpus() -> Vec<Vec<u8>> {
        let mut c: Vec<Vec<u8>> = Vec::new();
        let r = sample();
        let mut r2 = rec("bob@R", 5, b"");
        r2.crossrealm = true;
        for (x, cap, len) in [(&r, 7, 7), (&r, 16, 7), (&r2, 0, 0), (&r2, 3, 0)] {
            let raw = raw_record(x, cap, len, 0);
            c.push(raw.clone());
            c.push(with_type(24, &raw));
            let mut d = 2i32.to_be_bytes().to_vec();
            d.extend(&raw);
            d.extend(&raw);
            c.push(with_type(26, &d));
            let p = with_type(7, &raw);
            let mut b = (p.len() as u64).to_le_bytes().to_vec();
            b.extend(&p);
            c.push(b);
            let mut b = (p.len() as u64).to_be_bytes().to_vec();
            b.extend(&p);
            c.push(b);
        }
        for q in all_requests().iter().take(4) {
            c.push(encode_request(q).to_vec());
        }
        for q in [
            Request::Get(7),
            Request::Remove(8),
            Request::Close,
            Request::Dump,
        ] {
            c.push(encode_request(&q).to_vec());
        }
        for q in all_replies() {
            if !matches!(q, Reply::Get(_) | Reply::Dump(_)) {
                c.push(encode_reply(&q).to_vec());
            }
        }
        c
    }

    const INTERESTING: [i32; 14] = [
        0,
        1,
        -1,
        7,
        21,
        24,
        26,
        128,
        129,
        130,
        32768,
        32769,
        i32::MIN,
        i32::MAX,
    ];

    fn mutate(rng: &mut XorShift, buf: &mut Vec<u8>) {
        for _ in 0..1 + rng.below(4) {
            match rng.below(7) {
                0 if !buf.is_empty() => {
                    let i = rng.below(buf.len());
                    buf[i] ^= 1 << rng.below(8);
                }
                1 if !buf.is_empty() => {
                    let i = rng.below(buf.len());
                    buf[i] = rng.next() as u8;
                }
                2 => {
                    let n = rng.below(buf.len() + 1);
                    buf.truncate(n);
                }
                3 => {
                    for _ in 0..rng.below(8) {
                        buf.push(rng.next() as u8);
                    }
                }
                4 if buf.len() >= 4 => {
                    let i = rng.below(buf.len() - 3);
                    let v = INTERESTING[rng.below(INTERESTING.len())];
                    buf[i..i + 4].copy_from_slice(&v.to_be_bytes());
                }
                5 if buf.len() >= 4 => {
                    // Overwrite an aligned record field.
                    let i = (rng.below(buf.len() / 4)) * 4;
                    let v = INTERESTING[rng.below(INTERESTING.len())];
                    buf[i..i + 4].copy_from_slice(&v.to_be_bytes());
                }
                _ if buf.len() >= 8 => {
                    // Fix up a send-blob prefix to the new length.
                    let n = (buf.len() - 8) as u64;
                    let p = if rng.below(2) == 0 {
                        n.to_le_bytes()
                    } else {
                        n.to_be_bytes()
                    };
                    buf[..8].copy_from_slice(&p);
                }
                _ => {}
            }
        }
    }

    #[test]
    fn randomized_robustness() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let corpus = small_corpus();
        let mut decoded = 0usize;
        for i in 0..200_000 {
            let buf = if i % 4 == 0 {
                let len = rng.below(64);
                let mut b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                if len >= 4 && rng.below(2) == 0 {
                    // Plausible type, random body.
                    b[..3].fill(0);
                    b[3] = [0u8, 1, 2, 3, 4, 5, 6, 7, 20, 21, 22, 23, 24, 25, 26][rng.below(15)];
                }
                b
            } else {
                let mut b = corpus[rng.below(corpus.len())].clone();
                mutate(&mut rng, &mut b);
                b
            };
            decoded += check_all(&buf);
        }
        // A decent share of mutated inputs must still be valid messages.
        assert!(decoded > 20_000, "only {decoded} decoded");
        // Full-size messages, fewer iterations.
        let big = [
            encode_reply(&Reply::Get(sample())).to_vec(),
            encode_send_blob(&sample()).to_vec(),
            encode_reply(&Reply::Dump(vec![sample(), sample()])).to_vec(),
        ];
        for _ in 0..300 {
            let mut b = big[rng.below(big.len())].clone();
            mutate(&mut rng, &mut b);
            check_all(&b);
        }
    }
}
