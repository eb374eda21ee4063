//! The lab: two anonymous network namespaces joined by a veth pair, built
//! for one case and gone when it ends.
//!
//! The *target* namespace holds the kernel's TCP stack under test: its veth
//! end has 192.0.2.1/24 and 2001:db8::1/64 (no DAD), permanent neighbour
//! entries for the peer 192.0.2.2 / 2001:db8::2, and checksum and
//! segmentation offloads off, so captured frames carry full checksums and
//! MSS-sized segments, and injected frames have their checksums verified.
//! A case may ask for another plan ([`LabSpec`]): the link's name and MTU,
//! NIC-like offloads (TSO/GSO and checksum offload on transmit, as
//! packetdrill's tun device has), and other addresses, with the peer
//! reached through a gateway when it is not on the target's subnet.
//! The *harness* namespace holds the other veth end, with no address and
//! IPv6 disabled, and the raw socket the harness injects and captures on.
//!
//! Both namespaces are made with `unshare(CLONE_NEWNET)` on the calling
//! thread and are held only by file descriptors (and the sockets inside
//! them): no name under /run/netns, nothing in the host namespace, and
//! nothing left when the process exits, however it exits. The target link
//! has IFF_NOARP, IPv6 router solicitations off and no link-local address:
//! with the permanent neighbours this makes it silent, so every frame the
//! harness captures is one the case caused.

use std::fs::File;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, State,
};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use nix::sched::{CloneFlags, unshare};

use crate::case::{Addresses, LabSpec, Link, Offloads};
use crate::netlink::Netlink;
use crate::packet::{Family, Mac, PEER_MAC, TARGET_MAC};
use crate::probe::Probe;
use crate::sysctl::{self, HostKnob, SysctlError};
use crate::wire::{Injector, Tap, TunDevice, Wire};

/// Interface index of `lo`, the same in every namespace.
const LOOPBACK_IFINDEX: u32 = 1;
/// Name of the target's veth end.
pub const TARGET_IFNAME: &str = "target0";
/// Name of the harness's veth end.
pub const PEER_IFNAME: &str = "peer0";

