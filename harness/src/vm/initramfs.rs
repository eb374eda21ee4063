//! The guest's initramfs, built on the fly: the running `tcpconform` binary
//! as `/init` with the shared libraries and ELF interpreter it was linked
//! against (found by asking that interpreter, as `ldd` does), the case files
//! and the programs their commands run ([`super::userland`]) at the paths
//! they have on the host ([`HostTree`]), the modules, the plan, and the
//! `/dev/console` node the kernel opens for init.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use object::read::elf::{ElfFile64, ProgramHeader};

use super::cpio::Cpio;
use super::guest::{MODULE_DIR, PLAN_PATH, Plan};
use super::modules::Module;

/// Why the initramfs could not be built.
#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    /// A file could not be read or the archive written.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// The binary's shared libraries could not be listed.
    #[error("cannot list the shared libraries of {binary}: {message}")]
    Libraries {
        /// The binary.
        binary: PathBuf,
        /// What went wrong.
        message: String,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> InitramfsError {
    let what = what.into();
    move |source| InitramfsError::Io { what, source }
}

/// What goes into the initramfs.
pub struct Contents<'a> {
    /// The tcpconform binary, which becomes `/init`.
    pub binary: &'a Path,
    /// Host files at their host paths: the binary's libraries, the case files, what their commands run.
    pub tree: &'a HostTree,
    /// Modules to load, in order.
    pub modules: &'a [Module],
    /// What the guest is to do.
    pub plan: &'a Plan,
}

/// The shared objects `binary` loads, interpreter included: empty for a static binary.
pub fn libraries(binary: &Path) -> Result<Vec<PathBuf>, InitramfsError> {
    let Some(interpreter) = interpreter(binary)? else {
        return Ok(Vec::new());
    };
    let mut libs = loaded_by(&interpreter, binary)?;
    if !libs.contains(&interpreter) {
        libs.push(interpreter);
    }
    Ok(libs)
}

