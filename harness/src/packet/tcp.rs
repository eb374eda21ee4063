//! The TCP header: control flags, options and the segment representation.
//!
//! [`TcpSegment`] is the plain-data form of one TCP segment with absolute
//! numbers, as it is on the wire. It parses from bytes and emits back to the
//! same bytes: options are an ordered list in which unknown and malformed
//! options survive (`Unknown`, `Trailing`), so a round trip is byte-exact.
//! Header layout and checksums come from etherparse; this module owns the
//! option list, which etherparse does not model for unknown kinds.

use std::fmt;

use etherparse::{TcpHeader, TcpHeaderSlice};

/// TCP control bits, kept as a bit set so a case can say SYN|FIN or no flag at all.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u8);

impl Flags {
    /// No control bit set.
    pub const NONE: Flags = Flags(0);
    /// FIN: no more data from the sender.
    pub const FIN: Flags = Flags(0x01);
    /// SYN: synchronize sequence numbers.
    pub const SYN: Flags = Flags(0x02);
    /// RST: reset the connection.
    pub const RST: Flags = Flags(0x04);
    /// PSH: push function.
    pub const PSH: Flags = Flags(0x08);
    /// ACK: the acknowledgment field is significant.
    pub const ACK: Flags = Flags(0x10);
    /// URG: the urgent pointer is significant.
    pub const URG: Flags = Flags(0x20);
    /// ECE: ECN echo.
    pub const ECE: Flags = Flags(0x40);
    /// CWR: congestion window reduced.
    pub const CWR: Flags = Flags(0x80);

    /// Notation letters, in the order they are printed (tcpdump's `.` for ACK comes last).
    pub(crate) const LETTERS: [(char, Flags); 8] = [
        ('F', Flags::FIN),
        ('S', Flags::SYN),
        ('R', Flags::RST),
        ('P', Flags::PSH),
        ('U', Flags::URG),
        ('E', Flags::ECE),
        ('W', Flags::CWR),
        ('.', Flags::ACK),
    ];

    /// The raw bit set, as in byte 13 of the TCP header.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Builds flags from byte 13 of the TCP header.
    pub fn from_bits(bits: u8) -> Flags {
        Flags(bits)
    }

    /// True when every bit of `other` is set in `self`.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("-");
        }
        for (letter, flag) in Flags::LETTERS {
            if self.contains(flag) {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flags({self})")
    }
}

/// One SACK block: `left..right` in the sequence space of the segment's receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SackBlock {
    /// First sequence number of the block.
    pub left: u32,
    /// Sequence number just past the block.
    pub right: u32,
}

/// One TCP option, in the order it appears in the header.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TcpOption {
    /// Kind 0: end of option list.
    Eol,
    /// Kind 1: no operation (padding).
    Nop,
    /// Kind 2: maximum segment size.
    Mss(u16),
    /// Kind 3: window scale shift count.
    WindowScale(u8),
    /// Kind 4: SACK permitted.
    SackPermitted,
    /// Kind 5: selective acknowledgment blocks.
    Sack(Vec<SackBlock>),
    /// Kind 8: timestamps.
    Timestamp {
        /// TSval: the sender's clock.
        val: u32,
        /// TSecr: the echoed peer clock.
        ecr: u32,
    },
    /// A well-formed option of another kind, or a known kind with an unusual length.
    Unknown {
        /// Option kind.
        kind: u8,
        /// Option data, without the kind and length bytes.
        data: Vec<u8>,
    },
    /// Bytes that do not form an option (a truncated option, or non-zero bytes after EOL).
    Trailing(Vec<u8>),
}

const KIND_EOL: u8 = 0;
const KIND_NOP: u8 = 1;
const KIND_MSS: u8 = 2;
const KIND_WSCALE: u8 = 3;
const KIND_SACK_PERMITTED: u8 = 4;
const KIND_SACK: u8 = 5;
const KIND_TIMESTAMP: u8 = 8;

