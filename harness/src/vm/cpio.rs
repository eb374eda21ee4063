//! A writer of cpio archives in the `newc` format, the format the kernel
//! unpacks an initramfs from (`Documentation/driver-api/early-userspace/buffer-format.rst`).
//!
//! The kernel's unpacker does not create missing parent directories, so the
//! writer emits every parent of a path before the path itself, once.

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFLNK: u32 = 0o120_000;

/// A `newc` archive being written to `W`.
pub struct Cpio<W: Write> {
    out: W,
    /// Bytes written so far, for the 4-byte alignment of names and data.
    written: u64,
    next_ino: u32,
    dirs: BTreeSet<PathBuf>,
}

/// The archive path of `path`: relative to the root, without `.` or `..`.
///
/// Panics if `path` has a `..` component (archive paths are built by the
/// caller from absolute, normalised paths).
fn archive_path(path: &Path) -> PathBuf {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
            Component::ParentDir => panic!("archive paths have no `..`: {}", path.display()),
        })
        .collect()
}

impl<W: Write> Cpio<W> {
    /// An empty archive writing to `out`.
    pub fn new(out: W) -> Cpio<W> {
        Cpio {
            out,
            written: 0,
            next_ino: 1,
            dirs: BTreeSet::new(),
        }
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let rem = (4 - self.written % 4) % 4;
        self.put(&[0; 3][..rem as usize])
    }

    /// Writes one header and name, padded; the caller writes `size` bytes of data next.
    fn header(&mut self, path: &Path, mode: u32, size: u64, rdev: (u32, u32)) -> io::Result<()> {
        let size = u32::try_from(size)
            .map_err(|_| io::Error::other(format!("{}: larger than a cpio entry can hold", path.display())))?;
        let name = path.as_os_str().as_encoded_bytes();
        let ino = self.next_ino;
        self.next_ino += 1;
        let fields = [
            ino,
            mode,
            0, // uid
            0, // gid
            if mode & S_IFDIR != 0 { 2 } else { 1 },
            0, // mtime
            size,
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0, // check
        ];
        let mut header = String::from("070701");
        for f in fields {
            header.push_str(&format!("{f:08x}"));
        }
        self.put(header.as_bytes())?;
        self.put(name)?;
        self.put(&[0])?;
        self.pad()
    }

    /// Adds the parents of `path` that are not in the archive yet.
    fn parents(&mut self, path: &Path) -> io::Result<()> {
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            self.dir(parent)?;
        }
        Ok(())
    }

    /// Adds a directory (mode 0755) and its parents.
    pub fn dir(&mut self, path: &Path) -> io::Result<()> {
        let path = archive_path(path);
        if self.dirs.contains(&path) {
            return Ok(());
        }
        self.parents(&path)?;
        self.header(&path, S_IFDIR | 0o755, 0, (0, 0))?;
        self.dirs.insert(path);
        Ok(())
    }

    /// Adds a regular file with `mode` (permission bits) holding `size` bytes read from `data`.
    pub fn file(&mut self, path: &Path, mode: u32, size: u64, data: &mut dyn Read) -> io::Result<()> {
        let path = archive_path(path);
        self.parents(&path)?;
        self.header(&path, S_IFREG | mode, size, (0, 0))?;
        let copied = io::copy(&mut data.take(size), &mut self.out)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{}: {copied} bytes read of {size}", path.display()),
            ));
        }
        self.written += size;
        self.pad()
    }

    /// Adds a regular file holding `data`.
    pub fn bytes(&mut self, path: &Path, mode: u32, data: &[u8]) -> io::Result<()> {
        self.file(path, mode, data.len() as u64, &mut &data[..])
    }

    /// Adds a symbolic link to `target` (the link's data, as readlink(2) returns it).
    pub fn symlink(&mut self, path: &Path, target: &Path) -> io::Result<()> {
        let path = archive_path(path);
        self.parents(&path)?;
        let target = target.as_os_str().as_encoded_bytes();
        self.header(&path, S_IFLNK | 0o777, target.len() as u64, (0, 0))?;
        self.put(target)?;
        self.pad()
    }

    /// Adds a character device node (mode 0600).
    pub fn char_device(&mut self, path: &Path, major: u32, minor: u32) -> io::Result<()> {
        let path = archive_path(path);
        self.parents(&path)?;
        self.header(&path, S_IFCHR | 0o600, 0, (major, minor))
    }

    /// Writes the trailer and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.header(Path::new("TRAILER!!!"), 0, 0, (0, 0))?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entries of a newc archive: (name, mode, rdev major, data).
    fn entries(mut bytes: &[u8]) -> Vec<(String, u32, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut offset = 0usize;
        loop {
            assert_eq!(&bytes[..6], b"070701", "magic at offset {offset}");
            let field = |i: usize| {
                u32::from_str_radix(std::str::from_utf8(&bytes[6 + 8 * i..14 + 8 * i]).unwrap(), 16).unwrap()
            };
            let (mode, size, rmajor, namesize) = (field(1), field(6) as usize, field(9), field(11) as usize);
            let name = String::from_utf8(bytes[110..110 + namesize - 1].to_vec()).unwrap();
            assert_eq!(bytes[110 + namesize - 1], 0, "names end with NUL");
            let data_at = (110 + namesize).next_multiple_of(4);
            if name == "TRAILER!!!" {
                return out;
            }
            out.push((name, mode, rmajor, bytes[data_at..data_at + size].to_vec()));
            let next = (data_at + size).next_multiple_of(4);
            offset += next;
            bytes = &bytes[next..];
        }
    }

    #[test]
    fn parents_come_first_and_once() {
        let mut cpio = Cpio::new(Vec::new());
        cpio.bytes(Path::new("/a/b/c.txt"), 0o644, b"hello").unwrap();
        cpio.bytes(Path::new("a/b/d"), 0o755, b"").unwrap();
        cpio.char_device(Path::new("/dev/console"), 5, 1).unwrap();
        let bytes = cpio.finish().unwrap();
        assert_eq!(bytes.len() % 4, 0);
        let names: Vec<(String, u32)> = entries(&bytes).into_iter().map(|(n, m, _, _)| (n, m)).collect();
        assert_eq!(
            names,
            [
                ("a".into(), 0o040_755),
                ("a/b".into(), 0o040_755),
                ("a/b/c.txt".into(), 0o100_644),
                ("a/b/d".into(), 0o100_755),
                ("dev".into(), 0o040_755),
                ("dev/console".into(), 0o020_600),
            ]
        );
    }

    #[test]
    fn data_and_device_numbers_survive() {
        let mut cpio = Cpio::new(Vec::new());
        cpio.bytes(Path::new("x"), 0o644, b"12345").unwrap();
        cpio.char_device(Path::new("c"), 5, 1).unwrap();
        cpio.symlink(Path::new("/lib"), Path::new("usr/lib")).unwrap();
        let e = entries(&cpio.finish().unwrap());
        assert_eq!(e[0].3, b"12345");
        assert_eq!(e[1].2, 5);
        assert_eq!(
            (e[2].0.as_str(), e[2].1, &e[2].3[..]),
            ("lib", 0o120_777, &b"usr/lib"[..])
        );
    }

    #[test]
    fn a_short_reader_is_an_error() {
        let mut cpio = Cpio::new(Vec::new());
        let err = cpio.file(Path::new("x"), 0o644, 10, &mut &b"abc"[..]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
