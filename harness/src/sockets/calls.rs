//! The system calls themselves: one function per [`Func`], given the live
//! descriptors the call names, returning what the call returned, what its
//! out-parameters held that the case did not expect, and the descriptors
//! it made. Nothing here blocks the engine by itself: the driver decides
//! whether a call runs on the case's thread or on a worker.

use std::ffi::CString;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::SockaddrStorage;

use crate::case::Addresses;
use crate::case::call::{
    BindTo, Buffer, Cmsg, CmsgData, Destination, EpollData, EpollEvent, Func, How, MsgOut, OptKind, OptOut, OptValue,
    RecvCall, Ret, SendCall,
};
use crate::clock::Timestamp;
use crate::packet::Family;

/// What a call needs to know of its case.
#[derive(Clone, Debug)]
pub struct Context {
    /// The case's family.
    pub family: Family,
    /// The lab's addresses.
    pub addresses: Addresses,
    /// When the case's timeline started (timestamps in control messages count from it).
    pub t0: Timestamp,
    /// How far a timestamp may be from the one expected.
    pub tolerance: Duration,
    /// The case's private /tmp, where open() finds `/tmp/...` (the commands' /tmp).
    pub tmp: Option<PathBuf>,
    /// The directory relative paths are taken from.
    pub cwd: PathBuf,
}

/// What a call did.
#[derive(Debug)]
pub struct Performed {
    /// Its return value or error.
    pub ret: Ret,
    /// Out-parameters that differ from what the case expects, one line each.
    pub out: Vec<String>,
    /// How many lines of `out` are times alone (a timestamp outside its tolerance).
    pub times_off: usize,
    /// Descriptors it made, in the order the call names them.
    pub new_fds: Vec<OwnedFd>,
}

impl Performed {
    fn ret(ret: Ret) -> Performed {
        Performed {
            ret,
            out: Vec::new(),
            times_off: 0,
            new_fds: Vec::new(),
        }
    }
}

fn value(r: Result<usize, Errno>) -> Ret {
    match r {
        Ok(n) => Ret::Value(n as i64),
        Err(e) => Ret::Failed(e),
    }
}

fn syscall_ret(rc: libc::c_long) -> Ret {
    match Errno::result(rc) {
        Ok(n) => Ret::Value(n),
        Err(e) => Ret::Failed(e),
    }
}

fn socket_addr(addr: IpAddr, port: u16) -> SockaddrStorage {
    SockaddrStorage::from(SocketAddr::new(addr, port))
}

/// A `sockaddr_storage` with only its family set, and its length.
fn family_only(af: i32) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    ss.ss_family = af as libc::sa_family_t;
    (ss, size_of::<libc::sockaddr_storage>() as libc::socklen_t)
}

/// The address bytes and length a destination stands for.
fn destination(dest: Destination, ctx: &Context) -> (libc::sockaddr_storage, libc::socklen_t) {
    match dest {
        Destination::Peer(port) => {
            let addr = socket_addr(ctx.addresses.peer, port);
            // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
            let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            let len = nix::sys::socket::SockaddrLike::len(&addr);
            // SAFETY: the source is a live sockaddr of `len` bytes, at most the storage's size.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    nix::sys::socket::SockaddrLike::as_ptr(&addr).cast::<u8>(),
                    (&mut ss as *mut libc::sockaddr_storage).cast::<u8>(),
                    len as usize,
                );
            }
            (ss, len)
        }
        Destination::Family(af) => family_only(af),
    }
}