/// Parses the option bytes of a TCP header (everything after the fixed 20 bytes).
///
/// Never fails: bytes that do not form an option end up in [`TcpOption::Trailing`].
/// Zero bytes that are exactly the alignment padding [`emit_options`] writes
/// are padding, not EOL options (on the wire the two are the same bytes), so
/// `emit_options(&parse_options(b)) == b` for every `b` whose length is a multiple of 4.
pub fn parse_options(bytes: &[u8]) -> Vec<TcpOption> {
    let mut options = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            KIND_EOL => {
                let tail = &bytes[i..];
                let padding_after_i = i.div_ceil(4) * 4 - i;
                if tail.len() == padding_after_i && tail.iter().all(|&b| b == 0) {
                    // Exactly the zero padding `emit_options` writes: not an option.
                    return options;
                }
                options.push(TcpOption::Eol);
                let rest = &bytes[i + 1..];
                let regenerated_padding = (i + 1).div_ceil(4) * 4 - (i + 1);
                let is_padding = rest.len() == regenerated_padding && rest.iter().all(|&b| b == 0);
                if !rest.is_empty() && !is_padding {
                    options.push(TcpOption::Trailing(rest.to_vec()));
                }
                return options;
            }
            KIND_NOP => {
                options.push(TcpOption::Nop);
                i += 1;
            }
            kind => {
                let Some(&len) = bytes.get(i + 1) else {
                    options.push(TcpOption::Trailing(bytes[i..].to_vec()));
                    return options;
                };
                let len = usize::from(len);
                if len < 2 || i + len > bytes.len() {
                    options.push(TcpOption::Trailing(bytes[i..].to_vec()));
                    return options;
                }
                options.push(typed_option(kind, &bytes[i + 2..i + len]));
                i += len;
            }
        }
    }
    options
}

fn typed_option(kind: u8, data: &[u8]) -> TcpOption {
    match (kind, data.len()) {
        (KIND_MSS, 2) => TcpOption::Mss(u16::from_be_bytes([data[0], data[1]])),
        (KIND_WSCALE, 1) => TcpOption::WindowScale(data[0]),
        (KIND_SACK_PERMITTED, 0) => TcpOption::SackPermitted,
        (KIND_SACK, n) if n > 0 && n % 8 == 0 => TcpOption::Sack(
            data.chunks_exact(8)
                .map(|c| SackBlock {
                    left: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                    right: u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
                })
                .collect(),
        ),
        (KIND_TIMESTAMP, 8) => TcpOption::Timestamp {
            val: u32::from_be_bytes([data[0], data[1], data[2], data[3]]),
            ecr: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
        },
        _ => TcpOption::Unknown {
            kind,
            data: data.to_vec(),
        },
    }
}

/// Emits options in order and pads them with zero bytes to a multiple of 4.
pub fn emit_options(options: &[TcpOption]) -> Vec<u8> {
    let mut out = Vec::new();
    for option in options {
        match option {
            TcpOption::Eol => out.push(KIND_EOL),
            TcpOption::Nop => out.push(KIND_NOP),
            TcpOption::Mss(mss) => {
                out.extend([KIND_MSS, 4]);
                out.extend(mss.to_be_bytes());
            }
            TcpOption::WindowScale(shift) => out.extend([KIND_WSCALE, 3, *shift]),
            TcpOption::SackPermitted => out.extend([KIND_SACK_PERMITTED, 2]),
            TcpOption::Sack(blocks) => {
                // A SACK option longer than 255 bytes cannot be written; the length
                // byte saturates and the header-size check in `emit` rejects it.
                let len = u8::try_from(2 + 8 * blocks.len()).unwrap_or(u8::MAX);
                out.extend([KIND_SACK, len]);
                for block in blocks {
                    out.extend(block.left.to_be_bytes());
                    out.extend(block.right.to_be_bytes());
                }
            }
            TcpOption::Timestamp { val, ecr } => {
                out.extend([KIND_TIMESTAMP, 10]);
                out.extend(val.to_be_bytes());
                out.extend(ecr.to_be_bytes());
            }
            TcpOption::Unknown { kind, data } => {
                let len = u8::try_from(2 + data.len()).unwrap_or(u8::MAX);
                out.extend([*kind, len]);
                out.extend(data);
            }
            TcpOption::Trailing(bytes) => out.extend(bytes),
        }
    }
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out
}

/// Why a TCP segment could not be parsed or emitted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TcpError {
    /// The bytes do not hold a TCP header.
    #[error("malformed TCP header: {0}")]
    Malformed(String),
    /// The options do not fit in the 40 bytes a TCP header has room for.
    #[error("TCP options take {0} bytes, at most 40 fit in a header")]
    OptionsTooLong(usize),
    /// The segment does not fit in an IP packet.
    #[error("TCP segment of {0} bytes does not fit in an IP packet")]
    TooLong(usize),
}

