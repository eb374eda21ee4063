//! What the guest's commands run: the host programs and files that the
//! cases' shell commands name (a packetdrill script's backticks, its init
//! and cleanup commands), found as the commands find them on the host
//! ([`crate::command::PATH`], or a path from the case's directory), with
//! what each needs to run: the shared libraries it loads, the interpreter
//! on a script's `#!` line (and, for a shell script, what its own text
//! names), and, for Python (the code blocks' `python3`), its standard
//! library. They go into the initramfs at their host paths, so the
//! commands run as written, on the host's own binaries.
//!
//! Why copies rather than the host's tree shared into the guest: Debian's
//! cloud kernels have no 9p (`CONFIG_NET_9P` is not set in 6.1 nor 6.12),
//! and virtiofs needs a daemon this machine does not have. Files in the
//! guest's memory also keep the virtual clock to itself: with
//! `-icount sleep=off`, the guest waiting on a host device jumps its clock
//! to its next timer, so every read from the host would cost the script an
//! amount of virtual time that depends on the host.

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::initramfs::{self, HostTree, InitramfsError};
use crate::case::{Action, Case};
use crate::command::PATH;

/// The shell the harness runs every command with (`sh -c`).
const SHELL: &str = "/bin/sh";
/// The interpreter of code blocks, looked up on [`PATH`].
const PYTHON: &str = "python3";
/// Trees of the guest's own, which a command's text may name but which are not the host's to copy.
const GUEST_TREES: [&str; 5] = ["/proc", "/sys", "/dev", "/tmp", "/run"];
/// The dynamic linker's cache: the programs find their libraries as on the host.
const LD_SO_CACHE: &str = "/etc/ld.so.cache";
/// Shells whose scripts are read for the programs they name.
const SHELLS: [&str; 3] = ["sh", "bash", "dash"];

/// Why the commands' programs could not be put into the guest.
#[derive(Debug, thiserror::Error)]
pub enum UserlandError {
    /// A file could not be read or added.
    #[error(transparent)]
    Initramfs(#[from] InitramfsError),
    /// Python could not say where its standard library is.
    #[error("cannot find the standard library of {python}: {message}")]
    Python {
        /// The interpreter.
        python: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// The host files the cases' commands name, as absolute host paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Userland {
    /// Programs, scripts and files, in no particular order.
    pub named: BTreeSet<PathBuf>,
}

impl Userland {
    /// What `cases` run: nothing for cases without commands or code blocks;
    /// else the shell, and python3 for code blocks, and what the commands name.
    pub fn of(cases: &[Case]) -> Userland {
        let mut named = BTreeSet::new();
        for case in cases {
            let dir = case
                .path
                .parent()
                .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.to_path_buf()))
                .unwrap_or_else(|| PathBuf::from("/"));
            let mut texts: Vec<&str> = [&case.setup, &case.cleanup]
                .into_iter()
                .flatten()
                .map(|s| s.text.as_str())
                .collect();
            let mut code = false;
            for step in &case.steps {
                match &step.action {
                    Action::Shell(text) => texts.push(text),
                    Action::Code { .. } => code = true,
                    _ => {}
                }
            }
            if !texts.is_empty() || code {
                named.insert(PathBuf::from(SHELL));
            }
            if code && let Some(python) = on_path(PYTHON) {
                named.insert(python);
            }
            for text in texts {
                named.extend(mentions(text, &dir));
            }
        }
        Userland { named }
    }

    /// Adds the named files to `tree` with what they need to run (see the module's documentation).
    pub fn add_to(&self, tree: &mut HostTree) -> Result<(), UserlandError> {
        if self.named.is_empty() {
            return Ok(());
        }
        if Path::new(LD_SO_CACHE).is_file() {
            tree.file(Path::new(LD_SO_CACHE))?;
        }
        let mut pending: Vec<PathBuf> = self.named.iter().cloned().collect();
        let mut done = BTreeSet::new();
        while let Some(path) = pending.pop() {
            let real = tree.file(&path)?;
            if !done.insert(real.clone()) {
                continue;
            }
            match kind(&real)? {
                Kind::Elf => {
                    for lib in initramfs::libraries(&real)? {
                        tree.file(&lib)?;
                    }
                    if is_python(&real) {
                        add_python_library(&real, tree)?;
                    }
                }
                Kind::Script(line) => pending.extend(interpreters(&line, &real)?),
                Kind::Data => {}
            }
        }
        Ok(())
    }
}

/// What a file is, by its first bytes.
enum Kind {
    /// An ELF object.
    Elf,
    /// A script, with its `#!` line (without `#!`).
    Script(String),
    /// Anything else.
    Data,
}

fn kind(path: &Path) -> Result<Kind, InitramfsError> {
    let read_err = |source| InitramfsError::Io {
        what: format!("cannot read {}", path.display()),
        source,
    };
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(256).read_to_end(&mut head))
        .map_err(read_err)?;
    Ok(if head.starts_with(b"\x7fELF") {
        Kind::Elf
    } else if let Some(rest) = head.strip_prefix(b"#!") {
        let line = rest.split(|b| *b == b'\n').next().unwrap_or_default();
        Kind::Script(String::from_utf8_lossy(line).trim().to_string())
    } else {
        Kind::Data
    })
}