/// Why a lab could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A namespace could not be created.
    #[error("cannot create a network namespace (needs CAP_SYS_ADMIN)")]
    Unshare(#[source] io::Error),
    /// A netlink request was refused.
    #[error("{step}")]
    Netlink {
        /// What the lab was doing.
        step: &'static str,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// A socket or ioctl on the lab's interfaces failed.
    #[error("{step}")]
    Io {
        /// What the lab was doing.
        step: &'static str,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// A sysctl asked for by the case could not be set.
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
}

fn io_step(step: &'static str) -> impl FnOnce(io::Error) -> LabError {
    move |source| LabError::Io { step, source }
}

fn nl_step(step: &'static str) -> impl FnOnce(io::Error) -> LabError {
    move |source| LabError::Netlink { step, source }
}

/// A sysctl a case set, with the value the kernel reports after the write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SysctlValue {
    /// Dotted name.
    pub name: String,
    /// Value read back from the case's namespace.
    pub value: String,
}

/// One case's lab. [`Lab::tear_down`] releases it in the background;
/// dropping it releases it in the calling thread.
pub struct Lab {
    /// The raw socket on the harness's veth end.
    pub wire: Wire,
    /// The sock_diag socket in the target namespace.
    pub probe: Probe,
    /// The sysctls the case set, as the kernel reports them.
    pub sysctls: Vec<SysctlValue>,
    _target_ns: OwnedFd,
    _harness_ns: Option<OwnedFd>,
}

fn open_netns() -> io::Result<OwnedFd> {
    Ok(File::open("/proc/thread-self/ns/net")?.into())
}

fn new_netns() -> Result<OwnedFd, LabError> {
    unshare(CloneFlags::CLONE_NEWNET).map_err(|e| LabError::Unshare(e.into()))?;
    open_netns().map_err(LabError::Unshare)
}

/// The host's view of each knob a case sets, opened before the lab leaves
/// the host's namespace.
fn host_knobs(sysctls: &[(String, String)]) -> Result<Vec<Option<HostKnob>>, LabError> {
    sysctl::remember_host_namespace().map_err(io_step("reading the host's namespace"))?;
    Ok(sysctls
        .iter()
        .map(|(name, _)| HostKnob::open(name))
        .collect::<Result<_, _>>()?)
}

impl Lab {
    /// The lab around its wire, its links up: opens sock_diag in the target
    /// namespace and writes the case's sysctls there.
    fn finish(
        wire: Wire,
        sysctls: &[(String, String)],
        mut host_knobs: Vec<Option<HostKnob>>,
        target_ns: OwnedFd,
        harness_ns: Option<OwnedFd>,
    ) -> Result<Lab, LabError> {
        let probe = Probe::open().map_err(io_step("opening sock_diag"))?;
        let mut values = Vec::new();
        for ((name, value), host) in sysctls.iter().zip(&mut host_knobs) {
            let value = sysctl::write_in_lab(name, value, host.as_mut())?;
            values.push(SysctlValue {
                name: name.clone(),
                value,
            });
        }
        Ok(Lab {
            wire,
            probe,
            sysctls: values,
            _target_ns: target_ns,
            _harness_ns: harness_ns,
        })
    }
}

impl Lab {
    /// Builds a lab as `spec` says and sets `sysctls` in its target namespace.
    ///
    /// The calling thread is left inside the target namespace, where
    /// sockets it creates belong to the kernel under test: call this on a
    /// thread dedicated to one case, which exits when the case ends.
    pub fn up(spec: &LabSpec, sysctls: &[(String, String)]) -> Result<Lab, LabError> {
        if spec.link == Link::Tun {
            return Lab::up_tun(spec, sysctls);
        }
        let host_knobs = host_knobs(sysctls)?;

        let mut plumbing = PLUMBING.map(|(name, value)| HostKnob::open(name).map(|host| (name, value, host)));
        let harness_ns = new_netns()?;
        set_knob(&mut plumbing[0])?;
        let injector = Injector::open().map_err(io_step("opening the AF_PACKET socket"))?;
        let harness_ethtool = Ethtool::open()?;
        let mut harness_rtnl = Netlink::open(netlink_sys::protocols::NETLINK_ROUTE)
            .map_err(io_step("opening rtnetlink in the harness namespace"))?;

        let (target_ns, tap, mut rtnl) = enter_target(&mut plumbing)?;
        rtnl.request(
            RouteNetlinkMessage::NewLink(veth_pair(&harness_ns, spec)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map_err(nl_step("creating the veth pair"))?;
        // The kernel picks the indexes: a namespace may already hold fallback
        // tunnel devices (sit0, ip6tnl0, ...) where their modules are loaded.
        let target_index = ifindex(&mut rtnl, &spec.device)?;
        let peer_index = ifindex(&mut harness_rtnl, PEER_IFNAME)?;
        rtnl.request(RouteNetlinkMessage::SetLink(link_up(LOOPBACK_IFINDEX)), 0)
            .map_err(nl_step("bringing up lo"))?;
        for family in Family::ALL {
            let addrs = spec.addresses(family);
            rtnl.request(
                RouteNetlinkMessage::NewAddress(address(&addrs, target_index)),
                NLM_F_CREATE | NLM_F_EXCL,
            )
            .map_err(nl_step("adding the target's address"))?;
            // The peer's link address: for the peer itself, or for the
            // gateway the route to it goes through.
            let hop = addrs.gateway.filter(|g| *g != addrs.target).unwrap_or(addrs.peer);
            rtnl.request(
                RouteNetlinkMessage::NewNeighbour(neighbour(family, hop, target_index)),
                NLM_F_CREATE | NLM_F_EXCL,
            )
            .map_err(nl_step("adding the peer's neighbour entry"))?;
        }
        let ethtool = Ethtool::open()?;
        match spec.offloads {
            Offloads::Off => ethtool.offloads_off(&spec.device)?,
            Offloads::Nic => ethtool.nic_offloads(&spec.device)?,
        }
        harness_rtnl
            .request(RouteNetlinkMessage::SetLink(link_up(peer_index)), 0)
            .map_err(nl_step("bringing up the harness's veth end"))?;
        ethtool.sync_link(&spec.device)?;
        harness_ethtool.sync_link(PEER_IFNAME)?;
        wait_until_operational(&mut rtnl, target_index, &spec.device)?;
        wait_until_local(&mut rtnl, &spec.addresses(Family::Ipv6))?;
        // Routes to a peer off the target's subnet, once its addresses are usable.
        for family in Family::ALL {
            let addrs = spec.addresses(family);
            if !on_link(&addrs) {
                let hop = addrs.gateway.filter(|g| *g != addrs.target).unwrap_or(addrs.peer);
                rtnl.request(
                    RouteNetlinkMessage::NewRoute(route_to_peer(&addrs, hop, target_index)),
                    NLM_F_CREATE | NLM_F_EXCL,
                )
                .map_err(nl_step("adding the route to the peer"))?;
            }
        }
        let wire =
            Wire::new(injector, peer_index, tap, target_index).map_err(io_step("binding the AF_PACKET sockets"))?;
        Lab::finish(wire, sysctls, host_knobs, target_ns, Some(harness_ns))
    }
}

impl Lab {
    /// A lab whose target link is a tun device the harness holds, with no
    /// harness namespace: the harness writes the peer's packets into it.
    fn up_tun(spec: &LabSpec, sysctls: &[(String, String)]) -> Result<Lab, LabError> {
        let host_knobs = host_knobs(sysctls)?;
        let mut plumbing = PLUMBING.map(|(name, value)| HostKnob::open(name).map(|host| (name, value, host)));
        let (target_ns, tap, mut rtnl) = enter_target(&mut plumbing)?;
        let tun = TunDevice::create(&spec.device, spec.offloads == Offloads::Nic)
            .map_err(io_step("creating the tun device (/dev/net/tun)"))?;
        let index = ifindex(&mut rtnl, &spec.device)?;
        rtnl.request(RouteNetlinkMessage::SetLink(link_up(LOOPBACK_IFINDEX)), 0)
            .map_err(nl_step("bringing up lo"))?;
        let mut up = link_up(index);
        up.attributes.push(LinkAttribute::Mtu(spec.mtu));
        rtnl.request(RouteNetlinkMessage::SetLink(up), 0)
            .map_err(nl_step("bringing up the tun device"))?;
        for family in Family::ALL {
            rtnl.request(
                RouteNetlinkMessage::NewAddress(address(&spec.addresses(family), index)),
                NLM_F_CREATE | NLM_F_EXCL,
            )
            .map_err(nl_step("adding the target's address"))?;
        }
        wait_until_operational(&mut rtnl, index, &spec.device)?;
        wait_until_local(&mut rtnl, &spec.addresses(Family::Ipv6))?;
        // A tun device has no link layer: the peer is reached through the device.
        for family in Family::ALL {
            let addrs = spec.addresses(family);
            if !on_link(&addrs) {
                rtnl.request(
                    RouteNetlinkMessage::NewRoute(route_to_peer(&addrs, addrs.peer, index)),
                    NLM_F_CREATE | NLM_F_EXCL,
                )
                .map_err(nl_step("adding the route to the peer"))?;
            }
        }
        let wire = Wire::tun(tun, tap, index).map_err(io_step("binding the AF_PACKET socket"))?;
        Lab::finish(wire, sysctls, host_knobs, target_ns, None)
    }
}

/// Labs whose release is still under way, and a signal for when none is.
static TEARING_DOWN: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

impl Lab {
    /// Releases the lab on a thread of its own and returns at once.
    ///
    /// Closing a packet socket waits for an RCU grace period
    /// (`packet_release` calls `synchronize_net`), 10 to 30 ms here, and the
    /// namespaces go when their last socket does; a case need not wait for
    /// that. [`wait_for_teardowns`] waits for every lab released so.
    pub fn tear_down(self) {
        let (count, _) = &TEARING_DOWN;
        if let Ok(mut n) = count.lock() {
            *n += 1;
        }
        let finished = || {
            let (count, done) = &TEARING_DOWN;
            if let Ok(mut n) = count.lock() {
                *n -= 1;
                done.notify_all();
            }
        };
        let spawned = std::thread::Builder::new().name("lab teardown".into()).spawn(move || {
            crate::engine::enter(crate::engine::Phase::Background);
            drop(self);
            finished();
        });
        if spawned.is_err() {
            // No thread to spare: the lab went with the closure, right here.
            finished();
        }
    }
}

/// Waits until every lab given to [`Lab::tear_down`] is released, or `timeout` passes.
pub fn wait_for_teardowns(timeout: Duration) {
    let (count, done) = &TEARING_DOWN;
    if let Ok(n) = count.lock() {
        let _ = done.wait_timeout_while(n, timeout, |n| *n > 0);
    }
}

/// Knobs the lab sets for itself: IPv6 off on the harness's end (set in the
/// harness namespace), no router solicitation and no link-local address on
/// the target's end (set in the target namespace).
const PLUMBING: [(&str, &str); 3] = [
    ("net.ipv6.conf.default.disable_ipv6", "1"),
    ("net.ipv6.conf.default.accept_ra", "0"),
    ("net.ipv6.conf.default.addr_gen_mode", "1"),
];

/// The lab's own knobs ([`PLUMBING`]), opened in the host's namespace.
type Plumbing<'a> = [Result<(&'a str, &'a str, Option<HostKnob>), SysctlError>; 3];

/// Enters a new target namespace, sets the target's plumbing knobs there,
/// and opens the AF_PACKET tap and rtnetlink in it.
fn enter_target(plumbing: &mut Plumbing) -> Result<(OwnedFd, Tap, Netlink), LabError> {
    let target_ns = new_netns()?;
    set_knob(&mut plumbing[1])?;
    set_knob(&mut plumbing[2])?;
    let tap = Tap::open().map_err(io_step("opening the AF_PACKET socket"))?;
    let rtnl = Netlink::open(netlink_sys::protocols::NETLINK_ROUTE)
        .map_err(io_step("opening rtnetlink in the target namespace"))?;
    Ok((target_ns, tap, rtnl))
}

/// Writes one of the lab's own knobs in the namespace just made.
fn set_knob(knob: &mut Result<(&str, &str, Option<HostKnob>), SysctlError>) -> Result<(), LabError> {
    match knob {
        Ok((name, value, host)) => sysctl::write_in_lab(name, value, host.as_mut())
            .map(|_| ())
            .map_err(LabError::from),
        Err(e) => Err(LabError::Io {
            step: "reading a lab knob",
            source: io::Error::other(e.to_string()),
        }),
    }
}

fn veth_end(name: &str, mac: Mac, flags: LinkFlags) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.flags = flags;
    msg.header.change_mask = flags;
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    msg.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
    msg
}

/// The harness's end takes the largest frames any case injects (a 64 KiB
/// GSO frame is not bound by it, but plain frames are).
const PEER_MTU: u32 = 65535;

fn veth_pair(harness_ns: &OwnedFd, spec: &LabSpec) -> LinkMessage {
    let mut peer = veth_end(PEER_IFNAME, PEER_MAC, LinkFlags::empty());
    peer.attributes.push(LinkAttribute::NetNsFd(harness_ns.as_raw_fd()));
    peer.attributes.push(LinkAttribute::Mtu(PEER_MTU));
    let mut target = veth_end(&spec.device, TARGET_MAC, LinkFlags::Up | LinkFlags::Noarp);
    target.attributes.push(LinkAttribute::Mtu(spec.mtu));
    target.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    target
}

/// The index of the link named `name` in the namespace of `rtnl`.
fn ifindex(rtnl: &mut Netlink, name: &str) -> Result<u32, LabError> {
    let mut query = LinkMessage::default();
    query.attributes.push(LinkAttribute::IfName(name.to_string()));
    let replies = rtnl
        .request(RouteNetlinkMessage::GetLink(query), 0)
        .map_err(nl_step("looking up a veth end"))?;
    replies
        .iter()
        .find_map(|r| match r {
            RouteNetlinkMessage::NewLink(link) => Some(link.header.index),
            _ => None,
        })
        .ok_or_else(|| LabError::Io {
            step: "looking up a veth end",
            source: io::Error::other(format!("no link {name}")),
        })
}

fn link_up(index: u32) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg.header.flags = LinkFlags::Up;
    msg.header.change_mask = LinkFlags::Up;
    msg
}

fn address_family(family: Family) -> AddressFamily {
    match family {
        Family::Ipv4 => AddressFamily::Inet,
        Family::Ipv6 => AddressFamily::Inet6,
    }
}

fn family_of(addr: IpAddr) -> Family {
    match addr {
        IpAddr::V4(_) => Family::Ipv4,
        IpAddr::V6(_) => Family::Ipv6,
    }
}

fn address(addrs: &Addresses, ifindex: u32) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = address_family(family_of(addrs.target));
    msg.header.prefix_len = addrs.prefix_len;
    msg.header.index = ifindex;
    msg.header.flags = AddressHeaderFlags::Nodad;
    let addr = addrs.target;
    msg.attributes.push(AddressAttribute::Local(addr));
    msg.attributes.push(AddressAttribute::Address(addr));
    msg.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
    msg
}

