//! ICMP and ICMPv6 messages the harness injects, as packetdrill writes them
//! (`icmp unreachable frag_needed mtu 1200 [1:1461(1460)]`): the type and
//! code names of both families, the 4 header bytes after the checksum, and
//! the quoted packet an error message carries.
//!
//! The quote is packetdrill's: a minimal IP header of the kernel's own packet
//! (kernel to peer, TOS 0, ID 0, no DF, TTL 255, no options), then the first
//! 8 bytes of its transport header, then zero bytes. The quoted IPv4 header
//! checksum is left at 0, as packetdrill leaves it; Linux does not check it.
//! [`frame::build_icmp`](super::frame::build_icmp) wraps a message in its
//! Ethernet and IP headers and computes the ICMP checksum.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Family;

/// Why an ICMP message cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IcmpError {
    /// The addresses are of different families.
    #[error("source and destination are of different families")]
    Families,
    /// The message does not fit in an IP packet.
    #[error("an ICMP message of {0} bytes does not fit in an IP packet")]
    TooLong(usize),
    /// An IPv6 flow label is 20 bits.
    #[error("flow label 0x{0:x} does not fit in 20 bits")]
    FlowLabelTooBig(u32),
    /// The message has no MTU field.
    #[error("`mtu` is only carried by `unreachable frag_needed` (ICMPv4) and `packet_too_big` (ICMPv6), not by {0}")]
    NoMtuField(String),
    /// The MTU does not fit in its field.
    #[error("mtu {0} does not fit in the 16-bit next-hop MTU field of ICMPv4")]
    MtuTooBig(u32),
}

/// The 8-byte ICMP header without its checksum, which is computed when the frame is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IcmpMessage {
    /// Type.
    pub icmp_type: u8,
    /// Code.
    pub code: u8,
    /// Bytes 4-7: unused (zero), the next-hop MTU, the packet-too-big MTU, or an echo id and sequence.
    pub rest: [u8; 4],
}

/// ICMPv4 destination unreachable.
const V4_UNREACHABLE: u8 = 3;
/// ICMPv4 unreachable code: fragmentation needed and DF set.
const V4_FRAG_NEEDED: u8 = 4;
/// ICMPv4 echo reply and request.
const V4_ECHO: [u8; 2] = [0, 8];
/// ICMPv6 destination unreachable.
const V6_UNREACHABLE: u8 = 1;
/// ICMPv6 packet too big.
const V6_PACKET_TOO_BIG: u8 = 2;
/// ICMPv6 time exceeded.
const V6_TIME_EXCEEDED: u8 = 3;
/// ICMPv6 parameter problem.
const V6_PARAMETER_PROBLEM: u8 = 4;
/// ICMPv6 echo request and reply.
const V6_ECHO: [u8; 2] = [128, 129];

impl IcmpMessage {
    /// A message of this type and code, with bytes 4-7 zero.
    pub fn new(icmp_type: u8, code: u8) -> IcmpMessage {
        IcmpMessage {
            icmp_type,
            code,
            rest: [0; 4],
        }
    }

    /// Whether this message carries an MTU: ICMPv4 `unreachable frag_needed` or ICMPv6 `packet_too_big`.
    fn has_mtu(&self, family: Family) -> bool {
        match family {
            Family::Ipv4 => self.icmp_type == V4_UNREACHABLE && self.code == V4_FRAG_NEEDED,
            Family::Ipv6 => self.icmp_type == V6_PACKET_TOO_BIG && self.code == 0,
        }
    }

    /// This message with its MTU field set: a u16 in bytes 6-7 (ICMPv4), a u32 in bytes 4-7 (ICMPv6).
    pub fn with_mtu(mut self, family: Family, mtu: u32) -> Result<IcmpMessage, IcmpError> {
        if !self.has_mtu(family) {
            return Err(IcmpError::NoMtuField(describe(family, self.icmp_type, self.code)));
        }
        self.rest = match family {
            Family::Ipv4 => {
                let [hi, lo] = u16::try_from(mtu).map_err(|_| IcmpError::MtuTooBig(mtu))?.to_be_bytes();
                [0, 0, hi, lo]
            }
            Family::Ipv6 => mtu.to_be_bytes(),
        };
        Ok(self)
    }

