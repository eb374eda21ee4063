//! `pcap/<case>.<family>.pcapng`: the frames of one case run as the
//! harness's end of the veth pair saw them, with the kernel's own
//! timestamps (`CLOCK_REALTIME`, nanosecond resolution), for Wireshark and
//! tshark.
//!
//! Every packet block carries its direction (the pcapng `epb_flags`:
//! inbound for the kernel's frames, outbound for the harness's) and a
//! comment with the flow and the segment in the case's notation, so the
//! capture reads like the report.

use std::borrow::Cow;
use std::io::{self, Write};
use std::time::Duration;

use pcap_file::DataLink;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};

use crate::event::{CaseResult, Direction, Record};
use crate::lab::PEER_IFNAME;

/// The capture file name of a case run: the case ID with `/` written `+`
/// and any byte other than ASCII letters, digits, `_`, `-` and `.`
/// percent-encoded (`%2B` for a `+` of the ID itself), then the family:
/// `opening/passive_handshake` on IPv6 is `opening+passive_handshake.ipv6.pcapng`.
/// The mapping is one-to-one, so two cases never share a file.
pub fn file_name(id: &str, family: &str) -> String {
    let mut out = String::new();
    for b in id.bytes() {
        match b {
            b'/' => out.push('+'),
            b if b.is_ascii_alphanumeric() || b"_-.".contains(&b) => out.push(char::from(b)),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    format!("{out}.{family}.pcapng")
}

/// pcapng `epb_flags` direction bits: 01 inbound, 10 outbound.
fn direction_flags(direction: Direction) -> u32 {
    match direction {
        Direction::FromKernel => 0b01,
        Direction::ToKernel => 0b10,
    }
}

/// Writes the capture of `result` to `out`.
pub fn write(result: &CaseResult, kernel_release: &str, out: &mut dyn Write) -> io::Result<()> {
    let section = SectionHeaderBlock {
        options: vec![
            SectionHeaderOption::UserApplication(
                format!("{} {}", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION")).into(),
            ),
            SectionHeaderOption::OS(format!("Linux {kernel_release}").into()),
            SectionHeaderOption::Comment(format!("{}: {}", result.name(), result.title).into()),
        ],
        ..SectionHeaderBlock::default()
    };
    let mut writer = PcapNgWriter::with_section_header(out, section).map_err(io::Error::other)?;
    let interface = InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 0,
        options: vec![
            InterfaceDescriptionOption::IfName(PEER_IFNAME.into()),
            InterfaceDescriptionOption::IfDescription("the harness's end of the veth pair".into()),
            InterfaceDescriptionOption::IfTsResol(9),
        ],
    };
    writer.write_pcapng_block(interface).map_err(io::Error::other)?;
    for record in &result.exchange {
        match record {
            Record::Frame {
                at: _,
                stamp,
                direction,
                flow,
                text,
                checksum_ok,
                bytes,
            } => {
                let mut comment = match flow {
                    Some(flow) => format!("[{flow}] {} {text}", direction.arrow()),
                    None => format!("{} {text}", direction.arrow()),
                };
                if !checksum_ok {
                    comment.push_str(" (bad checksum)");
                }
                let packet = EnhancedPacketBlock {
                    interface_id: 0,
                    timestamp: Duration::from_nanos(u64::try_from(stamp.0).unwrap_or(0)),
                    original_len: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
                    data: Cow::Borrowed(bytes),
                    options: vec![
                        EnhancedPacketOption::Flags(direction_flags(*direction)),
                        EnhancedPacketOption::Comment(comment.into()),
                    ],
                };
                writer.write_pcapng_block(packet).map_err(io::Error::other)?;
            }
            Record::Call { .. }
            | Record::State { .. }
            | Record::Sysctl { .. }
            | Record::Command { .. }
            | Record::AcceptQueue { .. } => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use pcap_file::pcapng::{Block, PcapNgReader};

    use super::*;
    use crate::clock::Timestamp;
    use crate::packet::Family;

    #[test]
    fn file_names_are_flat_and_one_to_one() {
        assert_eq!(
            file_name("opening/passive_handshake", "ipv6"),
            "opening+passive_handshake.ipv6.pcapng"
        );
        assert_eq!(file_name("a+b/c", "ipv4"), "a%2Bb+c.ipv4.pcapng");
        assert_eq!(file_name("x y%", "ipv4"), "x%20y%25.ipv4.pcapng");
        assert_ne!(file_name("a/b", "ipv4"), file_name("a+b", "ipv4"));
    }

    #[test]
    fn frames_keep_their_bytes_nanosecond_stamps_direction_and_notation() {
        let frame = |at: i64, direction, text: &str, bytes: Vec<u8>| Record::Frame {
            at,
            stamp: Timestamp(1_700_000_000_123_456_789 + at),
            direction,
            flow: Some("c".into()),
            text: text.into(),
            checksum_ok: true,
            bytes,
        };
        let result = CaseResult {
            id: "opening/x".into(),
            title: "t".into(),
            covers: vec![],
            rfc: vec![],
            requirements: vec![],
            deviates: vec![],
            description: None,
            family: Family::Ipv4,
            syntax: crate::case::Syntax::Yaml,
            verdict: crate::event::Verdict::Pass,
            duration: Duration::ZERO,
            tolerance: Duration::ZERO,
            sysctls: vec![],
            exchange: vec![
                frame(0, Direction::ToKernel, "S 0:0(0) win 65535", vec![1, 2, 3]),
                Record::State {
                    at: 5,
                    target: "c".into(),
                    state: "SYN_RECV".into(),
                },
                frame(1_000, Direction::FromKernel, "S. 0:0(0) ack 1", vec![4, 5, 6, 7, 8]),
            ],
            judged_until: None,
            notes: vec![],
        };
        let mut bytes = Vec::new();
        write(&result, "6.18.0", &mut bytes).expect("written");
        let mut reader = PcapNgReader::new(bytes.as_slice()).expect("a pcapng file");
        let mut packets = Vec::new();
        while let Some(block) = reader.next_block() {
            match block.expect("a valid block") {
                Block::EnhancedPacket(p) => packets.push(p.into_owned()),
                Block::InterfaceDescription(i) => {
                    assert!(i.options.contains(&InterfaceDescriptionOption::IfTsResol(9)))
                }
                _ => {}
            }
        }
        assert_eq!(packets.len(), 2);
        assert_eq!(packets[0].data.as_ref(), &[1, 2, 3]);
        assert_eq!(packets[0].timestamp, Duration::from_nanos(1_700_000_000_123_456_789));
        assert_eq!(packets[1].timestamp, Duration::from_nanos(1_700_000_000_123_457_789));
        assert_eq!(packets[1].options[0], EnhancedPacketOption::Flags(0b01));
        assert_eq!(packets[0].options[0], EnhancedPacketOption::Flags(0b10));
        assert_eq!(
            packets[1].options[1],
            EnhancedPacketOption::Comment("[c] > S. 0:0(0) ack 1".into())
        );
    }
}
