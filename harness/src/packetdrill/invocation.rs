//! How a script is run: packetdrill's settings (its command-line flags and
//! a script's own `--name=value` lines), and the kernel selftests' settings
//! as their runner passes them, with documentation addresses.
//!
//! A script's `--option` lines are applied first and the command line's
//! flags then win, as packetdrill does. tcpconform's labs keep to the
//! documentation ranges, so the kselftest profile uses the addresses the
//! project's baseline was measured with, and the Fast Open cookies the
//! kernel computes for them with `defaults.sh`'s key (see the corpus README);
//! so do packetdrill's defaults here, where no flag gives an address.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::Defines;
use crate::packet::Family;

/// The settings one run of a script uses.
#[derive(Clone, Debug, PartialEq)]
pub struct Invocation {
    /// `--ip_version`.
    pub family: Family,
    /// `--local_ip`: the kernel's address.
    pub local: IpAddr,
    /// `--remote_ip`: the address packets come from.
    pub remote: IpAddr,
    /// `--gateway_ip`: the next hop to the remote address.
    pub gateway: Option<IpAddr>,
    /// `--netmask_ip` (IPv4) or /48 (IPv6): the prefix length of the local address.
    pub prefix_len: u8,
    /// `--mtu`.
    pub mtu: u32,
    /// `-D` defines.
    pub defines: Defines,
    /// `--tolerance_usecs`.
    pub tolerance: Duration,
    /// `--tolerance_percent`.
    pub tolerance_percent: f64,
    /// `--tcp_ts_tick_usecs` (0: TS vals not checked).
    pub ts_tick: Duration,
    /// `--mss`: the segment size of the GSO packets injected (0: none).
    pub mss: u16,
    /// `--bind_port`.
    pub bind_port: u16,
    /// `--connect_port`.
    pub connect_port: u16,
    /// The congestion control the scripts assume the namespace defaults to
    /// (kselftest's `defaults.sh` selects cubic).
    pub congestion_control: Option<String>,
    /// `--strict_segments`: a script's segment is one segment of the kernel's.
    pub strict_segments: bool,
    /// Options given on the command line: a script's own lines do not override them.
    pub given: BTreeSet<String>,
}

/// packetdrill's options that tcpconform accepts (in scripts and on its
/// packetdrill-compatible command line), and what each takes.
pub const OPTIONS: &[(&str, &str)] = &[
    ("ip_version", "ipv4 or ipv6"),
    ("local_ip", "an address"),
    ("remote_ip", "an address"),
    ("gateway_ip", "an address"),
    ("netmask_ip", "an IPv4 netmask"),
    ("mtu", "bytes"),
    ("define", "NAME=VALUE"),
    ("tolerance_usecs", "microseconds"),
    ("tolerance_percent", "percent"),
    ("tcp_ts_tick_usecs", "microseconds"),
    ("mss", "bytes"),
    ("bind_port", "a port"),
    ("connect_port", "a port"),
    ("send_omit_free", "no value"),
    ("strict_segments", "no value"),
];

/// The documentation addresses of a family's runs: the kernel's (local) and the peer's (remote).
fn documentation_addresses(family: Family) -> (IpAddr, IpAddr) {
    match family {
        Family::Ipv4 => (
            Ipv4Addr::new(192, 0, 2, 1).into(),
            Ipv4Addr::new(198, 51, 100, 1).into(),
        ),
        Family::Ipv6 => (
            Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0, 0, 0, 0, 1).into(),
            Ipv6Addr::new(0x2001, 0xdb8, 0xb, 0, 0, 0, 0, 1).into(),
        ),
    }
}

