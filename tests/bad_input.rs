//! Bad input never panics or hangs: `tcpconform check` answers every
//! malformed case file with `file:line:col: message` lines on stderr and
//! exit code 2.
//!
//! Each `tests/bad_input/<name>.yaml` is checked by the real binary (run in
//! that directory, so messages name `<name>.yaml`) and its stderr must be
//! exactly `<name>.expected`. Inputs too large to keep in the repository
//! (a file over the size limit, YAML bombs, deep nesting, thousands of
//! errors) are generated under cargo's temporary directory for tests.
//!
//! `BLESS=1 cargo test --test bad_input` rewrites the `.expected` files from
//! what the binary says now (never for a run that panicked, hung or exited
//! otherwise than with 2); review the diff before committing it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};

/// Longer than any input takes in a debug build on a loaded machine; a hang exceeds it.
const TIMEOUT: Duration = Duration::from_secs(20);

/// What `tcpconform check <file>` did.
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn check(dir: &Path, file: &str) -> Result<Outcome, Failed> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .args(["check", file])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start tcpconform: {e}"))?;
    // Read both pipes on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().ok_or("no stdout")?;
    let mut err = child.stderr.take().ok_or("no stderr")?;
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).map(|_| s)
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).map(|_| s)
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("`tcpconform check {file}` still runs after {TIMEOUT:?}: it hangs").into());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let join = |h: std::thread::JoinHandle<std::io::Result<String>>| -> Result<String, Failed> {
        h.join()
            .map_err(|_| Failed::from("reader thread panicked"))?
            .map_err(|e| Failed::from(format!("output is not UTF-8: {e}")))
    };
    Ok(Outcome {
        code: status.code(),
        stdout: join(stdout)?,
        stderr: join(stderr)?,
    })
}

/// A bad input is refused with exit code 2, nothing on stdout, and diagnostics on stderr.
fn refused(file: &str, outcome: &Outcome) -> Result<(), Failed> {
    if outcome.code != Some(2) {
        return Err(format!(
            "{file}: exit code {:?}, expected 2\nstderr:\n{}",
            outcome.code, outcome.stderr
        )
        .into());
    }
    if !outcome.stdout.is_empty() {
        return Err(format!("{file}: unexpected stdout: {}", outcome.stdout).into());
    }
    for line in outcome.stderr.lines() {
        let located = line
            .strip_prefix(file)
            .and_then(|rest| rest.strip_prefix(':'))
            .and_then(|rest| rest.split_once(':'))
            .and_then(|(l, rest)| Some((l.parse::<u32>().ok()?, rest.split_once(':')?)))
            .and_then(|(l, (c, msg))| Some((l, c.parse::<u32>().ok()?, msg)));
        match located {
            Some((l, c, msg)) if l >= 1 && c >= 1 && msg.starts_with(' ') && msg.len() > 1 => {}
            _ => return Err(format!("{file}: not a `file:line:col: message` line: {line:?}").into()),
        }
    }
    Ok(())
}

