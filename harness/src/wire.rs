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

/// The lab's wire: injection on the harness's end, capture on the target's.
///
/// Injecting and capturing are different sockets anyway, since the kernel
/// never shows a packet socket the frames it sent itself.
pub struct Wire {
    tx: OwnedFd,
    rx: OwnedFd,
}

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
            tx: injector.0,
            rx: tap.0,
        })
    }

    /// Sends one Ethernet frame; its capture, stamped when the target received it, follows on [`Wire::capture`].
    pub fn inject(&self, frame: &[u8]) -> io::Result<()> {
        self.inject_gso(frame, Gso::None)
    }

    /// Sends one Ethernet frame, as a GSO frame when `gso` says so.
    pub fn inject_gso(&self, frame: &[u8], gso: Gso) -> io::Result<()> {
        let mut bytes = vnet_header(gso).to_vec();
        bytes.extend_from_slice(frame);
        let sent = nix::sys::socket::send(self.tx.as_raw_fd(), &bytes, MsgFlags::empty())?;
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
        // Copied out, so a small frame does not keep the whole buffer alive.
        let bytes = buf[..len.min(buf.len())].to_vec();
        Ok(Some((Captured { at, bytes, from_kernel }, aux)))
    }
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
