//! The kernel modules a lab needs, taken from the booted kernel's own
//! module directory: which are built in, which must be loaded, in what
//! order, decompressed on the host.
//!
//! A package's module directory has no `modules.dep` (depmod makes it when
//! the package is installed), so dependencies are read from each module's
//! `.modinfo` section (`depends=`). Modules may be compressed (`.ko.xz`,
//! `.ko.zst`); they are decompressed here rather than by the guest, which
//! can do it only from Linux 6.4 on and only when built to.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use object::{Object, ObjectSection};

/// What a lab uses that a distribution may build as a module: veth pairs,
/// tun devices (packetdrill scripts' labs), AF_PACKET sockets, IPv6, and
/// sock_diag for TCP.
pub const NEEDED: [&str; 6] = ["veth", "tun", "af_packet", "ipv6", "inet_diag", "tcp_diag"];
/// What the kernel's packetdrill selftests ask of the kernel (their
/// `config`: `CONFIG_NET_SCH_FQ`, for `tc qdisc replace ... fq`) that a
/// distribution builds as a module, loaded when the kernel has it: the
/// kernel would load it on demand with modprobe, which the guest lacks.
pub const WANTED: [&str; 1] = ["sch_fq"];

/// Why the modules could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// The directory or one of its files cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The directory or file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The directory is not a kernel's module directory.
    #[error("{0} is not a kernel's module directory (lib/modules/<release>, with modules.builtin)")]
    NotModuleDir(PathBuf),
    /// A needed feature is neither built in nor a module.
    #[error("the kernel has no {name}: it is neither built in (modules.builtin) nor a module under {dir}")]
    Missing {
        /// Module name.
        name: String,
        /// The module directory.
        dir: PathBuf,
    },
    /// A module cannot be decompressed.
    #[error("cannot decompress {path}: {message}")]
    Decompress {
        /// The module file.
        path: PathBuf,
        /// The decompressor's complaint.
        message: String,
    },
    /// A file named like a module is not one.
    #[error("{path} is not a kernel module: {message}")]
    NotModule {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A module was built for another kernel.
    #[error("{path} was built for {found}, not for the kernel being booted ({kernel})")]
    Release {
        /// The module file.
        path: PathBuf,
        /// The release in its vermagic.
        found: String,
        /// The kernel's release.
        kernel: String,
    },
}

/// A module ready for `finit_module`.
#[derive(Clone, Debug)]
pub struct Module {
    /// Its name (`tcp_diag`).
    pub name: String,
    /// The uncompressed ELF object.
    pub image: Vec<u8>,
}

/// What the guest must load, and what it already has.
#[derive(Clone, Debug, Default)]
pub struct Modules {
    /// Modules to load, each after the modules it depends on.
    pub load: Vec<Module>,
    /// Needed features built into the kernel.
    pub builtin: Vec<String>,
}

/// The name of a module file (`tcp_diag.ko.xz` -> `tcp_diag`), with `-` read as `_` as the kernel does.
fn module_name(file: &str) -> Option<String> {
    let stem = [".ko", ".ko.xz", ".ko.zst"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))?;
    Some(stem.replace('-', "_"))
}

fn read_error(path: &Path) -> impl FnOnce(io::Error) -> ModuleError + '_ {
    move |source| ModuleError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// Every module file under `dir`, by name.
fn index(dir: &Path, out: &mut BTreeMap<String, PathBuf>) -> Result<(), ModuleError> {
    for entry in std::fs::read_dir(dir).map_err(read_error(dir))? {
        let path = entry.map_err(read_error(dir))?.path();
        if path.is_dir() {
            index(&path, out)?;
        } else if let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(module_name) {
            out.insert(name, path);
        }
    }
    Ok(())
}

/// The names listed in `modules.builtin` (`kernel/net/packet/af_packet.ko`).
fn builtin(dir: &Path) -> Result<BTreeSet<String>, ModuleError> {
    let path = dir.join("modules.builtin");
    if !path.is_file() {
        return Err(ModuleError::NotModuleDir(dir.to_path_buf()));
    }
    let text = std::fs::read_to_string(&path).map_err(read_error(&path))?;
    Ok(text
        .lines()
        .filter_map(|l| l.rsplit('/').next().and_then(module_name))
        .collect())
}