/// The ELF interpreter (`PT_INTERP`) of `binary`: None for a static binary or a shared object.
pub fn interpreter(binary: &Path) -> Result<Option<PathBuf>, InitramfsError> {
    let bytes = std::fs::read(binary).map_err(io_err(format!("cannot read {}", binary.display())))?;
    let elf = ElfFile64::<object::Endianness>::parse(&bytes[..]).map_err(|e| InitramfsError::Libraries {
        binary: binary.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(elf
        .elf_program_headers()
        .iter()
        .find_map(|ph| ph.interpreter(elf.endian(), &bytes[..]).ok().flatten())
        .map(|i| PathBuf::from(String::from_utf8_lossy(i).into_owned())))
}

/// The shared objects `interpreter` loads for `object` (a program or a shared library), as `ld.so --list` says.
pub fn loaded_by(interpreter: &Path, object: &Path) -> Result<Vec<PathBuf>, InitramfsError> {
    let failed = |message: String| InitramfsError::Libraries {
        binary: object.to_path_buf(),
        message,
    };
    let out = Command::new(interpreter)
        .arg("--list")
        .arg(object)
        .output()
        .map_err(|e| failed(format!("{}: {e}", interpreter.display())))?;
    if !out.status.success() {
        return Err(failed(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    parse_list(&String::from_utf8_lossy(&out.stdout)).map_err(failed)
}

/// The paths in the output of `ld.so --list` (`libc.so.6 => /lib/.../libc.so.6 (0x...)`).
fn parse_list(text: &str) -> Result<Vec<PathBuf>, String> {
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let path = match line.split_once("=>") {
            Some((name, target)) => {
                let target = target.trim();
                if target.starts_with("not found") {
                    return Err(format!("{} not found", name.trim()));
                }
                target.split(" (").next().unwrap_or_default()
            }
            None => line.split(" (").next().unwrap_or_default(),
        };
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}

/// Writes the initramfs to `out`.
pub fn write(out: impl Write, contents: &Contents<'_>) -> Result<(), InitramfsError> {
    let mut cpio = Cpio::new(out);
    let write_err = || io_err("cannot write the initramfs");
    // /run: commands get an empty directory put over it.
    for dir in ["/proc", "/sys", "/dev", "/tmp", "/run"] {
        cpio.dir(Path::new(dir)).map_err(write_err())?;
    }
    cpio.char_device(Path::new("/dev/console"), 5, 1).map_err(write_err())?;
    add_file(&mut cpio, contents.binary, Path::new("/init"), 0o755)?;
    contents.tree.write(&mut cpio)?;
    for m in contents.modules {
        let path = Path::new(MODULE_DIR).join(format!("{}.ko", m.name));
        cpio.bytes(&path, 0o644, &m.image).map_err(write_err())?;
    }
    let plan = serde_json::to_vec_pretty(contents.plan).map_err(|e| write_err()(io::Error::other(e)))?;
    cpio.bytes(Path::new(PLAN_PATH), 0o644, &plan).map_err(write_err())?;
    cpio.finish().map_err(write_err())?;
    Ok(())
}

/// How many symbolic links a path may go through, as the kernel allows (`MAXSYMLINKS`).
const MAX_LINKS: u32 = 40;

/// Host files to be found in the guest at the paths they have on the host,
/// with every symbolic link met on the way (`/lib -> usr/lib`,
/// `/usr/bin/python3 -> python3.11`), so that the guest resolves a path as
/// the host does and each file is there once, at its real path.
#[derive(Debug, Default)]
pub struct HostTree {
    nodes: BTreeMap<PathBuf, Node>,
}

#[derive(Debug)]
enum Node {
    /// A regular file, with its permission bits.
    File(u32),
    /// A symbolic link, with its target as readlink(2) gives it.
    Link(PathBuf),
    /// A directory, added for itself.
    Dir,
}

impl HostTree {
    /// Adds the regular file at `path` (absolute) and the links on the way; returns its real path.
    pub fn file(&mut self, path: &Path) -> Result<PathBuf, InitramfsError> {
        let real = self.real(path)?;
        let meta = std::fs::metadata(&real).map_err(io_err(cannot_add(path)))?;
        if !meta.is_file() {
            return Err(io_err(cannot_add(path))(io::Error::other("not a regular file")));
        }
        self.nodes
            .insert(real.clone(), Node::File(meta.permissions().mode() & 0o7777));
        Ok(real)
    }

    /// Adds the directory `path` (absolute) and the links on the way.
    pub fn dir(&mut self, path: &Path) -> Result<(), InitramfsError> {
        let real = self.real(path)?;
        self.nodes.entry(real).or_insert(Node::Dir);
        Ok(())
    }

    /// Adds every file and link under the directory `dir` (absolute), but
    /// what `skip` refuses (and what is under it), and the files the links
    /// lead to; returns the real paths of the regular files added.
    pub fn tree(&mut self, dir: &Path, skip: &dyn Fn(&Path) -> bool) -> Result<Vec<PathBuf>, InitramfsError> {
        let real = self.real(dir)?;
        let mut added = Vec::new();
        self.walk(&real, skip, &mut added)?;
        Ok(added)
    }

    fn walk(
        &mut self,
        dir: &Path,
        skip: &dyn Fn(&Path) -> bool,
        added: &mut Vec<PathBuf>,
    ) -> Result<(), InitramfsError> {
        let entries = std::fs::read_dir(dir).map_err(io_err(cannot_add(dir)))?;
        for entry in entries {
            let path = entry.map_err(io_err(cannot_add(dir)))?.path();
            if skip(&path) {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).map_err(io_err(cannot_add(&path)))?;
            if meta.is_dir() {
                self.walk(&path, skip, added)?;
            } else if meta.is_file() {
                self.nodes
                    .insert(path.clone(), Node::File(meta.permissions().mode() & 0o7777));
                added.push(path);
            } else if meta.is_symlink() {
                if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                    added.push(self.file(&path)?);
                } else {
                    // A link to a directory or to nothing: the link alone.
                    let target = std::fs::read_link(&path).map_err(io_err(cannot_add(&path)))?;
                    self.nodes.insert(path, Node::Link(target));
                }
            }
        }
        Ok(())
    }

    /// The real path of `path`, each link on the way added.
    fn real(&mut self, path: &Path) -> Result<PathBuf, InitramfsError> {
        let mut path = path.to_path_buf();
        for _ in 0..MAX_LINKS {
            match self.follow(&path)? {
                Some(next) => path = next,
                None => return Ok(lexical(&path)),
            }
        }
        Err(io_err(cannot_add(&path))(io::Error::from_raw_os_error(libc::ELOOP)))
    }

    /// Walks `path` up to its first link: adds it, and returns the path
    /// through its target; None when there is no link on the way.
    fn follow(&mut self, path: &Path) -> Result<Option<PathBuf>, InitramfsError> {
        let mut real = PathBuf::from("/");
        let mut components = path.components();
        while let Some(c) = components.next() {
            match c {
                Component::Normal(name) => {
                    let next = real.join(name);
                    let meta = std::fs::symlink_metadata(&next).map_err(io_err(cannot_add(path)))?;
                    if meta.is_symlink() {
                        let target = std::fs::read_link(&next).map_err(io_err(cannot_add(&next)))?;
                        let mut through = real.join(&target);
                        through.extend(components);
                        self.nodes.insert(next, Node::Link(target));
                        return Ok(Some(through));
                    }
                    real = next;
                }
                Component::ParentDir => {
                    real.pop();
                }
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        Ok(None)
    }

    /// Writes the nodes, parents first.
    fn write<W: Write>(&self, cpio: &mut Cpio<W>) -> Result<(), InitramfsError> {
        for (path, node) in &self.nodes {
            match node {
                Node::File(mode) => add_file(cpio, path, path, *mode)?,
                Node::Link(target) => cpio.symlink(path, target).map_err(io_err(cannot_add(path)))?,
                Node::Dir => cpio.dir(path).map_err(io_err(cannot_add(path)))?,
            }
        }
        Ok(())
    }
}

/// `path` without `.` and with `..` taken off what precedes it (its links already followed).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

fn cannot_add(path: &Path) -> String {
    format!("cannot add {} to the initramfs", path.display())
}

/// Copies the host file `from` (symlinks followed) to `to` in the archive.
fn add_file<W: Write>(cpio: &mut Cpio<W>, from: &Path, to: &Path, mode: u32) -> Result<(), InitramfsError> {
    let what = || format!("cannot add {} to the initramfs", from.display());
    let mut file = File::open(from).map_err(io_err(what()))?;
    let size = file.metadata().map_err(io_err(what()))?.len();
    cpio.file(to, mode, size, &mut file).map_err(io_err(what()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ld_so_list_output_gives_the_paths() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd5a1f2000)\n\
                    \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f1)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f3)\n";
        assert_eq!(
            parse_list(text).unwrap(),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
    }

    #[test]
    fn a_missing_library_is_an_error() {
        let err = parse_list("\tlibfoo.so.1 => not found\n").unwrap_err();
        assert_eq!(err, "libfoo.so.1 not found");
    }

    #[test]
    fn this_test_binary_has_its_interpreter_among_its_libraries() {
        let exe = std::env::current_exe().unwrap();
        let libs = libraries(&exe).unwrap();
        assert!(
            libs.iter().any(|l| l.to_string_lossy().contains("ld-linux")),
            "{libs:?}"
        );
    }

    #[test]
    fn a_host_path_keeps_the_links_on_its_way() {
        let root = std::env::temp_dir().join(format!("tcpconform-tree-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::write(root.join("usr/bin/python3.11"), b"python").unwrap();
        std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
        std::os::unix::fs::symlink("python3.11", root.join("usr/bin/python3")).unwrap();
        let mut tree = HostTree::default();
        let real = tree.file(&root.join("bin/./python3")).unwrap();
        let err = tree.file(&root.join("bin/missing")).unwrap_err();
        let mut cpio = Cpio::new(Vec::new());
        tree.write(&mut cpio).unwrap();
        let archive = cpio.finish().unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(real, root.join("usr/bin/python3.11"));
        assert!(err.to_string().contains("bin/missing"), "{err}");
        let links: Vec<(&PathBuf, &PathBuf)> = tree
            .nodes
            .iter()
            .filter_map(|(p, n)| match n {
                Node::Link(t) => Some((p, t)),
                _ => None,
            })
            .collect();
        assert_eq!(
            links,
            [
                (&root.join("bin"), &PathBuf::from("usr/bin")),
                (&root.join("usr/bin/python3"), &PathBuf::from("python3.11")),
            ]
        );
        let name = root.join("usr/bin/python3.11");
        let name = name.to_str().unwrap().trim_start_matches('/');
        assert!(archive.windows(name.len()).any(|w| w == name.as_bytes()));
    }
}
