//! The raw wire: `AF_PACKET` sockets on the lab's veth pair. Frames are
//! injected as whole Ethernet frames on the harness's end, and every frame
//! is captured on the target's end, stamped by the kernel (`SO_TIMESTAMPNS`)
//! as the target sends it or as the target receives it. Times on a case's
//! timeline are therefore the kernel's own: how long the kernel took to
//! answer does not include how long the harness's threads or the network
//! softirqs waited for a CPU, however loaded the machine is.
//!
//! The tap also asks for `PACKET_AUXDATA`, which says per frame whether the
//! kernel left its transport checksum to the device (`CHECKSUM_PARTIAL`,
//! on a link with TX checksum offload) and whether it is a TCP GSO
//! super-segment (on a link with TSO/GSO, up to 64 KiB in one frame).
//! Such a checksum is "offloaded, not computed" rather than wrong.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{ControlMessageOwned, LinkAddr, MsgFlags, recvmsg, setsockopt, sockopt};

use crate::clock::Timestamp;

/// One frame captured on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Captured {
    /// When the target sent it, or received it (kernel timestamp).
    pub at: Timestamp,
    /// The whole Ethernet frame.
    pub bytes: Vec<u8>,
    /// Whether the target sent the frame (rather than received it from the harness).
    pub from_kernel: bool,
}

/// What the kernel says about a captured frame besides its bytes: a `struct tpacket_auxdata`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuxData {
    /// `tp_status`: `TP_STATUS_*` bits.
    pub status: u32,
    /// `tp_len`: the frame's whole length.
    pub len: u32,
    /// `tp_snaplen`: how many of its bytes were captured.
    pub snaplen: u32,
    /// `tp_mac`: offset of the link-layer header.
    pub mac: u16,
    /// `tp_net`: offset of the network header.
    pub net: u16,
    /// `tp_vlan_tci`: the VLAN tag, when `TP_STATUS_VLAN_VALID`.
    pub vlan_tci: u16,
    /// `tp_vlan_tpid`: the VLAN protocol, when `TP_STATUS_VLAN_TPID_VALID`.
    pub vlan_tpid: u16,
}

/// `TP_STATUS_CSUMNOTREADY`: the checksum is partial, to be completed by the device.
const TP_STATUS_CSUMNOTREADY: u32 = 1 << 3;
/// `TP_STATUS_CSUM_VALID`: the device verified the checksum of a received frame.
const TP_STATUS_CSUM_VALID: u32 = 1 << 7;
/// `TP_STATUS_GSO_TCP`: a TCP GSO super-segment, to be cut by the device.
const TP_STATUS_GSO_TCP: u32 = 1 << 8;
/// `PACKET_AUXDATA` (linux/if_packet.h): the socket option and the control message type.
const PACKET_AUXDATA: libc::c_int = 8;
/// Size of `struct tpacket_auxdata`.
const AUXDATA_LEN: usize = 20;

impl AuxData {
    /// Decodes the data of a `SOL_PACKET` / `PACKET_AUXDATA` control message (native byte order).
    pub fn parse(data: &[u8]) -> Option<AuxData> {
        let data: &[u8; AUXDATA_LEN] = data.get(..AUXDATA_LEN)?.try_into().ok()?;
        let u32_at = |i: usize| u32::from_ne_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
        let u16_at = |i: usize| u16::from_ne_bytes([data[i], data[i + 1]]);
        Some(AuxData {
            status: u32_at(0),
            len: u32_at(4),
            snaplen: u32_at(8),
            mac: u16_at(12),
            net: u16_at(14),
            vlan_tci: u16_at(16),
            vlan_tpid: u16_at(18),
        })
    }

    /// The transport checksum was left to the device (`CHECKSUM_PARTIAL`): the
    /// captured field holds the pseudo-header sum, not the checksum.
    pub fn checksum_not_ready(&self) -> bool {
        self.status & TP_STATUS_CSUMNOTREADY != 0
    }

    /// The device verified the checksum of a received frame.
    pub fn checksum_valid(&self) -> bool {
        self.status & TP_STATUS_CSUM_VALID != 0
    }

    /// A TCP GSO super-segment: the device cuts it into MSS-sized segments.
    pub fn gso_tcp(&self) -> bool {
        self.status & TP_STATUS_GSO_TCP != 0
    }
}

/// A send-only packet socket, opened in the harness's namespace.
pub struct Injector(OwnedFd);

/// A capturing packet socket, opened in the target's namespace.
pub struct Tap(OwnedFd);

