//! Loading a case: YAML (serde-saphyr, which keeps line and column of every
//! value) into raw structs, then validation into the [`Case`] model. Every
//! problem becomes a [`Diagnostic`] at `file:line:col`, including those
//! inside segment and call notations, whose columns are mapped through the
//! YAML scalar they sit in. All problems of a file are reported at once.

use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::marker::PhantomData;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;

use super::call::{self, Func, parse_call, suggest};
use super::icmp;
use super::syntax::{self, Problem};
use super::{
    Action, Addresses, Base, Case, CaseError, DEFAULT_CALL_TIMEOUT, Diagnostic, Due, FlowSpec, LabSpec, Leftovers,
    Link, Location, Offloads, Rules, Shell, Step, Syntax, Target,
};
use crate::behaviors;
use crate::packet::Family;
use crate::packet::frame::Checksum;
use crate::packet::notation::{self, NotationError};
use crate::packet::pattern::SegmentPattern;
use crate::packet::tcp::Flags;
use crate::probe::TcpState;
use crate::requirements;

/// Case files larger than this are refused before parsing.
const MAX_FILE_BYTES: usize = 1 << 20;
/// Deepest YAML nesting accepted (a case needs about 4).
pub(super) const MAX_DEPTH: usize = 32;
/// Most aliases (`*name`) a case file may use.
pub(super) const MAX_ALIASES: usize = 1000;
/// Most text all scalars of a file may add up to, aliases expanded: a
/// file's own text fits twice, a YAML bomb does not.
pub(super) const MAX_SCALAR_BYTES: usize = 2 * MAX_FILE_BYTES;

/// A YAML scalar of any type, kept as its text (`60`, `1s`, `true`, `0x1f`).
/// A list or a mapping in its place is kept as what it is (`Err("a list")`),
/// for the validator to report at its place.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Scalar(Result<String, &'static str>);

