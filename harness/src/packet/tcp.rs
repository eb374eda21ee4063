//! The TCP header: control flags, options and the segment representation.
//!
//! [`TcpSegment`] is the plain-data form of one TCP segment with absolute
//! numbers, as it is on the wire. It parses from bytes and emits back to the
//! same bytes: options are an ordered list in which unknown and malformed
//! options survive (`Unknown`, `Trailing`), so a round trip is byte-exact.
//! Header layout and checksums come from etherparse; this module owns the
//! option list, which etherparse does not model for unknown kinds.
//!
//! The flags are the nine control bits of bytes 12-13, AE (AccECN, RFC 9768,
//! formerly NS) included. The three reserved bits are not modelled: they
//! parse as zero and are emitted as zero.

use std::fmt;

use etherparse::{TcpHeader, TcpHeaderSlice};

/// TCP control bits, kept as a bit set so a case can say SYN|FIN or no flag at all.
///
/// The low 8 bits are byte 13 of the header; [`Flags::AE`] is bit 0 of byte 12.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u16);

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
    /// AE: accurate ECN (RFC 9768), the former NS bit; bit 0 of header byte 12.
    pub const AE: Flags = Flags(0x100);

    /// Notation letters, in the order they are printed (tcpdump's `.` for ACK comes last).
    pub(crate) const LETTERS: [(char, Flags); 9] = [
        ('F', Flags::FIN),
        ('S', Flags::SYN),
        ('R', Flags::RST),
        ('P', Flags::PSH),
        ('U', Flags::URG),
        ('E', Flags::ECE),
        ('W', Flags::CWR),
        ('A', Flags::AE),
        ('.', Flags::ACK),
    ];

    /// The bits of byte 13 of the TCP header: every flag but [`Flags::AE`].
    pub fn bits(self) -> u8 {
        (self.0 & 0xff) as u8
    }

    /// Builds flags from byte 13 of the TCP header (AE clear).
    pub fn from_bits(bits: u8) -> Flags {
        Flags(u16::from(bits))
    }

    /// All nine flag bits as in the low bits of header bytes 12-13 (AE is 0x100).
    pub fn wire_bits(self) -> u16 {
        self.0
    }

    /// Builds flags from header bytes 12-13 read big-endian; the data offset and reserved bits are dropped.
    pub fn from_wire_bits(bits: u16) -> Flags {
        Flags(bits & 0x1ff)
    }

    /// The 3-bit ACE field of AccECN: AE, CWR, ECE from high to low.
    pub fn ace(self) -> u8 {
        u8::from(self.contains(Flags::ECE))
            | u8::from(self.contains(Flags::CWR)) << 1
            | u8::from(self.contains(Flags::AE)) << 2
    }

    /// These flags with AE, CWR and ECE set from the low 3 bits of `ace` (higher bits ignored).
    pub fn with_ace(self, ace: u8) -> Flags {
        let mut out = Flags(self.0 & !(Flags::ECE.0 | Flags::CWR.0 | Flags::AE.0));
        for (bit, flag) in [(1, Flags::ECE), (2, Flags::CWR), (4, Flags::AE)] {
            if ace & bit != 0 {
                out |= flag;
            }
        }
        out
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

/// The two AccECN option kinds (RFC 9768): the same three byte counters in two orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccEcnOrder {
    /// Kind 172, AccECN0: e0b, ceb, e1b.
    E0bFirst,
    /// Kind 174, AccECN1: e1b, ceb, e0b.
    E1bFirst,
}

impl AccEcnOrder {
    /// The option kind.
    pub fn kind(self) -> u8 {
        match self {
            AccEcnOrder::E0bFirst => KIND_ACCECN0,
            AccEcnOrder::E1bFirst => KIND_ACCECN1,
        }
    }

    /// The counters' notation names, in wire order.
    pub fn field_names(self) -> [&'static str; 3] {
        match self {
            AccEcnOrder::E0bFirst => ["e0b", "ceb", "e1b"],
            AccEcnOrder::E1bFirst => ["e1b", "ceb", "e0b"],
        }
    }
}

/// Largest value of a 24-bit AccECN counter.
pub const ACCECN_COUNTER_MAX: u32 = 0x00ff_ffff;

