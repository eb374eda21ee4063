//! The kernel to boot: its image, the release it says it is, and where its
//! modules are when it was unpacked from a package.

use std::io;
use std::path::{Path, PathBuf};

/// Why a kernel image cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The image cannot be read.
    #[error("cannot read the kernel {path}")]
    Read {
        /// The image.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file is not an x86 bzImage.
    #[error("{0} is not a bootable x86 kernel image (bzImage/vmlinuz): it has no boot protocol header")]
    NotBzImage(PathBuf),
}

/// A bootable kernel image.
#[derive(Clone, Debug)]
pub struct Kernel {
    /// The bzImage.
    pub image: PathBuf,
    /// Its release (`uname -r` once booted), when the image says.
    pub release: Option<String>,
}

/// Offset of the boot protocol header's magic, `HdrS` (`Documentation/arch/x86/boot.rst`).
const HEADER_MAGIC_AT: usize = 0x202;
/// Offset of `kernel_version`: where the version string is, minus 0x200.
const KERNEL_VERSION_AT: usize = 0x20e;

impl Kernel {
    /// Reads the boot header of the image at `path`.
    pub fn open(path: &Path) -> Result<Kernel, KernelError> {
        let bytes = std::fs::read(path).map_err(|source| KernelError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if bytes.get(HEADER_MAGIC_AT..HEADER_MAGIC_AT + 4) != Some(b"HdrS") {
            return Err(KernelError::NotBzImage(path.to_path_buf()));
        }
        Ok(Kernel {
            image: path.to_path_buf(),
            release: release(&bytes),
        })
    }

    /// The module directory of an unpacked package or an installed kernel:
    /// `lib/modules/<release>` (or `usr/lib/modules/<release>`) beside the
    /// image's directory, as `dpkg-deb -x` lays out `boot/vmlinuz-<release>`
    /// (symlinks to the image followed).
    pub fn modules_beside(&self) -> Option<PathBuf> {
        let release = self.release.as_deref()?;
        let image = std::fs::canonicalize(&self.image).ok()?;
        let root = image.parent()?.parent()?;
        ["lib/modules", "usr/lib/modules"]
            .iter()
            .map(|d| root.join(d).join(release))
            .find(|d| d.is_dir())
    }
}

/// The release string from the header's `kernel_version` field
/// ("6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP ...").
fn release(image: &[u8]) -> Option<String> {
    let field = image.get(KERNEL_VERSION_AT..KERNEL_VERSION_AT + 2)?;
    let offset = usize::from(u16::from_le_bytes([field[0], field[1]]));
    if offset == 0 {
        return None;
    }
    let text = image.get(offset + 0x200..)?;
    let end = text.iter().position(|b| *b == 0 || *b == b' ')?;
    let release = std::str::from_utf8(&text[..end]).ok()?;
    (!release.is_empty()).then(|| release.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(version: &str) -> Vec<u8> {
        let mut bytes = vec![0u8; 0x1000];
        bytes[HEADER_MAGIC_AT..HEADER_MAGIC_AT + 4].copy_from_slice(b"HdrS");
        bytes[KERNEL_VERSION_AT..KERNEL_VERSION_AT + 2].copy_from_slice(&0x300u16.to_le_bytes());
        bytes[0x500..0x500 + version.len()].copy_from_slice(version.as_bytes());
        bytes
    }

    #[test]
    fn the_release_is_the_first_word_of_the_version_string() {
        let bytes = image("6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP");
        assert_eq!(release(&bytes).as_deref(), Some("6.1.0-56-cloud-amd64"));
    }

    #[test]
    fn an_image_without_the_header_is_refused() {
        let dir = std::env::temp_dir().join(format!("tcpconform-kernel-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vmlinuz");
        std::fs::write(&path, b"\x7fELF not a bzImage").unwrap();
        let err = Kernel::open(&path).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(err, KernelError::NotBzImage(_)), "{err}");
    }

    #[test]
    fn modules_are_found_where_dpkg_deb_puts_them() {
        let root = std::env::temp_dir().join(format!("tcpconform-kernel-layout-{}", std::process::id()));
        std::fs::create_dir_all(root.join("boot")).unwrap();
        std::fs::create_dir_all(root.join("lib/modules/6.1.0-56-cloud-amd64")).unwrap();
        let path = root.join("boot/vmlinuz-6.1.0-56-cloud-amd64");
        std::fs::write(&path, image("6.1.0-56-cloud-amd64 (x) #1")).unwrap();
        let kernel = Kernel::open(&path).unwrap();
        let found = kernel.modules_beside();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(found, Some(root.join("lib/modules/6.1.0-56-cloud-amd64")));
    }
}