/// Whether the peer is on the target's subnet.
fn on_link(addrs: &Addresses) -> bool {
    let prefix = u32::from(addrs.prefix_len);
    match (addrs.target, addrs.peer) {
        (IpAddr::V4(t), IpAddr::V4(p)) => {
            let mask = u32::MAX.checked_shl(32 - prefix.min(32)).unwrap_or(0);
            u32::from(t) & mask == u32::from(p) & mask
        }
        (IpAddr::V6(t), IpAddr::V6(p)) => {
            let mask = u128::MAX.checked_shl(128 - prefix.min(128)).unwrap_or(0);
            u128::from(t) & mask == u128::from(p) & mask
        }
        _ => false,
    }
}

/// A host route to the peer through `hop` (the gateway, or the peer itself, on the link).
fn route_to_peer(addrs: &Addresses, hop: IpAddr, ifindex: u32) -> RouteMessage {
    let family = family_of(addrs.peer);
    let mut msg = RouteMessage::default();
    msg.header.address_family = address_family(family);
    msg.header.destination_prefix_length = if family == Family::Ipv4 { 32 } else { 128 };
    msg.header.table = netlink_packet_route::route::RouteHeader::RT_TABLE_MAIN;
    msg.header.protocol = netlink_packet_route::route::RouteProtocol::Static;
    msg.header.kind = RouteType::Unicast;
    let route_addr = |a: IpAddr| match a {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    };
    msg.attributes.push(RouteAttribute::Destination(route_addr(addrs.peer)));
    msg.attributes.push(RouteAttribute::Oif(ifindex));
    if hop == addrs.peer {
        msg.header.scope = netlink_packet_route::route::RouteScope::Link;
    } else {
        msg.header.scope = netlink_packet_route::route::RouteScope::Universe;
        msg.attributes.push(RouteAttribute::Gateway(route_addr(hop)));
    }
    msg
}