impl Injector {
    /// Opens it in the calling thread's namespace. Frames go out with a
    /// `virtio_net_hdr` (PACKET_VNET_HDR), so that one can be a GSO frame.
    pub fn open() -> io::Result<Injector> {
        let fd = packet_socket()?;
        let on: libc::c_int = 1;
        // SAFETY: setsockopt reads the live int.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_VNET_HDR,
                (&on as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Injector(fd))
    }
}

/// How an injected TCP frame reaches the kernel: as one segment, or as a
/// GSO frame of segments of `size` bytes (as from a NIC's receive offload,
/// or packetdrill's tun device with `--mss`): TCP sees one large segment
/// and sizes its receive MSS from `size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gso {
    /// A plain frame.
    None,
    /// A GSO TCP frame over IPv4 or IPv6, with its headers' length and the segment size.
    Tcp {
        /// IPv6 rather than IPv4.
        ipv6: bool,
        /// Ethernet, IP and TCP headers' length.
        header_len: u16,
        /// Segment size.
        size: u16,
    },
}

/// The `virtio_net_hdr` before a frame (linux/virtio_net.h): flags, gso_type,
/// hdr_len, gso_size, csum_start, csum_offset. No checksum is left to do.
fn vnet_header(gso: Gso) -> [u8; 10] {
    const GSO_TCPV4: u8 = 1;
    const GSO_TCPV6: u8 = 4;
    let mut h = [0u8; 10];
    if let Gso::Tcp { ipv6, header_len, size } = gso {
        h[1] = if ipv6 { GSO_TCPV6 } else { GSO_TCPV4 };
        h[2..4].copy_from_slice(&header_len.to_ne_bytes());
        h[4..6].copy_from_slice(&size.to_ne_bytes());
    }
    h
}