impl Invocation {
    /// packetdrill's own defaults on `family` (its tolerance, ports, tun
    /// MTU, netmask and IPv6 prefix, no defines), with documentation
    /// addresses in place of its private ones, and the namespace's default
    /// congestion control cubic, as the kernel selftests' `defaults.sh` has it.
    pub fn packetdrill(family: Family) -> Invocation {
        let (local, remote) = documentation_addresses(family);
        Invocation {
            family,
            local,
            remote,
            gateway: None,
            prefix_len: match family {
                Family::Ipv4 => 16,
                Family::Ipv6 => 48,
            },
            mtu: 1500,
            defines: Defines::new(),
            tolerance: Duration::from_micros(4000),
            tolerance_percent: 12.5,
            ts_tick: Duration::ZERO,
            mss: 0,
            bind_port: 8080,
            connect_port: 8080,
            congestion_control: Some("cubic".into()),
            strict_segments: false,
            given: BTreeSet::new(),
        }
    }

    /// The settings kselftest's runner passes for `family`, with the
    /// documentation addresses in place of its private ones and the Fast
    /// Open cookies the kernel computes for them: packetdrill's defaults
    /// and the runner's flags (`scripts/ksft-runner` passes the same).
    pub fn kselftest(family: Family) -> Invocation {
        let mut inv = Invocation::packetdrill(family);
        let (cookie, cookie_zero, level, recverr, flags): (_, _, _, _, &[&str]) = match family {
            Family::Ipv4 => {
                inv.gateway = Some(inv.local);
                (
                    "9bb0e43fb3b59641",
                    "5556826fbab0034f",
                    "SOL_IP",
                    "IP_RECVERR",
                    &["local_ip", "gateway_ip", "netmask_ip", "remote_ip"],
                )
            }
            Family::Ipv6 => {
                inv.mtu = 1520;
                inv.gateway = Some(Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0x8888, 0, 0, 0, 1).into());
                (
                    "7a447e7a8e3bc89a",
                    "b1a4aff95acef02b",
                    "SOL_IPV6",
                    "IPV6_RECVERR",
                    &["mtu", "local_ip", "gateway_ip", "remote_ip"],
                )
            }
        };
        inv.defines = [
            ("TFO_COOKIE", cookie),
            ("TFO_COOKIE_ZERO", cookie_zero),
            ("CMSG_LEVEL_IP", level),
            ("CMSG_TYPE_RECVERR", recverr),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        // Flags the runner gives win over a script's lines; its --ip_version
        // is the script's own, so a script's line still pins the family.
        inv.given = flags.iter().map(|f| f.to_string()).collect();
        inv
    }