    /// The MTU the message carries, if it is one that carries an MTU.
    pub fn mtu(&self, family: Family) -> Option<u32> {
        let [a, b, c, d] = self.rest;
        self.has_mtu(family).then(|| match family {
            Family::Ipv4 => u32::from(u16::from_be_bytes([c, d])),
            Family::Ipv6 => u32::from_be_bytes([a, b, c, d]),
        })
    }

    /// This message with its echo identifier (bytes 4-5) set.
    pub fn with_echo_id(mut self, id: u16) -> IcmpMessage {
        let [hi, lo] = id.to_be_bytes();
        self.rest[0] = hi;
        self.rest[1] = lo;
        self
    }

    /// Whether this is an echo request or reply, whose bytes 4-7 are an id and a sequence number.
    fn is_echo(&self, family: Family) -> bool {
        match family {
            Family::Ipv4 => V4_ECHO.contains(&self.icmp_type),
            Family::Ipv6 => V6_ECHO.contains(&self.icmp_type),
        }
    }
}

/// What an ICMP message carries after its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Quote {
    /// A packet the kernel sent: IP header, TCP ports and sequence number, then `len` zero bytes.
    /// The quoted IP length says the TCP header was whole (20 bytes) and `len` bytes followed.
    Tcp {
        /// The kernel's port.
        src_port: u16,
        /// The peer's port.
        dst_port: u16,
        /// The sequence number, absolute.
        seq: u32,
        /// Payload length.
        len: u16,
    },
    /// A UDP datagram the kernel sent: IP header, the 8-byte UDP header (ports; length and
    /// checksum zero, as packetdrill leaves them), then `len` zero bytes.
    Udp {
        /// The kernel's port.
        src_port: u16,
        /// The peer's port.
        dst_port: u16,
        /// Payload length.
        len: u16,
    },
    /// `len` zero bytes and no quoted header.
    Raw(u16),
}

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
/// TTL of a quoted header: packetdrill's "not given" value.
const QUOTED_TTL: u8 = 255;

impl Quote {
    /// The quote's bytes for a packet from `kernel` to `peer`.
    pub fn to_bytes(&self, kernel: IpAddr, peer: IpAddr) -> Result<Vec<u8>, IcmpError> {
        let (protocol, transport_len, head, zeros) = match *self {
            Quote::Raw(len) => return Ok(vec![0; usize::from(len)]),
            Quote::Tcp {
                src_port,
                dst_port,
                seq,
                len,
            } => {
                let mut head = Vec::with_capacity(8);
                head.extend(src_port.to_be_bytes());
                head.extend(dst_port.to_be_bytes());
                head.extend(seq.to_be_bytes());
                (PROTO_TCP, 20 + usize::from(len), head, len)
            }
            Quote::Udp {
                src_port,
                dst_port,
                len,
            } => {
                let mut head = Vec::with_capacity(8);
                head.extend(src_port.to_be_bytes());
                head.extend(dst_port.to_be_bytes());
                head.extend([0; 4]);
                (PROTO_UDP, 8 + usize::from(len), head, len)
            }
        };
        let mut out = match (kernel, peer) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let total = u16::try_from(20 + transport_len).map_err(|_| IcmpError::TooLong(20 + transport_len))?;
                let mut ip = vec![0x45, 0];
                ip.extend(total.to_be_bytes());
                ip.extend([0, 0, 0, 0, QUOTED_TTL, protocol, 0, 0]);
                ip.extend(src.octets());
                ip.extend(dst.octets());
                ip
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let payload = u16::try_from(transport_len).map_err(|_| IcmpError::TooLong(40 + transport_len))?;
                let mut ip = vec![0x60, 0, 0, 0];
                ip.extend(payload.to_be_bytes());
                ip.extend([protocol, QUOTED_TTL]);
                ip.extend(src.octets());
                ip.extend(dst.octets());
                ip
            }
            _ => return Err(IcmpError::Families),
        };
        out.extend(head);
        out.resize(out.len() + usize::from(zeros), 0);
        Ok(out)
    }
}