impl Scalar {
    /// The text, or what stands in its place.
    fn text(&self) -> Result<&str, String> {
        self.0
            .as_deref()
            .map_err(|kind| format!("expected a number or a string, not {kind}"))
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar (a number or a string)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(Ok(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(Ok(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(Ok(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(Ok(v.to_string())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(Ok(if v { "1" } else { "0" }.to_string())))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Scalar(Err("a list")))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
                while map.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(Scalar(Err("a mapping")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A YAML mapping kept in file order, keys with their locations.
#[derive(Debug)]
struct Entries<K, V>(Vec<(K, V)>);

impl<K, V> Default for Entries<K, V> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for Entries<K, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<K, V>(PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for V2<K, V> {
            type Value = Entries<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(V2(PhantomData))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    #[serde(default, deserialize_with = "present")]
    id: Option<Spanned<String>>,
    title: Spanned<String>,
    #[serde(default, deserialize_with = "present")]
    description: Option<String>,
    #[serde(default)]
    covers: Vec<Spanned<String>>,
    #[serde(default)]
    rfc: Vec<String>,
    #[serde(default)]
    requirements: Vec<Spanned<String>>,
    #[serde(default)]
    deviates: Entries<Spanned<String>, Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    families: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default, deserialize_with = "present")]
    family_reason: Option<Spanned<String>>,
    #[serde(default)]
    sysctls: Entries<Spanned<String>, Spanned<Scalar>>,
    #[serde(default, deserialize_with = "present")]
    tolerance: Option<Spanned<Scalar>>,
    #[serde(default)]
    flows: Entries<Spanned<String>, Spanned<RawFlow>>,
    #[serde(default, deserialize_with = "present")]
    lab: Option<Spanned<RawLab>>,
    #[serde(default, deserialize_with = "present")]
    rules: Option<Spanned<RawRules>>,
    #[serde(default, deserialize_with = "present")]
    payloads: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    signal: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    setup: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    cleanup: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    congestion_control: Option<Spanned<String>>,
    steps: Vec<Spanned<RawStep>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLab {
    #[serde(default, deserialize_with = "present")]
    link: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    device: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    mtu: Option<Spanned<u32>>,
    #[serde(default, deserialize_with = "present")]
    offloads: Option<Spanned<String>>,
    #[serde(default)]
    addresses: Entries<Spanned<String>, Spanned<RawAddresses>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAddresses {
    target: Spanned<String>,
    peer: Spanned<String>,
    prefix_len: Spanned<u8>,
    #[serde(default, deserialize_with = "present")]
    gateway: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    #[serde(default, deserialize_with = "present")]
    leftovers: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    ts_tick: Option<Spanned<Scalar>>,
    #[serde(default, deserialize_with = "present")]
    tolerance_percent: Option<Spanned<Scalar>>,
    #[serde(default, deserialize_with = "present")]
    gso_size: Option<Spanned<u16>>,
    #[serde(default, deserialize_with = "present")]
    start_on_tick: Option<Spanned<bool>>,
    #[serde(default, deserialize_with = "present")]
    join_segments: Option<Spanned<bool>>,
    #[serde(default, deserialize_with = "present")]
    anchor_when_seen: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlow {
    peer_port: u16,
    #[serde(default, deserialize_with = "present")]
    kernel_port: Option<u16>,
    #[serde(default, deserialize_with = "present")]
    isn: Option<u32>,
    #[serde(default, deserialize_with = "present")]
    window: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    socket: Spanned<String>,
    len: u32,
    limit: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    #[serde(default, deserialize_with = "present")]
    name: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    call: Option<Spanned<String>>,
    #[serde(rename = "await")]
    #[serde(default, deserialize_with = "present")]
    await_: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    inject: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    expect: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    expect_nothing: Option<Spanned<Scalar>>,
    #[serde(default, deserialize_with = "present")]
    state: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    accept_queue: Option<Spanned<RawQueue>>,
    #[serde(default, deserialize_with = "present")]
    wait: Option<Spanned<Scalar>>,
    #[serde(default, deserialize_with = "present")]
    read_sysctl: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    shell: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    code: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    flow: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    after: Option<Spanned<Scalar>>,
    #[serde(default, deserialize_with = "present")]
    since: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    tolerance: Option<Spanned<Scalar>>,
    #[serde(default, deserialize_with = "present")]
    timeout: Option<Spanned<Scalar>>,
    #[serde(default, deserialize_with = "present")]
    background: Option<Spanned<bool>>,
    #[serde(default, deserialize_with = "present")]
    signal: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    rebinds: Option<Spanned<bool>>,
    #[serde(default, deserialize_with = "present")]
    payload: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    payload_hex: Option<Spanned<Scalar>>,
    #[serde(default, deserialize_with = "present")]
    checksum: Option<Spanned<Scalar>>,
    #[serde(default, deserialize_with = "present")]
    isn: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    ts_val: Option<Spanned<u32>>,
    #[serde(default, deserialize_with = "present")]
    ts_ecr: Option<Spanned<u32>>,
    #[serde(default, deserialize_with = "present")]
    socket: Option<Spanned<String>>,
}

/// Reads an optional key's value, refusing a key written without one
/// (`wait:`): left as null, it would read as if the key were absent.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The keys a step may have besides its action, per action.
const MODIFIERS: [(&str, &[&str]); 11] = [
    (
        "call",
        &[
            "name",
            "after",
            "since",
            "tolerance",
            "timeout",
            "background",
            "signal",
            "rebinds",
        ],
    ),
    ("await", &["name", "after", "since", "tolerance", "timeout"]),
    (
        "inject",
        &[
            "name",
            "after",
            "since",
            "tolerance",
            "flow",
            "payload",
            "payload_hex",
            "checksum",
            "ts_ecr",
        ],
    ),
    (
        "expect",
        &[
            "name",
            "after",
            "since",
            "tolerance",
            "flow",
            "payload",
            "payload_hex",
            "isn",
            "ts_val",
        ],
    ),
    ("expect_nothing", &["name", "after", "since", "tolerance", "flow"]),
    ("state", &["name", "after", "since", "tolerance"]),
    ("accept_queue", &["name", "after", "since", "tolerance"]),
    ("wait", &["name"]),
    ("read_sysctl", &["name", "after", "since", "tolerance"]),
    ("shell", &["name", "after", "since", "tolerance"]),
    ("code", &["name", "after", "since", "tolerance", "socket"]),
];

/// The modifiers an ICMP message takes (`inject: icmp ...`).
const ICMP_MODIFIERS: [&str; 5] = ["name", "after", "since", "tolerance", "flow"];

/// `since:` words that are not step names.
const SINCE_START: &str = "start";
const SINCE_PREVIOUS_DUE: &str = "previous_due";

/// Every case file under `paths` (files as given, directories searched for `*.yaml` and `*.pkt`), sorted.
///
/// A directory reached twice (through a symbolic link) is searched once, so
/// a link loop ends.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, std::io::Error> {
    let mut files = Vec::new();
    let mut searched = HashSet::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| in_path(path, e))?;
        if meta.is_dir() {
            walk(path, &mut files, &mut searched)?;
        } else {
            files.push(path.clone());
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn in_path(path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, searched: &mut HashSet<PathBuf>) -> Result<(), std::io::Error> {
    if !searched.insert(std::fs::canonicalize(dir).map_err(|e| in_path(dir, e))?) {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(|e| in_path(dir, e))? {
        let path = entry.map_err(|e| in_path(dir, e))?.path();
        if path.is_dir() {
            walk(&path, out, searched)?;
        } else if path
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "pkt")
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Loads and validates one case file.
///
/// Only a regular file is read, and no more of it than the size limit: a
/// FIFO or a device (`/dev/zero`) given as a case is refused, not waited on.
pub fn load(path: &Path) -> Result<Case, CaseError> {
    match read_limited(path) {
        Ok(bytes) => load_bytes(path, &bytes),
        Err(message) => Err(CaseError::of_file(Arc::new(path.to_path_buf()), message)),
    }
}

/// The bytes of a case file: a regular file, at most the size limit.
pub fn read_case_file(path: &Path) -> Result<Vec<u8>, CaseError> {
    read_limited(path)
        .and_then(|bytes| {
            if bytes.len() > MAX_FILE_BYTES {
                Err(format!("the file is larger than {} bytes", MAX_FILE_BYTES))
            } else {
                Ok(bytes)
            }
        })
        .map_err(|message| CaseError::of_file(Arc::new(path.to_path_buf()), message))
}

/// The bytes of a regular file, up to one past the size limit.
fn read_limited(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    // Non-blocking, so that opening a FIFO does not wait for a writer.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("cannot read: {e}"))?;
    let kind = file.metadata().map_err(|e| format!("cannot read: {e}"))?.file_type();
    let what = if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else {
        Some("a socket")
    };
    if let Some(what) = what {
        return Err(format!("cannot read: this is {what}, not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    Ok(bytes)
}

/// Validates a case from the bytes of its file: refuses files that are too
/// large or not UTF-8, then goes on as [`load_str`].
pub fn load_bytes(path: &Path, bytes: &[u8]) -> Result<Case, CaseError> {
    let file = Arc::new(path.to_path_buf());
    if bytes.len() > MAX_FILE_BYTES {
        return Err(CaseError {
            diagnostics: vec![Diagnostic {
                location: Location { file, line: 1, col: 1 },
                message: format!("the file is larger than {MAX_FILE_BYTES} bytes, the limit for a case file"),
            }],
        });
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = good.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
            let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            let col = String::from_utf8_lossy(&good[line_start..]).chars().count() as u32 + 1;
            return Err(CaseError {
                diagnostics: vec![Diagnostic {
                    location: Location { file, line, col },
                    message: format!("the file is not UTF-8 (byte 0x{:02x})", bytes[e.valid_up_to()]),
                }],
            });
        }
    };
    load_str(path, text)
}

/// Validates a case from its text; `path` names it in messages and gives its ID.
pub fn load_str(path: &Path, text: &str) -> Result<Case, CaseError> {
    let file = Arc::new(path.to_path_buf());
    let source = Source {
        file: file.clone(),
        text,
        scalars: OnceCell::new(),
    };
    if let Some(Problem { line, col, message }) = syntax::check_characters(text) {
        return Err(source.error_at(line, col, &message));
    }
    if syntax::is_blank(text) {
        return Err(source.error_at(1, 1, "the file is empty: a case needs at least `title` and `steps`"));
    }
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            max_aliases: MAX_ALIASES,
            max_total_scalar_bytes: MAX_SCALAR_BYTES,
        },
        with_snippet: false,
    };
    let raw: RawCase = match serde_saphyr::from_str_with_options(text, options) {
        Ok(raw) => raw,
        Err(e) => {
            let Problem { line, col, message } = syntax::problem(&e, text);
            return Err(source.error_at(line, col, &message));
        }
    };
    let mut v = Validator {
        source: &source,
        diagnostics: Vec::new(),
    };
    let case = v.case(raw, path);
    if v.diagnostics.is_empty() {
        Ok(case)
    } else {
        v.diagnostics.sort_by_key(|d| (d.location.line, d.location.col));
        Err(CaseError {
            diagnostics: v.diagnostics,
        })
    }
}

struct Source<'a> {
    file: Arc<PathBuf>,
    text: &'a str,
    /// Scalar styles and ends by start offset, read when a message needs them.
    scalars: OnceCell<HashMap<usize, (syntax::ScalarStyle, usize)>>,
}

impl Source<'_> {
    fn error_at(&self, line: u32, col: u32, message: &str) -> CaseError {
        CaseError {
            diagnostics: vec![Diagnostic {
                location: Location {
                    file: self.file.clone(),
                    line,
                    col,
                },
                message: one_line(message),
            }],
        }
    }

    fn loc(&self, l: &serde_saphyr::Location) -> Location {
        Location {
            file: self.file.clone(),
            line: l.line().max(1) as u32,
            col: l.column().max(1) as u32,
        }
    }

    fn scalars(&self) -> &HashMap<usize, (syntax::ScalarStyle, usize)> {
        self.scalars.get_or_init(|| syntax::scalars(self.text))
    }

    /// A scalar as written in the file (`0x1ffff`, where its value reads 131071).
    fn written<'s, T>(&'s self, value: &Spanned<T>) -> Option<&'s str> {
        let start = value.referenced.span().byte_offset()? as usize;
        let (_, end) = *self.scalars().get(&start)?;
        self.text.get(start..end)
    }

    /// The place of byte `offset` inside a string value, through its quotes, escapes and folded lines.
    fn inside(&self, value: &Spanned<String>, offset: usize) -> Location {
        let base = self.loc(&value.referenced);
        let place = value.referenced.span().byte_offset().and_then(|b| {
            let b = b as usize;
            let (style, _) = *self.scalars().get(&b)?;
            syntax::position_in_scalar(self.text, style, (base.line, base.col, b), &value.value, offset)
        });
        match place {
            Some((line, col)) => Location { line, col, ..base },
            None => base,
        }
    }
}

struct Validator<'a> {
    source: &'a Source<'a>,
    diagnostics: Vec<Diagnostic>,
}

/// What every step of a case is checked against.
struct StepContext<'a> {
    flows: &'a [FlowSpec],
    /// The case's families (ICMP names are one family's).
    families: &'a [Family],
    /// `payloads: zeros`: segments without a payload carry zeros.
    zeros: bool,
    /// The `signal` of calls that do not say.
    signal: Option<bool>,
}

/// Static knowledge about a socket name while steps are checked in order.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SockStatus {
    Open,
    Closed,
}

impl Validator<'_> {
    fn error(&mut self, location: Location, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            location,
            message: one_line(&message.into()),
        });
    }

    fn error_at<T>(&mut self, spanned: &Spanned<T>, message: impl Into<String>) {
        let location = self.source.loc(&spanned.referenced);
        self.error(location, message);
    }

    /// The value of the word `s` among `words`, a field's few choices
    /// (`what` names the field in the error); `None`, with the error, for
    /// another word.
    fn one_of<T: Copy>(&mut self, s: &Spanned<String>, what: &str, words: &[(&str, T)]) -> Option<T> {
        if let Some((_, value)) = words.iter().find(|(w, _)| *w == s.value) {
            return Some(*value);
        }
        let quoted: Vec<String> = words.iter().map(|(w, _)| format!("`{w}`")).collect();
        let choices = match quoted.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        self.error_at(s, format!("{what} is {choices}, not `{}`", s.value));
        None
    }

    fn duration(&mut self, value: &Spanned<Scalar>, what: &str) -> Option<Duration> {
        match value.value.text().and_then(parse_duration) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error_at(value, format!("{what}: {e}"));
                None
            }
        }
    }

    fn case(&mut self, raw: RawCase, path: &Path) -> Case {
        let id = match &raw.id {
            Some(id) => {
                let ok = !id.value.is_empty()
                    && id
                        .value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-/.".contains(c))
                    && !id.value.contains("::");
                if !ok {
                    self.error_at(id, "an id uses letters, digits, `_`, `-`, `.` and `/` only");
                }
                id.value.clone()
            }
            None => default_id(path),
        };
        if raw.title.value.trim().is_empty() {
            self.error_at(&raw.title, "the title is empty");
        }
        let known: Vec<String> = behaviors::catalogue().into_iter().map(|b| b.id).collect();
        for c in &raw.covers {
            if !known.contains(&c.value) {
                let hint = if behaviors::is_id(&c.value) {
                    ""
                } else {
                    " (IDs look like B07)"
                };
                self.error_at(
                    c,
                    format!("`{}` is not a behaviour of docs/BEHAVIORS.md{hint}", c.value),
                );
            }
        }
        let (requirements, deviates) = self.requirements(&raw);
        let families = self.families(&raw);
        let mut sysctls = Vec::new();
        // A knob set twice is a duplicate key, refused by the YAML layer.
        for (name, value) in &raw.sysctls.0 {
            if let Err(e) = crate::sysctl::path(&name.value) {
                self.error_at(name, e.to_string());
            }
            match value.value.text() {
                Ok(v) => sysctls.push((name.value.clone(), v.to_string())),
                Err(e) => self.error_at(value, format!("{}: {e}", name.value)),
            }
        }
        let tolerance = raw.tolerance.as_ref().and_then(|t| self.duration(t, "tolerance"));
        let flows = self.flows(&raw);
        let lab = raw
            .lab
            .as_ref()
            .map_or_else(LabSpec::default, |l| self.lab(l, &families));
        let rules = raw.rules.as_ref().map_or_else(Rules::default, |r| self.rules(r));
        let zeros = raw.payloads.as_ref().is_some_and(|p| {
            self.one_of(p, "`payloads`", &[("zeros", true), ("filler", false)])
                .unwrap_or(false)
        });
        let signal = raw.signal.as_ref().map_or(Some(false), |s| self.signal(s));
        let steps = self.steps(&raw, &flows, &families, zeros, signal);
        let shell = |s: &Spanned<String>| Shell {
            location: self.source.loc(&s.referenced),
            text: s.value.clone(),
        };
        let (setup, cleanup) = (raw.setup.as_ref().map(shell), raw.cleanup.as_ref().map(shell));
        if let Some(cc) = &raw.congestion_control
            && (cc.value.is_empty()
                || cc.value.len() > 15
                || !cc
                    .value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        {
            self.error_at(
                cc,
                format!(
                    "`{}` is not a congestion control's name (up to 15 letters, digits, `_` and `-`, as in `reno`)",
                    cc.value
                ),
            );
        }
        Case {
            id,
            path: self.source.file.clone(),
            title: raw.title.value.trim().to_string(),
            description: raw.description,
            covers: raw.covers.into_iter().map(|c| c.value).collect(),
            rfc: raw.rfc,
            requirements,
            deviates,
            families,
            family_reason: raw.family_reason.map(|r| r.value),
            sysctls,
            tolerance,
            flows,
            steps,
            syntax: Syntax::Yaml,
            lab,
            rules,
            setup,
            cleanup,
            congestion_control: raw.congestion_control.map(|c| c.value),
            unsupported: None,
        }
    }

    /// `requirements:` and `deviates:`: IDs of docs/RFC9293.md that a case
    /// can check, each once; every deviation is one of the case's
    /// requirements and says why.
    fn requirements(&mut self, raw: &RawCase) -> (Vec<String>, Vec<(String, String)>) {
        let table = requirements::table();
        let mut ids: Vec<String> = Vec::new();
        for r in &raw.requirements {
            if let Some(why) = requirements::refusal(&table, &r.value) {
                self.error_at(r, why);
            } else if ids.contains(&r.value) {
                self.error_at(r, format!("`{}` is listed twice", r.value));
            } else {
                ids.push(r.value.clone());
            }
        }
        let mut deviates = Vec::new();
        for (id, why) in &raw.deviates.0 {
            if !raw.requirements.iter().any(|r| r.value == id.value) {
                self.error_at(
                    id,
                    format!("`{}` deviates but is not one of the case's `requirements`", id.value),
                );
            } else if why.value.trim().is_empty() {
                self.error_at(why, format!("the deviation from `{}` does not say why", id.value));
            } else {
                deviates.push((id.value.clone(), why.value.trim().to_string()));
            }
        }
        (ids, deviates)
    }

    /// `signal:` (of a call, or the calls' default): whether the call must raise SIGPIPE, `None` for not checked.
    fn signal(&mut self, s: &Spanned<String>) -> Option<bool> {
        self.one_of(
            s,
            "signal",
            &[("SIGPIPE", Some(true)), ("none", Some(false)), ("any", None)],
        )
        .unwrap_or(Some(false))
    }

    fn lab(&mut self, raw: &Spanned<RawLab>, families: &[Family]) -> LabSpec {
        let r = &raw.value;
        let mut lab = LabSpec::default();
        if let Some(link) = &r.link {
            lab.link = self
                .one_of(link, "`link`", &[("veth", Link::Veth), ("tun", Link::Tun)])
                .unwrap_or(Link::Veth);
        }
        if let Some(device) = &r.device {
            let d = &device.value;
            if d.is_empty()
                || d.len() > 15
                || d.contains(|c: char| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
            {
                self.error_at(
                    device,
                    format!("`{d}` is not a device name (1 to 15 characters, no `/`, `:` or spaces)"),
                );
            }
            lab.device = d.clone();
        }
        if let Some(mtu) = &r.mtu {
            let least = if families.contains(&Family::Ipv6) { 1280 } else { 68 };
            if !(least..=65535).contains(&mtu.value) {
                let why = if least == 1280 { " (IPv6 needs 1280)" } else { "" };
                self.error_at(mtu, format!("mtu {} is out of range ({least}..=65535){why}", mtu.value));
            } else {
                lab.mtu = mtu.value;
            }
        }
        if let Some(offloads) = &r.offloads {
            lab.offloads = self
                .one_of(
                    offloads,
                    "`offloads`",
                    &[("off", Offloads::Off), ("nic", Offloads::Nic)],
                )
                .unwrap_or(Offloads::Off);
        }
        for (name, addresses) in &r.addresses.0 {
            let Some(family) = Family::ALL.iter().copied().find(|f| f.name() == name.value) else {
                self.error_at(
                    name,
                    format!("unknown family `{}`; families are ipv4 and ipv6", name.value),
                );
                continue;
            };
            if !families.contains(&family) {
                self.error_at(name, format!("the case does not run on {family}"));
            }
            if let Some(a) = self.addresses(&addresses.value, family) {
                lab.addresses.push((family, a));
            }
        }
        lab
    }

    fn addresses(&mut self, raw: &RawAddresses, family: Family) -> Option<Addresses> {
        let mut address = |s: &Spanned<String>, what: &str| -> Option<IpAddr> {
            match s.value.parse::<IpAddr>() {
                Ok(a) if a.is_ipv4() == (family == Family::Ipv4) => Some(a),
                Ok(_) => {
                    self.error_at(s, format!("{what} `{}` is not an {family} address", s.value));
                    None
                }
                Err(_) => {
                    self.error_at(s, format!("{what} `{}` is not an IP address", s.value));
                    None
                }
            }
        };
        let target = address(&raw.target, "target");
        let peer = address(&raw.peer, "peer");
        let gateway = match &raw.gateway {
            Some(g) => Some(address(g, "gateway")?),
            None => None,
        };
        let (target, peer) = (target?, peer?);
        let max = match family {
            Family::Ipv4 => 32,
            Family::Ipv6 => 128,
        };
        if raw.prefix_len.value > max {
            self.error_at(
                &raw.prefix_len,
                format!("prefix_len {} is out of range (0..={max})", raw.prefix_len.value),
            );
            return None;
        }
        if target == peer {
            self.error_at(&raw.peer, "the peer's address is the target's");
            return None;
        }
        Some(Addresses {
            target,
            peer,
            prefix_len: raw.prefix_len.value,
            gateway,
        })
    }

    fn rules(&mut self, raw: &Spanned<RawRules>) -> Rules {
        let r = &raw.value;
        let mut rules = Rules::default();
        if let Some(leftovers) = &r.leftovers {
            rules.leftovers = self
                .one_of(
                    leftovers,
                    "`leftovers`",
                    &[("fail", Leftovers::Fail), ("unjudged", Leftovers::Unjudged)],
                )
                .unwrap_or(Leftovers::Fail);
        }
        if let Some(tick) = &r.ts_tick {
            rules.ts_tick = self.duration(tick, "ts_tick");
            if rules.ts_tick == Some(Duration::ZERO) {
                self.error_at(
                    tick,
                    "ts_tick: a tick takes some time; leave `ts_tick` out not to check TS val",
                );
                rules.ts_tick = None;
            }
        }
        if let Some(percent) = &r.tolerance_percent {
            match percent.value.text().map(|t| (t, t.parse::<f64>())) {
                Ok((_, Ok(p))) if (0.0..=100.0).contains(&p) => rules.tolerance_percent = p,
                Ok((t, _)) => {
                    let t = self.source.written(percent).unwrap_or(t).to_string();
                    self.error_at(percent, format!("tolerance_percent is a number in 0..=100, not `{t}`"));
                }
                Err(e) => self.error_at(percent, format!("tolerance_percent: {e}")),
            }
        }
        if let Some(gso) = &r.gso_size {
            if gso.value == 0 {
                self.error_at(gso, "gso_size 0 would cut no segment; leave `gso_size` out instead");
            } else {
                rules.gso_size = Some(gso.value);
            }
        }
        rules.start_on_tick = r.start_on_tick.as_ref().is_some_and(|b| b.value);
        rules.join_segments = r.join_segments.as_ref().is_some_and(|b| b.value);
        rules.anchor_when_seen = r.anchor_when_seen.as_ref().is_some_and(|b| b.value);
        rules
    }

    fn families(&mut self, raw: &RawCase) -> Vec<Family> {
        let Some(list) = &raw.families else {
            if let Some(reason) = &raw.family_reason {
                self.error_at(reason, "`family_reason` is given but the case runs on both families");
            }
            return Family::ALL.to_vec();
        };
        let mut families = Vec::new();
        for f in &list.value {
            match Family::ALL.iter().find(|x| x.name() == f.value) {
                Some(x) if families.contains(x) => self.error_at(f, format!("`{}` is listed twice", f.value)),
                Some(x) => families.push(*x),
                None => self.error_at(f, format!("unknown family `{}`; families are ipv4 and ipv6", f.value)),
            }
        }
        if list.value.is_empty() {
            self.error_at(list, "`families` is empty; leave it out to run on both");
        }
        if families.len() == 1 && raw.family_reason.as_ref().is_none_or(|r| r.value.trim().is_empty()) {
            self.error_at(list, "a case that runs on one family says why in `family_reason`");
        }
        families.sort();
        families
    }

    fn flows(&mut self, raw: &RawCase) -> Vec<FlowSpec> {
        let mut flows: Vec<FlowSpec> = Vec::new();
        for (i, (name, flow)) in raw.flows.0.iter().enumerate() {
            if !is_name(&name.value) {
                self.error_at(
                    name,
                    format!("`{}` is not a valid name (letters, digits and `_`)", name.value),
                );
            }
            let f = &flow.value;
            // Flows that learn the kernel's port are told apart by the order of its connections.
            if f.kernel_port.is_some()
                && flows
                    .iter()
                    .any(|o| o.peer_port == f.peer_port && o.kernel_port == f.kernel_port)
            {
                self.error_at(flow, "two flows with the same ports cannot be told apart");
            }
            if f.peer_port == 0 || f.kernel_port == Some(0) {
                self.error_at(flow, "port 0 cannot be used on the wire");
            }
            flows.push(FlowSpec {
                name: name.value.clone(),
                peer_port: f.peer_port,
                kernel_port: f.kernel_port,
                isn: f.isn.unwrap_or(0x1000_0000u32.wrapping_mul(i as u32 + 1)),
                window: f.window.unwrap_or(u16::MAX),
            });
        }
        flows
    }

    fn flow_ref(&mut self, step: &Spanned<RawStep>, flows: &[FlowSpec], optional: bool) -> Option<Option<usize>> {
        match &step.value.flow {
            Some(name) => match flows.iter().position(|f| f.name == name.value) {
                Some(i) => Some(Some(i)),
                None => {
                    let hint = suggest(&name.value, flows.iter().map(|f| &f.name));
                    self.error_at(name, format!("unknown flow `{}`{hint}", name.value));
                    None
                }
            },
            None if optional => Some(None),
            None if flows.len() == 1 => Some(Some(0)),
            None if flows.is_empty() => {
                self.error_at(step, "this step needs a flow, and the case defines none under `flows`");
                None
            }
            None => {
                self.error_at(step, "the case has several flows: say which with `flow:`");
                None
            }
        }
    }

    fn steps(
        &mut self,
        raw: &RawCase,
        flows: &[FlowSpec],
        families: &[Family],
        zeros: bool,
        signal: Option<bool>,
    ) -> Vec<Step> {
        let mut steps: Vec<Step> = Vec::new();
        let mut names: HashSet<String> = HashSet::new();
        // step name -> its index in `steps`, for `since`
        let mut named: HashMap<String, usize> = HashMap::new();
        let mut sockets: HashMap<String, SockStatus> = HashMap::new();
        // socket operated on -> (names the call creates, location of the call)
        let mut pending: HashMap<String, (Vec<String>, Location)> = HashMap::new();
        let context = StepContext {
            flows,
            families,
            zeros,
            signal,
        };
        for step in &raw.steps {
            if let Some(name) = &step.value.name {
                if name.value == SINCE_START || name.value == SINCE_PREVIOUS_DUE {
                    self.error_at(name, format!("`{}` is a word of `since:`, not a step name", name.value));
                } else if !names.insert(name.value.clone()) {
                    self.error_at(name, format!("step name `{}` is used twice", name.value));
                }
            }
            let since = step.value.since.as_ref().and_then(|since| match since.value.as_str() {
                SINCE_START => Some(Base::Start),
                SINCE_PREVIOUS_DUE => Some(Base::PreviousDue),
                name => {
                    let found = named.get(name).copied();
                    if found.is_none() {
                        let hint = suggest(name, named.keys());
                        self.error_at(
                            since,
                            format!("no earlier step is named `{name}`{hint} (nor is it `start` or `previous_due`)"),
                        );
                    }
                    found.map(Base::Step)
                }
            });
            if let Some(s) = self.step(step, &context, &mut sockets, &mut pending) {
                if let Some(name) = &s.name {
                    named.insert(name.clone(), steps.len());
                }
                let base = since.unwrap_or(Base::Previous);
                steps.push(Step { base, ..s });
            }
        }
        let mut left: Vec<_> = pending.into_iter().collect();
        left.sort_by_key(|(_, (_, l))| (l.line, l.col));
        for (sock, (_, location)) in left {
            self.error(
                location,
                format!("this background call on `{sock}` is never awaited (add `- await: {sock}`)"),
            );
        }
        steps
    }

    /// `after:`: a delay, a window `A..B`, or `any`.
    fn due(&mut self, after: &Spanned<Scalar>) -> Option<Due> {
        let text = match after.value.text() {
            Ok(t) => t.trim(),
            Err(e) => {
                self.error_at(after, format!("after: {e}"));
                return None;
            }
        };
        if text == "any" {
            return Some(Due::Any);
        }
        let Some((from, to)) = text.split_once("..") else {
            return match parse_duration(text) {
                Ok(d) => Some(Due::After(d)),
                Err(e) => {
                    self.error_at(after, format!("after: {e}"));
                    None
                }
            };
        };
        match (parse_duration(from), parse_duration(to)) {
            (Ok(a), Ok(b)) if a <= b => Some(Due::Within(a, b)),
            (Ok(_), Ok(_)) => {
                self.error_at(after, format!("after: the window `{text}` ends before it starts"));
                None
            }
            (Err(e), _) | (_, Err(e)) => {
                self.error_at(after, format!("after: {e}"));
                None
            }
        }
    }

    /// What `payload:` or `payload_hex:` (or the case's `payloads:`) says a segment carries.
    fn payload(&mut self, r: &RawStep, pattern: &SegmentPattern, zeros: bool) -> Option<Vec<u8>> {
        let payload = match (&r.payload, &r.payload_hex) {
            (Some(_), Some(hex)) => {
                self.error_at(hex, "give `payload` or `payload_hex`, not both");
                return None;
            }
            (Some(p), None) => p.value.as_bytes().to_vec(),
            (None, Some(hex)) => {
                let written = self.source.written(hex).map(str::to_string);
                let text = match (written, hex.value.text()) {
                    // A plain scalar of digits reads as a number: take it as written.
                    (Some(w), Ok(_)) if !w.starts_with(['"', '\'']) => w,
                    (_, Ok(t)) => t.to_string(),
                    (_, Err(e)) => {
                        self.error_at(hex, format!("payload_hex: {e}"));
                        return None;
                    }
                };
                let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
                let bytes = (0..digits.len())
                    .step_by(2)
                    .map(|i| digits.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                    .collect::<Option<Vec<u8>>>();
                match bytes {
                    Some(b) if digits.len().is_multiple_of(2) => b,
                    _ => {
                        self.error_at(
                            hex,
                            "payload_hex is pairs of hex digits, as in `48656c6c6f` (spaces between them are allowed)",
                        );
                        return None;
                    }
                }
            }
            (None, None) => {
                return match pattern.len {
                    Some(crate::packet::pattern::Num::Lit(len)) if zeros => Some(vec![0; len as usize]),
                    _ => None,
                };
            }
        };
        if let Some(crate::packet::pattern::Num::Lit(len)) = pattern.len
            && payload.len() != len as usize
        {
            let at = r.payload.as_ref().map(|p| self.source.loc(&p.referenced));
            let at = at.or_else(|| r.payload_hex.as_ref().map(|p| self.source.loc(&p.referenced)));
            if let Some(at) = at {
                self.error(
                    at,
                    format!("the payload has {} bytes but the segment says ({len})", payload.len()),
                );
            }
        }
        Some(payload)
    }

    /// Checks `ts_val:` or `ts_ecr:` against the segment, which must carry a TS option.
    fn ts_number(&mut self, value: Option<&Spanned<u32>>, pattern: &SegmentPattern, key: &str) -> Option<u32> {
        let value = value?;
        let has_ts = pattern
            .options
            .iter()
            .flatten()
            .any(|o| matches!(o, crate::packet::pattern::OptionPattern::Timestamp { .. }));
        if !has_ts {
            self.error_at(
                value,
                format!("`{key}` needs a TS option in the segment (`<TS val N ecr N>`)"),
            );
        }
        Some(value.value)
    }

    fn step(
        &mut self,
        step: &Spanned<RawStep>,
        context: &StepContext<'_>,
        sockets: &mut HashMap<String, SockStatus>,
        pending: &mut HashMap<String, (Vec<String>, Location)>,
    ) -> Option<Step> {
        let flows = context.flows;
        let r = &step.value;
        let mut actions: Vec<(&str, &serde_saphyr::Location)> = [
            ("call", r.call.as_ref().map(|s| &s.referenced)),
            ("await", r.await_.as_ref().map(|s| &s.referenced)),
            ("inject", r.inject.as_ref().map(|s| &s.referenced)),
            ("expect", r.expect.as_ref().map(|s| &s.referenced)),
            ("expect_nothing", r.expect_nothing.as_ref().map(|s| &s.referenced)),
            ("state", r.state.as_ref().map(|s| &s.referenced)),
            ("accept_queue", r.accept_queue.as_ref().map(|s| &s.referenced)),
            ("wait", r.wait.as_ref().map(|s| &s.referenced)),
            ("read_sysctl", r.read_sysctl.as_ref().map(|s| &s.referenced)),
            ("shell", r.shell.as_ref().map(|s| &s.referenced)),
            ("code", r.code.as_ref().map(|s| &s.referenced)),
        ]
        .into_iter()
        .filter_map(|(k, l)| l.map(|l| (k, l)))
        .collect();
        actions.sort_by_key(|(_, l)| (l.line(), l.column()));
        let (keyword, location) = match actions.as_slice() {
            [one] => (one.0, self.source.loc(one.1)),
            [] => {
                let keys: Vec<&str> = MODIFIERS.iter().map(|(k, _)| *k).collect();
                self.error_at(step, format!("a step needs one action: {}", keys.join(", ")));
                return None;
            }
            [_, second, ..] => {
                let location = self.source.loc(second.1);
                self.error(
                    location,
                    format!("a step has one action, but this one also has `{}`", second.0),
                );
                return None;
            }
        };
        let icmp = keyword == "inject" && r.inject.as_ref().is_some_and(|t| icmp::is_icmp(&t.value));
        let allowed = if icmp {
            &ICMP_MODIFIERS[..]
        } else {
            MODIFIERS
                .iter()
                .find(|(k, _)| *k == keyword)
                .map_or(&[][..], |(_, m)| *m)
        };
        let given: [(&str, Option<&serde_saphyr::Location>); 16] = [
            ("rebinds", r.rebinds.as_ref().map(|s| &s.referenced)),
            ("flow", r.flow.as_ref().map(|s| &s.referenced)),
            ("after", r.after.as_ref().map(|s| &s.referenced)),
            ("since", r.since.as_ref().map(|s| &s.referenced)),
            ("isn", r.isn.as_ref().map(|s| &s.referenced)),
            ("tolerance", r.tolerance.as_ref().map(|s| &s.referenced)),
            ("timeout", r.timeout.as_ref().map(|s| &s.referenced)),
            ("background", r.background.as_ref().map(|s| &s.referenced)),
            ("signal", r.signal.as_ref().map(|s| &s.referenced)),
            ("payload", r.payload.as_ref().map(|s| &s.referenced)),
            ("payload_hex", r.payload_hex.as_ref().map(|s| &s.referenced)),
            ("checksum", r.checksum.as_ref().map(|s| &s.referenced)),
            ("ts_val", r.ts_val.as_ref().map(|s| &s.referenced)),
            ("ts_ecr", r.ts_ecr.as_ref().map(|s| &s.referenced)),
            ("socket", r.socket.as_ref().map(|s| &s.referenced)),
            ("name", r.name.as_ref().map(|s| &s.referenced)),
        ];
        let mut bad_modifier = false;
        for (key, l) in given {
            if let Some(l) = l
                && !allowed.contains(&key)
            {
                let l = self.source.loc(l);
                let steps = if icmp {
                    "ICMP `inject`".to_string()
                } else {
                    format!("`{keyword}`")
                };
                self.error(
                    l,
                    format!(
                        "`{key}` does not apply to {steps} steps (they take: {})",
                        allowed.join(", ")
                    ),
                );
                bad_modifier = true;
            }
        }
        let due = r.after.as_ref().and_then(|a| self.due(a));
        let tolerance = r.tolerance.as_ref().and_then(|t| self.duration(t, "tolerance"));
        let timeout = r.timeout.as_ref().and_then(|t| self.duration(t, "timeout"));
        let action = match keyword {
            "call" => self.call_step(r, timeout, context.signal, sockets, pending)?,
            "await" => {
                let name = r.await_.as_ref()?;
                match pending.remove(&name.value) {
                    Some((created, _)) => {
                        for c in created {
                            sockets.insert(c, SockStatus::Open);
                        }
                    }
                    None => self.error_at(name, format!("`{}` has no background call to await", name.value)),
                }
                Action::Await {
                    socket: name.value.clone(),
                    timeout: timeout.unwrap_or(DEFAULT_CALL_TIMEOUT),
                }
            }
            "inject" if icmp => {
                let text = r.inject.as_ref()?;
                let family = match context.families {
                    [one] => *one,
                    _ => {
                        self.error_at(
                            text,
                            "an ICMP message is written in one family's names: the case runs on one family \
                             (`families: [ipv4]` and `family_reason`)",
                        );
                        return None;
                    }
                };
                let spec = match icmp::parse_icmp(&text.value, family) {
                    Ok(spec) => spec,
                    Err(NotationError { offset, message }) => {
                        let l = self.source.inside(text, offset);
                        self.error(l, message);
                        return None;
                    }
                };
                Action::InjectIcmp {
                    flow: self.flow_ref(step, flows, false)??,
                    text: text.value.clone(),
                    icmp: spec,
                }
            }
            "inject" | "expect" => {
                let text = if keyword == "inject" {
                    r.inject.as_ref()?
                } else {
                    r.expect.as_ref()?
                };
                let parsed = if keyword == "inject" {
                    notation::parse_inject(&text.value)
                } else {
                    notation::parse_expect(&text.value)
                };
                let pattern = match parsed {
                    Ok(p) => p,
                    Err(NotationError { offset, message }) => {
                        let l = self.source.inside(text, offset);
                        self.error(l, message);
                        return None;
                    }
                };
                let payload = self.payload(r, &pattern, context.zeros);
                let flow = self.flow_ref(step, flows, false)??;
                if keyword == "inject" {
                    let checksum = match &r.checksum {
                        None => Checksum::Auto,
                        Some(c) => match c.value.text().map(parse_checksum) {
                            Ok(Some(checksum)) => checksum,
                            Ok(None) => {
                                let text = self.source.written(c).or(c.value.text().ok()).unwrap_or_default();
                                self.error_at(
                                    c,
                                    format!(
                                        "checksum is `auto`, `corrupt` or a 16-bit value such as 0x1c46, not `{text}`"
                                    ),
                                );
                                Checksum::Auto
                            }
                            Err(e) => {
                                self.error_at(c, format!("checksum: {e}"));
                                Checksum::Auto
                            }
                        },
                    };
                    Action::Inject {
                        flow,
                        text: text.value.clone(),
                        ts_ecr: self.ts_number(r.ts_ecr.as_ref(), &pattern, "ts_ecr"),
                        pattern,
                        payload,
                        checksum,
                    }
                } else {
                    let new_isn = match &r.isn {
                        None => false,
                        Some(isn) if isn.value != "new" => {
                            self.error_at(isn, format!("`isn` takes `new`, not `{}`", isn.value));
                            false
                        }
                        Some(isn) if !pattern.flags.contains(Flags::SYN) => {
                            self.error_at(isn, "`isn: new` applies to a segment with SYN (`S` or `S.`)");
                            false
                        }
                        Some(_) => true,
                    };
                    Action::Expect {
                        flow,
                        text: text.value.clone(),
                        ts_val: self.ts_number(r.ts_val.as_ref(), &pattern, "ts_val"),
                        pattern,
                        payload,
                        new_isn,
                    }
                }
            }
            "expect_nothing" => {
                let d = r.expect_nothing.as_ref()?;
                let during = self.duration(d, "expect_nothing")?;
                Action::ExpectNothing {
                    flow: self.flow_ref(step, flows, true)?,
                    during,
                }
            }
            "state" => self.state_step(r.state.as_ref()?, flows, sockets)?,
            "accept_queue" => {
                let q = &r.accept_queue.as_ref()?.value;
                if !sockets.contains_key(&q.socket.value) {
                    self.unknown_socket(&q.socket, &q.socket.value, sockets);
                }
                Action::AcceptQueue {
                    socket: q.socket.value.clone(),
                    len: q.len,
                    limit: q.limit,
                }
            }
            "wait" => Action::Wait(self.duration(r.wait.as_ref()?, "wait")?),
            "read_sysctl" => {
                let name = r.read_sysctl.as_ref()?;
                if let Err(e) = crate::sysctl::path(&name.value) {
                    self.error_at(name, e.to_string());
                }
                Action::ReadSysctl(name.value.clone())
            }
            "shell" => Action::Shell(r.shell.as_ref()?.value.clone()),
            "code" => {
                let socket = r.socket.as_ref().map(|s| {
                    if !sockets.contains_key(&s.value) {
                        self.unknown_socket(s, &s.value, sockets);
                    }
                    s.value.clone()
                });
                Action::Code {
                    text: r.code.as_ref()?.value.clone(),
                    socket,
                }
            }
            _ => unreachable!("keyword comes from the action list"),
        };
        if bad_modifier {
            return None;
        }
        Some(Step {
            location,
            name: r.name.as_ref().map(|n| n.value.clone()),
            due: due.unwrap_or(Due::Now),
            base: Base::Previous,
            tolerance,
            action,
        })
    }

    fn unknown_socket<T>(&mut self, at: &Spanned<T>, name: &str, sockets: &HashMap<String, SockStatus>) {
        let hint = suggest(name, sockets.keys());
        self.error_at(
            at,
            format!("unknown socket `{name}`{hint}: create it first with `{name} = socket()`"),
        );
    }

    fn call_step(
        &mut self,
        r: &RawStep,
        timeout: Option<Duration>,
        signal: Option<bool>,
        sockets: &mut HashMap<String, SockStatus>,
        pending: &mut HashMap<String, (Vec<String>, Location)>,
    ) -> Option<Action> {
        let text = r.call.as_ref()?;
        let call = match parse_call(&text.value) {
            Ok(c) => c,
            Err(call::CallError { offset, message }) => {
                let l = self.source.inside(text, offset);
                self.error(l, message);
                return None;
            }
        };
        let background = r.background.as_ref().is_some_and(|b| b.value);
        let name_at = |name: &str| find_word(&text.value, name);
        let mut used = call.func.fds();
        used.dedup();
        for sock in used {
            match sockets.get(sock) {
                None => {
                    let l = self.source.inside(text, name_at(sock));
                    let hint = suggest(sock, sockets.keys());
                    self.error(
                        l,
                        format!("unknown socket `{sock}`{hint}: create it first with `{sock} = socket()`"),
                    );
                }
                Some(SockStatus::Closed) => {
                    let l = self.source.inside(text, name_at(sock));
                    self.error(l, format!("`{sock}` is already closed"));
                }
                Some(SockStatus::Open) => {}
            }
        }
        if let Some(sock) = call.func.sock()
            && pending.contains_key(sock)
            && background
        {
            let l = self.source.loc(&text.referenced);
            self.error(l, format!("`{sock}` already has a background call; await it first"));
        }
        // What the call names: a closed descriptor's name may be given again.
        let created: Vec<String> = match &call.func {
            Func::Pipe { read, write } => vec![read.clone(), write.clone()],
            _ => call.binds.iter().cloned().collect(),
        };
        let rebinds = r.rebinds.as_ref().filter(|b| b.value);
        let open = |name: &String| sockets.get(name) == Some(&SockStatus::Open);
        for name in &created {
            if open(name) && rebinds.is_none() || pending.values().any(|(c, _)| c.contains(name)) {
                let l = self.source.inside(text, name_at(name));
                self.error(
                    l,
                    format!("socket `{name}` is already defined (`rebinds: true` closes it and gives its name to the new one)"),
                );
            }
        }
        if let Some(b) = rebinds
            && !created.iter().any(open)
        {
            self.error_at(b, "`rebinds: true`, but the call names no descriptor that is open");
        }
        if background {
            let Some(sock) = call.func.sock() else {
                self.error_at(
                    r.background.as_ref()?,
                    format!("{}() never blocks: it cannot run in the background", call.func.name()),
                );
                return None;
            };
            pending.insert(sock.to_string(), (created, self.source.loc(&text.referenced)));
        } else {
            for name in created {
                sockets.insert(name, SockStatus::Open);
            }
        }
        if let Func::Close { sock } = &call.func {
            sockets.insert(sock.clone(), SockStatus::Closed);
        }
        let sigpipe = r.signal.as_ref().map_or(signal, |s| self.signal(s));
        Some(Action::Call {
            text: text.value.clone(),
            call,
            background,
            sigpipe,
            timeout: timeout.unwrap_or(DEFAULT_CALL_TIMEOUT),
        })
    }

    fn state_step(
        &mut self,
        text: &Spanned<String>,
        flows: &[FlowSpec],
        sockets: &HashMap<String, SockStatus>,
    ) -> Option<Action> {
        let words: Vec<&str> = text.value.split_whitespace().collect();
        let [name, state] = words.as_slice() else {
            self.error_at(text, "write `state: NAME STATE`, e.g. `state: conn ESTABLISHED`");
            return None;
        };
        let target = if sockets.contains_key(*name) {
            Target::Socket(name.to_string())
        } else if let Some(i) = flows.iter().position(|f| f.name == *name) {
            Target::Flow(i)
        } else {
            let hint = suggest(name, sockets.keys().chain(flows.iter().map(|f| &f.name)));
            self.error_at(text, format!("`{name}` is neither a socket nor a flow{hint}"));
            return None;
        };
        let Some(state) = TcpState::parse(state) else {
            let l = self.source.inside(text, text.value.find(state).unwrap_or(0));
            let hint = suggest(state, TcpState::ALL.iter().map(|(n, _)| *n));
            let names: Vec<&str> = TcpState::ALL.iter().map(|(n, _)| *n).collect();
            self.error(
                l,
                format!("unknown state `{state}`{hint}; states are {}", names.join(", ")),
            );
            return None;
        };
        Some(Action::State { target, state })
    }
}

/// A message as one line: names quoted from the file may hold line breaks
/// (a multi-line key), which would split a `file:line:col: message` line.
fn one_line(message: &str) -> String {
    message
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Whether `s` is a name in YAML's notations: a letter or `_`, then letters, digits and `_`.
pub(super) fn is_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Byte offset of `word` as a whole word in `text` (0 when absent).
fn find_word(text: &str, word: &str) -> usize {
    text.match_indices(word)
        .find(|(i, _)| {
            let before = text[..*i].chars().next_back();
            let after = text[i + word.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .map_or(0, |(i, _)| i)
}

/// The ID of a case file, YAML or packetdrill: its path under the nearest
/// `cases` directory without extension, or its file name without it.
pub(crate) fn default_id(path: &Path) -> String {
    let components: Vec<String> = path
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match components.iter().rposition(|c| c == "cases") {
        Some(i) if i + 1 < components.len() => components[i + 1..].join("/"),
        _ => components.last().cloned().unwrap_or_default(),
    }
}

fn parse_checksum(text: &str) -> Option<Checksum> {
    match text {
        "auto" => Some(Checksum::Auto),
        "corrupt" => Some(Checksum::Corrupt),
        _ => {
            let v = match text.strip_prefix("0x") {
                Some(hex) => u16::from_str_radix(hex, 16).ok()?,
                None => text.parse().ok()?,
            };
            Some(Checksum::Value(v))
        }
    }
}

/// Parses `10ms`, `1.5s`, `250us`, `2m`, or `0`, exactly (to the
/// nanosecond, digits beyond it dropped): what [`format_duration`] writes
/// reads back as the same duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if text.starts_with('-') {
        return Err(format!("a duration cannot be negative: `{text}`"));
    }
    if number.is_empty() {
        return Err(format!("expected a duration such as 10ms or 1.5s, not `{text}`"));
    }
    let nanos_per_unit: u128 = match unit.trim() {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "" => return Err(format!("`{text}` needs a unit, as in {text}ms or {text}s")),
        u => return Err(format!("unknown unit `{u}` (use ns, us, ms, s or m)")),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return Err(format!("expected a duration such as 10ms or 1.5s, not `{text}`"));
    }
    const DAY: u128 = 86_400_000_000_000;
    let too_long = || format!("`{text}` is longer than a day");
    // A day is 14 digits of nanoseconds: more digits than that are too long, or dropped.
    let whole = whole.trim_start_matches('0');
    if whole.len() > 15 {
        return Err(too_long());
    }
    let fraction = &fraction[..fraction.len().min(20)];
    let digits = |s: &str| s.bytes().fold(0u128, |n, d| n * 10 + u128::from(d - b'0'));
    let scale = 10u128.pow(fraction.len() as u32);
    let nanos = digits(whole) * nanos_per_unit + digits(fraction) * nanos_per_unit / scale;
    if nanos > DAY {
        return Err(too_long());
    }
    Ok(Duration::from_nanos(nanos as u64))
}

/// Writes a duration in the largest unit that holds it exactly (`1500ms`,
/// `2s`, `0`), as [`parse_duration`] reads it.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0".into();
    }
    for (unit, per) in [("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000)] {
        if nanos.is_multiple_of(per) {
            return format!("{}{unit}", nanos / per);
        }
    }
    format!("{nanos}ns")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn errors(text: &str) -> Vec<String> {
        match load_str(Path::new("cases/x/t.yaml"), text) {
            Ok(_) => vec![],
            Err(e) => e.diagnostics.iter().map(ToString::to_string).collect(),
        }
    }

    const GOOD: &str = "\
title: passive open
covers: [B01]
flows:
  c: { peer_port: 40000, kernel_port: 8080 }
steps:
  - call: srv = socket()
  - call: bind(srv, 8080)
  - call: listen(srv, 1)
  - inject: S 0:0(0) win 65535 <mss 1460>
  - expect: S. 0:0(0) ack 1 <mss $mss>
  - inject: . 1:1(0) ack 1
  - call: conn = accept(srv)
  - state: conn ESTABLISHED
";

    #[test]
    fn a_good_case_loads() {
        let case = load_str(Path::new("/repo/cases/opening/passive.yaml"), GOOD).unwrap();
        assert_eq!(case.id, "opening/passive");
        assert_eq!(case.families, Family::ALL.to_vec());
        assert_eq!(case.steps.len(), 8);
        assert_eq!(case.steps[4].location.line, 10);
        assert_eq!(case.steps[4].location.col, 13);
        assert_eq!(case.flows[0].kernel_port, Some(8080));
        assert_eq!(case.tolerance, None);
    }

    #[test]
    fn requirements_and_deviations_load_apart_from_rfc() {
        let text = GOOD.replace(
            "covers: [B01]\n",
            "covers: [B01]\nrfc: [\"RFC 9293 3.5\"]\nrequirements: [MUST-14, MUST-13]\ndeviates:\n  MUST-13: \" 60 s, not 240 \"\n",
        );
        let case = load_str(Path::new("/repo/cases/opening/passive.yaml"), &text).unwrap();
        assert_eq!(case.requirements, ["MUST-14", "MUST-13"]);
        assert_eq!(case.deviates, [("MUST-13".to_string(), "60 s, not 240".to_string())]);
        assert_eq!(case.rfc, ["RFC 9293 3.5"]);
    }

    #[rstest]
    #[case::unknown_top_key(
        "titel: x\nsteps: []\n",
        "cases/x/t.yaml:1:1: unknown key `titel` (did you mean `title`?)"
    )]
    #[case::unknown_step_key(
        "title: x\nsteps:\n  - wait: 1s\n    aftr: 1s\n",
        "cases/x/t.yaml:4:5: unknown key `aftr` (did you mean `after`?)"
    )]
    #[case::wrong_type(
        "title: [1]\nsteps: []\n",
        "cases/x/t.yaml:1:8: `title` must be a string, not a list"
    )]
    #[case::not_a_mapping(
        "- a\n",
        "cases/x/t.yaml:1:1: a case file must be a mapping of keys such as `title:` and `steps:`, not a list"
    )]
    #[case::empty("\n\n", "cases/x/t.yaml:1:1: the file is empty")]
    #[case::only_comments("# todo\n---\n", "cases/x/t.yaml:1:1: the file is empty")]
    #[case::control_character("title: a\u{7}b\nsteps: []\n", "cases/x/t.yaml:1:9: the control character U+0007")]
    #[case::lone_cr("title: x\rsteps: []\r", "cases/x/t.yaml:1:9: a carriage return ends this line")]
    #[case::key_without_value("title: x\nsteps:\n  - wait:\n", "cases/x/t.yaml:3:5: `wait` has no value")]
    #[case::step_not_a_mapping(
        "title: x\nsteps:\n  - wait\n",
        "cases/x/t.yaml:3:5: step 1 must be a mapping such as `wait: 1s`, not `wait`"
    )]
    #[case::through_an_alias(
        "title: &t x\nsteps: *t\n",
        "cases/x/t.yaml:2:8: `steps` must be a list, not `x` (the value of this alias, anchored at line 1, column 11)"
    )]
    #[case::two_documents(
        "title: x\nsteps: []\n---\n",
        "cases/x/t.yaml:3:4: a second YAML document starts here"
    )]
    #[case::list_for_a_scalar(
        "title: x\nsysctls:\n  net.ipv4.tcp_sack: [0]\nsteps: []\n",
        "cases/x/t.yaml:3:22: net.ipv4.tcp_sack: expected a number or a string, not a list"
    )]
    #[case::not_a_bool(
        "title: x\nsteps:\n  - call: s = socket()\n    background: maybe\n",
        "cases/x/t.yaml:4:17: `background` must be `true` or `false`, not `maybe`"
    )]
    #[case::family_reason_alone(
        "title: x\nfamily_reason: why\nsteps: []\n",
        "cases/x/t.yaml:2:16: `family_reason` is given but the case runs on both families"
    )]
    #[case::checksum_as_written(
        "title: x\nflows:\n  c: { peer_port: 1 }\nsteps:\n  - inject: S\n    checksum: 0x1ffff\n",
        "cases/x/t.yaml:6:15: checksum is `auto`, `corrupt` or a 16-bit value such as 0x1c46, not `0x1ffff`"
    )]
    #[case::notation_in_a_folded_block(
        "title: x\nflows:\n  c: { peer_port: 1 }\nsteps:\n  - expect: >\n      S. 0:0(0)\n      ack x\n",
        "cases/x/t.yaml:7:11: expected a number"
    )]
    #[case::notation_after_an_escape(
        "title: x\nflows:\n  c: { peer_port: 1 }\nsteps:\n  - expect: \"S.\\t0:0(0) ack x\"\n",
        "cases/x/t.yaml:5:29: expected a number"
    )]
    #[case::call_on_two_lines(
        "title: x\nsteps:\n  - call: s = socket()\n  - call: listen(s,\n      x)\n",
        "cases/x/t.yaml:5:7: backlog must be a number"
    )]
    #[case::missing_steps("title: x\n", "missing key `steps`")]
    #[case::port_range(
        "title: x\nflows:\n  c: { peer_port: 70000 }\nsteps: []\n",
        "cases/x/t.yaml:3:19: `peer_port` must be an integer in 0..=65535, not `70000`"
    )]
    #[case::bad_notation(
        "title: x\nflows:\n  c: { peer_port: 1 }\nsteps:\n  - expect: S. 0:0(0) ack x\n",
        "cases/x/t.yaml:5:27: expected a number, `any` or `$mss` for ack, found `x`"
    )]
    #[case::bad_notation_quoted(
        "title: x\nflows:\n  c: { peer_port: 1 }\nsteps:\n  - expect: \"S. 0:0(0) ack x\"\n",
        "cases/x/t.yaml:5:28: expected a number"
    )]
    #[case::bad_call(
        "title: x\nsteps:\n  - call: s = socket()\n  - call: listen(s, x)\n",
        "cases/x/t.yaml:4:21: backlog must be a number, not a name"
    )]
    #[case::undefined_socket(
        "title: x\nsteps:\n  - call: srv = socket()\n  - call: listen(sv, 1)\n",
        "cases/x/t.yaml:4:18: unknown socket `sv` (did you mean `srv`?)"
    )]
    #[case::closed_socket(
        "title: x\nsteps:\n  - call: s = socket()\n  - call: close(s)\n  - call: close(s)\n",
        "cases/x/t.yaml:5:17: `s` is already closed"
    )]
    #[case::two_actions(
        "title: x\nsteps:\n  - wait: 1s\n    state: a LISTEN\n",
        "cases/x/t.yaml:4:12: a step has one action"
    )]
    #[case::no_action("title: x\nsteps:\n  - name: a\n", "a step needs one action")]
    #[case::bad_modifier(
        "title: x\nsteps:\n  - wait: 1s\n    flow: c\n",
        "`flow` does not apply to `wait` steps"
    )]
    #[case::duplicate_names(
        "title: x\nsteps:\n  - wait: 1s\n    name: a\n  - wait: 1s\n    name: a\n",
        "cases/x/t.yaml:6:11: step name `a` is used twice"
    )]
    #[case::bad_duration("title: x\nsteps:\n  - wait: 5\n", "wait: `5` needs a unit, as in 5ms or 5s")]
    #[case::unknown_flow(
        "title: x\nflows:\n  c1: { peer_port: 1 }\n  c2: { peer_port: 2 }\nsteps:\n  - inject: S\n    flow: c3\n",
        "cases/x/t.yaml:7:11: unknown flow `c3`"
    )]
    #[case::ambiguous_flow(
        "title: x\nflows:\n  c1: { peer_port: 1 }\n  c2: { peer_port: 2 }\nsteps:\n  - inject: S\n",
        "the case has several flows"
    )]
    #[case::never_awaited(
        "title: x\nsteps:\n  - call: s = socket()\n  - call: connect(s, 80)\n    background: true\n",
        "cases/x/t.yaml:4:11: this background call on `s` is never awaited"
    )]
    #[case::await_nothing(
        "title: x\nsteps:\n  - call: s = socket()\n  - await: s\n",
        "`s` has no background call to await"
    )]
    #[case::unknown_state(
        "title: x\nsteps:\n  - call: s = socket()\n  - state: s ESTABLISED\n",
        "cases/x/t.yaml:4:14: unknown state `ESTABLISED` (did you mean `ESTABLISHED`?)"
    )]
    #[case::unknown_behavior("title: x\ncovers: [B99]\nsteps: []\n", "`B99` is not a behaviour")]
    #[case::unknown_requirement(
        "title: x\nrequirements: [MUST-8, MUST-99]\nsteps: []\n",
        "cases/x/t.yaml:2:24: `MUST-99` is not a requirement of docs/RFC9293.md"
    )]
    #[case::deviation_not_checked(
        "title: x\nrequirements: [MUST-8]\ndeviates: {MUST-13: because}\nsteps: []\n",
        "cases/x/t.yaml:3:12: `MUST-13` deviates but is not one of the case's `requirements`"
    )]
    #[case::sysctl_not_net(
        "title: x\nsysctls:\n  kernel.pid_max: 1\nsteps: []\n",
        "cases/x/t.yaml:3:3: `kernel.pid_max` is not a network sysctl"
    )]
    #[case::read_sysctl_not_net(
        "title: x\nsteps:\n  - read_sysctl: kernel.x\n",
        "cases/x/t.yaml:3:18: `kernel.x` is not a network sysctl"
    )]
    #[case::one_family_no_reason("title: x\nfamilies: [ipv4]\nsteps: []\n", "says why in `family_reason`")]
    #[case::bad_family("title: x\nfamilies: [ipv5]\nfamily_reason: x\nsteps: []\n", "unknown family `ipv5`")]
    #[case::duplicate_key("title: x\ntitle: y\nsteps: []\n", "cases/x/t.yaml:2:1: `title` is given twice")]
    #[case::payload_length(
        "title: x\nflows:\n  c: { peer_port: 1 }\nsteps:\n  - inject: P. 1:6(5)\n    payload: abc\n",
        "the payload has 3 bytes but the segment says (5)"
    )]
    #[case::since_unknown(
        "title: x\nsteps:\n  - wait: 1s\n    name: a\n  - wait: 1s\n    since: b\n",
        "cases/x/t.yaml:6:12: no earlier step is named `b`"
    )]
    #[case::since_itself(
        "title: x\nsteps:\n  - call: s = socket()\n    name: a\n    since: a\n",
        "cases/x/t.yaml:5:12: no earlier step is named `a`"
    )]
    #[case::since_on_wait(
        "title: x\nsteps:\n  - wait: 1s\n    name: a\n  - wait: 1s\n    since: a\n",
        "`since` does not apply to `wait` steps"
    )]
    #[case::isn_value(
        "title: x\nflows:\n  c: { peer_port: 1 }\nsteps:\n  - expect: S.\n    isn: old\n",
        "cases/x/t.yaml:6:10: `isn` takes `new`, not `old`"
    )]
    #[case::isn_without_syn(
        "title: x\nflows:\n  c: { peer_port: 1 }\nsteps:\n  - expect: F.\n    isn: new\n",
        "`isn: new` applies to a segment with SYN"
    )]
    #[case::isn_on_inject(
        "title: x\nflows:\n  c: { peer_port: 1 }\nsteps:\n  - inject: S\n    isn: new\n",
        "`isn` does not apply to `inject` steps"
    )]
    #[case::lab_link(
        "title: x\nlab: { link: tap }\nsteps: []\n",
        "cases/x/t.yaml:2:14: `link` is `veth` or `tun`, not `tap`"
    )]
    #[case::lab_offloads(
        "title: x\nlab: { offloads: all }\nsteps: []\n",
        "`offloads` is `off` or `nic`, not `all`"
    )]
    #[case::lab_mtu_v6(
        "title: x\nlab: { mtu: 1000 }\nsteps: []\n",
        "cases/x/t.yaml:2:13: mtu 1000 is out of range (1280..=65535) (IPv6 needs 1280)"
    )]
    #[case::lab_device("title: x\nlab: { device: a/b }\nsteps: []\n", "`a/b` is not a device name")]
    #[case::lab_unknown_key(
        "title: x\nlab: { mut: 1 }\nsteps: []\n",
        "cases/x/t.yaml:2:8: unknown key `mut` (did you mean `mtu`?)"
    )]
    #[case::address_family(
        "title: x\nlab:\n  addresses:\n    ipv4: { target: 2001:db8::1, peer: 192.0.2.2, prefix_len: 24 }\nsteps: []\n",
        "cases/x/t.yaml:4:21: target `2001:db8::1` is not an ipv4 address"
    )]
    #[case::address_prefix(
        "title: x\nlab:\n  addresses:\n    ipv6: { target: \"2001:db8::1\", peer: \"2001:db8::2\", prefix_len: 129 }\nsteps: []\n",
        "prefix_len 129 is out of range (0..=128)"
    )]
    #[case::address_unknown_family(
        "title: x\nlab:\n  addresses:\n    ip4: { target: 1.1.1.1, peer: 1.1.1.2, prefix_len: 24 }\nsteps: []\n",
        "cases/x/t.yaml:4:5: unknown family `ip4`"
    )]
    #[case::address_other_family(
        "title: x\nfamilies: [ipv6]\nfamily_reason: y\nlab:\n  addresses:\n    ipv4: { target: 1.1.1.1, peer: 1.1.1.2, prefix_len: 24 }\nsteps: []\n",
        "the case does not run on ipv4"
    )]
    #[case::address_same(
        "title: x\nlab:\n  addresses:\n    ipv4: { target: 1.1.1.1, peer: 1.1.1.1, prefix_len: 24 }\nsteps: []\n",
        "the peer's address is the target's"
    )]
    #[case::rules_leftovers(
        "title: x\nrules: { leftovers: ignore }\nsteps: []\n",
        "`leftovers` is `fail` or `unjudged`, not `ignore`"
    )]
    #[case::rules_tick_zero("title: x\nrules: { ts_tick: 0 }\nsteps: []\n", "ts_tick: a tick takes some time")]
    #[case::rules_tick_unit("title: x\nrules: { ts_tick: 5 }\nsteps: []\n", "ts_tick: `5` needs a unit")]
    #[case::rules_percent(
        "title: x\nrules: { tolerance_percent: 120 }\nsteps: []\n",
        "cases/x/t.yaml:2:29: tolerance_percent is a number in 0..=100, not `120`"
    )]
    #[case::rules_gso("title: x\nrules: { gso_size: 0 }\nsteps: []\n", "gso_size 0 would cut no segment")]
    #[case::payloads_word(
        "title: x\npayloads: zero\nsteps: []\n",
        "cases/x/t.yaml:2:11: `payloads` is `zeros` or `filler`, not `zero`"
    )]
    #[case::signal_default(
        "title: x\nsignal: SIGINT\nsteps: []\n",
        "cases/x/t.yaml:2:9: signal is `SIGPIPE`, `none` or `any`, not `SIGINT`"
    )]
    #[case::congestion_control(
        "title: x\ncongestion_control: \"bb r\"\nsteps: []\n",
        "`bb r` is not a congestion control's name"
    )]
    #[case::setup_list(
        "title: x\nsetup: [a]\nsteps: []\n",
        "cases/x/t.yaml:2:8: `setup` must be a string, not a list"
    )]
    #[case::after_window_backwards(
        "title: x\nsteps:\n  - call: s = socket()\n    after: 2s..1s\n",
        "cases/x/t.yaml:4:12: after: the window `2s..1s` ends before it starts"
    )]
    #[case::after_window_unit(
        "title: x\nsteps:\n  - call: s = socket()\n    after: 1s..2\n",
        "after: `2` needs a unit"
    )]
    #[case::since_reserved_name(
        "title: x\nsteps:\n  - wait: 1s\n    name: start\n",
        "cases/x/t.yaml:4:11: `start` is a word of `since:`, not a step name"
    )]
    #[case::shell_modifier(
        "title: x\nsteps:\n  - shell: \"true\"\n    timeout: 1s\n",
        "`timeout` does not apply to `shell` steps (they take: name, after, since, tolerance)"
    )]
    #[case::code_unknown_socket(
        "title: x\nsteps:\n  - code: assert True\n    socket: s\n",
        "cases/x/t.yaml:4:13: unknown socket `s`"
    )]
    #[case::icmp_two_families(
        "title: x\nflows:\n  c: { peer_port: 1 }\nsteps:\n  - inject: icmp unreachable\n",
        "cases/x/t.yaml:5:13: an ICMP message is written in one family's names"
    )]
    #[case::icmp_bad_code(
        "title: x\nfamilies: [ipv6]\nfamily_reason: y\nflows:\n  c: { peer_port: 1 }\nsteps:\n  - inject: icmp unreachable frag_needed\n",
        "cases/x/t.yaml:7:30: unknown code `frag_needed` of ipv6 ICMP `unreachable`"
    )]
    #[case::icmp_payload(
        "title: x\nfamilies: [ipv4]\nfamily_reason: y\nflows:\n  c: { peer_port: 1 }\nsteps:\n  - inject: icmp unreachable\n    payload: x\n",
        "cases/x/t.yaml:8:14: `payload` does not apply to ICMP `inject` steps"
    )]
    #[case::ts_val_without_ts(
        "title: x\nflows:\n  c: { peer_port: 1 }\nsteps:\n  - expect: S. 0:0(0)\n    ts_val: 5\n",
        "cases/x/t.yaml:6:13: `ts_val` needs a TS option in the segment"
    )]
    #[case::ts_ecr_on_expect(
        "title: x\nflows:\n  c: { peer_port: 1 }\nsteps:\n  - expect: S. <TS val 1 ecr 0>\n    ts_ecr: 5\n",
        "`ts_ecr` does not apply to `expect` steps"
    )]
    #[case::payload_hex_odd(
        "title: x\nflows:\n  c: { peer_port: 1 }\nsteps:\n  - inject: P. 1:2(1)\n    payload_hex: abc\n",
        "cases/x/t.yaml:6:18: payload_hex is pairs of hex digits"
    )]
    #[case::payload_both(
        "title: x\nflows:\n  c: { peer_port: 1 }\nsteps:\n  - inject: P. 1:2(1)\n    payload: a\n    payload_hex: \"61\"\n",
        "give `payload` or `payload_hex`, not both"
    )]
    #[case::payload_hex_length(
        "title: x\nflows:\n  c: { peer_port: 1 }\nsteps:\n  - inject: P. 1:2(1)\n    payload_hex: \"6162\"\n",
        "cases/x/t.yaml:6:18: the payload has 2 bytes but the segment says (1)"
    )]
    #[case::rebinds_nothing_open(
        "title: x\nsteps:\n  - call: s = socket()\n    rebinds: true\n",
        "cases/x/t.yaml:4:14: `rebinds: true`, but the call names no descriptor that is open"
    )]
    #[case::redefined_open_socket(
        "title: x\nsteps:\n  - call: s = socket()\n  - call: s = socket()\n",
        "cases/x/t.yaml:4:11: socket `s` is already defined (`rebinds: true` closes it"
    )]
    #[case::pipe_end_used_later(
        "title: x\nsteps:\n  - call: pipe([rd, wr])\n  - call: close(rd)\n  - call: close(wr)\n  - call: close(rd)\n",
        "cases/x/t.yaml:6:17: `rd` is already closed"
    )]
    #[case::epoll_fd_unknown(
        "title: x\nsteps:\n  - call: e = epoll_create(1)\n  - call: epoll_ctl(e, EPOLL_CTL_ADD, s, {events=EPOLLIN, fd=s})\n",
        "cases/x/t.yaml:4:39: unknown socket `s`"
    )]
    #[case::deep(
        "title: x\nsteps: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
        ""
    )]
    fn bad_cases_get_located_messages(#[case] text: &str, #[case] expected: &str) {
        let errors = errors(text);
        assert!(!errors.is_empty(), "no error for {text:?}");
        assert!(errors.iter().any(|e| e.contains(expected)), "{errors:#?}");
    }

    #[test]
    fn messages_are_one_line_whatever_the_names_hold() {
        // A quoted key may hold a line break; found by fuzzing.
        assert_eq!(
            errors("title: x\nflows:\n  c: { \"peer\\npo\": 1 }\nsteps: []\n"),
            ["cases/x/t.yaml:3:8: unknown key `peer\\npo`; expected one of: peer_port, kernel_port, isn, window"]
        );
        assert_eq!(
            errors("title: x\nflows:\n  c: { peer_port: 1 }\nsteps:\n  - inject: S\n    flow: \"c\\n\"\n"),
            ["cases/x/t.yaml:6:11: unknown flow `c\\n` (did you mean `c`?)"]
        );
    }

    #[test]
    fn a_closed_name_may_be_given_again_and_flows_may_learn_ports_in_turn() {
        let text = "title: x\nflows:\n  a: { peer_port: 8080 }\n  b: { peer_port: 8080 }\nsteps:\n  - call: s = socket()\n  - call: close(s)\n  - call: s = socket()\n";
        assert_eq!(errors(text), Vec::<String>::new());
    }

    #[test]
    fn since_and_isn_load_into_the_step() {
        let text = "title: x\nflows:\n  c: { peer_port: 1 }\nsteps:\n  - expect: S 0:0(0)\n    name: syn\n    isn: new\n  - wait: 1s\n  - expect: S 0:0(0)\n    after: 1s\n    since: syn\n";
        let case = load_str(Path::new("cases/x/t.yaml"), text).unwrap();
        assert!(matches!(case.steps[0].action, Action::Expect { new_isn: true, .. }));
        assert_eq!(case.steps[0].base, Base::Previous);
        assert_eq!(case.steps[2].base, Base::Step(0));
        assert!(matches!(case.steps[2].action, Action::Expect { new_isn: false, .. }));
    }

    const EVERYTHING: &str = "\
title: every key
families: [ipv4]
family_reason: the ICMP names are IPv4's
lab:
  link: tun
  device: tun0
  mtu: 1400
  offloads: nic
  addresses:
    ipv4: { target: 203.0.113.1, peer: 192.0.2.1, prefix_len: 16, gateway: 203.0.113.1 }
