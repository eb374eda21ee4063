//! The packet model: TCP segments and their options ([`tcp`]), Ethernet/IP
//! framing with the IP header fields ([`frame`]), ICMP messages to inject
//! ([`icmp`]), the packetdrill-like notation for one segment ([`notation`])
//! and segment patterns with the matcher ([`pattern`]).
//!
//! This module also fixes the address plan of every lab: the kernel under
//! test is the *target*, the harness plays the *peer*.

pub mod frame;
pub mod icmp;
pub mod notation;
pub mod pattern;
pub mod tcp;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// An Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// MAC address of the target's veth end (locally administered).
pub const TARGET_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);
/// MAC address of the harness's veth end (locally administered).
pub const PEER_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x02]);

/// MTU of the lab's veth pair; the kernel's MSS follows from it.
pub const MTU: u32 = 1500;

/// IP version a case runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4, 192.0.2.0/24 (RFC 5737 documentation range).
    Ipv4,
    /// IPv6, 2001:db8::/64 (RFC 3849 documentation range).
    Ipv6,
}

impl Family {
    /// Both families, in the order cases run on them.
    pub const ALL: [Family; 2] = [Family::Ipv4, Family::Ipv6];

    /// Address of the kernel under test.
    pub fn target_addr(self) -> IpAddr {
        match self {
            Family::Ipv4 => IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            Family::Ipv6 => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        }
    }

    /// Address the harness speaks from.
    pub fn peer_addr(self) -> IpAddr {
        match self {
            Family::Ipv4 => IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
            Family::Ipv6 => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
        }
    }

    /// Prefix length of the lab's subnet.
    pub fn prefix_len(self) -> u8 {
        match self {
            Family::Ipv4 => 24,
            Family::Ipv6 => 64,
        }
    }

    /// The MSS the kernel derives from the lab's MTU: MTU minus IP and TCP headers.
    pub fn mss(self) -> u32 {
        match self {
            Family::Ipv4 => MTU - 20 - 20,
            Family::Ipv6 => MTU - 40 - 20,
        }
    }

    /// The name used in test names and reports: `ipv4` or `ipv6`.
    pub fn name(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
