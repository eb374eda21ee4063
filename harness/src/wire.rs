//! The raw wire: `AF_PACKET` sockets on the lab's veth pair. Frames are
//! injected as whole Ethernet frames on the harness's end, and every frame
//! is captured on the target's end, stamped by the kernel (`SO_TIMESTAMPNS`)
//! as the target sends it or as the target receives it. Times on a case's
//! timeline are therefore the kernel's own: how long the kernel took to
//! answer does not include how long the harness's threads or the network
//! softirqs waited for a CPU, however loaded the machine is.

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

/// A send-only packet socket, opened in the harness's namespace.
pub struct Injector(OwnedFd);

/// A capturing packet socket, opened in the target's namespace.
pub struct Tap(OwnedFd);

impl Injector {
    /// Opens it in the calling thread's namespace.
    pub fn open() -> io::Result<Injector> {
        packet_socket().map(Injector)
    }
}

impl Tap {
    /// Opens it in the calling thread's namespace; it captures nothing until bound.
    pub fn open() -> io::Result<Tap> {
        let rx = packet_socket()?;
        setsockopt(&rx, sockopt::ReceiveTimestampns, &true)?;
        setsockopt(&rx, sockopt::RcvBufForce, &RCVBUF).or_else(|_| setsockopt(&rx, sockopt::RcvBuf, &RCVBUF))?;
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
        let sent = nix::sys::socket::send(self.tx.as_raw_fd(), frame, MsgFlags::empty())?;
        if sent != frame.len() {
            return Err(io::Error::other(format!("short send: {sent} of {} bytes", frame.len())));
        }
        Ok(())
    }

    /// Returns the next captured frame, waiting until `deadline` at most.
    pub fn capture(&self, deadline: Timestamp) -> io::Result<Option<Captured>> {
        loop {
            if let Some(frame) = self.try_capture()? {
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

    /// Returns a frame already received, if any, without waiting.
    pub fn try_capture(&self) -> io::Result<Option<Captured>> {
        let mut buf = vec![0u8; 65536 + 64];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
        let msg = match recvmsg::<LinkAddr>(self.rx.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_TRUNC) {
            Ok(msg) => msg,
            Err(nix::errno::Errno::EAGAIN) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let len = msg.bytes;
        let from_kernel = msg.address.is_some_and(|a| a.pkttype() == libc::PACKET_OUTGOING);
        let mut at = None;
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmTimestampns(ts) = c {
                at = Some(Timestamp(ts.tv_sec() * 1_000_000_000 + ts.tv_nsec()));
            }
        }
        let at = at.unwrap_or_else(Timestamp::now);
        buf.truncate(len.min(buf.len()));
        Ok(Some(Captured {
            at,
            bytes: buf,
            from_kernel,
        }))
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