rules:
  leftovers: unjudged
  ts_tick: 1ms
  tolerance_percent: 12.5
  gso_size: 1000
  start_on_tick: true
  join_segments: true
  anchor_when_seen: true
payloads: zeros
signal: any
congestion_control: reno
setup: |
  sysctl -q net.ipv4.tcp_ecn=1
    indented
cleanup: \"true\"
flows:
  c1: { peer_port: 40001, kernel_port: 8080, isn: 0 }
  c2: { peer_port: 8080 }
  c3: { peer_port: 8080 }
steps:
  - call: s = socket(SOCK_STREAM, IPPROTO_TCP)
    since: start
    after: 0
  - call: bind(s, target, 8080) = 0
    name: bound
  - inject: S 0:0(0) win 100 <TS val 5 ecr 0>
    flow: c1
    after: 1s..1.5s
    since: previous_due
  - expect: S. 0:0(0) ack 1 <TS val any ecr any>
    flow: c1
    ts_val: 700
    after: any
  - inject: . 1:1(0) ack 1 win 100 <TS val 6 ecr 700>
    flow: c1
    ts_ecr: 700
    payload_hex: \"\"
  - inject: icmp unreachable frag_needed mtu 1200 [1:1461(1460)]
    flow: c1
    tolerance: 5ms
  - call: c = accept(s)
    signal: SIGPIPE
  - call: c = accept(s)
    rebinds: true
  - shell: nstat > /dev/null
    since: bound
    after: 2ms
  - code: |
      assert tcpi_state == TCP_ESTABLISHED
    socket: c
  - call: recv(c, 10) = -1