/// The start of the packet an ICMP error quotes, read back from the message body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quoted {
    /// Source of the quoted packet.
    pub src: IpAddr,
    /// Destination of the quoted packet.
    pub dst: IpAddr,
    /// Ports, sequence number and the payload length the quoted IP header claims.
    pub quote: Quote,
}

impl Quoted {
    /// Reads a quoted TCP or UDP packet from an ICMP body; `None` for anything else or too few bytes.
    pub fn parse(body: &[u8]) -> Option<Quoted> {
        let (src, dst, protocol, transport_len, l4) = match body.first()? >> 4 {
            4 => {
                let ihl = usize::from(body[0] & 0x0f) * 4;
                if ihl < 20 {
                    return None;
                }
                let total = usize::from(u16::from_be_bytes([*body.get(2)?, *body.get(3)?]));
                let src: [u8; 4] = body.get(12..16)?.try_into().ok()?;
                let dst: [u8; 4] = body.get(16..20)?.try_into().ok()?;
                let protocol = body[9];
                (
                    IpAddr::V4(Ipv4Addr::from(src)),
                    IpAddr::V4(Ipv4Addr::from(dst)),
                    protocol,
                    total.saturating_sub(ihl),
                    body.get(ihl..ihl + 8)?,
                )
            }
            6 => {
                let src: [u8; 16] = body.get(8..24)?.try_into().ok()?;
                let dst: [u8; 16] = body.get(24..40)?.try_into().ok()?;
                let payload = usize::from(u16::from_be_bytes([body[4], body[5]]));
                (
                    IpAddr::V6(Ipv6Addr::from(src)),
                    IpAddr::V6(Ipv6Addr::from(dst)),
                    body[6],
                    payload,
                    body.get(40..48)?,
                )
            }
            _ => return None,
        };
        let src_port = u16::from_be_bytes([l4[0], l4[1]]);
        let dst_port = u16::from_be_bytes([l4[2], l4[3]]);
        let len = |header: usize| u16::try_from(transport_len.saturating_sub(header)).unwrap_or(u16::MAX);
        let quote = match protocol {
            PROTO_TCP => Quote::Tcp {
                src_port,
                dst_port,
                seq: u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]),
                len: len(20),
            },
            PROTO_UDP => Quote::Udp {
                src_port,
                dst_port,
                len: len(8),
            },
            _ => return None,
        };
        Some(Quoted { src, dst, quote })
    }
}

impl std::fmt::Display for Quoted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.quote {
            Quote::Tcp {
                src_port,
                dst_port,
                seq,
                len,
            } => write!(
                f,
                "TCP {}.{src_port} > {}.{dst_port} seq {seq} ({len} bytes)",
                self.src, self.dst
            ),
            Quote::Udp {
                src_port,
                dst_port,
                len,
            } => write!(f, "UDP {}.{src_port} > {}.{dst_port} ({len} bytes)", self.src, self.dst),
            Quote::Raw(len) => write!(f, "{len} bytes"),
        }
    }
}

type Names = &'static [(&'static str, u8)];

const V4_TYPES: Names = &[
    ("echo_reply", 0),
    ("unreachable", 3),
    ("source_quench", 4),
    ("redirect", 5),
    ("echo_request", 8),
    ("time_exceeded", 11),
    ("parameter_problem", 12),
    ("timestamp_request", 13),
    ("timestamp_reply", 14),
    ("information_request", 15),
    ("information_reply", 16),
    ("address_mask_request", 17),
    ("address_mask_reply", 18),
];