/// One TCP segment with absolute numbers, as it is on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSegment {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (on the wire even when ACK is not set).
    pub ack: u32,
    /// Control bits.
    pub flags: Flags,
    /// Window field, unscaled.
    pub window: u16,
    /// Checksum field as sent or received.
    pub checksum: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// Options, in header order.
    pub options: Vec<TcpOption>,
    /// Payload bytes.
    pub payload: Vec<u8>,
}

impl TcpSegment {
    /// Parses a TCP header and its payload from `bytes` (the IP payload).
    pub fn parse(bytes: &[u8]) -> Result<TcpSegment, TcpError> {
        let slice = TcpHeaderSlice::from_slice(bytes).map_err(|e| TcpError::Malformed(e.to_string()))?;
        let header = slice.to_header();
        Ok(TcpSegment {
            src_port: header.source_port,
            dst_port: header.destination_port,
            seq: header.sequence_number,
            ack: header.acknowledgment_number,
            flags: Flags::from_bits(bytes[13]),
            window: header.window_size,
            checksum: header.checksum,
            urgent: header.urgent_pointer,
            options: parse_options(header.options.as_slice()),
            payload: bytes[slice.slice().len()..].to_vec(),
        })
    }

    /// The etherparse header for this segment, with `checksum` as given.
    fn header(&self) -> Result<TcpHeader, TcpError> {
        let options = emit_options(&self.options);
        let mut header = TcpHeader::new(self.src_port, self.dst_port, self.seq, self.window);
        header
            .set_options_raw(&options)
            .map_err(|_| TcpError::OptionsTooLong(options.len()))?;
        header.acknowledgment_number = self.ack;
        let f = self.flags;
        header.fin = f.contains(Flags::FIN);
        header.syn = f.contains(Flags::SYN);
        header.rst = f.contains(Flags::RST);
        header.psh = f.contains(Flags::PSH);
        header.ack = f.contains(Flags::ACK);
        header.urg = f.contains(Flags::URG);
        header.ece = f.contains(Flags::ECE);
        header.cwr = f.contains(Flags::CWR);
        header.urgent_pointer = self.urgent;
        header.checksum = self.checksum;
        Ok(header)
    }

    /// Emits header and payload with the checksum field as it is in `self`.
    pub fn emit(&self) -> Result<Vec<u8>, TcpError> {
        let header = self.header()?;
        let mut out = header.to_bytes().to_vec();
        out.extend(&self.payload);
        if out.len() > usize::from(u16::MAX) - 60 {
            return Err(TcpError::TooLong(out.len()));
        }
        Ok(out)
    }

    /// The correct checksum of this segment between `src` and `dst`.
    pub fn compute_checksum(&self, src: std::net::IpAddr, dst: std::net::IpAddr) -> Result<u16, TcpError> {
        let mut header = self.header()?;
        header.checksum = 0;
        let too_long = |_| TcpError::TooLong(self.payload.len());
        match (src, dst) {
            (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) => header
                .calc_checksum_ipv4_raw(s.octets(), d.octets(), &self.payload)
                .map_err(too_long),
            (std::net::IpAddr::V6(s), std::net::IpAddr::V6(d)) => header
                .calc_checksum_ipv6_raw(s.octets(), d.octets(), &self.payload)
                .map_err(too_long),
            _ => Err(TcpError::Malformed(
                "source and destination are of different families".into(),
            )),
        }
    }

