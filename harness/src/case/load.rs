//! Loading a case: YAML (serde-saphyr, which keeps line and column of every
//! value) into raw structs, then validation into the [`Case`] model. Every
//! problem becomes a [`Diagnostic`] at `file:line:col`, including those
//! inside segment and call notations, whose columns are mapped through the
//! YAML scalar they sit in. All problems of a file are reported at once.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;

use super::call::{self, Func, parse_call, suggest};
use super::{Action, Case, CaseError, DEFAULT_CALL_TIMEOUT, Diagnostic, FlowSpec, Location, Step, Target};
use crate::behaviors;
use crate::packet::Family;
use crate::packet::frame::Checksum;
use crate::packet::notation::{self, NotationError};
use crate::packet::tcp::Flags;
use crate::probe::TcpState;

/// Case files larger than this are refused before parsing.
const MAX_FILE_BYTES: usize = 1 << 20;
/// Deepest YAML nesting accepted (a case needs about 4).
const MAX_DEPTH: usize = 32;

/// A YAML scalar of any type, kept as its text (`60`, `1s`, `true`, `0x1f`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar (a number or a string)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(if v { "1" } else { "0" }.to_string()))
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
    id: Option<Spanned<String>>,
    title: Spanned<String>,
    description: Option<String>,
    #[serde(default)]
    covers: Vec<Spanned<String>>,
    #[serde(default)]
    rfc: Vec<String>,
    families: Option<Spanned<Vec<Spanned<String>>>>,
    family_reason: Option<String>,
    #[serde(default)]
    sysctls: Entries<Spanned<String>, Spanned<Scalar>>,
    tolerance: Option<Spanned<Scalar>>,
    #[serde(default)]
    flows: Entries<Spanned<String>, Spanned<RawFlow>>,
    steps: Vec<Spanned<RawStep>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlow {
    peer_port: u16,
    kernel_port: Option<u16>,
    isn: Option<u32>,
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
    name: Option<Spanned<String>>,
    call: Option<Spanned<String>>,
    #[serde(rename = "await")]
    await_: Option<Spanned<String>>,
    inject: Option<Spanned<String>>,
    expect: Option<Spanned<String>>,
    expect_nothing: Option<Spanned<Scalar>>,
    state: Option<Spanned<String>>,
    accept_queue: Option<Spanned<RawQueue>>,
    wait: Option<Spanned<Scalar>>,
    read_sysctl: Option<Spanned<String>>,
    flow: Option<Spanned<String>>,
    after: Option<Spanned<Scalar>>,
    since: Option<Spanned<String>>,
    tolerance: Option<Spanned<Scalar>>,
    timeout: Option<Spanned<Scalar>>,
    background: Option<Spanned<bool>>,
    signal: Option<Spanned<String>>,
    payload: Option<Spanned<String>>,
    checksum: Option<Spanned<Scalar>>,
    isn: Option<Spanned<String>>,
}

/// The keys a step may have besides its action, per action.
const MODIFIERS: [(&str, &[&str]); 9] = [
    ("call", &["name", "after", "since", "timeout", "background", "signal"]),
    ("await", &["name", "after", "since", "tolerance", "timeout"]),
    ("inject", &["name", "after", "since", "flow", "payload", "checksum"]),
    (
        "expect",
        &["name", "after", "since", "tolerance", "flow", "payload", "isn"],
    ),
    ("expect_nothing", &["name", "after", "since", "flow"]),
    ("state", &["name", "after", "since"]),
    ("accept_queue", &["name", "after", "since"]),
    ("wait", &["name"]),
    ("read_sysctl", &["name", "after", "since"]),
];