fn corpus_trial(dir: PathBuf, name: String) -> Trial {
    Trial::test(name.clone(), move || {
        let file = format!("{name}.yaml");
        let outcome = check(&dir, &file)?;
        refused(&file, &outcome)?;
        let expected_path = dir.join(format!("{name}.expected"));
        if std::env::var_os("BLESS").is_some() {
            std::fs::write(&expected_path, &outcome.stderr).map_err(|e| e.to_string())?;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .map_err(|e| format!("{}: {e} (BLESS=1 writes it)", expected_path.display()))?;
        if outcome.stderr != expected {
            return Err(format!(
                "{file}: stderr differs\nexpected:\n{expected}actual:\n{}",
                outcome.stderr
            )
            .into());
        }
        Ok(())
    })
}

/// An input generated at test time, with the exact stderr expected (`{}` stands for the file name).
struct Generated {
    name: &'static str,
    text: fn() -> String,
    expected: &'static str,
}

const GENERATED: [Generated; 5] = [
    Generated {
        name: "file_too_large",
        text: || format!("title: x\nsteps: []\n{}", "#".repeat(1 << 20)),
        expected: "{}:1:1: the file is larger than 1048576 bytes, the limit for a case file\n",
    },
    Generated {
        name: "deep_nesting_100k",
        text: || format!("title: x\nsteps: {}{}\n", "[".repeat(100_000), "]".repeat(100_000)),
        expected: "{}:2:263: the document nests too deeply here\n",
    },
    Generated {
        name: "alias_text_bomb",
        text: || {
            format!(
                "title: x\nrfc: [&a \"{}\"{}]\nsteps: []\n",
                "x".repeat(100_000),
                ", *a".repeat(100)
            )
        },
        expected: "{}:2:100090: the file's text, with its aliases (`*name`) expanded, exceeds 2097152 bytes (the value of this alias, anchored at line 2, column 10)\n",
    },
    Generated {
        name: "alias_count",
        text: || format!("title: x\nsteps:\n  - &w {{ wait: 1ms }}\n{}", "  - *w\n".repeat(2000)),
        expected: "{}:1004:5: the file uses more than 1000 aliases (`*name`); write the values out\n",
    },
    Generated {
        name: "twenty_thousand_problems",
        text: || format!("title: x\nsteps:\n{}", "  - wait: 5\n".repeat(20_000)),
        expected: "",
    },
];

fn generated_trial(dir: PathBuf, g: &'static Generated) -> Trial {
    Trial::test(format!("generated::{}", g.name), move || {
        let file = format!("{}.yaml", g.name);
        std::fs::write(dir.join(&file), (g.text)()).map_err(|e| e.to_string())?;
        let outcome = check(&dir, &file);
        std::fs::remove_file(dir.join(&file)).map_err(|e| e.to_string())?;
        let outcome = outcome?;
        refused(&file, &outcome)?;
        if g.expected.is_empty() {
            // Every problem is reported, each at its own line.
            let lines: Vec<&str> = outcome.stderr.lines().collect();
            if lines.len() != 20_000
                || !lines
                    .iter()
                    .enumerate()
                    .all(|(i, l)| l.starts_with(&format!("{file}:{}:11: wait: `5` needs a unit", i + 3)))
            {
                return Err(format!("{file}: {} lines, first {:?}", lines.len(), lines.first()).into());
            }
            return Ok(());
        }
        let expected = g.expected.replace("{}", &file);
        if outcome.stderr != expected {
            return Err(format!(
                "{file}: stderr differs\nexpected:\n{expected}actual:\n{}",
                outcome.stderr
            )
            .into());
        }
        Ok(())
    })
}

/// Paths that are not case files: the exit code, stdout and stderr expected of `check <path>`, run in `dir`.
fn path_trial(
    dir: PathBuf,
    name: &'static str,
    path: &'static str,
    expected: (i32, &'static str, &'static str),
) -> Trial {
    Trial::test(format!("paths::{name}"), move || {
        let outcome = check(&dir, path)?;
        let actual = (outcome.code, outcome.stdout.as_str(), outcome.stderr.as_str());
        if actual != (Some(expected.0), expected.1, expected.2) {
            return Err(format!("check {path}: expected {expected:?}, got {actual:?}").into());
        }
        Ok(())
    })
}

/// Builds the paths of [`path_trial`]s in `dir`: a FIFO, an empty directory,
/// a directory with a link loop, two files of one case ID.
fn make_paths(dir: &Path) -> std::io::Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("empty"))?;
    std::fs::create_dir_all(dir.join("loop"))?;
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("cases/opening/closed_port.yaml"),
        dir.join("loop/closed_port.yaml"),
    )?;
    std::os::unix::fs::symlink(".", dir.join("loop/again"))?;
    std::fs::create_dir_all(dir.join("dup"))?;
    std::fs::copy(dir.join("loop/closed_port.yaml"), dir.join("dup/x.yaml"))?;
    std::fs::copy(dir.join("loop/closed_port.yaml"), dir.join("dup/x.yml"))?;
    let fifo = std::ffi::CString::new(dir.join("fifo.yaml").into_os_string().into_encoded_bytes())?;
    // SAFETY: mkfifo(3) with a live NUL-terminated path.
    if unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_input");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/bad_input is readable")
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".yaml").map(str::to_string)
        })
        .collect();
    names.sort();
    let mut trials: Vec<Trial> = names.into_iter().map(|n| corpus_trial(dir.clone(), n)).collect();
    // Every expectation has its input.
    let orphans: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/bad_input is readable")
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".expected")?;
            (!dir.join(format!("{stem}.yaml")).exists()).then(|| name.clone())
        })
        .collect();
    trials.push(Trial::test("every_expectation_has_an_input", move || {
        if orphans.is_empty() {
            Ok(())
        } else {
            Err(format!("expectations without an input: {orphans:?}").into())
        }
    }));
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bad_input");
    std::fs::create_dir_all(&tmp).expect("cargo's test tmpdir is writable");
    trials.extend(GENERATED.iter().map(|g| generated_trial(tmp.clone(), g)));
    let paths = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bad_paths");
    make_paths(&paths).expect("the paths of the path tests can be made");
    for (name, path, expected) in [
        (
            "fifo",
            "fifo.yaml",
            (
                2,
                "",
                "fifo.yaml:1:1: cannot read: this is a FIFO, not a regular file\n",
            ),
        ),
        (
            "device",
            "/dev/zero",
            (
                2,
                "",
                "/dev/zero:1:1: cannot read: this is a character device, not a regular file\n",
            ),
        ),
        (
            "missing",
            "missing.yaml",
            (2, "", "missing.yaml: No such file or directory (os error 2)\n"),
        ),
        (
            "no_cases",
            "empty",
            (2, "", "no case files (*.yaml, *.pkt) under empty\n"),
        ),
        ("link_loop", "loop", (0, "1 case(s) are valid\n", "")),
        (
            "duplicate_id",
            "dup",
            (2, "", "dup/x.yml:1:1: case id `x` is already used by dup/x.yaml\n"),
        ),
    ] {
        trials.push(path_trial(paths.clone(), name, path, expected));
    }
    libtest_mimic::run(&args, trials).exit();
}