const V4_UNREACHABLE_CODES: Names = &[
    ("net_unreachable", 0),
    ("host_unreachable", 1),
    ("protocol_unreachable", 2),
    ("port_unreachable", 3),
    ("frag_needed", 4),
    ("source_route_failed", 5),
    ("net_unknown", 6),
    ("host_unknown", 7),
    ("source_host_isolated", 8),
    ("net_prohibited", 9),
    ("host_prohibited", 10),
    ("net_unreachable_for_tos", 11),
    ("host_unreachable_for_tos", 12),
    ("packet_filtered", 13),
    ("precedence_violation", 14),
    ("precedence_cutoff", 15),
];

const V6_TYPES: Names = &[
    ("unreachable", V6_UNREACHABLE),
    ("packet_too_big", V6_PACKET_TOO_BIG),
    ("time_exceeded", V6_TIME_EXCEEDED),
    ("parameter_problem", V6_PARAMETER_PROBLEM),
    ("echo_request", 128),
    ("echo_reply", 129),
];

/// `net_unreachable` and `no_route` are both code 0; the first name is the one printed.
const V6_UNREACHABLE_CODES: Names = &[
    ("net_unreachable", 0),
    ("no_route", 0),
    ("admin_prohibited", 1),
    ("not_neighbour", 2),
    ("address_unreachable", 3),
    ("port_unreachable", 4),
];

const V6_TIME_EXCEEDED_CODES: Names = &[("exceeded_hop_limit", 0), ("exceeded_frag_time", 1)];

const V6_PARAMETER_PROBLEM_CODES: Names = &[("header_field", 0), ("unknown_next_header", 1), ("unknown_option", 2)];

fn type_names(family: Family) -> Names {
    match family {
        Family::Ipv4 => V4_TYPES,
        Family::Ipv6 => V6_TYPES,
    }
}

fn code_names(family: Family, icmp_type: u8) -> Names {
    match (family, icmp_type) {
        (Family::Ipv4, V4_UNREACHABLE) => V4_UNREACHABLE_CODES,
        (Family::Ipv6, V6_UNREACHABLE) => V6_UNREACHABLE_CODES,
        (Family::Ipv6, V6_TIME_EXCEEDED) => V6_TIME_EXCEEDED_CODES,
        (Family::Ipv6, V6_PARAMETER_PROBLEM) => V6_PARAMETER_PROBLEM_CODES,
        _ => &[],
    }
}

fn lookup(names: Names, prefix: &str, name: &str) -> Option<u8> {
    if let Some((_, value)) = names.iter().find(|(n, _)| *n == name) {
        return Some(*value);
    }
    let digits = name.strip_prefix(prefix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The type named `name` in `family`'s table, or given as `type_N`.
pub fn icmp_type(family: Family, name: &str) -> Option<u8> {
    lookup(type_names(family), "type_", name)
}

/// The code named `name` for `icmp_type` in `family`'s table, or given as `code_N`.
pub fn icmp_code(family: Family, icmp_type: u8, name: &str) -> Option<u8> {
    lookup(code_names(family, icmp_type), "code_", name)
}

/// Every type name of `family`, in table order (for messages that list them).
pub fn icmp_type_names(family: Family) -> impl Iterator<Item = &'static str> {
    type_names(family).iter().map(|(n, _)| *n)
}

/// Every code name of `icmp_type` in `family`, in table order.
pub fn icmp_code_names(family: Family, icmp_type: u8) -> impl Iterator<Item = &'static str> {
    code_names(family, icmp_type).iter().map(|(n, _)| *n)
}

/// The name of a type, or `type_N` when it has none.
pub fn icmp_type_name(family: Family, icmp_type: u8) -> String {
    match type_names(family).iter().find(|(_, v)| *v == icmp_type) {
        Some((name, _)) => (*name).to_string(),
        None => format!("type_{icmp_type}"),
    }
}

/// The name of a code of `icmp_type`, or `code_N` when it has none.
pub fn icmp_code_name(family: Family, icmp_type: u8, code: u8) -> String {
    match code_names(family, icmp_type).iter().find(|(_, v)| *v == code) {
        Some((name, _)) => (*name).to_string(),
        None => format!("code_{code}"),
    }
}