/// Every case file under `paths` (files as given, directories searched for `*.yaml`), sorted.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, std::io::Error> {
    let mut files = Vec::new();
    for path in paths {
        let meta =
            std::fs::metadata(path).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        if meta.is_dir() {
            walk(path, &mut files)?;
        } else {
            files.push(path.clone());
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), std::io::Error> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Loads and validates one case file.
pub fn load(path: &Path) -> Result<Case, CaseError> {
    let file = Arc::new(path.to_path_buf());
    let at_start = |message: String| CaseError {
        diagnostics: vec![Diagnostic {
            location: Location {
                file: file.clone(),
                line: 1,
                col: 1,
            },
            message,
        }],
    };
    let bytes = std::fs::read(path).map_err(|e| at_start(format!("cannot read: {e}")))?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(at_start(format!(
            "the file has {} bytes; case files are limited to {MAX_FILE_BYTES}",
            bytes.len()
        )));
    }
    let text = match std::str::from_utf8(&bytes) {
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
    };
    if text.trim().is_empty() {
        return Err(source.error_at(1, 1, "the file is empty: a case needs at least `title` and `steps`"));
    }
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! { max_depth: MAX_DEPTH },
        with_snippet: false,
    };
    let raw: RawCase = match serde_saphyr::from_str_with_options(text, options) {
        Ok(raw) => raw,
        Err(e) => {
            let (line, col) = e
                .location()
                .map_or((1, 1), |l| (l.line().max(1) as u32, l.column().max(1) as u32));
            return Err(source.error_at(line, col, &yaml_message(&e)));
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

/// A parser error message without its location suffix, with a suggestion for misspelled keys.
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let full = e.without_snippet().to_string();
    let msg = full.rfind(" at line ").map_or(full.as_str(), |i| &full[..i]).trim();
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let (key, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let candidates: Vec<&str> = expected
            .trim_start_matches(", expected one of ")
            .trim_start_matches(", expected ")
            .split(", ")
            .map(|s| s.trim_matches('`'))
            .filter(|s| !s.is_empty())
            .collect();
        let hint = suggest(key, &candidates);
        return if hint.is_empty() {
            format!("unknown key `{key}`; expected one of: {}", candidates.join(", "))
        } else {
            format!("unknown key `{key}`{hint}")
        };
    }
    for (ty, range) in [("u8", "0..=255"), ("u16", "0..=65535"), ("u32", "0..=4294967295")] {
        if msg.starts_with(&format!("invalid {ty}")) {
            return format!("expected an integer in {range}");
        }
    }
    if msg.starts_with("missing field `") {
        return msg.replacen("missing field", "missing key", 1);
    }
    msg.to_string()
}

struct Source<'a> {
    file: Arc<PathBuf>,
    text: &'a str,
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
                message: message.to_string(),
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

    /// The place of byte `offset` inside a string value.
    fn inside(&self, value: &Spanned<String>, offset: usize) -> Location {
        let base = self.loc(&value.referenced);
        let quoted = value
            .referenced
            .span()
            .byte_offset()
            .and_then(|o| self.text.get(o as usize..))
            .is_some_and(|s| s.starts_with('"') || s.starts_with('\''));
        let prefix = value.value.get(..offset).unwrap_or(&value.value);
        match prefix.rfind('\n') {
            Some(nl) => Location {
                line: base.line + prefix.matches('\n').count() as u32,
                col: base.col + prefix[nl + 1..].chars().count() as u32,
                ..base
            },
            None => Location {
                col: base.col + u32::from(quoted) + prefix.chars().count() as u32,
                ..base
            },
        }
    }
}

