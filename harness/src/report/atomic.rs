//! Report files appear whole or not at all, even if the process is killed
//! while writing them.
//!
//! A file is written into an unnamed inode (`O_TMPFILE`) in its target
//! directory, so a kill during the write, the long part, leaves nothing
//! behind: the kernel frees a nameless file when its last descriptor
//! closes. Once complete, the inode gets a temporary name (`linkat` through
//! `/proc/self/fd`) and is renamed over the target, which replaces any
//! older version atomically. `linkat` cannot replace an existing name,
//! hence the two steps; the temporary name lives for two system calls and
//! carries the writer's PID (`.report.json.4242.tmp`), so the next write
//! into the directory removes those left by a process that no longer runs.
//! On a file system without `O_TMPFILE` the file is written under its
//! temporary name directly, with the same clean-up.
//!
//! Files are not fsynced: the guarantee is against a killed process, not a
//! power cut, and a run writes hundreds of small files.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// A report file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}")]
pub struct WriteError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: io::Error,
}

/// The temporary name of `path` while this process publishes it.
fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// The PID in a temporary name made by [`temp_name`], if `name` is one.
fn temp_owner(name: &str) -> Option<i32> {
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (_, pid) = rest.rsplit_once('.')?;
    pid.parse().ok()
}

/// Whether a process with this PID exists.
fn alive(pid: i32) -> bool {
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(e) => e != nix::errno::Errno::ESRCH,
    }
}

/// Removes temporary files in `dir` left by writers that no longer run.
pub fn sweep(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if let Some(pid) = temp_owner(&name.to_string_lossy())
            && !alive(pid)
        {
            match fs::remove_file(entry.path()) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Opens an unnamed file in `dir`, or `None` when the file system cannot.
fn open_unnamed(dir: &Path) -> io::Result<Option<File>> {
    let opened = OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o644)
        .custom_flags(libc::O_TMPFILE)
        .open(dir);
    match opened {
        Ok(f) => Ok(Some(f)),
        // EOPNOTSUPP: the file system has no O_TMPFILE; EISDIR: the kernel predates it.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Gives the unnamed `file` the name `to`.
fn link(file: &File, to: &Path) -> io::Result<()> {
    let from = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).map_err(io::Error::other)?;
    let to = CString::new(to.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: both paths are NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn publish(path: &Path, fill: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let temp = temp_name(path);
    let result = (|| {
        let file = match open_unnamed(dir)? {
            Some(file) => {
                let mut out = BufWriter::new(file);
                fill(&mut out)?;
                let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
                link(&file, &temp)?;
                file
            }
            None => {
                let file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o644)
                    .open(&temp)?;
                let mut out = BufWriter::new(file);
                fill(&mut out)?;
                out.into_inner().map_err(io::IntoInnerError::into_error)?
            }
        };
        drop(file);
        fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Writes `path` through `fill`, so that it appears complete or not at all.
pub fn write(path: &Path, fill: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<(), WriteError> {
    publish(path, fill).map_err(|source| WriteError {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tcpconform-atomic-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("readable")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_written_file_replaces_the_old_one_and_leaves_no_temporary() {
        let dir = scratch("replace");
        let path = dir.join("report.json");
        fs::write(&path, "old").expect("seed");
        write(&path, |w| w.write_all(b"new")).expect("written");
        assert_eq!(fs::read_to_string(&path).expect("read"), "new");
        assert_eq!(names(&dir), ["report.json"]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn nothing_is_named_in_the_directory_while_the_file_is_written() {
        let dir = scratch("unnamed");
        let path = dir.join("report.json");
        write(&path, |w| {
            w.write_all(b"{}")?;
            // Were the process killed now, this is what would be left.
            assert_eq!(names(&dir), Vec::<String>::new());
            Ok(())
        })
        .expect("written");
        assert_eq!(names(&dir), ["report.json"]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_leaves_no_temporary() {
        let dir = scratch("fail");
        let path = dir.join("index.html");
        fs::write(&path, "old").expect("seed");
        let err = write(&path, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("renderer broke"))
        })
        .expect_err("the fill failed");
        assert_eq!(err.path, path);
        assert_eq!(err.source.to_string(), "renderer broke");
        assert_eq!(fs::read_to_string(&path).expect("read"), "old");
        assert_eq!(names(&dir), ["index.html"]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn sweep_removes_temporaries_of_dead_writers_only() {
        let dir = scratch("sweep");
        // PIDs above pid_max (at most 2^22) cannot belong to a live process.
        let dead = dir.join(".report.json.99999999.tmp");
        let ours = temp_name(&dir.join("junit.xml"));
        for p in [&dead, &ours] {
            fs::write(p, "x").expect("seed");
        }
        fs::write(dir.join("keep.tmp"), "x").expect("seed");
        sweep(&dir).expect("swept");
        assert_eq!(
            names(&dir),
            [
                ".junit.xml.".to_string() + &std::process::id().to_string() + ".tmp",
                "keep.tmp".into()
            ]
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn temporary_names_carry_the_writer_pid() {
        assert_eq!(temp_owner(".a.b.pcapng.123.tmp"), Some(123));
        assert_eq!(temp_owner("a.123.tmp"), None);
        assert_eq!(temp_owner(".report.json"), None);
    }
}
