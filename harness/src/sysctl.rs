//! Network sysctls, written only inside a case's own network namespace and
//! only for knobs that are namespaced on the running kernel.
//!
//! The check is made, not assumed: a knob is written only when it exists
//! under `/proc/sys/net` as seen from the case's namespace (the kernel
//! registers non-namespaced net knobs in the initial namespace only), and
//! only after checking that the writing thread is not in the namespace the
//! process started in. After the write, the host's value is read again
//! through a file opened before the lab was made: had it moved, the knob
//! would not be namespaced, and the host's value is put back at once. A knob
//! missing from the namespace is reported as absent from the kernel, or as
//! present on the host but not namespaced.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Why a sysctl could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    /// The name is not a `net.*` knob.
    #[error("`{0}` is not a network sysctl (names look like net.ipv4.tcp_fin_timeout)")]
    NotNet(String),
    /// The kernel has no such knob.
    #[error("{0} does not exist on this kernel")]
    Absent(String),
    /// The knob exists on the host but not inside a network namespace.
    #[error("{0} is not namespaced on this kernel; tcpconform only writes knobs inside the case's own namespace")]
    NotNamespaced(String),
    /// The knob exists in the lab but refuses writes there (read-only in
    /// non-initial namespaces, or hidden from user namespaces).
    #[error(
        "{0} cannot be written inside a network namespace here (read-only outside the initial namespace, or not open to user namespaces)"
    )]
    ReadOnly(String),
    /// The writing thread turned out to be in the process's original namespace.
    #[error("refusing to write {0}: the thread is not inside a lab namespace")]
    HostNamespace(String),
    /// Reading or writing the knob failed.
    #[error("{name}: {source}")]
    Io {
        /// Knob name.
        name: String,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
}

impl SysctlError {
    /// Whether the failure is a property of the running kernel (the case is
    /// skipped) rather than of the case or the environment (an error).
    pub fn is_kernel_property(&self) -> bool {
        matches!(
            self,
            SysctlError::Absent(_) | SysctlError::NotNamespaced(_) | SysctlError::ReadOnly(_)
        )
    }
}

/// Path under `/proc/sys` of a dotted `net.*` name.
pub fn path(name: &str) -> Result<PathBuf, SysctlError> {
    let parts: Vec<&str> = name.split('.').collect();
    let valid = parts.len() >= 3
        && parts[0] == "net"
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
    if !valid {
        return Err(SysctlError::NotNet(name.to_string()));
    }
    Ok(PathBuf::from("/proc/sys").join(parts.join("/")))
}

/// A knob as the host sees it, opened before the calling thread leaves the host's namespace.
pub struct HostKnob {
    file: fs::File,
    value: String,
}

impl HostKnob {
    /// Opens the host's view of a knob; `None` when the host has no such knob.
    ///
    /// Which namespace a sysctl file shows is decided when it is opened, so
    /// this descriptor reads (and, if need be, restores) the host's value
    /// whatever namespace the thread is in later.
    pub fn open(name: &str) -> Result<Option<HostKnob>, SysctlError> {
        let path = path(name)?;
        let opened = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .or_else(|_| fs::File::open(&path));
        let Ok(mut file) = opened else { return Ok(None) };
        let value = read_from(&mut file).map_err(|source| SysctlError::Io {
            name: name.to_string(),
            source,
        })?;
        Ok(Some(HostKnob { file, value }))
    }

    /// Whether the host's value is still the one read at `open`.
    fn unchanged(&mut self) -> io::Result<bool> {
        Ok(read_from(&mut self.file)? == self.value)
    }

    /// Puts the host's value back.
    fn restore(&mut self) -> io::Result<()> {
        use std::io::{Seek, Write};
        self.file.rewind()?;
        self.file.write_all(self.value.as_bytes())
    }
}

fn read_from(file: &mut fs::File) -> io::Result<String> {
    use std::io::{Read, Seek};
    file.rewind()?;
    let mut value = String::new();
    file.read_to_string(&mut value)?;
    Ok(value.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn netns_inode(path: &str) -> io::Result<u64> {
    Ok(fs::metadata(path)?.ino())
}

/// Inode of the network namespace the process started in (its main thread's).
fn host_netns() -> io::Result<u64> {
    static HOST: OnceLock<u64> = OnceLock::new();
    if let Some(ino) = HOST.get() {
        return Ok(*ino);
    }
    let ino = netns_inode("/proc/self/ns/net")?;
    Ok(*HOST.get_or_init(|| ino))
}

/// Records the process's namespace; call before any thread leaves it.
pub fn remember_host_namespace() -> io::Result<()> {
    host_netns().map(|_| ())
}

/// Writes `value` to a knob from inside a lab namespace and returns the value read back.
///
/// `host` is the host's view of the knob, opened before the calling thread
/// left the host's namespace (`None` if the host has no such knob).
pub fn write_in_lab(name: &str, value: &str, host: Option<&mut HostKnob>) -> Result<String, SysctlError> {
    let path = path(name)?;
    if !path.exists() {
        return Err(if host.is_some() {
            SysctlError::NotNamespaced(name.to_string())
        } else {
            SysctlError::Absent(name.to_string())
        });
    }
    let io_err = |source| SysctlError::Io {
        name: name.to_string(),
        source,
    };
    let here = netns_inode("/proc/thread-self/ns/net").map_err(io_err)?;
    if here == host_netns().map_err(io_err)? {
        return Err(SysctlError::HostNamespace(name.to_string()));
    }
    fs::write(&path, value).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => SysctlError::ReadOnly(name.to_string()),
        _ => io_err(e),
    })?;
    if let Some(host) = host
        && !host.unchanged().map_err(io_err)?
    {
        host.restore().map_err(io_err)?;
        return Err(SysctlError::NotNamespaced(name.to_string()));
    }
    read(name)
}

/// Reads a knob as seen from the calling thread's namespace, trimmed.
pub fn read(name: &str) -> Result<String, SysctlError> {
    let path = path(name)?;
    fs::read_to_string(&path)
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .map_err(|source| SysctlError::Io {
            name: name.to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("net.ipv4.tcp_fin_timeout", "/proc/sys/net/ipv4/tcp_fin_timeout")]
    #[case("net.ipv6.conf.default.accept_ra", "/proc/sys/net/ipv6/conf/default/accept_ra")]
    fn names_map_to_proc_paths(#[case] name: &str, #[case] path_: &str) {
        assert_eq!(path(name).unwrap(), PathBuf::from(path_));
    }

    #[rstest]
    #[case("kernel.pid_max")]
    #[case("net")]
    #[case("net.ipv4")]
    #[case("net.ipv4..x")]
    #[case("net.ipv4.../x")]
    #[case("net.ipv4.a/b")]
    fn only_network_knobs_are_accepted(#[case] name: &str) {
        assert!(matches!(path(name), Err(SysctlError::NotNet(_))));
    }

    #[test]
    fn the_host_namespace_is_never_written() {
        remember_host_namespace().unwrap();
        // This thread is in the host namespace: the write must be refused
        // before anything is opened for writing.
        let mut host = HostKnob::open("net.ipv4.tcp_fin_timeout").unwrap();
        let err = write_in_lab("net.ipv4.tcp_fin_timeout", "60", host.as_mut()).unwrap_err();
        assert!(matches!(err, SysctlError::HostNamespace(_)), "{err}");
    }
}
