//! The guest's initramfs, built on the fly: the running `tcpconform` binary
//! as `/init` with the shared libraries and ELF interpreter it was linked
//! against (found by asking that interpreter, as `ldd` does), the case files
//! at the paths they have on the host, the modules, the plan, and the
//! `/dev/console` node the kernel opens for init.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
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
    /// Case files, as absolute host paths (they keep them in the guest).
    pub files: &'a [PathBuf],
    /// Modules to load, in order.
    pub modules: &'a [Module],
    /// What the guest is to do.
    pub plan: &'a Plan,
}

/// The shared objects `binary` loads, interpreter included: empty for a static binary.
pub fn libraries(binary: &Path) -> Result<Vec<PathBuf>, InitramfsError> {
    let failed = |message: String| InitramfsError::Libraries {
        binary: binary.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(binary).map_err(io_err(format!("cannot read {}", binary.display())))?;
    let elf = ElfFile64::<object::Endianness>::parse(&bytes[..]).map_err(|e| failed(e.to_string()))?;
    let interpreter = elf
        .elf_program_headers()
        .iter()
        .find_map(|ph| ph.interpreter(elf.endian(), &bytes[..]).ok().flatten());
    let Some(interpreter) = interpreter else {
        return Ok(Vec::new());
    };
    let interpreter = PathBuf::from(String::from_utf8_lossy(interpreter).into_owned());
    let out = Command::new(&interpreter)
        .arg("--list")
        .arg(binary)
        .output()
        .map_err(|e| failed(format!("{}: {e}", interpreter.display())))?;
    if !out.status.success() {
        return Err(failed(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    let mut libs = parse_list(&String::from_utf8_lossy(&out.stdout)).map_err(failed)?;
    if !libs.contains(&interpreter) {
        libs.push(interpreter);
    }
    Ok(libs)
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
pub fn write(out: impl Write, contents: &Contents<'_>, libraries: &[PathBuf]) -> Result<(), InitramfsError> {
    let mut cpio = Cpio::new(out);
    let write_err = || io_err("cannot write the initramfs");
    for dir in ["/proc", "/sys", "/dev", "/tmp"] {
        cpio.dir(Path::new(dir)).map_err(write_err())?;
    }
    cpio.char_device(Path::new("/dev/console"), 5, 1).map_err(write_err())?;
    add_file(&mut cpio, contents.binary, Path::new("/init"), 0o755)?;
    for lib in libraries {
        add_file(&mut cpio, lib, lib, 0o755)?;
    }
    for file in contents.files {
        add_file(&mut cpio, file, file, 0o644)?;
    }
    for m in contents.modules {
        let path = Path::new(MODULE_DIR).join(format!("{}.ko", m.name));
        cpio.bytes(&path, 0o644, &m.image).map_err(write_err())?;
    }
    let plan = serde_json::to_vec_pretty(contents.plan).map_err(|e| write_err()(io::Error::other(e)))?;
    cpio.bytes(Path::new(PLAN_PATH), 0o644, &plan).map_err(write_err())?;
    cpio.dir(&contents.plan.cwd).map_err(write_err())?;
    cpio.finish().map_err(write_err())?;
    Ok(())
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
}