/// Makes `func` on `fds` (the descriptors [`Func::fds`] names, in order).
pub fn perform(func: &Func, fds: Vec<Arc<OwnedFd>>, ctx: &Context) -> Performed {
    let raw = |i: usize| fds.get(i).map_or(-1, |fd| fd.as_raw_fd());
    match func {
        Func::Socket { .. } | Func::EpollCreate { .. } | Func::Pipe { .. } | Func::Open { .. } => create(func, ctx),
        Func::Bind { port, to, .. } => {
            let ip = match (to, ctx.family) {
                (BindTo::Target, _) => ctx.addresses.target,
                (BindTo::Wildcard, Family::Ipv4) => std::net::Ipv4Addr::UNSPECIFIED.into(),
                (BindTo::Wildcard, Family::Ipv6) => std::net::Ipv6Addr::UNSPECIFIED.into(),
            };
            Performed::ret(unit(nix::sys::socket::bind(raw(0), &socket_addr(ip, *port))))
        }
        Func::Listen { backlog, .. } => {
            // SAFETY: listen(2) on a descriptor this call holds open.
            Performed::ret(syscall_ret(unsafe { libc::listen(raw(0), *backlog) }.into()))
        }
        Func::Accept { .. } => {
            // SAFETY: accept4(2) with no address buffer.
            let rc = unsafe { libc::accept4(raw(0), std::ptr::null_mut(), std::ptr::null_mut(), libc::SOCK_CLOEXEC) };
            match Errno::result(rc) {
                Ok(new) => Performed {
                    ret: Ret::Value(0),
                    out: Vec::new(),
                    times_off: 0,
                    // SAFETY: accept4 returned a new descriptor that nothing else owns.
                    new_fds: vec![unsafe { OwnedFd::from_raw_fd(new) }],
                },
                Err(e) => Performed::ret(Ret::Failed(e)),
            }
        }
        Func::Connect { to, .. } => {
            let (ss, len) = destination(*to, ctx);
            // SAFETY: connect(2) reads `len` bytes of the live address.
            let rc = unsafe { libc::connect(raw(0), (&ss as *const libc::sockaddr_storage).cast(), len) };
            Performed::ret(syscall_ret(rc.into()))
        }
        Func::Send {
            call, data, len, flags, ..
        } => {
            let ptr = match data {
                Buffer::Bytes(b) => b.as_ptr(),
                Buffer::Null => std::ptr::null(),
            };
            let n = match call {
                // SAFETY: write(2) reads at most `len` bytes of the live buffer (or none of NULL).
                SendCall::Write => unsafe { libc::write(raw(0), ptr.cast(), *len) },
                // SAFETY: as above, for send(2).
                SendCall::Send => unsafe { libc::send(raw(0), ptr.cast(), *len, *flags) },
                SendCall::SendTo(dest) => {
                    let (ss, alen) = destination(*dest, ctx);
                    // SAFETY: sendto(2) reads the live buffer and the live address.
                    unsafe {
                        libc::sendto(
                            raw(0),
                            ptr.cast(),
                            *len,
                            *flags,
                            (&ss as *const libc::sockaddr_storage).cast(),
                            alen,
                        )
                    }
                }
            };
            Performed::ret(value(Errno::result(n).map(|n| n as usize)))
        }
        Func::Recv {
            call, len, null, flags, ..
        } => {
            let mut buf = vec![0u8; if *null { 0 } else { *len }];
            let ptr = if *null { std::ptr::null_mut() } else { buf.as_mut_ptr() };
            let n = match call {
                // SAFETY: read(2) writes at most `len` bytes into the live buffer (or faults on NULL).
                RecvCall::Read => unsafe { libc::read(raw(0), ptr.cast(), *len) },
                // SAFETY: as above, for recv(2).
                RecvCall::Recv => unsafe { libc::recv(raw(0), ptr.cast(), *len, *flags) },
                RecvCall::RecvFrom => {
                    let (mut ss, mut alen) = family_only(0);
                    // SAFETY: recvfrom(2) writes into the live buffer and the live address.
                    unsafe {
                        libc::recvfrom(
                            raw(0),
                            ptr.cast(),
                            *len,
                            *flags,
                            (&mut ss as *mut libc::sockaddr_storage).cast(),
                            &mut alen,
                        )
                    }
                }
            };
            Performed::ret(match Errno::result(n) {
                Ok(0) => Ret::Value(0),
                Ok(n) => {
                    buf.truncate(n as usize);
                    Ret::Data(buf)
                }
                Err(e) => Ret::Failed(e),
            })
        }
        Func::SendMsg { iov, to, flags, .. } => {
            let buffers: Vec<Vec<u8>> = iov.iter().map(|n| vec![0u8; *n]).collect();
            let mut iovecs: Vec<libc::iovec> = buffers
                .iter()
                .map(|b| libc::iovec {
                    iov_base: b.as_ptr() as *mut libc::c_void,
                    iov_len: b.len(),
                })
                .collect();
            let (mut ss, alen) = destination(*to, ctx);
            // SAFETY: msghdr is plain data; all-zero is a valid value.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_name = (&mut ss as *mut libc::sockaddr_storage).cast();
            msg.msg_namelen = alen;
            msg.msg_iov = iovecs.as_mut_ptr();
            msg.msg_iovlen = iovecs.len();
            // SAFETY: sendmsg(2) reads the live iovecs, buffers and address.
            let n = unsafe { libc::sendmsg(raw(0), &msg, *flags) };
            // Zerocopy sends may still reference the pages: keep them for the life of the process,
            // as packetdrill's --send_omit_free does, rather than free memory the kernel reads.
            if flags & libc::MSG_ZEROCOPY != 0 {
                std::mem::forget(buffers);
            }
            Performed::ret(value(Errno::result(n).map(|n| n as usize)))
        }
        Func::RecvMsg { iov, flags, out, .. } => recvmsg(raw(0), iov, *flags, out.as_ref(), ctx),
        Func::Shutdown { how, .. } => {
            let how = match how {
                How::Read => libc::SHUT_RD,
                How::Write => libc::SHUT_WR,
                How::Both => libc::SHUT_RDWR,
            };
            // SAFETY: shutdown(2) on a live descriptor.
            Performed::ret(syscall_ret(unsafe { libc::shutdown(raw(0), how) }.into()))
        }
        Func::Close { .. } => Performed::ret(close(fds)),
        Func::SetSockOpt { opt, value, len, .. } => {
            let bytes = value.bytes();
            let len = len.map_or(bytes.len(), |l| l as usize);
            // The kernel reads `len` bytes: never more than the value holds.
            let mut buf = bytes.clone();
            buf.resize(buf.len().max(len), 0);
            // SAFETY: setsockopt(2) reads `len` bytes of the live buffer, which holds at least that many.
            let rc = unsafe {
                libc::setsockopt(
                    raw(0),
                    opt.level,
                    opt.optname,
                    buf.as_ptr().cast(),
                    len as libc::socklen_t,
                )
            };
            Performed::ret(syscall_ret(rc.into()))
        }
        Func::GetSockOpt { opt, out, .. } => getsockopt(raw(0), opt.level, opt.optname, opt.kind, out.as_ref()),
        Func::Fcntl { cmd, arg, .. } => {
            // SAFETY: fcntl(2) with an integer argument (or none).
            let rc = unsafe { libc::fcntl(raw(0), *cmd, arg.unwrap_or(0) as libc::c_long) };
            Performed::ret(syscall_ret(rc.into()))
        }
        Func::Ioctl { request, out, .. } => {
            let mut arg: libc::c_int = 0;
            // SAFETY: ioctl(2) with a pointer to a live int for the requests cases use (SIOCINQ, FIONREAD, ...).
            let rc = unsafe { libc::ioctl(raw(0), *request as libc::Ioctl, &mut arg as *mut libc::c_int) };
            let mut done = Performed::ret(syscall_ret(rc.into()));
            if let (Some(want), Ret::Value(_)) = (out, &done.ret)
                && i64::from(arg) != *want
            {
                done.out.push(format!("ioctl value: expected {want}, got {arg}"));
            }
            done
        }
        Func::EpollCtl { op, event, .. } => {
            let mut ev = epoll_event(event, &fds);
            // SAFETY: epoll_ctl(2) reads the live event.
            let rc = unsafe { libc::epoll_ctl(raw(0), *op, raw(1), &mut ev) };
            Performed::ret(syscall_ret(rc.into()))
        }
        Func::EpollWait {
            event, max, timeout_ms, ..
        } => {
            let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; (*max).max(1) as usize];
            // SAFETY: epoll_wait(2) writes at most `max` events into the live buffer, which has that many.
            let rc = unsafe { libc::epoll_wait(raw(0), events.as_mut_ptr(), *max, *timeout_ms) };
            let mut done = Performed::ret(syscall_ret(rc.into()));
            if matches!(done.ret, Ret::Value(_)) {
                let want = epoll_event(event, &fds);
                let got = events[0];
                let (want_events, got_events) = (want.events, got.events);
                let (want_data, got_data) = (want.u64, got.u64);
                if want_events != got_events {
                    done.out.push(format!(
                        "epoll_event events: expected {want_events:#x}, got {got_events:#x}"
                    ));
                }
                if want_data != got_data {
                    done.out
                        .push(format!("epoll_event data: expected {want_data:#x}, got {got_data:#x}"));
                }
            }
            done
        }
        Func::Splice { len, flags, .. } => {
            // SAFETY: splice(2) with no offsets between two live descriptors.
            let n = unsafe { libc::splice(raw(0), std::ptr::null_mut(), raw(1), std::ptr::null_mut(), *len, *flags) };
            Performed::ret(value(Errno::result(n).map(|n| n as usize)))
        }
        Func::SendFile { offset, count, .. } => {
            let mut off: libc::off_t = *offset;
            // The call names (from, to); sendfile(2) takes (out, in).
            // SAFETY: sendfile(2) between two live descriptors, updating the live offset.
            let n = unsafe { libc::sendfile(raw(1), raw(0), &mut off, *count) };
            Performed::ret(value(Errno::result(n).map(|n| n as usize)))
        }
    }
}

