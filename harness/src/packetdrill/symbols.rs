//! The symbolic constants packetdrill's system calls take (`SOL_SOCKET`,
//! `O_NONBLOCK`, `MSG_ZEROCOPY`, `EPOLLET`, `SO_EE_ORIGIN_ZEROCOPY`, ...),
//! with their Linux values, and the errno names. The values come from the
//! kernel's uapi headers, through the libc crate where it has them.

use crate::case::call::{errno_from_name, errnos, suggest};

/// A named constant.
type Symbol = (&'static str, i64);

/// Linux's constants that scripts name, beyond the errnos.
const SYMBOLS: &[Symbol] = &[
    ("NULL", 0),
    // Address families and socket types.
    ("AF_UNSPEC", libc::AF_UNSPEC as i64),
    ("AF_INET", libc::AF_INET as i64),
    ("AF_INET6", libc::AF_INET6 as i64),
    ("PF_INET", libc::PF_INET as i64),
    ("PF_INET6", libc::PF_INET6 as i64),
    ("SOCK_STREAM", libc::SOCK_STREAM as i64),
    ("SOCK_DGRAM", libc::SOCK_DGRAM as i64),
    ("SOCK_NONBLOCK", libc::SOCK_NONBLOCK as i64),
    ("SOCK_CLOEXEC", libc::SOCK_CLOEXEC as i64),
    ("IPPROTO_IP", libc::IPPROTO_IP as i64),
    ("IPPROTO_IPV6", libc::IPPROTO_IPV6 as i64),
    ("IPPROTO_TCP", libc::IPPROTO_TCP as i64),
    ("IPPROTO_UDP", libc::IPPROTO_UDP as i64),
    ("IPPROTO_ICMP", libc::IPPROTO_ICMP as i64),
    ("IPPROTO_ICMPV6", libc::IPPROTO_ICMPV6 as i64),
    // Levels.
    ("SOL_SOCKET", libc::SOL_SOCKET as i64),
    ("SOL_IP", libc::SOL_IP as i64),
    ("SOL_IPV6", libc::SOL_IPV6 as i64),
    ("SOL_TCP", libc::SOL_TCP as i64),
    // Socket options.
    ("SO_DEBUG", libc::SO_DEBUG as i64),
    ("SO_REUSEADDR", libc::SO_REUSEADDR as i64),
    ("SO_REUSEPORT", libc::SO_REUSEPORT as i64),
    ("SO_TYPE", libc::SO_TYPE as i64),
    ("SO_ERROR", libc::SO_ERROR as i64),
    ("SO_DONTROUTE", libc::SO_DONTROUTE as i64),
    ("SO_BROADCAST", libc::SO_BROADCAST as i64),
    ("SO_SNDBUF", libc::SO_SNDBUF as i64),
    ("SO_RCVBUF", libc::SO_RCVBUF as i64),
    ("SO_SNDBUFFORCE", libc::SO_SNDBUFFORCE as i64),
    ("SO_RCVBUFFORCE", libc::SO_RCVBUFFORCE as i64),
    ("SO_KEEPALIVE", libc::SO_KEEPALIVE as i64),
    ("SO_OOBINLINE", libc::SO_OOBINLINE as i64),
    ("SO_LINGER", libc::SO_LINGER as i64),
    ("SO_PRIORITY", libc::SO_PRIORITY as i64),
    ("SO_RCVLOWAT", libc::SO_RCVLOWAT as i64),
    ("SO_SNDLOWAT", libc::SO_SNDLOWAT as i64),
    ("SO_RCVTIMEO", libc::SO_RCVTIMEO as i64),
    ("SO_SNDTIMEO", libc::SO_SNDTIMEO as i64),
    ("SO_MARK", libc::SO_MARK as i64),
    ("SO_TIMESTAMP", libc::SO_TIMESTAMP as i64),
    ("SO_TIMESTAMPNS", libc::SO_TIMESTAMPNS as i64),
    ("SO_TIMESTAMPING", libc::SO_TIMESTAMPING as i64),
    ("SO_ZEROCOPY", libc::SO_ZEROCOPY as i64),
    ("SO_MAX_PACING_RATE", libc::SO_MAX_PACING_RATE as i64),
    ("SO_INCOMING_CPU", libc::SO_INCOMING_CPU as i64),
    ("SO_MEMINFO", libc::SO_MEMINFO as i64),
    ("SO_COOKIE", libc::SO_COOKIE as i64),
    ("SCM_TIMESTAMPING", libc::SCM_TIMESTAMPING as i64),
    // Extended errors (linux/errqueue.h).
    ("SO_EE_ORIGIN_NONE", libc::SO_EE_ORIGIN_NONE as i64),
    ("SO_EE_ORIGIN_LOCAL", libc::SO_EE_ORIGIN_LOCAL as i64),
    ("SO_EE_ORIGIN_ICMP", libc::SO_EE_ORIGIN_ICMP as i64),
    ("SO_EE_ORIGIN_ICMP6", libc::SO_EE_ORIGIN_ICMP6 as i64),
    ("SO_EE_ORIGIN_TXSTATUS", libc::SO_EE_ORIGIN_TXSTATUS as i64),
    ("SO_EE_ORIGIN_ZEROCOPY", 5),
    ("SO_EE_ORIGIN_TXTIME", 6),
    ("SO_EE_ORIGIN_TIMESTAMPING", libc::SO_EE_ORIGIN_TIMESTAMPING as i64),
    ("SO_EE_CODE_ZEROCOPY_COPIED", 1),
    ("SCM_TSTAMP_SND", 0),
    ("SCM_TSTAMP_SCHED", 1),
    ("SCM_TSTAMP_ACK", 2),
    // Timestamping flags (linux/net_tstamp.h).
    ("SOF_TIMESTAMPING_TX_HARDWARE", 1 << 0),
    ("SOF_TIMESTAMPING_TX_SOFTWARE", 1 << 1),
    ("SOF_TIMESTAMPING_RX_HARDWARE", 1 << 2),
    ("SOF_TIMESTAMPING_RX_SOFTWARE", 1 << 3),
    ("SOF_TIMESTAMPING_SOFTWARE", 1 << 4),
    ("SOF_TIMESTAMPING_SYS_HARDWARE", 1 << 5),
    ("SOF_TIMESTAMPING_RAW_HARDWARE", 1 << 6),
    ("SOF_TIMESTAMPING_OPT_ID", 1 << 7),
    ("SOF_TIMESTAMPING_TX_SCHED", 1 << 8),
    ("SOF_TIMESTAMPING_TX_ACK", 1 << 9),
    ("SOF_TIMESTAMPING_OPT_CMSG", 1 << 10),
    ("SOF_TIMESTAMPING_OPT_TSONLY", 1 << 11),
    ("SOF_TIMESTAMPING_OPT_STATS", 1 << 12),
    ("SOF_TIMESTAMPING_OPT_PKTINFO", 1 << 13),
    ("SOF_TIMESTAMPING_OPT_TX_SWHW", 1 << 14),
    // IP and IPv6 options.
    ("IP_TOS", libc::IP_TOS as i64),
    ("IP_TTL", libc::IP_TTL as i64),
    ("IP_MTU_DISCOVER", libc::IP_MTU_DISCOVER as i64),
    ("IP_RECVERR", libc::IP_RECVERR as i64),
    ("IP_FREEBIND", libc::IP_FREEBIND as i64),
    ("IP_TRANSPARENT", libc::IP_TRANSPARENT as i64),
    ("IP_MTU", libc::IP_MTU as i64),
    ("IP_PMTUDISC_DONT", libc::IP_PMTUDISC_DONT as i64),
    ("IP_PMTUDISC_WANT", libc::IP_PMTUDISC_WANT as i64),
    ("IP_PMTUDISC_DO", libc::IP_PMTUDISC_DO as i64),
    ("IP_PMTUDISC_PROBE", libc::IP_PMTUDISC_PROBE as i64),
    ("IPV6_TCLASS", libc::IPV6_TCLASS as i64),
    ("IPV6_RECVERR", libc::IPV6_RECVERR as i64),
    ("IPV6_MTU_DISCOVER", libc::IPV6_MTU_DISCOVER as i64),
    ("IPV6_MTU", libc::IPV6_MTU as i64),
    ("IPV6_V6ONLY", libc::IPV6_V6ONLY as i64),
    ("IPV6_FLOWLABEL_MGR", 32),
    ("IPV6_FLOWINFO_SEND", 33),
    // TCP options (linux/tcp.h).
    ("TCP_NODELAY", libc::TCP_NODELAY as i64),
    ("TCP_MAXSEG", libc::TCP_MAXSEG as i64),
    ("TCP_CORK", libc::TCP_CORK as i64),
    ("TCP_KEEPIDLE", libc::TCP_KEEPIDLE as i64),
    ("TCP_KEEPINTVL", libc::TCP_KEEPINTVL as i64),
    ("TCP_KEEPCNT", libc::TCP_KEEPCNT as i64),
    ("TCP_SYNCNT", libc::TCP_SYNCNT as i64),
    ("TCP_LINGER2", libc::TCP_LINGER2 as i64),
    ("TCP_DEFER_ACCEPT", libc::TCP_DEFER_ACCEPT as i64),
    ("TCP_WINDOW_CLAMP", libc::TCP_WINDOW_CLAMP as i64),
    ("TCP_INFO", libc::TCP_INFO as i64),
    ("TCP_QUICKACK", libc::TCP_QUICKACK as i64),
    ("TCP_CONGESTION", libc::TCP_CONGESTION as i64),
    ("TCP_MD5SIG", libc::TCP_MD5SIG as i64),
    ("TCP_THIN_LINEAR_TIMEOUTS", libc::TCP_THIN_LINEAR_TIMEOUTS as i64),
    ("TCP_THIN_DUPACK", libc::TCP_THIN_DUPACK as i64),
    ("TCP_USER_TIMEOUT", libc::TCP_USER_TIMEOUT as i64),
    ("TCP_REPAIR", libc::TCP_REPAIR as i64),
    ("TCP_FASTOPEN", libc::TCP_FASTOPEN as i64),
    ("TCP_TIMESTAMP", libc::TCP_TIMESTAMP as i64),
    ("TCP_NOTSENT_LOWAT", libc::TCP_NOTSENT_LOWAT as i64),
    ("TCP_CC_INFO", libc::TCP_CC_INFO as i64),
    ("TCP_SAVE_SYN", libc::TCP_SAVE_SYN as i64),
    ("TCP_SAVED_SYN", libc::TCP_SAVED_SYN as i64),
    ("TCP_FASTOPEN_CONNECT", libc::TCP_FASTOPEN_CONNECT as i64),
    ("TCP_ULP", libc::TCP_ULP as i64),
    ("TCP_MD5SIG_EXT", libc::TCP_MD5SIG_EXT as i64),
    ("TCP_FASTOPEN_KEY", libc::TCP_FASTOPEN_KEY as i64),
    ("TCP_FASTOPEN_NO_COOKIE", libc::TCP_FASTOPEN_NO_COOKIE as i64),
    ("TCP_ZEROCOPY_RECEIVE", libc::TCP_ZEROCOPY_RECEIVE as i64),
    ("TCP_INQ", libc::TCP_INQ as i64),
    ("TCP_CM_INQ", libc::TCP_CM_INQ as i64),
    ("TCP_TX_DELAY", 37),
    // Message flags.
    ("MSG_OOB", libc::MSG_OOB as i64),
    ("MSG_PEEK", libc::MSG_PEEK as i64),
    ("MSG_DONTROUTE", libc::MSG_DONTROUTE as i64),
    ("MSG_CTRUNC", libc::MSG_CTRUNC as i64),
    ("MSG_TRUNC", libc::MSG_TRUNC as i64),
    ("MSG_DONTWAIT", libc::MSG_DONTWAIT as i64),
    ("MSG_EOR", libc::MSG_EOR as i64),
    ("MSG_WAITALL", libc::MSG_WAITALL as i64),
    ("MSG_CONFIRM", libc::MSG_CONFIRM as i64),
    ("MSG_ERRQUEUE", libc::MSG_ERRQUEUE as i64),
    ("MSG_NOSIGNAL", libc::MSG_NOSIGNAL as i64),
    ("MSG_MORE", libc::MSG_MORE as i64),
    ("MSG_ZEROCOPY", libc::MSG_ZEROCOPY as i64),
    ("MSG_FASTOPEN", libc::MSG_FASTOPEN as i64),
    // shutdown(2).
    ("SHUT_RD", libc::SHUT_RD as i64),
    ("SHUT_WR", libc::SHUT_WR as i64),
    ("SHUT_RDWR", libc::SHUT_RDWR as i64),
    // fcntl(2) and open(2).
    ("F_GETFD", libc::F_GETFD as i64),
    ("F_SETFD", libc::F_SETFD as i64),
    ("F_GETFL", libc::F_GETFL as i64),
    ("F_SETFL", libc::F_SETFL as i64),
    ("FD_CLOEXEC", libc::FD_CLOEXEC as i64),
    ("O_RDONLY", libc::O_RDONLY as i64),
    ("O_WRONLY", libc::O_WRONLY as i64),
    ("O_RDWR", libc::O_RDWR as i64),
    ("O_CREAT", libc::O_CREAT as i64),
    ("O_EXCL", libc::O_EXCL as i64),
    ("O_TRUNC", libc::O_TRUNC as i64),
    ("O_APPEND", libc::O_APPEND as i64),
    ("O_NONBLOCK", libc::O_NONBLOCK as i64),
    ("O_CLOEXEC", libc::O_CLOEXEC as i64),
    // ioctl(2).
    ("SIOCINQ", libc::FIONREAD as i64),
    ("SIOCOUTQ", libc::TIOCOUTQ as i64),
    ("SIOCOUTQNSD", 0x894B),
    ("FIONREAD", libc::FIONREAD as i64),
    // epoll(7).
    ("EPOLLIN", libc::EPOLLIN as i64),
    ("EPOLLPRI", libc::EPOLLPRI as i64),
    ("EPOLLOUT", libc::EPOLLOUT as i64),
    ("EPOLLERR", libc::EPOLLERR as i64),
    ("EPOLLHUP", libc::EPOLLHUP as i64),
    ("EPOLLRDNORM", libc::EPOLLRDNORM as i64),
    ("EPOLLRDBAND", libc::EPOLLRDBAND as i64),
    ("EPOLLWRNORM", libc::EPOLLWRNORM as i64),
    ("EPOLLWRBAND", libc::EPOLLWRBAND as i64),
    ("EPOLLMSG", libc::EPOLLMSG as i64),
    ("EPOLLRDHUP", libc::EPOLLRDHUP as i64),
    ("EPOLLEXCLUSIVE", libc::EPOLLEXCLUSIVE as i64),
    ("EPOLLWAKEUP", libc::EPOLLWAKEUP as i64),
    ("EPOLLONESHOT", libc::EPOLLONESHOT as i64),
    ("EPOLLET", libc::EPOLLET as i64),
    ("EPOLL_CTL_ADD", libc::EPOLL_CTL_ADD as i64),
    ("EPOLL_CTL_MOD", libc::EPOLL_CTL_MOD as i64),
    ("EPOLL_CTL_DEL", libc::EPOLL_CTL_DEL as i64),
    // splice(2).
    ("SPLICE_F_MOVE", libc::SPLICE_F_MOVE as i64),
    ("SPLICE_F_NONBLOCK", libc::SPLICE_F_NONBLOCK as i64),
    ("SPLICE_F_MORE", libc::SPLICE_F_MORE as i64),
    ("SPLICE_F_GIFT", libc::SPLICE_F_GIFT as i64),
];

/// Every constant with its value, in table order (errnos aside).
pub fn all() -> impl Iterator<Item = (&'static str, i64)> {
    SYMBOLS.iter().copied()
}

/// The value of a symbol: a constant of [`SYMBOLS`] or an errno name.
pub fn value(name: &str) -> Option<i64> {
    SYMBOLS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .or_else(|| errno_from_name(name).map(|e| e as i64))
}

/// The table's own copy of a symbol's name.
pub fn static_name(name: &str) -> Option<&'static str> {
    SYMBOLS.iter().find(|(n, _)| *n == name).map(|(n, _)| *n)
}