/// Magic number after the length of the experimental Fast Open option (kind 254, RFC 6994).
pub const FAST_OPEN_EXP_MAGIC: u16 = 0xf989;

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
    /// Kind 19 (RFC 2385): a 16-byte MD5 signature; other lengths are `Unknown`.
    Md5([u8; 16]),
    /// Kind 34 (RFC 7413): TCP Fast Open with its cookie (empty: a cookie request), of any length.
    FastOpen(Vec<u8>),
    /// Kind 254 with magic 0xF989: the experimental Fast Open option, with its cookie.
    FastOpenExp(Vec<u8>),
    /// Kind 172 or 174 (RFC 9768): up to three 24-bit byte counters, in the order of `order`.
    ///
    /// Only the low 24 bits of each counter are emitted.
    AccEcn {
        /// Which kind, and so which counter comes first.
        order: AccEcnOrder,
        /// The counters present (0 to 3), in wire order.
        counters: Vec<u32>,
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

impl TcpOption {
    /// The option's kind byte; `None` for [`TcpOption::Trailing`].
    pub fn kind(&self) -> Option<u8> {
        Some(match self {
            TcpOption::Eol => KIND_EOL,
            TcpOption::Nop => KIND_NOP,
            TcpOption::Mss(_) => KIND_MSS,
            TcpOption::WindowScale(_) => KIND_WSCALE,
            TcpOption::SackPermitted => KIND_SACK_PERMITTED,
            TcpOption::Sack(_) => KIND_SACK,
            TcpOption::Timestamp { .. } => KIND_TIMESTAMP,
            TcpOption::Md5(_) => KIND_MD5,
            TcpOption::FastOpen(_) => KIND_FAST_OPEN,
            TcpOption::FastOpenExp(_) => KIND_EXPERIMENTAL,
            TcpOption::AccEcn { order, .. } => order.kind(),
            TcpOption::Unknown { kind, .. } => *kind,
            TcpOption::Trailing(_) => return None,
        })
    }

    /// The option's bytes on the wire, without padding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.emit(&mut out);
        out
    }

    fn emit(&self, out: &mut Vec<u8>) {
        // A length over 255 cannot be written; the length byte saturates and
        // the header-size check in `TcpSegment::emit` rejects the segment.
        let mut tlv = |kind: u8, data: &[u8]| {
            out.extend([kind, u8::try_from(2 + data.len()).unwrap_or(u8::MAX)]);
            out.extend(data);
        };
        match self {
            TcpOption::Eol => out.push(KIND_EOL),
            TcpOption::Nop => out.push(KIND_NOP),
            TcpOption::Mss(mss) => tlv(KIND_MSS, &mss.to_be_bytes()),
            TcpOption::WindowScale(shift) => tlv(KIND_WSCALE, &[*shift]),
            TcpOption::SackPermitted => tlv(KIND_SACK_PERMITTED, &[]),
            TcpOption::Sack(blocks) => {
                let data: Vec<u8> = blocks
                    .iter()
                    .flat_map(|b| b.left.to_be_bytes().into_iter().chain(b.right.to_be_bytes()))
                    .collect();
                tlv(KIND_SACK, &data);
            }
            TcpOption::Timestamp { val, ecr } => {
                let data: Vec<u8> = val.to_be_bytes().into_iter().chain(ecr.to_be_bytes()).collect();
                tlv(KIND_TIMESTAMP, &data);
            }
            TcpOption::Md5(digest) => tlv(KIND_MD5, digest),
            TcpOption::FastOpen(cookie) => tlv(KIND_FAST_OPEN, cookie),
            TcpOption::FastOpenExp(cookie) => {
                let data: Vec<u8> = FAST_OPEN_EXP_MAGIC
                    .to_be_bytes()
                    .into_iter()
                    .chain(cookie.iter().copied())
                    .collect();
                tlv(KIND_EXPERIMENTAL, &data);
            }
            TcpOption::AccEcn { order, counters } => {
                let data: Vec<u8> = counters
                    .iter()
                    .flat_map(|c| c.to_be_bytes().into_iter().skip(1))
                    .collect();
                tlv(order.kind(), &data);
            }
            TcpOption::Unknown { kind, data } => tlv(*kind, data),
            TcpOption::Trailing(bytes) => out.extend(bytes),
        }
    }
}