/// The uncompressed bytes of the module file at `path`.
fn decompress(path: &Path) -> Result<Vec<u8>, ModuleError> {
    let bytes = std::fs::read(path).map_err(read_error(path))?;
    let failed = |message: String| ModuleError::Decompress {
        path: path.to_path_buf(),
        message,
    };
    let name = path.to_string_lossy();
    if name.ends_with(".xz") {
        let mut out = Vec::new();
        lzma_rs::xz_decompress(&mut &bytes[..], &mut out).map_err(|e| failed(e.to_string()))?;
        Ok(out)
    } else if name.ends_with(".zst") {
        let mut out = Vec::new();
        ruzstd::decoding::StreamingDecoder::new(&bytes[..])
            .map_err(|e| failed(e.to_string()))?
            .read_to_end(&mut out)
            .map_err(|e| failed(e.to_string()))?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}

/// The `key=value` strings of a module's `.modinfo` section.
fn modinfo(path: &Path, image: &[u8]) -> Result<Vec<(String, String)>, ModuleError> {
    let not_module = |message: String| ModuleError::NotModule {
        path: path.to_path_buf(),
        message,
    };
    let file = object::File::parse(image).map_err(|e| not_module(e.to_string()))?;
    let section = file
        .section_by_name(".modinfo")
        .ok_or_else(|| not_module("no .modinfo section".into()))?;
    let data = section.data().map_err(|e| not_module(e.to_string()))?;
    Ok(data
        .split(|b| *b == 0)
        .filter_map(|entry| {
            let text = std::str::from_utf8(entry).ok()?;
            let (k, v) = text.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect())
}

/// Resolves [`NEEDED`] and [`WANTED`] against the module directory `dir` of
/// the kernel `release` (checked against each module's vermagic when known).
pub fn resolve(dir: &Path, release: Option<&str>) -> Result<Modules, ModuleError> {
    let builtin_names = builtin(dir)?;
    let mut files = BTreeMap::new();
    index(dir, &mut files)?;
    let mut out = Modules::default();
    let mut loaded = BTreeSet::new();
    for name in NEEDED {
        if builtin_names.contains(name) {
            out.builtin.push(name.to_string());
        } else if files.contains_key(name) {
            add(name, &files, release, &mut loaded, &mut out.load)?;
        } else {
            return Err(ModuleError::Missing {
                name: name.into(),
                dir: dir.to_path_buf(),
            });
        }
    }
    for name in WANTED {
        if builtin_names.contains(name) {
            out.builtin.push(name.to_string());
        } else if files.contains_key(name) {
            add(name, &files, release, &mut loaded, &mut out.load)?;
        }
    }
    Ok(out)
}

/// Adds `name` after the modules it depends on, unless it is already there.
fn add(
    name: &str,
    files: &BTreeMap<String, PathBuf>,
    release: Option<&str>,
    loaded: &mut BTreeSet<String>,
    load: &mut Vec<Module>,
) -> Result<(), ModuleError> {
    if !loaded.insert(name.to_string()) {
        return Ok(());
    }
    let Some(path) = files.get(name) else {
        // A dependency that is no file: built in (depends= lists modules only, so this is defensive).
        return Ok(());
    };
    let image = decompress(path)?;
    let info = modinfo(path, &image)?;
    if let (Some(kernel), Some((_, magic))) = (release, info.iter().find(|(k, _)| k == "vermagic")) {
        let found = magic.split_whitespace().next().unwrap_or_default();
        if found != kernel {
            return Err(ModuleError::Release {
                path: path.clone(),
                found: found.into(),
                kernel: kernel.into(),
            });
        }
    }
    for (_, deps) in info.iter().filter(|(k, _)| k == "depends") {
        for dep in deps.split(',').filter(|d| !d.is_empty()) {
            add(&dep.replace('-', "_"), files, release, loaded, load)?;
        }
    }
    load.push(Module {
        name: name.to_string(),
        image,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_drop_the_extension_and_read_dashes_as_underscores() {
        assert_eq!(module_name("tcp_diag.ko").as_deref(), Some("tcp_diag"));
        assert_eq!(module_name("inet_diag.ko.xz").as_deref(), Some("inet_diag"));
        assert_eq!(module_name("nf-conntrack.ko.zst").as_deref(), Some("nf_conntrack"));
        assert_eq!(module_name("modules.builtin"), None);
    }

    /// Writes `data` to a fresh file named `name` and returns what [`decompress`] makes of it.
    fn decompressed(name: &str, data: &[u8]) -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!("tcpconform-modules-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
        let out = decompress(&dir.join(name));
        std::fs::remove_dir_all(&dir).unwrap();
        out.unwrap()
    }

    #[test]
    fn xz_and_zstd_modules_are_decompressed() {
        let module = b"\x7fELF pretend module bytes".repeat(100);
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &module[..], &mut xz).unwrap();
        let zst = ruzstd::encoding::compress_to_vec(&module[..], ruzstd::encoding::CompressionLevel::Fastest);
        assert_eq!(decompressed("m.ko.xz", &xz), module);
        assert_eq!(decompressed("m.ko.zst", &zst), module);
        assert_eq!(decompressed("m.ko", &module), module);
    }

    #[test]
    fn a_directory_without_modules_builtin_is_refused() {
        let err = resolve(Path::new("/proc/self"), None).unwrap_err();
        assert!(matches!(err, ModuleError::NotModuleDir(_)), "{err}");
    }

    #[test]
    fn a_file_that_is_not_elf_is_not_a_module() {
        let err = modinfo(Path::new("x.ko"), b"not an ELF file").unwrap_err();
        assert!(matches!(err, ModuleError::NotModule { .. }), "{err}");
    }
}
