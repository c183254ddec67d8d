//! A tiny little-endian byte writer and bounds-checked reader shared by every encoder.
//!
//! Contract:
//! - Integers are fixed-width little-endian (`u8`, `u32`, `u64`), so an encoding is the same on
//!   every host and every replica: digests and snapshots compare byte for byte.
//! - Byte strings and UTF-8 strings are a `u32` length prefix followed by the bytes. A prefix
//!   larger than [`STRING_BYTES_MAX`] is rejected as [`CodecError::TooLong`] *before* anything
//!   is read or allocated, so a corrupt prefix can never make a decoder allocate gigabytes.
//! - Writers (`put_*`) cannot fail; handing them a string longer than [`STRING_BYTES_MAX`] is a
//!   bug in the caller and panics, because the reader would refuse to read it back.
//! - Readers never panic: bytes come from disk or the (simulated) network, so every kind of bad
//!   input — short buffers, bad UTF-8, unknown tags, trailing garbage — is a [`CodecError`].
//!
//! Why hand-rolled: the crate is sans-IO and dependency-light, the formats are small and
//! fixed, and a hand-written codec makes the exact bytes (which the WAL CRC and the replica
//! digests depend on) obvious from the source.

use std::fmt;

/// Largest byte string or UTF-8 string (in bytes) that may be written or read: 1 MiB.
pub const STRING_BYTES_MAX: usize = 1 << 20;

// Length prefixes are `u32`s.
const _: () = assert!(STRING_BYTES_MAX <= u32::MAX as usize);

/// Appends one byte.
#[inline]
pub fn put_u8(buf: &mut Vec<u8>, v: u8) {
    buf.push(v);
}

/// Appends a `u32`, little-endian.
#[inline]
pub fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}

/// Appends a `u64`, little-endian.
#[inline]
pub fn put_u64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&v.to_le_bytes());
}

/// Appends a byte string: a `u32` length prefix, then the bytes.
///
/// # Panics
/// If `bytes` is longer than [`STRING_BYTES_MAX`]: the reader would reject it, so writing it
/// is a bug in the caller.
// The bound's report is out of line, which keeps this small enough to inline: a leader
// encodes every new entry's strings through here.
#[inline]
pub fn put_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.len() > STRING_BYTES_MAX {
        string_too_long(bytes.len());
    }
    // Within `STRING_BYTES_MAX`, so the length fits in a `u32`.
    let len_bytes = bytes.len() as u32;
    buf.reserve(4 + bytes.len());
    put_u32(buf, len_bytes);
    buf.extend_from_slice(bytes);
}

/// The panic of [`put_bytes`].
#[cold]
#[inline(never)]
fn string_too_long(len: usize) -> ! {
    panic!("codec: byte string of {len} bytes exceeds STRING_BYTES_MAX ({STRING_BYTES_MAX})")
}

/// Appends a UTF-8 string, encoded exactly like [`put_bytes`].
///
/// # Panics
/// If `s` is longer than [`STRING_BYTES_MAX`] bytes.
#[inline]
pub fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_bytes(buf, s.as_bytes());
}

/// Appends an optional UTF-8 string: tag byte `0` for `None`, or `1` followed by the string.
///
/// # Panics
/// If the string is longer than [`STRING_BYTES_MAX`] bytes.
pub fn put_opt_str(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => put_u8(buf, 0),
        Some(s) => {
            put_u8(buf, 1);
            put_str(buf, s);
        }
    }
}

/// Why a [`Reader`] could not decode its input. Every variant describes bad input, never a bug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// The input ended early: a field needed `needed` bytes but only `available` were left.
    UnexpectedEnd {
        /// Bytes the field needed.
        needed: usize,
        /// Bytes that were left in the input.
        available: usize,
    },
    /// A string field was not valid UTF-8.
    InvalidUtf8,
    /// A tag byte (enum discriminant) had no meaning for the value being decoded.
    InvalidTag {
        /// What was being decoded (e.g. `"op"`).
        what: &'static str,
        /// The unknown tag byte.
        tag: u8,
    },
    /// The value decoded completely but `count` bytes were left over.
    TrailingBytes {
        /// Number of unread bytes.
        count: usize,
    },
    /// A length or count field exceeded its bound.
    TooLong {
        /// The length or count found in the input.
        len: usize,
        /// The largest allowed value.
        max: usize,
    },
    /// The fields decoded but break an invariant of the value (e.g. unsorted snapshot keys).
    Invalid {
        /// Which invariant was broken, in plain English.
        what: &'static str,
    },
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::UnexpectedEnd { needed, available } => write!(
                f,
                "unexpected end of input: needed {needed} bytes, only {available} available"
            ),
            CodecError::InvalidUtf8 => write!(f, "string is not valid UTF-8"),
            CodecError::InvalidTag { what, tag } => write!(f, "invalid {what} tag {tag}"),
            CodecError::TrailingBytes { count } => {
                write!(f, "{count} trailing bytes after the end of the value")
            }
            CodecError::TooLong { len, max } => {
                write!(f, "length {len} exceeds the maximum of {max}")
            }
            CodecError::Invalid { what } => write!(f, "invalid encoding: {what}"),
        }
    }
}