impl Tap {
    /// Opens it in the calling thread's namespace; it captures nothing until bound.
    pub fn open() -> io::Result<Tap> {
        let rx = packet_socket()?;
        setsockopt(&rx, sockopt::ReceiveTimestampns, &true)?;
        setsockopt(&rx, sockopt::RcvBufForce, &RCVBUF).or_else(|_| setsockopt(&rx, sockopt::RcvBuf, &RCVBUF))?;
        let on: libc::c_int = 1;
        // SAFETY: setsockopt(2) with a pointer to a live c_int of the size given.
        let rc = unsafe {
            libc::setsockopt(
                rx.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_AUXDATA,
                (&on as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Tap(rx))
    }
}

/// The target's end of a tun link: the kernel's device is a tun device, and
/// the harness holds its file, as packetdrill's tun0 is held.
pub struct TunDevice(OwnedFd);

/// `struct ifreq` with the flags member, for TUNSETIFF.
#[repr(C)]
struct IfreqFlags {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
const TUN_F_CSUM: libc::c_uint = 0x01;
const TUN_F_TSO4: libc::c_uint = 0x02;
const TUN_F_TSO6: libc::c_uint = 0x04;
const TUN_F_TSO_ECN: libc::c_uint = 0x08;

impl TunDevice {
    /// Makes a tun device named `name` (IP packets, each after a
    /// `virtio_net_hdr`) in the calling thread's namespace; with `offloads`,
    /// the kernel may hand it partial checksums and TSO/GSO super-segments
    /// (with ECN), as to a NIC.
    pub fn create(name: &str, offloads: bool) -> io::Result<TunDevice> {
        let path = c"/dev/net/tun";
        // SAFETY: open(2) of a NUL-terminated path; the result is checked before it is owned.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        if name.len() >= libc::IFNAMSIZ {
            return Err(io::Error::other(format!("device name `{name}` is too long")));
        }
        let mut req = IfreqFlags {
            name: [0; libc::IFNAMSIZ],
            flags: IFF_TUN | IFF_NO_PI | IFF_VNET_HDR,
            _pad: [0; 22],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF reads and writes the live ifreq.
        if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF, &mut req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let flags: libc::c_uint = if offloads {
            TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN
        } else {
            0
        };
        // SAFETY: TUNSETOFFLOAD takes the flags as its argument.
        if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETOFFLOAD, flags as libc::c_ulong) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(TunDevice(fd))
    }
}

/// How the harness sends to the kernel.
enum Sender {
    /// A packet socket on the harness's veth end: whole Ethernet frames.
    Packet(OwnedFd),
    /// The target's tun device: IP packets, which it reads too (and drops:
    /// the tap has them, with the kernel's timestamps).
    Tun(OwnedFd),
}

/// The lab's wire: injection on the harness's end, capture on the target's.
///
/// Injecting and capturing are different sockets anyway, since the kernel
/// never shows a packet socket the frames it sent itself. On a tun link the
/// tap sees IP packets; they are given an Ethernet header with the lab's
/// MAC addresses, so that every frame has one form.
pub struct Wire {
    tx: Sender,
    rx: OwnedFd,
}

/// Length of an Ethernet header.
const ETHER_HEADER: usize = 14;

const ETH_P_ALL: u16 = 0x0003;
/// Receive buffer: room for thousands of small frames, so nothing is lost
/// while a case waits on a timer without reading.
const RCVBUF: usize = 4 << 20;
/// The largest frame a capture holds whole: Ethernet and a VLAN tag, then an
/// IPv6 header and the largest payload its 16-bit length allows (an IPv4
/// packet, 65535 bytes with its header, is smaller). A GSO super-segment
/// is at most this big unless BIG TCP raises the link's GSO limit.
const MAX_FRAME: usize = 14 + 4 + 40 + 65535;

impl Wire {
    /// Binds the injector to the harness's end and the tap to the target's end.
    pub fn new(injector: Injector, harness_ifindex: u32, tap: Tap, target_ifindex: u32) -> io::Result<Wire> {
        bind(&injector.0, harness_ifindex, 0)?;
        bind(&tap.0, target_ifindex, ETH_P_ALL)?;
        Ok(Wire {
            tx: Sender::Packet(injector.0),
            rx: tap.0,
        })
    }

    /// Injects through the target's tun device and captures on it.
    pub fn tun(tun: TunDevice, tap: Tap, target_ifindex: u32) -> io::Result<Wire> {
        bind(&tap.0, target_ifindex, ETH_P_ALL)?;
        Ok(Wire {
            tx: Sender::Tun(tun.0),
            rx: tap.0,
        })
    }

    /// Sends one Ethernet frame; its capture, stamped when the target received it, follows on [`Wire::capture`].
    pub fn inject(&self, frame: &[u8]) -> io::Result<()> {
        self.inject_gso(frame, Gso::None)
    }

    /// Sends one Ethernet frame, as a GSO frame when `gso` says so.
    pub fn inject_gso(&self, frame: &[u8], gso: Gso) -> io::Result<()> {
        let (fd, packet, gso) = match &self.tx {
            Sender::Packet(fd) => (fd, frame, gso),
            Sender::Tun(fd) => {
                // No header length, as packetdrill writes it: tun then lays
                // the packet out (and sizes its memory) as for packetdrill.
                let gso = match gso {
                    Gso::Tcp { ipv6, size, .. } => Gso::Tcp {
                        ipv6,
                        header_len: 0,
                        size,
                    },
                    Gso::None => Gso::None,
                };
                (fd, frame.get(ETHER_HEADER..).unwrap_or_default(), gso)
            }
        };
        let mut bytes = vnet_header(gso).to_vec();
        bytes.extend_from_slice(packet);
        // SAFETY: write(2) reads the live buffer.
        let sent = unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        let sent = usize::try_from(sent).map_err(|_| io::Error::last_os_error())?;
        if sent != bytes.len() {
            return Err(io::Error::other(format!("short send: {sent} of {} bytes", bytes.len())));
        }
        Ok(())
    }

    /// Returns the next captured frame, waiting until `deadline` at most.
    pub fn capture(&self, deadline: Timestamp) -> io::Result<Option<Captured>> {
        Ok(self.capture_aux(deadline)?.map(|(frame, _)| frame))
    }

    /// Returns a frame already received, if any, without waiting.
    pub fn try_capture(&self) -> io::Result<Option<Captured>> {
        Ok(self.try_capture_aux()?.map(|(frame, _)| frame))
    }

    /// [`Wire::capture`], with what the kernel said about the frame (all zero if it said nothing).
    pub fn capture_aux(&self, deadline: Timestamp) -> io::Result<Option<(Captured, AuxData)>> {
        loop {
            if let Some(frame) = self.try_capture_aux()? {
                return Ok(Some(frame));
            }
            let left = deadline.remaining();
            if left.is_zero() {
                return Ok(None);
            }
            // Round up so a wait never ends just before the deadline.
            let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
            let mut fds = [PollFd::new(self.rx.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// [`Wire::try_capture`], with what the kernel said about the frame (all zero if it said nothing).
    pub fn try_capture_aux(&self) -> io::Result<Option<(Captured, AuxData)>> {
        if let Sender::Tun(fd) = &self.tx {
            drain(fd);
        }
        let mut buf = vec![0u8; MAX_FRAME];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec, [u8; AUXDATA_LEN]);
        let msg = match recvmsg::<LinkAddr>(self.rx.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_TRUNC) {
            Ok(msg) => msg,
            Err(nix::errno::Errno::EAGAIN) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let len = msg.bytes;
        let from_kernel = msg.address.is_some_and(|a| a.pkttype() == libc::PACKET_OUTGOING);
        let mut at = None;
        let mut aux = AuxData::default();
        for c in msg.cmsgs()? {
            match c {
                ControlMessageOwned::ScmTimestampns(ts) => {
                    at = Some(Timestamp(ts.tv_sec() * 1_000_000_000 + ts.tv_nsec()));
                }
                ControlMessageOwned::Unknown(u)
                    if u.cmsg_header.cmsg_level == libc::SOL_PACKET && u.cmsg_header.cmsg_type == PACKET_AUXDATA =>
                {
                    aux = AuxData::parse(&u.data_bytes).unwrap_or_default();
                }
                _ => {}
            }
        }
        let at = at.unwrap_or_else(Timestamp::now);
        let packet = &buf[..len.min(buf.len())];
        // Copied out, so a small frame does not keep the whole buffer alive.
        let bytes = match self.tx {
            Sender::Packet(_) => packet.to_vec(),
            Sender::Tun(_) => with_ethernet(packet, from_kernel),
        };
        Ok(Some((Captured { at, bytes, from_kernel }, aux)))
    }
}

/// Reads and drops what the kernel sent to the tun device: the tap has it.
/// Until read, it would fill the device's queue.
fn drain(fd: &OwnedFd) {
    let mut scratch = vec![0u8; 10 + 65536];
    loop {
        // SAFETY: read(2) writes at most the live buffer's length.
        let n = unsafe { libc::read(fd.as_raw_fd(), scratch.as_mut_ptr().cast(), scratch.len()) };
        if n <= 0 {
            return;
        }
    }
}

/// An IP packet in an Ethernet frame between the lab's MAC addresses.
fn with_ethernet(packet: &[u8], from_kernel: bool) -> Vec<u8> {
    let (src, dst) = if from_kernel {
        (crate::packet::TARGET_MAC, crate::packet::PEER_MAC)
    } else {
        (crate::packet::PEER_MAC, crate::packet::TARGET_MAC)
    };
    let ether_type: u16 = match packet.first().map(|b| b >> 4) {
        Some(6) => 0x86dd,
        _ => 0x0800,
    };
    let mut frame = Vec::with_capacity(ETHER_HEADER + packet.len());
    frame.extend_from_slice(&dst.0);
    frame.extend_from_slice(&src.0);
    frame.extend_from_slice(&ether_type.to_be_bytes());
    frame.extend_from_slice(packet);
    frame
}

fn packet_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked before it is owned.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Binds a packet socket to `ifindex`, receiving `protocol` (0: nothing).
fn bind(fd: &OwnedFd, ifindex: u32, protocol: u16) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = protocol.to_be();
    addr.sll_ifindex = ifindex as i32;
    // SAFETY: bind(2) with a pointer to a live sockaddr_ll of the size given.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The auxdata of an outgoing 64 KiB GSO frame with a partial checksum, as an x86-64 kernel writes it.
    #[cfg(target_endian = "little")]
    #[test]
    fn auxdata_of_a_partial_checksum_gso_frame() {
        let data = [
            0x09, 0x01, 0x00, 0x00, // tp_status: USER | CSUMNOTREADY | GSO_TCP
            0x0d, 0x00, 0x01, 0x00, // tp_len 65549
            0x0d, 0x00, 0x01, 0x00, // tp_snaplen 65549
            0x00, 0x00, 0x0e, 0x00, // tp_mac 0, tp_net 14
            0x00, 0x00, 0x00, 0x00, // no VLAN
        ];
        let aux = AuxData::parse(&data).unwrap();
        assert_eq!((aux.len, aux.snaplen, aux.mac, aux.net), (65_549, 65_549, 0, 14));
        assert!(aux.checksum_not_ready() && aux.gso_tcp() && !aux.checksum_valid());
    }

    #[test]
    fn auxdata_status_bits_are_the_uapi_ones() {
        let status = |s: u32| {
            let mut data = s.to_ne_bytes().to_vec();
            data.extend([0; 16]);
            AuxData::parse(&data).unwrap()
        };
        assert!(status(0x08).checksum_not_ready());
        assert!(status(0x80).checksum_valid());
        assert!(status(0x100).gso_tcp());
        assert_eq!(status(0), AuxData::default());
    }

    #[test]
    fn short_auxdata_is_none_not_a_panic() {
        assert_eq!(AuxData::parse(&[0; 19]), None);
        assert_eq!(AuxData::parse(&[]), None);
    }
}