fn neighbour(family: Family, addr: IpAddr, ifindex: u32) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = address_family(family);
    msg.header.ifindex = ifindex;
    msg.header.state = NeighbourState::Permanent;
    msg.header.kind = RouteType::Unicast;
    msg.attributes.push(NeighbourAttribute::Destination(match addr {
        IpAddr::V4(a) => NeighbourAddress::Inet(a),
        IpAddr::V6(a) => NeighbourAddress::Inet6(a),
    }));
    msg.attributes
        .push(NeighbourAttribute::LinkLayerAddress(PEER_MAC.0.to_vec()));
    msg
}

/// How long the lab waits for the target's link to carry traffic.
const LINK_DEADLINE: Duration = Duration::from_secs(5);

/// Waits until the link watcher has run for the target's veth end.
///
/// Until it has, the end's transmit queue keeps the `noop` queueing
/// discipline, which drops every frame the kernel sends: the first SYN-ACK,
/// SYN or RST of a case would be lost. Newer kernels run the pending link
/// watch in ETHTOOL_GLINK ([`Ethtool::sync_link`]; in 6.10, not in 6.6);
/// older ones (6.1) leave it to a work item, which a loaded machine or an
/// emulated one runs late. The work item sets the operational state and activates the
/// queue in one RTNL section, and RTM_GETLINK takes RTNL: once the state
/// reads UP, the queue is active.
fn wait_until_operational(rtnl: &mut Netlink, index: u32, name: &str) -> Result<(), LabError> {
    let deadline = Instant::now() + LINK_DEADLINE;
    loop {
        let mut query = LinkMessage::default();
        query.header.index = index;
        let replies = rtnl
            .request(RouteNetlinkMessage::GetLink(query), 0)
            .map_err(nl_step("reading the target's link state"))?;
        let up = replies.iter().any(|r| {
            // A tun device reports UNKNOWN once up: it has no carrier to report.
            matches!(r, RouteNetlinkMessage::NewLink(link)
                if link.attributes.contains(&LinkAttribute::OperState(State::Up))
                    || link.attributes.contains(&LinkAttribute::OperState(State::Unknown)))
        });
        if up {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(LabError::Io {
                step: "bringing up the target's link",
                source: io::Error::other(format!("{name} did not become operational")),
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// How long the lab waits for the kernel to make its IPv6 address usable.
const ADDRESS_DEADLINE: Duration = Duration::from_secs(5);

/// Waits until the target's address of `family` is a local address.
///
/// IPv6 installs the local route of an address only when duplicate address
/// detection completes, in a work item the kernel runs after the link is
/// ready, even with `nodad`; until then packets to it are dropped. IPv4
/// addresses are local as soon as they are added.
fn wait_until_local(rtnl: &mut Netlink, addrs: &Addresses) -> Result<(), LabError> {
    let family = family_of(addrs.target);
    let deadline = Instant::now() + ADDRESS_DEADLINE;
    loop {
        let mut query = RouteMessage::default();
        query.header.address_family = address_family(family);
        query.header.destination_prefix_length = if family == Family::Ipv4 { 32 } else { 128 };
        query.attributes.push(RouteAttribute::Destination(match addrs.target {
            IpAddr::V4(a) => RouteAddress::Inet(a),
            IpAddr::V6(a) => RouteAddress::Inet6(a),
        }));
        let replies = rtnl
            .request(RouteNetlinkMessage::GetRoute(query), 0)
            .map_err(nl_step("looking up the target's address"))?;
        let local = replies
            .iter()
            .any(|r| matches!(r, RouteNetlinkMessage::NewRoute(route) if route.header.kind == RouteType::Local));
        if local {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(LabError::Io {
                step: "waiting for the target's address",
                source: io::Error::other(format!("{} did not become a local address", addrs.target)),
            });
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Legacy ethtool commands, each a `struct ethtool_value`.
const ETHTOOL_GLINK: u32 = 0x0a;
const ETHTOOL_SRXCSUM: u32 = 0x15;
const ETHTOOL_STXCSUM: u32 = 0x17;
const ETHTOOL_SSG: u32 = 0x19;
const ETHTOOL_STSO: u32 = 0x1f;
const ETHTOOL_SGSO: u32 = 0x24;
const ETHTOOL_SGRO: u32 = 0x2c;
const SIOCETHTOOL: libc::c_ulong = 0x8946;

#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

#[repr(C)]
struct IfreqData {
    name: [u8; libc::IFNAMSIZ],
    data: *mut EthtoolValue,
    _pad: [u8; 16],
}

/// A socket for ethtool ioctls on the links of the namespace it was opened in.
struct Ethtool(OwnedFd);

impl Ethtool {
    fn open() -> Result<Ethtool, LabError> {
        nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            nix::sys::socket::SockType::Datagram,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map(Ethtool)
        .map_err(|e| LabError::Io {
            step: "opening the ethtool socket",
            source: e.into(),
        })
    }

    /// Runs one `ethtool_value` command on `ifname` and returns its data.
    fn command(&self, ifname: &str, cmd: u32, data: u32) -> io::Result<u32> {
        let mut value = EthtoolValue { cmd, data };
        let mut req = IfreqData {
            name: [0; libc::IFNAMSIZ],
            data: &mut value,
            _pad: [0; 16],
        };
        req.name[..ifname.len()].copy_from_slice(ifname.as_bytes());
        // SAFETY: SIOCETHTOOL reads an ifreq whose data points at a live
        // ethtool_value; both outlive the call.
        let rc = unsafe { libc::ioctl(self.0.as_raw_fd(), SIOCETHTOOL, &mut req) };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(value.data)
        }
    }

    /// Turns off TSO, GSO, GRO, scatter-gather and TX/RX checksum offload on `ifname`.
    ///
    /// RX checksum matters as much as TX: with it on, veth marks frames from
    /// the harness as already verified and the kernel would accept bad
    /// checksums. GRO off keeps injected segments from being merged before
    /// TCP sees them.
    fn offloads_off(&self, ifname: &str) -> Result<(), LabError> {
        for cmd in [
            ETHTOOL_STSO,
            ETHTOOL_SGSO,
            ETHTOOL_SGRO,
            ETHTOOL_SSG,
            ETHTOOL_STXCSUM,
            ETHTOOL_SRXCSUM,
        ] {
            self.command(ifname, cmd, 0)
                .map_err(io_step("turning off veth offloads"))?;
        }
        Ok(())
    }

    /// Makes the link's receive side a NIC's: RX checksum offload off (bad
    /// checksums would be accepted as verified), GRO on, so that the pieces
    /// of one GSO frame the harness injects reach TCP as the one segment
    /// they were (each injection is seen arriving before the next is sent,
    /// so separate injections are never merged); transmit offloads stay on.
    fn nic_offloads(&self, ifname: &str) -> Result<(), LabError> {
        self.command(ifname, ETHTOOL_SRXCSUM, 0)
            .map_err(io_step("turning off veth receive checksum offload"))?;
        self.command(ifname, ETHTOOL_SGRO, 1)
            .map_err(io_step("turning on veth GRO"))?;
        Ok(())
    }

    /// Waits until `ifname` carries traffic.
    ///
    /// A link that just came up drops every frame it sends until the
    /// kernel's link watcher, a work item that runs when the scheduler gets
    /// to it, has activated its queueing discipline. ETHTOOL_GLINK runs the
    /// pending link watch of the device right away (`linkwatch_sync_dev`).
    fn sync_link(&self, ifname: &str) -> Result<(), LabError> {
        match self
            .command(ifname, ETHTOOL_GLINK, 0)
            .map_err(io_step("reading the veth's link state"))?
        {
            1 => Ok(()),
            _ => Err(LabError::Io {
                step: "bringing up the veth pair",
                source: io::Error::other(format!("{ifname} has no carrier")),
            }),
        }
    }
}

/// Capabilities a lab needs: creating namespaces, configuring their links, raw sockets.
const NEEDED_CAPS: [(u32, &str); 3] = [(21, "CAP_SYS_ADMIN"), (12, "CAP_NET_ADMIN"), (13, "CAP_NET_RAW")];

/// How the process gets the privileges labs need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privileges {
    /// It has them (root, or a privileged container).
    Native,
    /// It is not privileged and entered a user namespace of its own, where it is root:
    /// the labs' network namespaces belong to that user namespace.
    UserNamespace,
}

static PRIVILEGES: OnceLock<Privileges> = OnceLock::new();

fn missing_caps() -> Vec<&'static str> {
    let caps = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .map(|c| c.trim().to_string())
        })
        .and_then(|c| u64::from_str_radix(&c, 16).ok())
        .unwrap_or(0);
    NEEDED_CAPS
        .iter()
        .filter(|(bit, _)| caps & (1 << bit) == 0)
        .map(|(_, n)| *n)
        .collect()
}

/// Makes the process able to build labs; call it first thing in `main`,
/// while the process has a single thread (a user namespace cannot be
/// entered later).
///
/// A process that lacks the capabilities enters a user namespace of its
/// own, mapping its user to root there, where the kernel allows that. Its
/// labs are then owned by that namespace, and knobs the kernel hides from
/// user namespaces make their cases skip with the reason. Returns one line
/// saying what is missing when neither way works.
pub fn init() -> Result<Privileges, String> {
    if let Some(p) = PRIVILEGES.get() {
        return Ok(*p);
    }
    let privileges = if missing_caps().is_empty() {
        Privileges::Native
    } else {
        enter_user_namespace()?
    };
    Ok(*PRIVILEGES.get_or_init(|| privileges))
}

/// How [`init`] found the privileges, if it ran.
pub fn privileges() -> Option<Privileges> {
    PRIVILEGES.get().copied()
}

fn enter_user_namespace() -> Result<Privileges, String> {
    let missing = missing_caps().join(", ");
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    let refused = |why: String| {
        format!(
            "tcpconform needs {missing} to build its labs and cannot get them in a user namespace ({why}); \
             run it as root, in a container started with --privileged, or where unprivileged user namespaces are allowed"
        )
    };
    unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| refused(format!("unshare(CLONE_NEWUSER): {e}")))?;
    let write = |file: &str, text: String| std::fs::write(file, text).map_err(|e| refused(format!("{file}: {e}")));
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/uid_map", format!("0 {uid} 1"))?;
    write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    if missing_caps().is_empty() {
        Ok(Privileges::UserNamespace)
    } else {
        Err(refused("the user namespace gave no capabilities".into()))
    }
}