impl std::error::Error for CodecError {}

/// A bounds-checked cursor over a byte slice. Every read either advances past a whole field
/// or fails without panicking (the cursor position after a failed read is unspecified).
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    /// A reader positioned at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, position: 0 }
    }

    /// Takes the next `count` bytes, or fails if fewer are left.
    fn take(&mut self, count: usize) -> Result<&'a [u8], CodecError> {
        let available = self.remaining();
        if count > available {
            return Err(CodecError::UnexpectedEnd {
                needed: count,
                available,
            });
        }
        let start = self.position;
        self.position += count;
        Ok(&self.bytes[start..self.position])
    }

    /// Takes exactly `N` bytes as an array.
    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let slice = self.take(N)?;
        let mut array = [0u8; N];
        array.copy_from_slice(slice);
        Ok(array)
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.array::<4>()?))
    }

    /// Reads a little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.array::<8>()?))
    }

    /// Reads a length-prefixed byte string without copying it.
    /// A prefix over [`STRING_BYTES_MAX`] is [`CodecError::TooLong`].
    pub fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let len_bytes = self.u32()? as usize;
        if len_bytes > STRING_BYTES_MAX {
            return Err(CodecError::TooLong {
                len: len_bytes,
                max: STRING_BYTES_MAX,
            });
        }
        self.take(len_bytes)
    }

    /// Reads a length-prefixed UTF-8 string.
    pub fn string(&mut self) -> Result<String, CodecError> {
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| CodecError::InvalidUtf8)
    }

    /// Reads an optional string written by [`put_opt_str`].
    pub fn opt_string(&mut self) -> Result<Option<String>, CodecError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.string()?)),
            tag => Err(CodecError::InvalidTag {
                what: "option",
                tag,
            }),
        }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    /// Bytes read so far (the offset of the next field).
    pub fn position(&self) -> usize {
        self.position
    }

    /// Succeeds only if every byte has been read; otherwise [`CodecError::TrailingBytes`].
    pub fn finish(&self) -> Result<(), CodecError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(CodecError::TrailingBytes { count }),
        }
    }
}

/// FNV-1a, 64-bit: a tiny, fast, fully specified hash used for replica digests.
///
/// Not collision resistant against an adversary; it only needs to make accidental divergence
/// between replicas visible, deterministically on every platform (unlike `DefaultHasher`,
/// whose algorithm is unspecified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fnv1a64 {
    state: u64,
}

impl Fnv1a64 {
    /// FNV-1a 64-bit offset basis.
    pub const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    /// FNV-1a 64-bit prime.
    pub const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// A hasher in its initial state.
    pub fn new() -> Self {
        Fnv1a64 {
            state: Self::OFFSET_BASIS,
        }
    }

    /// Mixes in raw bytes (no length framing: callers frame variable-length data themselves).
    pub fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.state ^= u64::from(byte);
            self.state = self.state.wrapping_mul(Self::PRIME);
        }
    }

    /// Mixes in a `u64` as 8 little-endian bytes.
    pub fn write_u64(&mut self, v: u64) {
        self.write(&v.to_le_bytes());
    }

    /// Mixes in a byte string framed by its length (as a `u64`), so `("ab","c")` and
    /// `("a","bc")` hash differently.
    pub fn write_framed(&mut self, bytes: &[u8]) {
        self.write_u64(bytes.len() as u64);
        self.write(bytes);
    }

    /// The hash of everything written so far.
    pub fn finish(&self) -> u64 {
        self.state
    }
}