struct Validator<'a> {
    source: &'a Source<'a>,
    diagnostics: Vec<Diagnostic>,
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
            message: message.into(),
        });
    }

    fn error_at<T>(&mut self, spanned: &Spanned<T>, message: impl Into<String>) {
        let location = self.source.loc(&spanned.referenced);
        self.error(location, message);
    }

    fn duration(&mut self, value: &Spanned<Scalar>, what: &str) -> Option<Duration> {
        match parse_duration(&value.value.0) {
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
        let families = self.families(&raw);
        let mut sysctls = Vec::new();
        for (name, value) in &raw.sysctls.0 {
            if let Err(e) = crate::sysctl::path(&name.value) {
                self.error_at(name, e.to_string());
            } else if sysctls.iter().any(|(n, _): &(String, String)| *n == name.value) {
                self.error_at(name, format!("{} is set twice", name.value));
            }
            sysctls.push((name.value.clone(), value.value.0.clone()));
        }
        let tolerance = raw.tolerance.as_ref().and_then(|t| self.duration(t, "tolerance"));
        let flows = self.flows(&raw);
        let steps = self.steps(&raw, &flows);
        Case {
            id,
            path: self.source.file.clone(),
            title: raw.title.value.trim().to_string(),
            description: raw.description,
            covers: raw.covers.into_iter().map(|c| c.value).collect(),
            rfc: raw.rfc,
            families,
            family_reason: raw.family_reason,
            sysctls,
            tolerance,
            flows,
            steps,
        }
    }

    fn families(&mut self, raw: &RawCase) -> Vec<Family> {
        let Some(list) = &raw.families else {
            if raw.family_reason.is_some() {
                self.error_at(
                    &raw.title,
                    "`family_reason` is given but the case runs on both families",
                );
            }
            return Family::ALL.to_vec();
        };
        let mut families = Vec::new();
        for f in &list.value {
            match Family::ALL.iter().find(|x| x.name() == f.value) {
                Some(x) if families.contains(x) => self.error_at(f, format!("{} is listed twice", f.value)),
                Some(x) => families.push(*x),
                None => self.error_at(f, format!("unknown family `{}`; families are ipv4 and ipv6", f.value)),
            }
        }
        if list.value.is_empty() {
            self.error_at(list, "`families` is empty; leave it out to run on both");
        }
        if families.len() == 1 && raw.family_reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
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
            if flows.iter().any(|f| f.name == name.value) {
                self.error_at(name, format!("flow `{}` is defined twice", name.value));
            }
            let f = &flow.value;
            if flows
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

    fn steps(&mut self, raw: &RawCase, flows: &[FlowSpec]) -> Vec<Step> {
        let mut steps: Vec<Step> = Vec::new();
        let mut names: HashSet<String> = HashSet::new();
        // step name -> its index in `steps`, for `since`
        let mut named: HashMap<String, usize> = HashMap::new();
        let mut sockets: HashMap<String, SockStatus> = HashMap::new();
        // socket operated on -> (name the call creates, location of the call)
        let mut pending: HashMap<String, (Option<String>, Location)> = HashMap::new();
        for step in &raw.steps {
            if let Some(name) = &step.value.name
                && !names.insert(name.value.clone())
            {
                self.error_at(name, format!("step name `{}` is used twice", name.value));
            }
            let since = step.value.since.as_ref().and_then(|since| {
                let found = named.get(&since.value).copied();
                if found.is_none() {
                    let hint = suggest(&since.value, named.keys());
                    self.error_at(since, format!("no earlier step is named `{}`{hint}", since.value));
                }
                found
            });
            if let Some(s) = self.step(step, flows, &mut sockets, &mut pending) {
                if let Some(name) = &s.name {
                    named.insert(name.clone(), steps.len());
                }
                steps.push(Step { since, ..s });
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

    fn step(
        &mut self,
        step: &Spanned<RawStep>,
        flows: &[FlowSpec],
        sockets: &mut HashMap<String, SockStatus>,
        pending: &mut HashMap<String, (Option<String>, Location)>,
    ) -> Option<Step> {
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
        let allowed = MODIFIERS
            .iter()
            .find(|(k, _)| *k == keyword)
            .map_or(&[][..], |(_, m)| *m);
        let given: [(&str, Option<&serde_saphyr::Location>); 11] = [
            ("flow", r.flow.as_ref().map(|s| &s.referenced)),
            ("after", r.after.as_ref().map(|s| &s.referenced)),
            ("since", r.since.as_ref().map(|s| &s.referenced)),
            ("isn", r.isn.as_ref().map(|s| &s.referenced)),
            ("tolerance", r.tolerance.as_ref().map(|s| &s.referenced)),
            ("timeout", r.timeout.as_ref().map(|s| &s.referenced)),
            ("background", r.background.as_ref().map(|s| &s.referenced)),
            ("signal", r.signal.as_ref().map(|s| &s.referenced)),
            ("payload", r.payload.as_ref().map(|s| &s.referenced)),
            ("checksum", r.checksum.as_ref().map(|s| &s.referenced)),
            ("name", r.name.as_ref().map(|s| &s.referenced)),
        ];
        let mut bad_modifier = false;
        for (key, l) in given {
            if let Some(l) = l
                && !allowed.contains(&key)
            {
                let l = self.source.loc(l);
                self.error(
                    l,
                    format!(
                        "`{key}` does not apply to `{keyword}` steps (they take: {})",
                        allowed.join(", ")
                    ),
                );
                bad_modifier = true;
            }
        }
        let after = r.after.as_ref().and_then(|a| self.duration(a, "after"));
        let tolerance = r.tolerance.as_ref().and_then(|t| self.duration(t, "tolerance"));
        let timeout = r.timeout.as_ref().and_then(|t| self.duration(t, "timeout"));
        let action = match keyword {
            "call" => self.call_step(r, timeout, sockets, pending)?,
            "await" => {
                let name = r.await_.as_ref()?;
                match pending.remove(&name.value) {
                    Some((created, _)) => {
                        if let Some(c) = created {
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
                let payload = r.payload.as_ref().map(|p| p.value.as_bytes().to_vec());
                if let (Some(p), Some(crate::packet::pattern::Num::Lit(len))) = (&payload, pattern.len)
                    && p.len() != len as usize
                {
                    self.error_at(
                        r.payload.as_ref()?,
                        format!("the payload has {} bytes but the segment says ({len})", p.len()),
                    );
                }
                let flow = self.flow_ref(step, flows, false)??;
                if keyword == "inject" {
                    let checksum = match &r.checksum {
                        None => Checksum::Auto,
                        Some(c) => match parse_checksum(&c.value.0) {
                            Some(c) => c,
                            None => {
                                self.error_at(c, "checksum is `auto`, `corrupt` or a 16-bit value such as 0x1c46");
                                Checksum::Auto
                            }
                        },
                    };
                    Action::Inject {
                        flow,
                        text: text.value.clone(),
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
            _ => unreachable!("keyword comes from the action list"),
        };
        if bad_modifier {
            return None;
        }
        Some(Step {
            location,
            name: r.name.as_ref().map(|n| n.value.clone()),
            after,
            since: None,
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
        sockets: &mut HashMap<String, SockStatus>,
        pending: &mut HashMap<String, (Option<String>, Location)>,
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
        if let Some(sock) = call.func.sock() {
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
            if pending.contains_key(sock) && background {
                let l = self.source.loc(&text.referenced);
                self.error(l, format!("`{sock}` already has a background call; await it first"));
            }
        }
        if let Some(name) = &call.binds
            && (sockets.contains_key(name) || pending.values().any(|(c, _)| c.as_deref() == Some(name)))
        {
            let l = self.source.inside(text, 0);
            self.error(l, format!("socket `{name}` is already defined"));
        }
        if background {
            let Some(sock) = call.func.sock() else {
                self.error_at(
                    r.background.as_ref()?,
                    "socket() never blocks: it cannot run in the background",
                );
                return None;
            };
            pending.insert(
                sock.to_string(),
                (call.binds.clone(), self.source.loc(&text.referenced)),
            );
        } else if let Some(name) = &call.binds {
            sockets.insert(name.clone(), SockStatus::Open);
        }
        if let Func::Close { sock } = &call.func {
            sockets.insert(sock.clone(), SockStatus::Closed);
        }
        let sigpipe = match &r.signal {
            None => false,
            Some(s) if s.value == "SIGPIPE" => true,
            Some(s) if s.value == "none" => false,
            Some(s) => {
                self.error_at(s, format!("signal is `SIGPIPE` or `none`, not `{}`", s.value));
                false
            }
        };
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

fn is_name(s: &str) -> bool {
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

/// The ID of a case file: its path under the nearest `cases` directory, without extension.
fn default_id(path: &Path) -> String {
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

/// Parses `10ms`, `1.5s`, `250us`, `2m`, or `0`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit.trim() {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "" => return Err(format!("`{text}` needs a unit, as in {text}ms or {text}s")),
        u => return Err(format!("unknown unit `{u}` (use ns, us, ms, s or m)")),
    };
    match number.parse::<f64>() {
        Ok(n) if n.is_finite() && n * scale <= 86_400.0 => Ok(Duration::from_secs_f64(n * scale)),
        Ok(_) => Err(format!("`{text}` is longer than a day")),
        Err(_) => Err(format!("expected a duration such as 10ms or 1.5s, not `{text}`")),
    }
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

    #[rstest]
    #[case::unknown_top_key(
        "titel: x\nsteps: []\n",
        "cases/x/t.yaml:1:1: unknown key `titel` (did you mean `title`?)"
    )]
    #[case::unknown_step_key(
        "title: x\nsteps:\n  - wait: 1s\n    aftr: 1s\n",
        "cases/x/t.yaml:4:5: unknown key `aftr` (did you mean `after`?)"
    )]
    #[case::wrong_type("title: [1]\nsteps: []\n", "cases/x/t.yaml:1:8: expected string scalar")]
    #[case::not_a_mapping("- a\n", "cases/x/t.yaml:1:1: expected mapping start")]
    #[case::empty("\n\n", "cases/x/t.yaml:1:1: the file is empty")]
    #[case::missing_steps("title: x\n", "missing key `steps`")]
    #[case::port_range(
        "title: x\nflows:\n  c: { peer_port: 70000 }\nsteps: []\n",
        "cases/x/t.yaml:3:19: expected an integer in 0..=65535"
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
    #[case::duplicate_key("title: x\ntitle: y\nsteps: []\n", "duplicate mapping key")]
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
    fn since_and_isn_load_into_the_step() {
        let text = "title: x\nflows:\n  c: { peer_port: 1 }\nsteps:\n  - expect: S 0:0(0)\n    name: syn\n    isn: new\n  - wait: 1s\n  - expect: S 0:0(0)\n    after: 1s\n    since: syn\n";
        let case = load_str(Path::new("cases/x/t.yaml"), text).unwrap();
        assert!(matches!(case.steps[0].action, Action::Expect { new_isn: true, .. }));
        assert_eq!(case.steps[0].since, None);
        assert_eq!(case.steps[2].since, Some(0));
        assert!(matches!(case.steps[2].action, Action::Expect { new_isn: false, .. }));
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
    fn durations_parse(#[case] text: &str, #[case] d: Duration) {
        assert_eq!(parse_duration(text), Ok(d));
    }

    #[test]
    fn ids_come_from_the_path_under_cases() {
        assert_eq!(default_id(Path::new("/a/cases/closing/x.yaml")), "closing/x");
        assert_eq!(default_id(Path::new("elsewhere/y.yaml")), "y");
    }
}