/// `type code` in names, the code left out when it is 0 and has no name.
fn describe(family: Family, icmp_type: u8, code: u8) -> String {
    let name = icmp_type_name(family, icmp_type);
    match code_names(family, icmp_type).iter().find(|(_, v)| *v == code) {
        Some((code, _)) => format!("{name} {code}"),
        None if code == 0 => name,
        None => format!("{name} code_{code}"),
    }
}

/// One line for a message: names, then the MTU or echo id/sequence when it has one.
pub fn describe_message(family: Family, message: &IcmpMessage) -> String {
    let mut out = describe(family, message.icmp_type, message.code);
    if let Some(mtu) = message.mtu(family) {
        out.push_str(&format!(" mtu {mtu}"));
    } else if message.is_echo(family) {
        let [a, b, c, d] = message.rest;
        out.push_str(&format!(
            " id {} seq {}",
            u16::from_be_bytes([a, b]),
            u16::from_be_bytes([c, d])
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(Family::Ipv4, "unreachable", Some(3))]
    #[case(Family::Ipv4, "echo_request", Some(8))]
    #[case(Family::Ipv4, "address_mask_reply", Some(18))]
    #[case(Family::Ipv4, "packet_too_big", None)]
    #[case(Family::Ipv6, "packet_too_big", Some(2))]
    #[case(Family::Ipv6, "echo_reply", Some(129))]
    #[case(Family::Ipv6, "redirect", None)]
    #[case(Family::Ipv4, "type_42", Some(42))]
    #[case(Family::Ipv6, "type_255", Some(255))]
    #[case(Family::Ipv6, "type_256", None)]
    #[case(Family::Ipv6, "type_", None)]
    #[case(Family::Ipv6, "type_+1", None)]
    fn types_resolve_per_family(#[case] family: Family, #[case] name: &str, #[case] want: Option<u8>) {
        assert_eq!(icmp_type(family, name), want);
    }

    #[rstest]
    #[case(Family::Ipv4, 3, "frag_needed", Some(4))]
    #[case(Family::Ipv4, 3, "precedence_cutoff", Some(15))]
    #[case(Family::Ipv4, 3, "host_unreachable", Some(1))]
    #[case(Family::Ipv4, 11, "exceeded_hop_limit", None)]
    #[case(Family::Ipv4, 11, "code_1", Some(1))]
    #[case(Family::Ipv6, 1, "no_route", Some(0))]
    #[case(Family::Ipv6, 1, "net_unreachable", Some(0))]
    #[case(Family::Ipv6, 1, "port_unreachable", Some(4))]
    #[case(Family::Ipv6, 1, "frag_needed", None)]
    #[case(Family::Ipv6, 3, "exceeded_frag_time", Some(1))]
    #[case(Family::Ipv6, 4, "unknown_option", Some(2))]
    fn codes_resolve_per_type(#[case] family: Family, #[case] t: u8, #[case] name: &str, #[case] want: Option<u8>) {
        assert_eq!(icmp_code(family, t, name), want);
    }

    #[test]
    fn names_print_back() {
        assert_eq!(icmp_type_name(Family::Ipv4, 3), "unreachable");
        assert_eq!(icmp_type_name(Family::Ipv6, 135), "type_135");
        assert_eq!(icmp_code_name(Family::Ipv6, 1, 0), "net_unreachable");
        assert_eq!(icmp_code_name(Family::Ipv4, 5, 1), "code_1");
        assert_eq!(icmp_type_names(Family::Ipv6).count(), 6);
        assert_eq!(icmp_code_names(Family::Ipv4, 3).count(), 16);
    }

    #[test]
    fn mtu_goes_where_each_family_keeps_it() {
        let v4 = IcmpMessage::new(3, 4).with_mtu(Family::Ipv4, 1200).unwrap();
        assert_eq!(v4.rest, [0, 0, 0x04, 0xb0]);
        assert_eq!(v4.mtu(Family::Ipv4), Some(1200));
        let v6 = IcmpMessage::new(2, 0).with_mtu(Family::Ipv6, 1280).unwrap();
        assert_eq!(v6.rest, [0, 0, 0x05, 0x00]);
        assert_eq!(describe_message(Family::Ipv6, &v6), "packet_too_big mtu 1280");
        assert_eq!(
            IcmpMessage::new(3, 4).with_mtu(Family::Ipv4, 70000),
            Err(IcmpError::MtuTooBig(70000))
        );
        assert_eq!(
            IcmpMessage::new(3, 1).with_mtu(Family::Ipv4, 1200),
            Err(IcmpError::NoMtuField("unreachable host_unreachable".into()))
        );
        let echo = IcmpMessage::new(8, 0).with_echo_id(0x1234);
        assert_eq!(echo.rest, [0x12, 0x34, 0, 0]);
        assert_eq!(describe_message(Family::Ipv4, &echo), "echo_request id 4660 seq 0");
    }

    const KERNEL4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const PEER4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn a_tcp_quote_is_packetdrills() {
        let quote = Quote::Tcp {
            src_port: 8080,
            dst_port: 40000,
            seq: 0x0102_0304,
            len: 3,
        };
        let bytes = quote.to_bytes(KERNEL4, PEER4).unwrap();
        assert_eq!(
            bytes,
            [
                0x45, 0, 0, 43, 0, 0, 0, 0, 255, 6, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2, // IPv4, length 20+20+3
                0x1f, 0x90, 0x9c, 0x40, 1, 2, 3, 4, // ports, seq
                0, 0, 0, // payload
            ]
        );
        assert_eq!(
            Quoted::parse(&bytes),
            Some(Quoted {
                src: KERNEL4,
                dst: PEER4,
                quote
            })
        );
    }

    #[test]
    fn udp_and_raw_quotes() {
        let quote = Quote::Udp {
            src_port: 53,
            dst_port: 5353,
            len: 0,
        };
        let bytes = quote.to_bytes(KERNEL4, PEER4).unwrap();
        assert_eq!(&bytes[..4], [0x45, 0, 0, 28]);
        assert_eq!(bytes[9], 17);
        assert_eq!(&bytes[20..], [0, 53, 0x14, 0xe9, 0, 0, 0, 0]);
        assert_eq!(
            Quoted::parse(&bytes).unwrap().to_string(),
            "UDP 192.0.2.1.53 > 192.0.2.2.5353 (0 bytes)"
        );
        assert_eq!(Quote::Raw(5).to_bytes(KERNEL4, PEER4).unwrap(), [0; 5]);
        assert_eq!(Quoted::parse(&[0; 5]), None);
    }

    #[test]
    fn a_v6_quote_has_a_40_byte_header() {
        let (kernel, peer) = (Family::Ipv6.target_addr(), Family::Ipv6.peer_addr());
        let quote = Quote::Tcp {
            src_port: 1,
            dst_port: 2,
            seq: 7,
            len: 1460,
        };
        let bytes = quote.to_bytes(kernel, peer).unwrap();
        assert_eq!(bytes.len(), 40 + 8 + 1460);
        assert_eq!(&bytes[..8], [0x60, 0, 0, 0, 0x05, 0xc8, 6, 255]);
        assert_eq!(Quoted::parse(&bytes).map(|q| q.quote), Some(quote));
        assert_eq!(quote.to_bytes(kernel, PEER4), Err(IcmpError::Families));
    }

    #[rstest]
    #[case::empty(&[])]
    #[case::short_v4(&[0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6])]
    #[case::bad_ihl(&[0x41; 28])]
    #[case::short_v6(&[0x60; 44])]
    #[case::not_ip(&[0x10; 48])]
    fn odd_bodies_quote_nothing(#[case] body: &[u8]) {
        assert_eq!(Quoted::parse(body), None);
    }
}