impl Default for Fnv1a64 {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn integers_are_little_endian() {
        let mut buf = Vec::new();
        put_u8(&mut buf, 0xab);
        put_u32(&mut buf, 0x0102_0304);
        put_u64(&mut buf, 0x0102_0304_0506_0708);
        assert_eq!(
            buf,
            [0xab, 4, 3, 2, 1, 8, 7, 6, 5, 4, 3, 2, 1],
            "fixed-width little-endian layout"
        );
        let mut r = Reader::new(&buf);
        assert_eq!(r.u8(), Ok(0xab));
        assert_eq!(r.u32(), Ok(0x0102_0304));
        assert_eq!(r.u64(), Ok(0x0102_0304_0506_0708));
        assert_eq!(r.remaining(), 0);
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn bytes_and_strings_are_length_prefixed() {
        let mut buf = Vec::new();
        put_bytes(&mut buf, &[9, 8]);
        put_str(&mut buf, "hé");
        assert_eq!(buf, [2, 0, 0, 0, 9, 8, 3, 0, 0, 0, b'h', 0xc3, 0xa9]);
        let mut r = Reader::new(&buf);
        assert_eq!(r.bytes(), Ok(&[9u8, 8][..]));
        assert_eq!(r.position(), 6);
        assert_eq!(r.string(), Ok("hé".to_owned()));
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn optional_strings_round_trip_and_reject_bad_tags() {
        let mut buf = Vec::new();
        put_opt_str(&mut buf, None);
        put_opt_str(&mut buf, Some("x"));
        let mut r = Reader::new(&buf);
        assert_eq!(r.opt_string(), Ok(None));
        assert_eq!(r.opt_string(), Ok(Some("x".to_owned())));
        assert_eq!(r.finish(), Ok(()));
        assert_eq!(
            Reader::new(&[7]).opt_string(),
            Err(CodecError::InvalidTag {
                what: "option",
                tag: 7
            })
        );
    }

    #[test]
    fn short_input_is_unexpected_end() {
        assert_eq!(
            Reader::new(&[1, 2, 3]).u32(),
            Err(CodecError::UnexpectedEnd {
                needed: 4,
                available: 3
            })
        );
        assert_eq!(
            Reader::new(&[]).u8(),
            Err(CodecError::UnexpectedEnd {
                needed: 1,
                available: 0
            })
        );
        // A length prefix promising more bytes than exist.
        assert_eq!(
            Reader::new(&[5, 0, 0, 0, 1, 2]).bytes(),
            Err(CodecError::UnexpectedEnd {
                needed: 5,
                available: 2
            })
        );
    }

    #[test]
    fn oversized_length_prefix_is_too_long() {
        let len = STRING_BYTES_MAX as u32 + 1;
        let mut buf = Vec::new();
        put_u32(&mut buf, len);
        assert_eq!(
            Reader::new(&buf).bytes(),
            Err(CodecError::TooLong {
                len: len as usize,
                max: STRING_BYTES_MAX
            })
        );
        assert_eq!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff]).string(),
            Err(CodecError::TooLong {
                len: u32::MAX as usize,
                max: STRING_BYTES_MAX
            })
        );
    }

    #[test]
    fn maximum_length_string_round_trips() {
        let big = vec![7u8; STRING_BYTES_MAX];
        let mut buf = Vec::new();
        put_bytes(&mut buf, &big);
        let mut r = Reader::new(&buf);
        assert_eq!(r.bytes().map(<[u8]>::len), Ok(STRING_BYTES_MAX));
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    #[should_panic(expected = "exceeds STRING_BYTES_MAX")]
    fn writing_an_oversized_string_panics() {
        put_bytes(&mut Vec::new(), &vec![0u8; STRING_BYTES_MAX + 1]);
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        assert_eq!(
            Reader::new(&[2, 0, 0, 0, 0xff, 0xfe]).string(),
            Err(CodecError::InvalidUtf8)
        );
    }

    #[test]
    fn finish_reports_trailing_bytes() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.finish(), Err(CodecError::TrailingBytes { count: 2 }));
    }

    #[test]
    fn errors_display_in_plain_english() {
        let e = CodecError::UnexpectedEnd {
            needed: 4,
            available: 1,
        };
        assert_eq!(
            e.to_string(),
            "unexpected end of input: needed 4 bytes, only 1 available"
        );
        assert_eq!(
            CodecError::InvalidTag { what: "op", tag: 9 }.to_string(),
            "invalid op tag 9"
        );
        assert_eq!(
            CodecError::TooLong { len: 5, max: 4 }.to_string(),
            "length 5 exceeds the maximum of 4"
        );
    }

    #[test]
    fn fnv1a64_matches_reference_vectors() {
        // Reference values from the FNV specification's test suite.
        assert_eq!(Fnv1a64::new().finish(), 0xcbf2_9ce4_8422_2325);
        let mut h = Fnv1a64::new();
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
        let mut h = Fnv1a64::default();
        h.write(b"foobar");
        assert_eq!(h.finish(), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn fnv1a64_framing_separates_boundaries() {
        let mut a = Fnv1a64::new();
        a.write_framed(b"ab");
        a.write_framed(b"c");
        let mut b = Fnv1a64::new();
        b.write_framed(b"a");
        b.write_framed(b"bc");
        assert_ne!(a.finish(), b.finish());
    }

    proptest! {
        #[test]
        fn reader_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&bytes);
            // Drive a mix of reads until the input is exhausted or rejected.
            for step in 0..32usize {
                let outcome = match step % 5 {
                    0 => r.u8().map(drop),
                    1 => r.u32().map(drop),
                    2 => r.string().map(drop),
                    3 => r.opt_string().map(drop),
                    _ => r.u64().map(drop),
                };
                prop_assert!(r.position() <= bytes.len());
                if outcome.is_err() {
                    break;
                }
            }
        }

        #[test]
        fn strings_round_trip(values in proptest::collection::vec(".{0,12}", 0..8)) {
            let mut buf = Vec::new();
            for v in &values {
                put_str(&mut buf, v);
            }
            let mut r = Reader::new(&buf);
            for v in &values {
                prop_assert_eq!(&r.string()?, v);
            }
            prop_assert_eq!(r.finish(), Ok(()));
        }
    }
}
