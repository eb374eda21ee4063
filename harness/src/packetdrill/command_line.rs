//! packetdrill's command line, as `tcpconform packetdrill` takes it so that
//! the kernel's selftest runner can call tcpconform in packetdrill's place.
//!
//! The syntax is getopt_long's, as packetdrill parses it: `--name=value` or
//! `--name value` for an option that takes a value, `--name` for one that
//! does not, `-D NAME=VALUE` or `-DNAME=VALUE` (and `--define`), `-v` (and
//! `--verbose`), options and scripts in any order, `--` before scripts that
//! start with `-`. Option names are whole: getopt's abbreviations
//! (`--tol=...`) are not taken. The options are those of
//! [`OPTIONS`](super::invocation::OPTIONS), applied as a script's own lines
//! are, and winning over them; packetdrill options tcpconform does not
//! implement (`--wire_server`, `--so_filename`, ...) and unknown ones are
//! errors that name them.

use std::ffi::OsString;
use std::path::PathBuf;

use super::invocation::{Invocation, OPTIONS};
use crate::packet::Family;

/// Options of packetdrill that tcpconform does not implement.
const NOT_IMPLEMENTED: &[&str] = &[
    "code_command",
    "code_format",
    "code_sockopt",
    "speed",
    "init_scripts",
    "wire_client",
    "wire_server",
    "wire_server_ip",
    "wire_server_at",
    "wire_server_port",
    "wire_client_dev",
    "wire_server_dev",
    "so_filename",
    "so_flags",
    "tcp_ts_ecr_scaled",
    "non_fatal",
    "is_anyip",
    "debug",
];

/// What is wrong with a command line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// An option neither packetdrill nor tcpconform knows.
    #[error("unknown option `{option}`{hint}")]
    Unknown {
        /// The option as given (`--tolerance_usec`, `-x`).
        option: String,
        /// A suggestion (` (did you mean ...?)`), or nothing.
        hint: String,
    },
    /// A packetdrill option tcpconform does not implement.
    #[error("`--{0}` is a packetdrill option tcpconform does not implement")]
    NotImplemented(String),
    /// An option that takes a value came last, without one.
    #[error("`{0}` takes a value")]
    MissingValue(String),
    /// An option that takes no value was given one.
    #[error("`--{0}` takes no value")]
    UnexpectedValue(String),
    /// A value the option does not accept (the message says which and why).
    #[error("{0}")]
    BadValue(String),
    /// No script.
    #[error("no script given")]
    NoScript,
}

/// A parsed command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandLine {
    /// The settings, in the order given: option name (`define` for `-D`) and value.
    pub options: Vec<(String, Option<String>)>,
    /// The scripts to run, in order.
    pub scripts: Vec<PathBuf>,
    /// `-v`: show what happened, passed or not.
    pub verbose: bool,
    /// `--dry_run`: check the scripts, run nothing.
    pub dry_run: bool,
}

/// Whether `name` takes a value, if it is an option of this command line.
fn takes_value(name: &str) -> Option<bool> {
    match name {
        "verbose" | "dry_run" => Some(false),
        _ => OPTIONS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, takes)| *takes != "no value"),
    }
}