    /// Applies `--name[=value]`; a command-line option (`from_command_line`)
    /// is remembered so that a script's own line does not override it.
    pub fn set(&mut self, name: &str, value: Option<&str>, from_command_line: bool) -> Result<(), String> {
        if !from_command_line && self.given.contains(name) && name != "define" {
            return Ok(());
        }
        let known: Vec<&str> = OPTIONS.iter().map(|(n, _)| *n).collect();
        let Some((_, takes)) = OPTIONS.iter().find(|(n, _)| *n == name) else {
            return Err(format!(
                "unknown option `--{name}`{}; tcpconform knows: {}",
                crate::case::call::suggest(name, &known),
                known.join(", ")
            ));
        };
        let needs_value = *takes != "no value";
        let text = match (value, needs_value) {
            (Some(v), true) => v,
            (None, false) => "",
            (None, true) => return Err(format!("`--{name}` takes a value ({takes})")),
            (Some(_), false) => return Err(format!("`--{name}` takes no value")),
        };
        let number = |what: &str| {
            text.parse::<u64>()
                .map_err(|_| format!("`--{name}={text}`: {what} must be a whole number"))
        };
        let address = || {
            text.split('/')
                .next()
                .unwrap_or_default()
                .parse::<IpAddr>()
                .map_err(|_| format!("`--{name}={text}` is not an IP address"))
        };
        match name {
            "ip_version" => {
                self.family = match text {
                    "ipv4" => Family::Ipv4,
                    "ipv6" => Family::Ipv6,
                    "ipv4-mapped-ipv6" => {
                        return Err("`--ip_version=ipv4-mapped-ipv6` is not supported yet".into());
                    }
                    _ => return Err(format!("`--ip_version={text}`: expected ipv4 or ipv6")),
                }
            }
            "local_ip" => self.local = address()?,
            "remote_ip" => self.remote = address()?,
            "gateway_ip" => self.gateway = Some(address()?),
            "netmask_ip" => {
                let mask: Ipv4Addr = text
                    .parse()
                    .map_err(|_| format!("`--netmask_ip={text}` is not a netmask"))?;
                let bits = u32::from(mask);
                if bits.leading_ones() + bits.trailing_zeros() != 32 {
                    return Err(format!("`--netmask_ip={text}` is not a contiguous netmask"));
                }
                if self.family == Family::Ipv4 {
                    self.prefix_len = bits.leading_ones() as u8;
                }
            }
            "mtu" => {
                self.mtu = u32::try_from(number("the MTU")?)
                    .ok()
                    .filter(|m| (1280..=65535).contains(m))
                    .ok_or_else(|| format!("`--mtu={text}` must be from 1280 to 65535"))?
            }
            "define" => {
                let Some((k, v)) = text.split_once('=') else {
                    return Err(format!("`--define={text}`: expected NAME=VALUE"));
                };
                // A script's defines are the parser's; the command line's win over them.
                self.defines.insert(k.to_string(), v.to_string());
                return Ok(());
            }
            "tolerance_usecs" => {
                let us = number("the tolerance")?;
                if us == 0 {
                    return Err("`--tolerance_usecs` must be more than 0".into());
                }
                self.tolerance = Duration::from_micros(us);
            }
            "tolerance_percent" => {
                let p: f64 = text
                    .parse()
                    .ok()
                    .filter(|p| (0.0..=100.0).contains(p))
                    .ok_or_else(|| format!("`--tolerance_percent={text}` must be from 0 to 100"))?;
                self.tolerance_percent = p;
            }
            "tcp_ts_tick_usecs" => self.ts_tick = Duration::from_micros(number("the tick")?.min(1_000_000)),
            "mss" => {
                self.mss = u16::try_from(number("the MSS")?).map_err(|_| format!("`--mss={text}` is too large"))?
            }
            "bind_port" => {
                self.bind_port =
                    u16::try_from(number("the port")?).map_err(|_| format!("`--{name}={text}` is not a port"))?
            }
            "connect_port" => {
                self.connect_port =
                    u16::try_from(number("the port")?).map_err(|_| format!("`--{name}={text}` is not a port"))?
            }
            // Send buffers are never freed under a zerocopy send anyway.
            "send_omit_free" => {}
            "strict_segments" => self.strict_segments = true,
            _ => unreachable!("every name in OPTIONS is handled"),
        }
        if from_command_line {
            self.given.insert(name.to_string());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_wins_over_the_script() {
        let mut inv = Invocation::kselftest(Family::Ipv4);
        inv.set("tolerance_usecs", Some("14000"), true).unwrap();
        inv.set("tolerance_usecs", Some("7000"), false).unwrap();
        assert_eq!(inv.tolerance, Duration::from_micros(14000));
        inv.set("mss", Some("1000"), false).unwrap();
        assert_eq!(inv.mss, 1000);
        inv.set("define", Some("X=1"), true).unwrap();
        assert_eq!(inv.defines["X"], "1");
    }

    #[test]
    fn bad_options_say_what_they_take() {
        let mut inv = Invocation::packetdrill(Family::Ipv4);
        assert!(
            inv.set("tolerance_usec", Some("1"), false)
                .unwrap_err()
                .contains("did you mean `tolerance_usecs`")
        );
        assert!(inv.set("mtu", None, false).unwrap_err().contains("takes a value"));
        assert!(
            inv.set("send_omit_free", Some("1"), false)
                .unwrap_err()
                .contains("takes no value")
        );
        assert!(inv.set("ip_version", Some("ipv5"), false).is_err());
        assert!(inv.set("netmask_ip", Some("255.0.255.0"), false).is_err());
        inv.set("netmask_ip", Some("255.255.255.0"), false).unwrap();
        assert_eq!(inv.prefix_len, 24);
    }
}