    /// Sequence space taken by this segment: payload plus one for SYN and one for FIN.
    pub fn seq_len(&self) -> u32 {
        let payload = u32::try_from(self.payload.len()).unwrap_or(u32::MAX);
        payload + u32::from(self.flags.contains(Flags::SYN)) + u32::from(self.flags.contains(Flags::FIN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// A SYN from Linux 6.x: mss 1460, sackOK, TS val/ecr, nop, wscale 7.
    const LINUX_SYN: [u8; 40] = [
        0x9c, 0x40, 0x1f, 0x90, // ports 40000 -> 8080
        0x12, 0x34, 0x56, 0x78, // seq
        0x00, 0x00, 0x00, 0x00, // ack
        0xa0, 0x02, 0xfa, 0xf0, // data offset 10, SYN, win 64240
        0xab, 0xcd, 0x00, 0x00, // checksum, urg
        0x02, 0x04, 0x05, 0xb4, // mss 1460
        0x04, 0x02, 0x08, 0x0a, // sackOK, TS
        0x00, 0x00, 0x00, 0x64, // TS val 100
        0x00, 0x00, 0x00, 0x00, // TS ecr 0
        0x01, 0x03, 0x03, 0x07, // nop, wscale 7
    ];

    #[test]
    fn parses_a_linux_syn() {
        let seg = TcpSegment::parse(&LINUX_SYN).unwrap();
        assert_eq!((seg.src_port, seg.dst_port), (40000, 8080));
        assert_eq!(seg.seq, 0x1234_5678);
        assert_eq!(seg.flags, Flags::SYN);
        assert_eq!(seg.window, 64240);
        assert_eq!(seg.checksum, 0xabcd);
        assert_eq!(
            seg.options,
            vec![
                TcpOption::Mss(1460),
                TcpOption::SackPermitted,
                TcpOption::Timestamp { val: 100, ecr: 0 },
                TcpOption::Nop,
                TcpOption::WindowScale(7),
            ]
        );
        assert!(seg.payload.is_empty());
        assert_eq!(seg.seq_len(), 1);
    }

    #[test]
    fn segment_round_trip_is_byte_exact() {
        let mut bytes = LINUX_SYN.to_vec();
        bytes[13] = 0x18; // PSH|ACK
        bytes.extend(b"hello");
        let seg = TcpSegment::parse(&bytes).unwrap();
        assert_eq!(seg.payload, b"hello");
        assert_eq!(seg.emit().unwrap(), bytes);
    }

    #[rstest]
    #[case::empty(&[])]
    #[case::nops(&[1, 1, 1, 1])]
    #[case::eol_padding(&[2, 4, 5, 0xb4, 0, 0, 0, 0])]
    #[case::eol_mid_word(&[1, 0, 0, 0])]
    #[case::eol_then_garbage(&[2, 4, 5, 0xb4, 0, 7, 0, 0])]
    #[case::eol_then_extra_zero_words(&[0, 0, 0, 0, 0, 0, 0, 0])]
    #[case::unknown_kind(&[253, 6, 0xde, 0xad, 0xbe, 0xef, 1, 1])]
    #[case::mss_bad_length(&[2, 3, 5, 1])]
    #[case::truncated(&[1, 1, 8, 10])]
    #[case::zero_length(&[1, 1, 30, 0])]
    #[case::lone_kind_at_end(&[1, 1, 1, 30])]
    #[case::sack_two_blocks(&[1, 1, 5, 18, 0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 9, 0, 0, 0, 12])]
    #[case::sack_odd_length(&[5, 6, 0, 0, 0, 1, 1, 1])]
    fn option_round_trip_is_byte_exact(#[case] bytes: &[u8]) {
        assert_eq!(emit_options(&parse_options(bytes)), bytes);
    }

    #[test]
    fn malformed_options_are_kept_not_dropped() {
        assert_eq!(
            parse_options(&[1, 1, 8, 10]),
            vec![TcpOption::Nop, TcpOption::Nop, TcpOption::Trailing(vec![8, 10])]
        );
        assert_eq!(
            parse_options(&[2, 3, 5, 1]),
            vec![TcpOption::Unknown { kind: 2, data: vec![5] }, TcpOption::Nop]
        );
    }

    #[test]
    fn flags_print_in_tcpdump_order() {
        assert_eq!((Flags::SYN | Flags::ACK).to_string(), "S.");
        assert_eq!((Flags::FIN | Flags::PSH | Flags::ACK).to_string(), "FP.");
        assert_eq!(Flags::NONE.to_string(), "-");
        assert_eq!((Flags::SYN | Flags::ECE | Flags::CWR).to_string(), "SEW");
    }

    #[test]
    fn too_many_options_is_an_error_not_a_panic() {
        let seg = TcpSegment {
            src_port: 1,
            dst_port: 2,
            seq: 0,
            ack: 0,
            flags: Flags::ACK,
            window: 0,
            checksum: 0,
            urgent: 0,
            options: vec![TcpOption::Nop; 41],
            payload: vec![],
        };
        assert_eq!(seg.emit(), Err(TcpError::OptionsTooLong(44)));
    }
}