";

    #[test]
    fn every_key_loads_into_the_model() {
        let case = load_str(Path::new("cases/x/all.yaml"), EVERYTHING).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            case.lab,
            LabSpec {
                link: Link::Tun,
                device: "tun0".into(),
                mtu: 1400,
                offloads: Offloads::Nic,
                addresses: vec![(
                    Family::Ipv4,
                    Addresses {
                        target: "203.0.113.1".parse().unwrap(),
                        peer: "192.0.2.1".parse().unwrap(),
                        prefix_len: 16,
                        gateway: Some("203.0.113.1".parse().unwrap()),
                    }
                )],
            }
        );
        assert_eq!(
            case.rules,
            Rules {
                leftovers: Leftovers::Unjudged,
                ts_tick: Some(Duration::from_millis(1)),
                tolerance_percent: 12.5,
                gso_size: Some(1000),
                start_on_tick: true,
                join_segments: true,
                anchor_when_seen: true,
            }
        );
        assert_eq!(case.congestion_control.as_deref(), Some("reno"));
        let setup = case.setup.as_ref().unwrap();
        assert_eq!(setup.text, "sysctl -q net.ipv4.tcp_ecn=1\n  indented\n");
        assert_eq!((setup.location.line, setup.location.col), (23, 3));
        assert_eq!(case.cleanup.as_ref().unwrap().text, "true");
        let s = &case.steps;
        assert_eq!((s[0].due, s[0].base), (Due::After(Duration::ZERO), Base::Start));
        assert!(matches!(&s[0].action, Action::Call { sigpipe: None, .. }));
        assert_eq!((s[1].due, s[1].base), (Due::Now, Base::Previous));
        assert_eq!(
            (s[2].due, s[2].base),
            (
                Due::Within(Duration::from_secs(1), Duration::from_millis(1500)),
                Base::PreviousDue
            )
        );
        assert!(matches!(&s[2].action, Action::Inject { payload: Some(p), ts_ecr: None, .. } if p.is_empty()));
        assert_eq!(s[3].due, Due::Any);
        assert!(matches!(
            &s[3].action,
            Action::Expect {
                ts_val: Some(700),
                payload: Some(_),
                ..
            }
        ));
        assert!(matches!(&s[4].action, Action::Inject { ts_ecr: Some(700), payload: Some(p), .. } if p.is_empty()));
        assert_eq!(s[5].tolerance, Some(Duration::from_millis(5)));
        assert!(matches!(
            &s[5].action,
            Action::InjectIcmp {
                flow: 0,
                icmp: crate::case::IcmpSpec {
                    kind: 3,
                    code: 4,
                    mtu: Some(1200),
                    ..
                },
                ..
            }
        ));
        assert!(matches!(
            &s[6].action,
            Action::Call {
                sigpipe: Some(true),
                ..
            }
        ));
        assert_eq!(s[8].base, Base::Step(1));
        assert_eq!(s[8].action, Action::Shell("nstat > /dev/null".into()));
        assert_eq!(
            s[9].action,
            Action::Code {
                text: "assert tcpi_state == TCP_ESTABLISHED\n".into(),
                socket: Some("c".into())
            }
        );
        assert!(matches!(&s[10].action, Action::Call { call, .. } if call.outcome == call::Outcome::Failed));
    }

    #[test]
    fn payloads_are_filler_unless_the_case_says_zeros() {
        let text = "title: x\nflows:\n  c: { peer_port: 1 }\nsteps:\n  - inject: P. 1:4(3)\n  - expect: P. 1:4(3)\n    payload_hex: 616263\n  - expect: . 1:1(0)\n    payload: \"\"\n";
        let case = load_str(Path::new("cases/x/t.yaml"), text).unwrap();
        let payloads: Vec<Option<Vec<u8>>> = case
            .steps
            .iter()
            .map(|s| match &s.action {
                Action::Inject { payload, .. } | Action::Expect { payload, .. } => payload.clone(),
                _ => None,
            })
            .collect();
        assert_eq!(payloads, [None, Some(b"abc".to_vec()), Some(vec![])]);
        let zeros = load_str(
            Path::new("cases/x/t.yaml"),
            &text.replace("steps:", "payloads: zeros\nsteps:"),
        )
        .unwrap();
        assert!(matches!(&zeros.steps[0].action, Action::Inject { payload: Some(p), .. } if p == &[0, 0, 0]));
    }

    #[test]
    fn all_problems_of_a_file_are_reported() {
        let errors = errors("title: x\nsteps:\n  - wait: 5\n  - call: lisen(s, 1)\n  - state: q LISTEN\n");
        assert_eq!(errors.len(), 3, "{errors:#?}");
    }

    #[rstest]
    #[case("10ms", Duration::from_millis(10))]
    #[case("1.5s", Duration::from_millis(1500))]
    #[case("250us", Duration::from_micros(250))]
    #[case("2m", Duration::from_secs(120))]
    #[case("0", Duration::ZERO)]
    #[case("300us", Duration::from_micros(300))]
    #[case("0.3ms", Duration::from_micros(300))]
    #[case(".5s", Duration::from_millis(500))]
    #[case("1.0000000001s", Duration::from_secs(1))]
    fn durations_parse(#[case] text: &str, #[case] d: Duration) {
        assert_eq!(parse_duration(text), Ok(d));
    }

    #[rstest]
    #[case("-1s", "a duration cannot be negative: `-1s`")]
    #[case("soon", "expected a duration such as 10ms or 1.5s, not `soon`")]
    #[case("5", "`5` needs a unit, as in 5ms or 5s")]
    #[case("1441m", "`1441m` is longer than a day")]
    fn bad_durations_say_why(#[case] text: &str, #[case] message: &str) {
        assert_eq!(parse_duration(text), Err(message.to_string()));
    }

    #[rstest]
    #[case(Duration::ZERO, "0")]
    #[case(Duration::from_secs(2), "2s")]
    #[case(Duration::from_millis(1500), "1500ms")]
    #[case(Duration::from_micros(300), "300us")]
    #[case(Duration::from_nanos(1_000_000_001), "1000000001ns")]
    #[case(Duration::from_secs(86_400), "86400s")]
    fn durations_are_written_exactly(#[case] d: Duration, #[case] text: &str) {
        assert_eq!(format_duration(d), text);
        assert_eq!(parse_duration(text), Ok(d));
    }

    #[test]
    fn ids_come_from_the_path_under_cases() {
        assert_eq!(default_id(Path::new("/a/cases/closing/x.yaml")), "closing/x");
        assert_eq!(default_id(Path::new("elsewhere/y.yaml")), "y");
    }
}