/// What the script at `script` with `#!` line `line` runs with: its
/// interpreter, the program `env` is given, and, for a shell, what the
/// script's text names.
fn interpreters(line: &str, script: &Path) -> Result<Vec<PathBuf>, InitramfsError> {
    let mut words = line.split_whitespace();
    let Some(interpreter) = words.next().map(PathBuf::from) else {
        return Ok(Vec::new());
    };
    let mut out = vec![interpreter.clone()];
    let mut runs = interpreter.clone();
    if interpreter.file_name().is_some_and(|n| n == "env")
        && let Some(program) = words.find(|w| !w.starts_with('-')).and_then(on_path)
    {
        runs = program.clone();
        out.push(program);
    }
    if runs
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| SHELLS.contains(&n))
    {
        let text = std::fs::read_to_string(script).map_err(|source| InitramfsError::Io {
            what: format!("cannot read {}", script.display()),
            source,
        })?;
        out.extend(mentions(&text, script.parent().unwrap_or(Path::new("/"))));
    }
    Ok(out)
}

fn is_python(real: &Path) -> bool {
    real.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("python"))
}

/// Adds the standard library of the interpreter `python` (but its tests
/// and the `config-*` directory of files for building against it), and
/// the shared libraries its extension modules load.
fn add_python_library(python: &Path, tree: &mut HostTree) -> Result<(), UserlandError> {
    let failed = |message: String| UserlandError::Python {
        python: python.to_path_buf(),
        message,
    };
    let out = Command::new(python)
        .args(["-S", "-c", "import os; print(os.path.dirname(os.__file__))"])
        .env_clear()
        .env("PATH", PATH)
        .output()
        .map_err(|e| failed(e.to_string()))?;
    if !out.status.success() {
        return Err(failed(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    let stdlib = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let skip = |p: &Path| {
        p.parent() == Some(stdlib.as_path())
            && p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n == "test" || n.starts_with("config-"))
    };
    let files = tree.tree(&stdlib, &skip)?;
    let Some(loader) = initramfs::interpreter(python)? else {
        return Ok(());
    };
    for module in files.iter().filter(|f| f.extension().is_some_and(|e| e == "so")) {
        for lib in initramfs::loaded_by(&loader, module)? {
            tree.file(&lib)?;
        }
    }
    Ok(())
}

/// The host files a shell text names: its words that are programs on
/// [`PATH`], and those that are paths (relative ones from `dir`) of
/// regular files outside [`GUEST_TREES`]. Comments are left out; a word
/// that names nothing is no error (it may be an argument, or a file the
/// command makes).
fn mentions(text: &str, dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = match line
            .char_indices()
            .find(|&(i, c)| c == '#' && (i == 0 || line[..i].ends_with(|p: char| p.is_whitespace() || p == ';')))
        {
            Some((i, _)) => &line[..i],
            None => line,
        };
        for word in code.split(|c: char| !(c.is_ascii_alphanumeric() || "_./+-".contains(c))) {
            if word.is_empty() || word.starts_with('-') {
                continue;
            }
            if word.contains('/') {
                let path = dir.join(word);
                if !GUEST_TREES.iter().any(|t| path.starts_with(t)) && path.is_file() {
                    out.push(path);
                }
            } else if let Some(program) = on_path(word) {
                out.push(program);
            }
        }
    }
    out
}

/// The executable `name` on [`PATH`], as a command would find it.
fn on_path(name: &str) -> Option<PathBuf> {
    PATH.split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_and_files_a_command_names_are_found_comments_and_guest_trees_are_not() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vm");
        let found = mentions(
            "./commands_setup.sh 2>/dev/null; sh -c 'exit 0' # grep is only in a comment\n\
             cat /tmp/x_${PPID}.sh /proc/sys/net/ipv4/tcp_sack",
            &dir,
        );
        assert_eq!(found[0], dir.join("./commands_setup.sh"));
        assert!(found.iter().any(|p| p.ends_with("sh")), "{found:?}");
        assert!(found.iter().any(|p| p.ends_with("cat")), "{found:?}");
        assert!(!found.iter().any(|p| p.ends_with("grep")), "{found:?}");
        assert!(
            !found.iter().any(|p| GUEST_TREES.iter().any(|t| p.starts_with(t))),
            "{found:?}"
        );
    }

    #[test]
    fn a_shell_script_brings_its_interpreter_and_the_programs_it_names() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vm/commands_setup.sh");
        let found = interpreters("/bin/bash", &script).unwrap();
        assert_eq!(found[0], Path::new("/bin/bash"));
        for program in ["sysctl", "tc"] {
            if on_path(program).is_some() {
                assert!(found.iter().any(|p| p.ends_with(program)), "{program}: {found:?}");
            }
        }
    }

    #[test]
    fn env_names_the_interpreter_it_runs() {
        let found = interpreters("/usr/bin/env -S python3", Path::new("/nonexistent")).unwrap();
        assert_eq!(found[0], Path::new("/usr/bin/env"));
        if let Some(python) = on_path("python3") {
            assert_eq!(found[1], python);
        }
    }
}