const KIND_EOL: u8 = 0;
const KIND_NOP: u8 = 1;
const KIND_MSS: u8 = 2;
const KIND_WSCALE: u8 = 3;
const KIND_SACK_PERMITTED: u8 = 4;
const KIND_SACK: u8 = 5;
const KIND_TIMESTAMP: u8 = 8;
const KIND_MD5: u8 = 19;
const KIND_FAST_OPEN: u8 = 34;
const KIND_ACCECN0: u8 = 172;
const KIND_ACCECN1: u8 = 174;
const KIND_EXPERIMENTAL: u8 = 254;

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
        (KIND_MD5, 16) => {
            let mut digest = [0; 16];
            digest.copy_from_slice(data);
            TcpOption::Md5(digest)
        }
        (KIND_FAST_OPEN, _) => TcpOption::FastOpen(data.to_vec()),
        (KIND_EXPERIMENTAL, n) if n >= 2 && data[..2] == FAST_OPEN_EXP_MAGIC.to_be_bytes() => {
            TcpOption::FastOpenExp(data[2..].to_vec())
        }
        (KIND_ACCECN0 | KIND_ACCECN1, n) if n <= 9 && n % 3 == 0 => TcpOption::AccEcn {
            order: if kind == KIND_ACCECN0 {
                AccEcnOrder::E0bFirst
            } else {
                AccEcnOrder::E1bFirst
            },
            counters: data
                .chunks_exact(3)
                .map(|c| u32::from_be_bytes([0, c[0], c[1], c[2]]))
                .collect(),
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
        option.emit(&mut out);
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
    /// An IPv6 flow label is 20 bits.
    #[error("flow label 0x{0:x} does not fit in 20 bits")]
    FlowLabelTooBig(u32),
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
            flags: Flags::from_wire_bits(u16::from_be_bytes([bytes[12], bytes[13]])),
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
        header.ns = f.contains(Flags::AE);
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
    #[case::fast_open_request(&[34, 2, 1, 1])]
    #[case::fast_open_cookie(&[34, 10, 0xab, 0xcd, 0x12, 0x34, 0xaa, 0xaa, 0xaa, 0xaa, 1, 1])]
    #[case::fast_open_exp(&[254, 4, 0xf9, 0x89])]
    #[case::fast_open_exp_cookie(&[254, 8, 0xf9, 0x89, 1, 2, 3, 4])]
    #[case::other_experiment(&[254, 4, 0x12, 0x34])]
    #[case::exp_without_magic(&[254, 3, 0xf9, 1])]
    #[case::md5(&[19, 18, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 1, 1])]
    #[case::md5_short(&[19, 6, 0, 1, 2, 3, 1, 1])]
    #[case::accecn0_three(&[172, 11, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1])]
    #[case::accecn1_two(&[174, 8, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1])]
    #[case::accecn_bad_length(&[172, 6, 0, 0, 1, 0, 1, 1])]
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
    fn new_kinds_parse_typed() {
        assert_eq!(
            parse_options(&[34, 2, 1, 1]),
            vec![TcpOption::FastOpen(vec![]), TcpOption::Nop, TcpOption::Nop]
        );
        assert_eq!(
            parse_options(&[1, 1, 34, 6, 0xab, 0xcd, 0x12, 0x34]),
            vec![
                TcpOption::Nop,
                TcpOption::Nop,
                TcpOption::FastOpen(vec![0xab, 0xcd, 0x12, 0x34])
            ]
        );
        assert_eq!(
            parse_options(&[254, 8, 0xf9, 0x89, 1, 2, 3, 4]),
            vec![TcpOption::FastOpenExp(vec![1, 2, 3, 4])]
        );
        let md5: Vec<u8> = [19, 18].into_iter().chain(0..16).chain([1, 1]).collect();
        let digest: [u8; 16] = std::array::from_fn(|i| i as u8);
        assert_eq!(
            parse_options(&md5),
            vec![TcpOption::Md5(digest), TcpOption::Nop, TcpOption::Nop]
        );
        // `ECN e0b 1 ceb 0 e1b 1,nop` and `ECN e1b 1 ceb 1000,...`
        assert_eq!(
            parse_options(&[172, 11, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1]),
            vec![
                TcpOption::AccEcn {
                    order: AccEcnOrder::E0bFirst,
                    counters: vec![1, 0, 1]
                },
                TcpOption::Nop
            ]
        );
        assert_eq!(
            parse_options(&[174, 8, 0, 0, 1, 0, 0x03, 0xe8, 1, 1, 1, 1])[0],
            TcpOption::AccEcn {
                order: AccEcnOrder::E1bFirst,
                counters: vec![1, 1000]
            }
        );
        assert_eq!(
            parse_options(&[174, 2, 1, 1]),
            vec![
                TcpOption::AccEcn {
                    order: AccEcnOrder::E1bFirst,
                    counters: vec![]
                },
                TcpOption::Nop,
                TcpOption::Nop
            ]
        );
    }

    #[test]
    fn new_kinds_with_odd_lengths_stay_unknown() {
        assert_eq!(
            parse_options(&[19, 6, 0, 1, 2, 3, 1, 1]),
            vec![
                TcpOption::Unknown {
                    kind: 19,
                    data: vec![0, 1, 2, 3]
                },
                TcpOption::Nop,
                TcpOption::Nop
            ]
        );
        assert_eq!(
            parse_options(&[172, 6, 0, 0, 1, 0])[0],
            TcpOption::Unknown {
                kind: 172,
                data: vec![0, 0, 1, 0]
            }
        );
        assert_eq!(
            parse_options(&[174, 14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])[0],
            TcpOption::Unknown {
                kind: 174,
                data: vec![0; 12]
            }
        );
        assert_eq!(
            parse_options(&[254, 4, 0x12, 0x34])[0],
            TcpOption::Unknown {
                kind: 254,
                data: vec![0x12, 0x34]
            }
        );
        assert_eq!(
            parse_options(&[254, 3, 0xf9, 1])[0],
            TcpOption::Unknown {
                kind: 254,
                data: vec![0xf9]
            }
        );
    }

    #[test]
    fn new_kinds_emit_their_wire_bytes() {
        assert_eq!(TcpOption::FastOpen(vec![]).to_bytes(), [34, 2]);
        assert_eq!(
            TcpOption::FastOpenExp(vec![0xaa]).to_bytes(),
            [254, 5, 0xf9, 0x89, 0xaa]
        );
        let counters = vec![0x0012_3456, 0, 0xff_ffff];
        let option = TcpOption::AccEcn {
            order: AccEcnOrder::E1bFirst,
            counters,
        };
        assert_eq!(
            option.to_bytes(),
            [174, 11, 0x12, 0x34, 0x56, 0, 0, 0, 0xff, 0xff, 0xff]
        );
        assert_eq!(option.kind(), Some(174));
        assert_eq!(TcpOption::Trailing(vec![1]).kind(), None);
    }

    #[test]
    fn the_ae_flag_is_bit_0_of_byte_12() {
        let mut bytes = LINUX_SYN.to_vec();
        bytes[12] = 0xa1; // data offset 10, AE
        bytes[13] = 0xc2; // CWR, ECE, SYN: `SEWA`, an AccECN SYN
        let seg = TcpSegment::parse(&bytes).unwrap();
        assert_eq!(seg.flags, Flags::SYN | Flags::ECE | Flags::CWR | Flags::AE);
        assert_eq!(seg.flags.to_string(), "SEWA");
        assert_eq!(seg.flags.bits(), 0xc2);
        assert_eq!(seg.flags.wire_bits(), 0x1c2);
        assert_eq!(seg.flags.ace(), 7);
        assert_eq!(seg.emit().unwrap(), bytes);
        // The reserved bits (byte 12 bits 1-3) are not flags.
        bytes[12] = 0xaf;
        assert_eq!(TcpSegment::parse(&bytes).unwrap().flags, seg.flags);
    }

    #[test]
    fn ace_sets_and_reads_three_bits() {
        assert_eq!(Flags::ACK.with_ace(5), Flags::ACK | Flags::AE | Flags::ECE);
        assert_eq!(Flags::ACK.with_ace(6), Flags::ACK | Flags::AE | Flags::CWR);
        assert_eq!((Flags::ACK | Flags::ECE).with_ace(0), Flags::ACK);
        assert_eq!((Flags::AE | Flags::CWR).ace(), 6);
        assert_eq!(Flags::from_wire_bits(0xf1ff), Flags::from_wire_bits(0x1ff));
        assert_eq!(Flags::from_bits(0x10), Flags::ACK);
    }

    #[test]
    fn flags_print_in_tcpdump_order() {
        assert_eq!((Flags::SYN | Flags::ACK).to_string(), "S.");
        assert_eq!((Flags::FIN | Flags::PSH | Flags::ACK).to_string(), "FP.");
        assert_eq!(Flags::NONE.to_string(), "-");
        assert_eq!((Flags::SYN | Flags::ECE | Flags::CWR).to_string(), "SEW");
        assert_eq!((Flags::ACK | Flags::PSH | Flags::AE | Flags::ECE).to_string(), "PEA.");
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
