//! The state probe: TCP sockets of the target namespace as sock_diag
//! (`NETLINK_SOCK_DIAG`, `inet_diag`) reports them, including sockets no
//! descriptor refers to any more: orphans after close() (FIN_WAIT1,
//! FIN_WAIT2, CLOSING, LAST_ACK), TIME_WAIT sockets and request sockets
//! (SYN_RECV). A socket is found by its cookie (`SO_COOKIE`, kept by the
//! kernel from the full socket into its TIME_WAIT form) or by its ports.
//! For a listener, the receive and send queues are the accept queue's
//! length and limit, as `ss -lnt` shows them in Recv-Q and Send-Q.

use std::fmt;
use std::io;
use std::net::IpAddr;

use netlink_packet_core::NLM_F_DUMP;
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};

use crate::netlink::Netlink;
use crate::packet::Family;

/// A TCP state as the kernel names it (`include/net/tcp_states.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TcpState {
    /// TCP_ESTABLISHED
    Established,
    /// TCP_SYN_SENT
    SynSent,
    /// TCP_SYN_RECV, also reported for request sockets (TCP_NEW_SYN_RECV)
    SynRecv,
    /// TCP_FIN_WAIT1
    FinWait1,
    /// TCP_FIN_WAIT2
    FinWait2,
    /// TCP_TIME_WAIT
    TimeWait,
    /// TCP_CLOSE: a socket that exists but has no connection
    Closed,
    /// TCP_CLOSE_WAIT
    CloseWait,
    /// TCP_LAST_ACK
    LastAck,
    /// TCP_LISTEN
    Listen,
    /// TCP_CLOSING
    Closing,
    /// No socket with this identity exists any more.
    Gone,
}

impl TcpState {
    /// Every state with its name in cases and reports.
    pub const ALL: [(&'static str, TcpState); 12] = [
        ("ESTABLISHED", TcpState::Established),
        ("SYN_SENT", TcpState::SynSent),
        ("SYN_RECV", TcpState::SynRecv),
        ("FIN_WAIT1", TcpState::FinWait1),
        ("FIN_WAIT2", TcpState::FinWait2),
        ("TIME_WAIT", TcpState::TimeWait),
        ("CLOSED", TcpState::Closed),
        ("CLOSE_WAIT", TcpState::CloseWait),
        ("LAST_ACK", TcpState::LastAck),
        ("LISTEN", TcpState::Listen),
        ("CLOSING", TcpState::Closing),
        ("gone", TcpState::Gone),
    ];

    /// Maps the kernel's numeric state.
    pub fn from_kernel(state: u8) -> Option<TcpState> {
        Some(match state {
            1 => TcpState::Established,
            2 => TcpState::SynSent,
            3 | 12 => TcpState::SynRecv,
            4 => TcpState::FinWait1,
            5 => TcpState::FinWait2,
            6 => TcpState::TimeWait,
            7 | 13 => TcpState::Closed,
            8 => TcpState::CloseWait,
            9 => TcpState::LastAck,
            10 => TcpState::Listen,
            11 => TcpState::Closing,
            _ => return None,
        })
    }

    /// The state's name as written in cases.
    pub fn name(self) -> &'static str {
        TcpState::ALL
            .iter()
            .find(|(_, s)| *s == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    /// Parses a state name as written in cases.
    pub fn parse(name: &str) -> Option<TcpState> {
        TcpState::ALL.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One TCP socket as sock_diag reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketInfo {
    /// Its state.
    pub state: TcpState,
    /// Its cookie (`SO_COOKIE`).
    pub cookie: u64,
    /// Local address and port.
    pub local: (IpAddr, u16),
    /// Remote address and port.
    pub remote: (IpAddr, u16),
    /// Receive queue; for a listener, the accept queue's length.
    pub recv_q: u32,
    /// Send queue; for a listener, the accept queue's limit.
    pub send_q: u32,
}

/// A sock_diag socket in the target namespace.
pub struct Probe {
    netlink: Netlink,
}

impl Probe {
    /// Opens the probe in the calling thread's namespace.
    pub fn open() -> io::Result<Probe> {
        Ok(Probe {
            netlink: Netlink::open(netlink_sys::protocols::NETLINK_SOCK_DIAG)?,
        })
    }

    /// Every TCP socket of `family` in the namespace, in any state.
    pub fn sockets(&mut self, family: Family) -> io::Result<Vec<SocketInfo>> {
        let (af, id) = match family {
            Family::Ipv4 => (AF_INET, SocketId::new_v4()),
            Family::Ipv6 => (AF_INET6, SocketId::new_v6()),
        };
        let request = SockDiagMessage::InetRequest(InetRequest {
            family: af,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::all(),
            socket_id: id,
        });
        let replies = self.netlink.request(request, NLM_F_DUMP)?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                SockDiagMessage::InetResponse(r) => Some(r),
                _ => None,
            })
            .filter_map(|r| {
                let h = &r.header;
                let c = h.socket_id.cookie;
                let cookie = u64::from(u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                    | u64::from(u32::from_ne_bytes([c[4], c[5], c[6], c[7]])) << 32;
                Some(SocketInfo {
                    state: TcpState::from_kernel(h.state)?,
                    cookie,
                    local: (h.socket_id.source_address, h.socket_id.source_port),
                    remote: (h.socket_id.destination_address, h.socket_id.destination_port),
                    recv_q: h.recv_queue,
                    send_q: h.send_queue,
                })
            })
            .collect())
    }
}