fn unit(r: Result<(), Errno>) -> Ret {
    match r {
        Ok(()) => Ret::Value(0),
        Err(e) => Ret::Failed(e),
    }
}

fn close(fds: Vec<Arc<OwnedFd>>) -> Ret {
    let Some(fd) = fds.into_iter().next() else {
        return Ret::Failed(Errno::EBADF);
    };
    match Arc::try_unwrap(fd) {
        Ok(owned) => {
            let is_socket = nix::sys::stat::fstat(&owned).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFSOCK);
            let fd = owned.into_raw_fd();
            // SAFETY: close(2) on a descriptor taken out of its owner.
            let close = || unsafe { libc::close(fd) };
            // So that no fork's copy keeps the descriptor (see without_forks);
            // a lingering close may block, so it only waits for forks in flight.
            let rc = if is_socket && super::lingers(fd) {
                crate::command::without_forks(|| ());
                close()
            } else {
                crate::command::without_forks(close)
            };
            syscall_ret(rc.into())
        }
        // Another call still uses it: as with close(2) in a threaded program,
        // the descriptor goes away now and the socket when that call returns.
        Err(shared) => {
            drop(shared);
            Ret::Value(0)
        }
    }
}

/// The calls that make descriptors from nothing.
fn create(func: &Func, ctx: &Context) -> Performed {
    let made = |rc: libc::c_int| match Errno::result(rc) {
        Ok(fd) => Performed {
            ret: Ret::Value(0),
            out: Vec::new(),
            times_off: 0,
            // SAFETY: the call returned a new descriptor that nothing else owns.
            new_fds: vec![unsafe { OwnedFd::from_raw_fd(fd) }],
        },
        Err(e) => Performed::ret(Ret::Failed(e)),
    };
    match func {
        Func::Socket { ty, protocol } => {
            let domain = match ctx.family {
                Family::Ipv4 => libc::AF_INET,
                Family::Ipv6 => libc::AF_INET6,
            };
            // SAFETY: socket(2) makes a new descriptor.
            made(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, *protocol) })
        }
        Func::EpollCreate { size } => {
            // SAFETY: epoll_create(2) makes a new descriptor.
            let rc = unsafe { libc::epoll_create(*size) };
            if rc >= 0 {
                // SAFETY: fcntl(2) on the descriptor just made.
                unsafe { libc::fcntl(rc, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
            made(rc)
        }
        Func::Pipe { .. } => {
            let mut ends = [0 as libc::c_int; 2];
            // SAFETY: pipe2(2) writes two descriptors into the live array.
            match Errno::result(unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) }) {
                Ok(_) => Performed {
                    ret: Ret::Value(0),
                    out: Vec::new(),
                    times_off: 0,
                    // SAFETY: pipe2 returned two new descriptors that nothing else owns.
                    new_fds: ends.iter().map(|fd| unsafe { OwnedFd::from_raw_fd(*fd) }).collect(),
                },
                Err(e) => Performed::ret(Ret::Failed(e)),
            }
        }
        Func::Open { path, flags } => match open_path(path, *flags, ctx) {
            Ok(path) => {
                // SAFETY: open(2) of a path held alive for the call.
                made(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) })
            }
            Err(e) => Performed::ret(Ret::Failed(e)),
        },
        _ => unreachable!("only creating calls come here"),
    }
}