/// ` (did you mean `X`?)` for a name close to a known one.
pub fn hint(name: &str) -> String {
    suggest(
        name,
        SYMBOLS
            .iter()
            .map(|(n, _)| n.to_string())
            .chain(errnos().map(|e| format!("{e:?}"))),
    )
}

/// The name of a known constant among `names` with this value (for messages).
pub fn name_of(value: i64, prefix: &str) -> Option<&'static str> {
    SYMBOLS
        .iter()
        .find(|(n, v)| *v == value && n.starts_with(prefix))
        .map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_have_linux_values() {
        assert_eq!(value("SOL_SOCKET"), Some(1));
        assert_eq!(value("SOL_TCP"), Some(6));
        assert_eq!(value("TCP_FASTOPEN_KEY"), Some(33));
        assert_eq!(value("TCP_CM_INQ"), Some(36));
        assert_eq!(value("MSG_ZEROCOPY"), Some(0x4000000));
        assert_eq!(value("SO_EE_ORIGIN_ZEROCOPY"), Some(5));
        assert_eq!(value("SIOCINQ"), Some(0x541B));
        assert_eq!(value("EINPROGRESS"), Some(115));
        assert_eq!(value("ENOMSG"), Some(42));
        assert_eq!(value("NULL"), Some(0));
        assert_eq!(value("SOL_SOKET"), None);
        assert_eq!(hint("SOL_SOKET"), " (did you mean `SOL_SOCKET`?)");
        assert_eq!(name_of(libc::O_NONBLOCK as i64, "O_"), Some("O_NONBLOCK"));
    }

    #[test]
    fn every_name_is_unique() {
        let mut names: Vec<&str> = SYMBOLS.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }
}