impl CommandLine {
    /// Parses the arguments after `tcpconform packetdrill`.
    pub fn parse(args: &[OsString]) -> Result<CommandLine, UsageError> {
        let mut line = CommandLine::default();
        let mut args = args.iter().map(|a| a.to_string_lossy().into_owned());
        while let Some(arg) = args.next() {
            if arg == "--" {
                line.scripts.extend(args.by_ref().map(PathBuf::from));
                break;
            }
            if let Some(long) = arg.strip_prefix("--") {
                let (name, inline) = match long.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (long, None),
                };
                let value = match takes_value(name) {
                    Some(true) => match inline {
                        Some(v) => Some(v),
                        None => Some(
                            args.next()
                                .ok_or_else(|| UsageError::MissingValue(format!("--{name}")))?,
                        ),
                    },
                    Some(false) if inline.is_some() => return Err(UsageError::UnexpectedValue(name.to_string())),
                    Some(false) => None,
                    None if NOT_IMPLEMENTED.contains(&name) => {
                        return Err(UsageError::NotImplemented(name.to_string()));
                    }
                    None => {
                        let known = OPTIONS
                            .iter()
                            .map(|(n, _)| *n)
                            .chain(["verbose", "dry_run"])
                            .chain(NOT_IMPLEMENTED.iter().copied());
                        return Err(UsageError::Unknown {
                            option: format!("--{name}"),
                            hint: crate::case::call::suggest(name, known),
                        });
                    }
                };
                line.option(name, value);
            } else if let Some(short) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
                // A cluster of short options: `-v`, `-DX=1`, `-vD X=1`.
                for (i, c) in short.char_indices() {
                    match c {
                        'v' => line.verbose = true,
                        'D' => {
                            let rest = &short[i + 1..];
                            let value = if rest.is_empty() {
                                args.next().ok_or_else(|| UsageError::MissingValue("-D".into()))?
                            } else {
                                rest.to_string()
                            };
                            line.option("define", Some(value));
                            break;
                        }
                        other => {
                            return Err(UsageError::Unknown {
                                option: format!("-{other}"),
                                hint: String::new(),
                            });
                        }
                    }
                }
            } else {
                line.scripts.push(PathBuf::from(arg));
            }
        }
        if line.scripts.is_empty() {
            return Err(UsageError::NoScript);
        }
        Ok(line)
    }

    fn option(&mut self, name: &str, value: Option<String>) {
        match name {
            "verbose" => self.verbose = true,
            "dry_run" => self.dry_run = true,
            _ => self.options.push((name.to_string(), value)),
        }
    }

    /// The settings of a run on `family`: packetdrill's defaults
    /// ([`Invocation::packetdrill`]) with these options applied, in order.
    pub fn invocation(&self, family: Family) -> Result<Invocation, UsageError> {
        let mut inv = Invocation::packetdrill(family);
        for (name, value) in &self.options {
            inv.set(name, value.as_deref(), true).map_err(UsageError::BadValue)?;
        }
        Ok(inv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &str) -> Result<CommandLine, UsageError> {
        let args: Vec<OsString> = args.split_whitespace().map(OsString::from).collect();
        CommandLine::parse(&args)
    }

    /// The flags `scripts/ksft-runner` passes: the kernel runner's, with the
    /// documentation addresses and the cookies the kernel computes for them.
    fn runner_flags(family: Family) -> &'static str {
        match family {
            Family::Ipv4 => {
                "--ip_version=ipv4 --local_ip=192.0.2.1 --gateway_ip=192.0.2.1 --netmask_ip=255.255.0.0 \
                 --remote_ip=198.51.100.1 -D TFO_COOKIE=9bb0e43fb3b59641 -D TFO_COOKIE_ZERO=5556826fbab0034f \
                 -D CMSG_LEVEL_IP=SOL_IP -D CMSG_TYPE_RECVERR=IP_RECVERR"
            }
            Family::Ipv6 => {
                "--ip_version=ipv6 --mtu=1520 --local_ip=2001:db8:a::1 --gateway_ip=2001:db8:a:8888::1 \
                 --remote_ip=2001:db8:b::1 -D TFO_COOKIE=7a447e7a8e3bc89a -D TFO_COOKIE_ZERO=b1a4aff95acef02b \
                 -D CMSG_LEVEL_IP=SOL_IPV6 -D CMSG_TYPE_RECVERR=IPV6_RECVERR"
            }
        }
    }

    #[test]
    fn the_runner_flags_give_the_kselftest_profile() {
        for family in Family::ALL {
            let line = parse(&format!("{} tcp_x.pkt", runner_flags(family))).expect("valid");
            assert_eq!(line.scripts, [PathBuf::from("tcp_x.pkt")]);
            let mut inv = line.invocation(family).expect("valid values");
            let expected = Invocation::kselftest(family);
            // The command line's --ip_version is given; kselftest's is the script's own.
            assert!(inv.given.remove("ip_version"));
            assert_eq!(inv, expected, "{family}");
        }
    }

    #[test]
    fn getopt_forms_are_taken() {
        let line =
            parse("-v --tolerance_usecs 14000 x.pkt -DA=1 -vD B=2 --define=C=3 --strict_segments --dry_run -- -y.pkt")
                .expect("valid");
        assert!(line.verbose && line.dry_run);
        assert_eq!(line.scripts, [PathBuf::from("x.pkt"), PathBuf::from("-y.pkt")]);
        let some = |n: &str, v: &str| (n.to_string(), Some(v.to_string()));
        assert_eq!(
            line.options,
            [
                some("tolerance_usecs", "14000"),
                some("define", "A=1"),
                some("define", "B=2"),
                some("define", "C=3"),
                ("strict_segments".to_string(), None),
            ]
        );
        let inv = line.invocation(Family::Ipv6).expect("valid");
        assert_eq!(inv.tolerance, std::time::Duration::from_micros(14000));
        assert_eq!(inv.defines.get("B").map(String::as_str), Some("2"));
        assert_eq!(
            inv.local,
            "2001:db8:a::1".parse::<std::net::IpAddr>().expect("an address")
        );
    }

    #[test]
    fn bad_command_lines_name_the_option() {
        assert_eq!(
            parse("--tolerance_usec=1 x.pkt").unwrap_err().to_string(),
            "unknown option `--tolerance_usec` (did you mean `tolerance_usecs`?)"
        );
        assert_eq!(parse("-x x.pkt").unwrap_err().to_string(), "unknown option `-x`");
        assert_eq!(
            parse("--wire_server x.pkt").unwrap_err().to_string(),
            "`--wire_server` is a packetdrill option tcpconform does not implement"
        );
        assert_eq!(parse("x.pkt --mtu").unwrap_err().to_string(), "`--mtu` takes a value");
        assert_eq!(parse("x.pkt -D").unwrap_err().to_string(), "`-D` takes a value");
        assert_eq!(
            parse("--strict_segments=1 x.pkt").unwrap_err().to_string(),
            "`--strict_segments` takes no value"
        );
        assert_eq!(parse("-v").unwrap_err(), UsageError::NoScript);
        let line = parse("--mtu=12 x.pkt").expect("parses");
        assert_eq!(
            line.invocation(Family::Ipv4).unwrap_err().to_string(),
            "`--mtu=12` must be from 1280 to 65535"
        );
    }
}