/// Where open() finds `path`: `/tmp/...` in the case's private /tmp, a
/// relative path in the case's directory. Writing is refused anywhere
/// but the private /tmp (EROFS, as the commands' read-only tree does).
fn open_path(path: &str, flags: i32, ctx: &Context) -> Result<CString, Errno> {
    let writes = flags & (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND) != 0;
    let resolved = match (path.strip_prefix("/tmp/"), &ctx.tmp) {
        (Some(rest), Some(tmp)) => tmp.join(rest),
        _ if writes => return Err(Errno::EROFS),
        _ if Path::new(path).is_absolute() => PathBuf::from(path),
        _ => ctx.cwd.join(path),
    };
    CString::new(resolved.into_os_string().into_encoded_bytes()).map_err(|_| Errno::EINVAL)
}

fn epoll_event(event: &EpollEvent, fds: &[Arc<OwnedFd>]) -> libc::epoll_event {
    let data = match &event.data {
        // The named descriptor is the last one the call names.
        EpollData::Fd(_) => fds.last().map_or(u64::MAX, |fd| fd.as_raw_fd() as u64),
        EpollData::Raw(v) => *v,
    };
    libc::epoll_event {
        events: event.events,
        u64: data,
    }
}

fn getsockopt(fd: RawFd, level: i32, name: i32, kind: OptKind, out: Option<&OptOut>) -> Performed {
    let Some(want) = out else {
        let mut value: i32 = 0;
        let mut len = size_of::<i32>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into the live i32.
        let rc = unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut i32).cast(), &mut len) };
        return Performed::ret(match (Errno::result(rc), kind) {
            (Ok(_), _) => Ret::Value(i64::from(value)),
            (Err(e), _) => Ret::Failed(e),
        });
    };
    let mut buf = vec![0u8; want.len as usize + 1];
    let mut len = want.len as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the live buffer, which is longer.
    let rc = unsafe { libc::getsockopt(fd, level, name, buf.as_mut_ptr().cast(), &mut len) };
    let mut done = Performed::ret(syscall_ret(rc.into()));
    if matches!(done.ret, Ret::Value(_)) {
        if len != want.len as libc::socklen_t {
            done.out
                .push(format!("getsockopt optlen: expected {}, got {len}", want.len));
        }
        let got = &buf[..(len as usize).min(buf.len())];
        let expected = want.value.bytes();
        if got != expected.as_slice() {
            let show = |b: &[u8]| match (&want.value, b.len()) {
                (OptValue::Ints(_), 4) => i32::from_ne_bytes([b[0], b[1], b[2], b[3]]).to_string(),
                _ => crate::case::call::quote(b),
            };
            done.out.push(format!(
                "getsockopt value: expected {}, got {}",
                show(&expected),
                show(got)
            ));
        }
    }
    done
}

/// The size of a control message's data as the kernel writes it.
fn cmsg_data_len(cmsg: &Cmsg) -> usize {
    match &cmsg.data {
        CmsgData::Int(_) => size_of::<i32>(),
        CmsgData::ExtendedErr { .. } => {
            size_of::<libc::sock_extended_err>()
                + if cmsg.level == libc::SOL_IP {
                    size_of::<libc::sockaddr_in>()
                } else {
                    size_of::<libc::sockaddr_in6>()
                }
        }
        CmsgData::Timestamping { .. } => 3 * size_of::<libc::timespec>(),
    }
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

fn read_i64(b: &[u8], at: usize) -> i64 {
    b.get(at..at + 8).map_or(0, |s| {
        i64::from_ne_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]])
    })
}

fn recvmsg(fd: RawFd, iov: &[usize], flags: i32, out: Option<&MsgOut>, ctx: &Context) -> Performed {
    let mut buffers: Vec<Vec<u8>> = iov.iter().map(|n| vec![0u8; *n]).collect();
    let mut iovecs: Vec<libc::iovec> = buffers
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        })
        .collect();
    // The control buffer has room for the messages the case expects, no more.
    let space: usize = out.map_or(0, |o| {
        o.control
            .iter()
            // SAFETY: CMSG_SPACE only computes a size.
            .map(|c| unsafe { libc::CMSG_SPACE(cmsg_data_len(c) as u32) } as usize)
            .sum()
    });
    let mut control = vec![0u8; space];
    let (mut ss, alen) = family_only(0);
    // SAFETY: msghdr is plain data; all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut ss as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = alen;
    msg.msg_iov = iovecs.as_mut_ptr();
    msg.msg_iovlen = iovecs.len();
    if space > 0 {
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space;
    }
    // SAFETY: recvmsg(2) writes into the live iovecs, address and control buffer.
    let n = unsafe { libc::recvmsg(fd, &mut msg, flags) };
    let mut done = Performed::ret(value(Errno::result(n).map(|n| n as usize)));
    let Some(want) = out else { return done };
    if !matches!(done.ret, Ret::Value(_)) {
        return done;
    }
    if msg.msg_flags != want.flags {
        done.out.push(format!(
            "msg_flags: expected {:#x}, got {:#x}",
            want.flags, msg.msg_flags
        ));
    }
    let mut got = Vec::new();
    if space > 0 {
        // SAFETY: the CMSG_* macros walk the control buffer the kernel filled,
        // bounded by msg_controllen.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                let header = *c;
                let data_len = header.cmsg_len - libc::CMSG_LEN(0) as usize;
                let data = std::slice::from_raw_parts(libc::CMSG_DATA(c), data_len).to_vec();
                got.push((header.cmsg_level, header.cmsg_type, data));
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
    }
    if got.len() != want.control.len() {
        done.out.push(format!(
            "control messages: expected {}, got {}",
            want.control.len(),
            got.len()
        ));
    }
    for (i, (w, (level, kind, data))) in want.control.iter().zip(&got).enumerate() {
        if (*level, *kind) != (w.level, w.kind) {
            done.out.push(format!(
                "cmsg {i}: level/type: expected {}/{}, got {level}/{kind}",
                w.level, w.kind
            ));
            continue;
        }
        if data.len() != cmsg_data_len(w) {
            done.out.push(format!(
                "cmsg {i}: length: expected {}, got {}",
                cmsg_data_len(w),
                data.len()
            ));
            continue;
        }
        match &w.data {
            CmsgData::Int(v) => {
                let g = read_u32(data, 0) as i32;
                if g != *v {
                    done.out.push(format!("cmsg {i}: data: expected {v}, got {g}"));
                }
            }
            CmsgData::ExtendedErr {
                errno,
                origin,
                kind,
                code,
                info,
                data: ee_data,
            } => {
                // struct sock_extended_err: errno u32, origin u8, type u8, code u8, pad u8, info u32, data u32.
                let fields = [
                    ("ee_errno", *errno, read_u32(data, 0)),
                    ("ee_origin", u32::from(*origin), u32::from(data[4])),
                    ("ee_type", u32::from(*kind), u32::from(data[5])),
                    ("ee_code", u32::from(*code), u32::from(data[6])),
                    ("ee_info", *info, read_u32(data, 8)),
                    ("ee_data", *ee_data, read_u32(data, 12)),
                ];
                for (name, want, got) in fields {
                    if want != got {
                        done.out.push(format!("cmsg {i}: {name}: expected {want}, got {got}"));
                    }
                }
            }
            CmsgData::Timestamping { sec, nsec } => {
                if *sec == 0 && *nsec == 0 {
                    continue;
                }
                let script = sec.saturating_mul(1_000_000_000).saturating_add(*nsec);
                let expected = Timestamp(ctx.t0.0.saturating_add(script));
                let actual = Timestamp(
                    read_i64(data, 0)
                        .saturating_mul(1_000_000_000)
                        .saturating_add(read_i64(data, 8)),
                );
                let off = actual.since(expected).unsigned_abs();
                if off > ctx.tolerance.as_nanos() as u64 {
                    done.times_off += 1;
                    done.out.push(format!(
                        "cmsg {i}: timestamp: expected {} after the start, got {} (tolerance {})",
                        crate::clock::Offset(script),
                        crate::clock::Offset(actual.since(ctx.t0)),
                        crate::clock::Offset(ctx.tolerance.as_nanos() as i64)
                    ));
                }
            }
        }
    }
    done
}
