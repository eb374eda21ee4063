//! Writing a [`Case`] as a YAML case file (`docs/CASES.md`): the inverse of
//! the loader, so that what [`to_yaml`] writes loads back as the same case.
//! `tcpconform convert` writes packetdrill scripts this way.
//!
//! Only two things of the model are not written as they are, because YAML
//! says them otherwise ([`yaml_names`]): a descriptor named by its number
//! (`3`, as packetdrill names them) is written `fd3`, since a YAML name
//! starts with a letter, and a step that another's timing counts from is
//! named (`step5`), since `since:` refers to steps by name. Shell commands,
//! Python blocks and descriptions are block scalars that keep every
//! character; anything else that YAML cannot say is an error that names it.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use super::call::{Func, Unwritable, format_call};
use super::icmp::format_icmp;
use super::load::{format_duration, is_name};
use super::{
    Action, Base, Case, DEFAULT_CALL_TIMEOUT, Due, LabSpec, Leftovers, Link, Location, Offloads, Rules, Step, Syntax,
    Target,
};
use crate::packet::frame::Checksum;
use crate::packet::pattern::{Num, SegmentPattern};

/// Why a case cannot be written as YAML.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    /// The case cannot run: its syntax holds a construct the model cannot say.
    #[error("the case cannot run yet, so it has no YAML form: {0}")]
    Unsupported(String),
    /// A case-wide element YAML cannot say.
    #[error("the case cannot be written in YAML")]
    Case(#[source] Unwritable),
    /// A step YAML cannot say.
    #[error("step {number} ({location}) cannot be written in YAML")]
    Step {
        /// The step's number, from 1.
        number: usize,
        /// Where it is written.
        location: Location,
        /// What of it cannot be said.
        #[source]
        cause: Unwritable,
    },
}

/// The case as YAML names its parts: descriptors named by a number get
/// the name `fdN`, and steps another step's timing counts from (`since:`)
/// are named `stepN` (their number) when they have no name.
pub fn yaml_names(case: &Case) -> Result<Case, YamlError> {
    let mut used: HashSet<String> = HashSet::new();
    for step in &case.steps {
        match &step.action {
            Action::Call { call, .. } => {
                used.extend(call.binds.iter().cloned());
                used.extend(call.func.fd_names().into_iter().map(str::to_string));
            }
            Action::Await { socket, .. } | Action::AcceptQueue { socket, .. } => {
                used.insert(socket.clone());
            }
            Action::State {
                target: Target::Socket(s),
                ..
            } => {
                used.insert(s.clone());
            }
            Action::Code { socket: Some(s), .. } => {
                used.insert(s.clone());
            }
            _ => {}
        }
    }
    let mut renamed: HashMap<String, String> = HashMap::new();
    for name in &used {
        if is_name(name) {
            continue;
        }
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
            return Err(YamlError::Case(Unwritable(format!(
                "the descriptor name `{name}`, which is neither a name nor a number"
            ))));
        }
        let new = format!("fd{name}");
        if used.contains(&new) {
            return Err(YamlError::Case(Unwritable(format!(
                "descriptor `{name}`, written `{new}` in YAML, which the case already names"
            ))));
        }
        renamed.insert(name.clone(), new);
    }
    let new = |s: &str| renamed.get(s).cloned().unwrap_or_else(|| s.to_string());
    let mut out = case.clone();
    let names: HashSet<String> = case.steps.iter().filter_map(|s| s.name.clone()).collect();
    let referenced: HashSet<usize> = case
        .steps
        .iter()
        .filter_map(|s| match s.base {
            Base::Step(i) => Some(i),
            _ => None,
        })
        .collect();
    for (i, step) in out.steps.iter_mut().enumerate() {
        if referenced.contains(&i) && step.name.is_none() {
            let name = format!("step{}", i + 1);
            if names.contains(&name) {
                return Err(YamlError::Case(Unwritable(format!(
                    "step {} needs a name for `since:`, and `{name}` is another step's",
                    i + 1
                ))));
            }
            step.name = Some(name);
        }
        match &mut step.action {
            Action::Call { call, .. } => {
                call.binds = call.binds.as_deref().map(new);
                call.func.rename_fds(&new);
            }
            Action::Await { socket, .. } | Action::AcceptQueue { socket, .. } => *socket = new(socket),
            Action::State {
                target: Target::Socket(s),
                ..
            } => *s = new(s),
            Action::Code { socket: Some(s), .. } => *s = new(s),
            _ => {}
        }
    }
    Ok(out)
}

/// Whether `s` can be written as a plain YAML scalar and read back as the same string.
fn plain(s: &str) -> bool {
    let special = [
        "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", "yes", "Yes", "YES", "no",
        "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "y", "Y", "n", "N",
    ];
    let number = s.parse::<f64>().is_ok()
        || s.starts_with(['+', '-', '.']) && s[1..].starts_with(|c: char| c.is_ascii_digit())
        || s.starts_with("0x")
        || s.starts_with("0o")
        || s.to_lowercase().trim_start_matches(['+', '-', '.']).starts_with("inf")
        || s.to_lowercase().trim_start_matches('.').starts_with("nan");
    !s.is_empty()
        && !special.contains(&s)
        && !number
        && !s.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@` \t".contains(c))
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && !s.contains(" #")
        && s.chars()
            .all(|c| !c.is_control() && !matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}'))
}

/// `s` as a double-quoted YAML scalar.
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `s` as a one-line YAML scalar: plain when that reads back the same, else quoted.
fn scalar(s: &str) -> String {
    if plain(s) { s.to_string() } else { quoted(s) }
}

/// `key: value` for text of any length, after `lead` (`""` at the top,
/// `"  - "` for a step's action): a literal block scalar, indented 2 more
/// than its mapping, that keeps every line, indentation and final line
/// break; quoted where a block cannot hold the text.
fn text_value(out: &mut String, lead: &str, key: &str, text: &str) {
    let blockable = text.contains('\n')
        && text.chars().all(|c| {
            c == '\n' || c == '\t' || !c.is_control() && !matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}')
        });
    if !blockable {
        let _ = writeln!(out, "{lead}{key}: {}", scalar(text));
        return;
    }
    let trailing = text.len() - text.trim_end_matches('\n').len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let body = &text[..text.len() - trailing];
    // An explicit indentation when the first line's own would be taken for the block's.
    let first = body.split('\n').find(|l| !l.is_empty());
    let indicator = if first.is_some_and(|l| l.starts_with([' ', '\t'])) {
        "2"
    } else {
        ""
    };
    let _ = writeln!(out, "{lead}{key}: |{indicator}{chomp}");
    let pad = " ".repeat(lead.len() + 2);
    for line in body.split('\n') {
        if line.is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(out, "{pad}{line}");
        }
    }
    for _ in 1..trailing {
        out.push('\n');
    }
}

/// `[a, b]` of plain or quoted strings.
fn list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|i| scalar(i)).collect();
    format!("[{}]", items.join(", "))
}

/// Whether every segment of the case carries zeros of its length, as packetdrill's do.
fn payloads_are_zeros(case: &Case) -> bool {
    let zeros = |pattern: &SegmentPattern, payload: &Option<Vec<u8>>| match (pattern.len, payload) {
        (Some(Num::Lit(len)), Some(p)) => p.len() == len as usize && p.iter().all(|b| *b == 0),
        _ => false,
    };
    let mut segments = case.steps.iter().filter_map(|s| match &s.action {
        Action::Inject { pattern, payload, .. } | Action::Expect { pattern, payload, .. } => Some((pattern, payload)),
        _ => None,
    });
    let mut any = false;
    segments.all(|(pattern, payload)| {
        any = true;
        zeros(pattern, payload)
    }) && any
}

/// The `signal` of every call, when they all have the same (else the default, `none`).
fn calls_signal(case: &Case) -> Option<bool> {
    let mut signals = case.steps.iter().filter_map(|s| match &s.action {
        Action::Call { sigpipe, .. } => Some(*sigpipe),
        _ => None,
    });
    match signals.next() {
        Some(first) if signals.all(|s| s == first) => first,
        _ => Some(false),
    }
}

fn signal_word(signal: Option<bool>) -> &'static str {
    match signal {
        Some(true) => "SIGPIPE",
        Some(false) => "none",
        None => "any",
    }
}

/// Writes `case` as a YAML case file.
pub fn to_yaml(case: &Case) -> Result<String, YamlError> {
    if let Some(why) = &case.unsupported {
        return Err(YamlError::Unsupported(why.clone()));
    }
    let case = &yaml_names(case)?;
    let unwritable = |what: String| YamlError::Case(Unwritable(what));
    let mut out = String::new();
    let families: Vec<String> = case.families.iter().map(|f| f.name().to_string()).collect();
    let _ = writeln!(
        out,
        "# {} on {}, written by `tcpconform convert`.",
        case.path.display(),
        families.join(" and ")
    );
    let _ = writeln!(out, "id: {}", scalar(&case.id));
    let _ = writeln!(out, "title: {}", scalar(&case.title));
    if let Some(d) = &case.description {
        text_value(&mut out, "", "description", d);
    }
    if !case.covers.is_empty() {
        let _ = writeln!(out, "covers: {}", list(&case.covers));
    }
    if !case.rfc.is_empty() {
        let _ = writeln!(out, "rfc: {}", list(&case.rfc));
    }
    if !case.requirements.is_empty() {
        let _ = writeln!(out, "requirements: {}", list(&case.requirements));
    }
    if !case.deviates.is_empty() {
        out.push_str("deviates:\n");
        for (id, why) in &case.deviates {
            let _ = writeln!(out, "  {}: {}", scalar(id), quoted(why));
        }
    }
    if case.families != crate::packet::Family::ALL {
        let _ = writeln!(out, "families: {}", list(&families));
    }
    match (&case.family_reason, case.families.len()) {
        (Some(r), 1) => {
            let _ = writeln!(out, "family_reason: {}", scalar(r));
        }
        (None, 1) => return Err(unwritable("a case on one family with no `family_reason`".into())),
        (Some(_), _) => return Err(unwritable("a `family_reason` for a case on both families".into())),
        (None, _) => {}
    }
    if !case.sysctls.is_empty() {
        out.push_str("sysctls:\n");
        for (name, value) in &case.sysctls {
            let _ = writeln!(out, "  {}: {}", scalar(name), quoted(value));
        }
    }
    if let Some(t) = case.tolerance {
        let _ = writeln!(out, "tolerance: {}", format_duration(t));
    }
    lab(&mut out, &case.lab);
    rules(&mut out, &case.rules);
    let zeros = payloads_are_zeros(case);
    if zeros {
        out.push_str("payloads: zeros\n");
    }
    let signal = calls_signal(case);
    if signal != Some(false) {
        let _ = writeln!(out, "signal: {}", signal_word(signal));
    }
    if let Some(cc) = &case.congestion_control {
        let _ = writeln!(out, "congestion_control: {}", scalar(cc));
    }
    for (key, shell) in [("setup", &case.setup), ("cleanup", &case.cleanup)] {
        if let Some(s) = shell {
            text_value(&mut out, "", key, &s.text);
        }
    }
    if !case.flows.is_empty() {
        out.push_str("flows:\n");
        for f in &case.flows {
            if !is_name(&f.name) {
                return Err(unwritable(format!("the flow name `{}`", f.name)));
            }
            let mut fields = vec![format!("peer_port: {}", f.peer_port)];
            fields.extend(f.kernel_port.map(|p| format!("kernel_port: {p}")));
            fields.push(format!("isn: {}", f.isn));
            if f.window != u16::MAX {
                fields.push(format!("window: {}", f.window));
            }
            let _ = writeln!(out, "  {}: {{ {} }}", f.name, fields.join(", "));
        }
    }
    out.push_str("steps:\n");
    if case.steps.is_empty() {
        out.truncate(out.len() - 1);
        out.push_str(" []\n");
    }
    let mut open = Descriptors::default();
    for (i, step) in case.steps.iter().enumerate() {
        step_yaml(&mut out, case, (i + 1, step), Defaults { zeros, signal }, &mut open).map_err(|cause| {
            YamlError::Step {
                number: i + 1,
                location: step.location.clone(),
                cause,
            }
        })?;
    }
    Ok(out)
}

fn lab(out: &mut String, lab: &LabSpec) {
    let default = LabSpec::default();
    if *lab == default {
        return;
    }
    out.push_str("lab:\n");
    if lab.link != default.link {
        let link = match lab.link {
            Link::Veth => "veth",
            Link::Tun => "tun",
        };
        let _ = writeln!(out, "  link: {link}");
    }
    if lab.device != default.device {
        let _ = writeln!(out, "  device: {}", scalar(&lab.device));
    }
    if lab.mtu != default.mtu {
        let _ = writeln!(out, "  mtu: {}", lab.mtu);
    }
    if lab.offloads != default.offloads {
        let offloads = match lab.offloads {
            Offloads::Off => "off",
            Offloads::Nic => "nic",
        };
        let _ = writeln!(out, "  offloads: {offloads}");
    }
    if !lab.addresses.is_empty() {
        out.push_str("  addresses:\n");
        for (family, a) in &lab.addresses {
            let _ = writeln!(out, "    {}:", family.name());
            let _ = writeln!(out, "      target: {}", quoted(&a.target.to_string()));
            let _ = writeln!(out, "      peer: {}", quoted(&a.peer.to_string()));
            let _ = writeln!(out, "      prefix_len: {}", a.prefix_len);
            if let Some(g) = a.gateway {
                let _ = writeln!(out, "      gateway: {}", quoted(&g.to_string()));
            }
        }
    }
}

fn rules(out: &mut String, rules: &Rules) {
    let default = Rules::default();
    if *rules == default {
        return;
    }
    out.push_str("rules:\n");
    if rules.leftovers != default.leftovers {
        let leftovers = match rules.leftovers {
            Leftovers::Fail => "fail",
            Leftovers::Unjudged => "unjudged",
        };
        let _ = writeln!(out, "  leftovers: {leftovers}");
    }
    if let Some(tick) = rules.ts_tick {
        let _ = writeln!(out, "  ts_tick: {}", format_duration(tick));
    }
    if rules.tolerance_percent != default.tolerance_percent {
        let _ = writeln!(out, "  tolerance_percent: {}", rules.tolerance_percent);
    }
    if let Some(gso) = rules.gso_size {
        let _ = writeln!(out, "  gso_size: {gso}");
    }
    if rules.start_on_tick {
        out.push_str("  start_on_tick: true\n");
    }
    if rules.join_segments {
        out.push_str("  join_segments: true\n");
    }
    if rules.anchor_when_seen {
        out.push_str("  anchor_when_seen: true\n");
    }
}

/// `payload:` as text when it is printable ASCII, else `payload_hex:`.
fn payload(out: &mut String, payload: &Option<Vec<u8>>) {
    let Some(bytes) = payload else { return };
    if bytes
        .iter()
        .all(|b| (0x20..0x7f).contains(b) || matches!(b, b'\n' | b'\r' | b'\t'))
    {
        let text = String::from_utf8_lossy(bytes);
        let _ = writeln!(out, "    payload: {}", quoted(&text));
    } else {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let _ = writeln!(out, "    payload_hex: \"{hex}\"");
    }
}

/// What the case's top-level keys say for the steps that do not.
#[derive(Clone, Copy)]
struct Defaults {
    /// `payloads: zeros`.
    zeros: bool,
    /// `signal:`.
    signal: Option<bool>,
}

/// The descriptors open at a step, for `rebinds:`: by name, and those a background call will name.
#[derive(Default)]
struct Descriptors {
    open: HashSet<String>,
    pending: HashMap<String, Vec<String>>,
}

impl Descriptors {
    /// Follows a call; whether it names a descriptor that is still open.
    fn call(&mut self, call: &super::call::Call, background: bool) -> bool {
        let created: Vec<String> = match &call.func {
            Func::Pipe { read, write } => vec![read.clone(), write.clone()],
            _ => call.binds.iter().cloned().collect(),
        };
        let rebinds = created.iter().any(|c| self.open.contains(c));
        match (&call.func, background) {
            (Func::Close { sock }, _) => {
                self.open.remove(sock);
            }
            (func, true) => {
                self.pending
                    .insert(func.sock().unwrap_or_default().to_string(), created);
            }
            (_, false) => self.open.extend(created),
        }
        rebinds
    }

    fn awaited(&mut self, socket: &str) {
        self.open.extend(self.pending.remove(socket).unwrap_or_default());
    }
}

fn step_yaml(
    out: &mut String,
    case: &Case,
    (number, step): (usize, &Step),
    Defaults { zeros, signal }: Defaults,
    open: &mut Descriptors,
) -> Result<(), Unwritable> {
    if case.syntax == Syntax::Packetdrill {
        let text = match &step.action {
            Action::Call { text, .. }
            | Action::Inject { text, .. }
            | Action::InjectIcmp { text, .. }
            | Action::Expect { text, .. } => format!(": {}", text.replace(['\n', '\r'], " ")),
            _ => String::new(),
        };
        let _ = writeln!(out, "  # line {}{text}", step.location.line);
    }
    let flow_name = |flow: usize| {
        case.flows
            .get(flow)
            .map(|f| f.name.as_str())
            .ok_or_else(|| Unwritable(format!("flow {flow}, which the case does not have")))
    };
    let flow = |out: &mut String, flow: usize| -> Result<(), Unwritable> {
        let name = flow_name(flow)?;
        if case.flows.len() != 1 {
            let _ = writeln!(out, "    flow: {name}");
        }
        Ok(())
    };
    let one_line = |out: &mut String, key: &str, value: &str| {
        let _ = writeln!(out, "  - {key}: {}", scalar(value));
    };
    match &step.action {
        Action::Call {
            call,
            background,
            sigpipe,
            timeout,
            ..
        } => {
            one_line(out, "call", &format_call(call)?);
            if open.call(call, *background) {
                out.push_str("    rebinds: true\n");
            }
            if *background {
                out.push_str("    background: true\n");
            }
            if *sigpipe != signal {
                let _ = writeln!(out, "    signal: {}", signal_word(*sigpipe));
            }
            if *timeout != DEFAULT_CALL_TIMEOUT {
                let _ = writeln!(out, "    timeout: {}", format_duration(*timeout));
            }
        }
        Action::Await { socket, timeout } => {
            open.awaited(socket);
            one_line(out, "await", socket);
            if *timeout != DEFAULT_CALL_TIMEOUT {
                let _ = writeln!(out, "    timeout: {}", format_duration(*timeout));
            }
        }
        Action::Inject {
            flow: f,
            pattern,
            payload: p,
            checksum,
            ts_ecr,
            ..
        } => {
            one_line(out, "inject", &pattern.to_string());
            flow(out, *f)?;
            if !zeros {
                payload(out, p);
            }
            match checksum {
                Checksum::Auto => {}
                Checksum::Corrupt => out.push_str("    checksum: corrupt\n"),
                Checksum::Value(v) => {
                    let _ = writeln!(out, "    checksum: 0x{v:04x}");
                }
            }
            if let Some(ecr) = ts_ecr {
                let _ = writeln!(out, "    ts_ecr: {ecr}");
            }
        }
        Action::InjectIcmp { flow: f, icmp, .. } => {
            let [family] = case.families.as_slice() else {
                return Err(Unwritable(
                    "an ICMP message in a case on both families (its names are one family's)".into(),
                ));
            };
            one_line(out, "inject", &format_icmp(icmp, *family));
            flow(out, *f)?;
        }
        Action::Expect {
            flow: f,
            pattern,
            payload: p,
            new_isn,
            ts_val,
            ..
        } => {
            one_line(out, "expect", &pattern.to_string());
            flow(out, *f)?;
            if !zeros {
                payload(out, p);
            }
            if *new_isn {
                out.push_str("    isn: new\n");
            }
            if let Some(val) = ts_val {
                let _ = writeln!(out, "    ts_val: {val}");
            }
        }
        Action::ExpectNothing { flow: f, during } => {
            one_line(out, "expect_nothing", &format_duration(*during));
            if let Some(f) = f {
                let _ = writeln!(out, "    flow: {}", flow_name(*f)?);
            }
        }
        Action::State { target, state } => {
            let name = match target {
                Target::Socket(s) => s.clone(),
                Target::Flow(f) => flow_name(*f)?.to_string(),
            };
            one_line(out, "state", &format!("{name} {}", state.name()));
        }
        Action::AcceptQueue { socket, len, limit } => {
            let _ = writeln!(
                out,
                "  - accept_queue: {{ socket: {}, len: {len}, limit: {limit} }}",
                scalar(socket)
            );
        }
        Action::Wait(d) => {
            if step.due != Due::Now || step.base != Base::Previous || step.tolerance.is_some() {
                return Err(Unwritable("a `wait` with a time or a tolerance of its own".into()));
            }
            one_line(out, "wait", &format_duration(*d));
        }
        Action::ReadSysctl(name) => one_line(out, "read_sysctl", name),
        Action::Shell(text) => text_value(out, "  - ", "shell", text),
        Action::Code { text, socket } => {
            text_value(out, "  - ", "code", text);
            if let Some(s) = socket {
                let _ = writeln!(out, "    socket: {}", scalar(s));
            }
        }
    }
    timing(out, case, step, number)
}

/// A step's name and timing keys; `number` is its index plus one.
fn timing(out: &mut String, case: &Case, step: &Step, number: usize) -> Result<(), Unwritable> {
    if let Some(name) = &step.name {
        let _ = writeln!(out, "    name: {}", scalar(name));
    }
    match step.due {
        Due::Now => {}
        Due::After(d) => {
            let _ = writeln!(out, "    after: {}", format_duration(d));
        }
        Due::Within(a, b) => {
            let _ = writeln!(out, "    after: {}..{}", format_duration(a), format_duration(b));
        }
        Due::Any => out.push_str("    after: any\n"),
    }
    match step.base {
        Base::Previous => {}
        Base::Step(i) => match case.steps[..number - 1].get(i).and_then(|s| s.name.as_deref()) {
            Some(name) => {
                let _ = writeln!(out, "    since: {}", scalar(name));
            }
            None => {
                return Err(Unwritable(format!(
                    "a time counted from step {}, which is not an earlier one",
                    i + 1
                )));
            }
        },
        Base::Start => out.push_str("    since: start\n"),
        Base::PreviousDue => out.push_str("    since: previous_due\n"),
    }
    if let Some(t) = step.tolerance {
        let _ = writeln!(out, "    tolerance: {}", format_duration(t));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::case::{Shell, load_str};

    /// The kernel's packetdrill selftests, in `shared/corpora` beside the repository or a worktree's.
    fn corpus() -> Option<Vec<PathBuf>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|a| a.join("shared/corpora/linux-packetdrill"))
            .find(|d| d.is_dir())?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "pkt"))
            .collect();
        files.sort();
        Some(files)
    }

    fn nowhere() -> Location {
        Location {
            file: Arc::new(PathBuf::new()),
            line: 0,
            col: 0,
        }
    }

    /// The case without what differs between two files that say the same
    /// thing in two syntaxes: where it is written (its path, the locations
    /// of its steps and commands), which syntax, and each step's text as
    /// written (packetdrill's line, or the YAML notation). Everything the
    /// engine runs on is kept.
    fn comparable(case: &Case) -> Case {
        let mut c = case.clone();
        c.path = Arc::new(PathBuf::new());
        c.syntax = Syntax::Yaml;
        for shell in [&mut c.setup, &mut c.cleanup].into_iter().flatten() {
            *shell = Shell {
                location: nowhere(),
                text: std::mem::take(&mut shell.text),
            };
        }
        for step in &mut c.steps {
            step.location = nowhere();
            match &mut step.action {
                Action::Call { text, .. }
                | Action::Inject { text, .. }
                | Action::InjectIcmp { text, .. }
                | Action::Expect { text, .. } => text.clear(),
                _ => {}
            }
        }
        c
    }

    /// Where two cases differ, field by field and step by step.
    fn differences(a: &Case, b: &Case) -> Vec<String> {
        let mut out = Vec::new();
        let steps = a.steps.len().max(b.steps.len());
        for i in 0..steps {
            if a.steps.get(i) != b.steps.get(i) {
                out.push(format!(
                    "step {}:\n  converted: {:?}\n  lowered:   {:?}",
                    i + 1,
                    b.steps.get(i),
                    a.steps.get(i)
                ));
            }
        }
        let (mut a, mut b) = (a.clone(), b.clone());
        a.steps.clear();
        b.steps.clear();
        if a != b {
            out.push(format!("case:\n  converted: {b:?}\n  lowered:   {a:?}"));
        }
        out
    }

    fn case(yaml: &str) -> Case {
        load_str(Path::new("cases/x/t.yaml"), yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
    }

    /// The case written and loaded back.
    #[track_caller]
    fn again(c: &Case) -> Case {
        let yaml = to_yaml(c).unwrap_or_else(|e| panic!("{}", crate::engine::chain(&e)));
        case(&yaml)
    }

    #[rstest::rstest]
    #[case::one_line("sysctl -q net.ipv4.tcp_ecn=1")]
    #[case::final_newline("a\nb\n")]
    #[case::no_final_newline("a\nb")]
    #[case::blank_lines_kept("a\n\n\nb\n\n\n")]
    #[case::leading_spaces("  indented\nnot\n")]
    #[case::leading_blank_then_indented("\n\n    x = 1\n  y\n")]
    #[case::spaces_only_lines("a\n   \n\tb  \n")]
    #[case::tab_first("\tx\ny\n")]
    #[case::yaml_lookalikes("- a: b # c\n? [x]\n'q' \"r\"\n--- \n...\n")]
    #[case::control_characters("a\rb\u{7}\n")]
    #[case::empty("")]
    #[case::only_newlines("\n\n")]
    #[case::unicode("é\u{2028}ü\n")]
    fn shell_and_code_text_survives_exactly(#[case] text: &str) {
        let mut c = case("title: x\nsteps:\n  - call: s = socket()\n  - shell: \"true\"\n  - code: x\n    socket: s\n");
        c.setup = Some(Shell {
            location: nowhere(),
            text: text.into(),
        });
        c.description = Some(text.into());
        c.steps[1].action = Action::Shell(text.into());
        c.steps[2].action = Action::Code {
            text: text.into(),
            socket: Some("s".into()),
        };
        let back = again(&c);
        assert_eq!(back.setup.map(|s| s.text).as_deref(), Some(text));
        assert_eq!(back.description.as_deref(), Some(text));
        assert_eq!(back.steps[1].action, Action::Shell(text.into()));
        assert_eq!(back.steps[2].action, c.steps[2].action);
    }

    #[rstest::rstest]
    #[case("true")]
    #[case("null")]
    #[case("~")]
    #[case("12")]
    #[case("-1.5e3")]
    #[case(".inf")]
    #[case("0x1f")]
    #[case("a: b")]
    #[case("a #b")]
    #[case("- x")]
    #[case("[ect0] S. 0:0(0)")]
    #[case("{x}")]
    #[case("*alias")]
    #[case("&anchor")]
    #[case("!tag")]
    #[case("%x")]
    #[case("@x")]
    #[case("`x`")]
    #[case("'q'")]
    #[case("\"q\"")]
    #[case(" lead")]
    #[case("trail ")]
    #[case("colon:")]
    #[case("back\\slash")]
    #[case("tab\there")]
    #[case("Fast Open: send data, then read it")]
    #[case("plain words")]
    fn one_line_strings_survive_exactly(#[case] title: &str) {
        let mut c = case("title: x\nsteps: []\n");
        c.title = title.into();
        c.family_reason = None;
        assert_eq!(again(&c).title, title.trim());
    }

    #[test]
    fn descriptors_and_referenced_steps_get_yaml_names() {
        let mut c = case(
            "title: x\nsteps:\n  - call: s = socket()\n  - call: listen(s, 1)\n  - call: c = accept(s)\n    background: true\n  - await: s\n",
        );
        for step in &mut c.steps {
            if let Action::Call { call, .. } = &mut step.action {
                call.binds = call
                    .binds
                    .as_ref()
                    .map(|b| if b == "s" { "3".into() } else { "4".into() });
                call.func.rename_fds(&|_| "3".into());
            }
            if let Action::Await { socket, .. } = &mut step.action {
                *socket = "3".into();
            }
        }
        c.steps[3].base = Base::Step(1);
        let named = yaml_names(&c).unwrap();
        assert!(matches!(&named.steps[0].action, Action::Call { call, .. } if call.binds.as_deref() == Some("fd3")));
        assert!(matches!(&named.steps[2].action, Action::Call { call, .. }
            if call.binds.as_deref() == Some("fd4") && call.func.fds() == ["fd3"]));
        assert!(matches!(&named.steps[3].action, Action::Await { socket, .. } if socket == "fd3"));
        assert_eq!(named.steps[1].name.as_deref(), Some("step2"));
        let yaml = to_yaml(&c).unwrap();
        assert!(yaml.contains("  - await: fd3\n    since: step2\n"), "{yaml}");
        assert_eq!(comparable(&case(&yaml)), comparable(&named));
    }

    #[test]
    fn what_yaml_cannot_say_is_named() {
        let mut c = case("title: x\nsteps:\n  - call: s = socket()\n");
        c.unsupported = Some("t.pkt:3:1: something".into());
        assert_eq!(
            to_yaml(&c).unwrap_err().to_string(),
            "the case cannot run yet, so it has no YAML form: t.pkt:3:1: something"
        );
        c.unsupported = None;
        if let Action::Call { call, .. } = &mut c.steps[0].action {
            call.func = Func::Connect {
                sock: "s".into(),
                to: crate::case::call::Destination::Family(77),
            };
            call.binds = None;
        }
        let err = to_yaml(&c).unwrap_err();
        assert_eq!(
            crate::engine::chain(&err),
            "step 1 (cases/x/t.yaml:3:11) cannot be written in YAML: a destination of address family 77, which has no name"
        );
        c.steps[0].action = Action::Wait(Duration::from_secs(1));
        c.steps[0].due = Due::Any;
        assert!(crate::engine::chain(&to_yaml(&c).unwrap_err()).contains("a `wait` with a time or a tolerance"));
        c.steps.clear();
        c.families = vec![crate::packet::Family::Ipv6];
        assert!(
            crate::engine::chain(&to_yaml(&c).unwrap_err()).contains("a case on one family with no `family_reason`")
        );
    }

    #[test]
    fn every_corpus_script_converts_and_loads_back_as_itself() {
        let Some(files) = corpus() else {
            println!("skipped: no corpus");
            return;
        };
        let (mut converted, mut unsupported, mut failures) = (0, 0, Vec::new());
        for file in &files {
            let cases = crate::packetdrill::load(file).unwrap_or_else(|e| panic!("{e}"));
            for case in cases {
                let family = case.families[0];
                if case.unsupported.is_some() {
                    unsupported += 1;
                    assert!(matches!(to_yaml(&case), Err(YamlError::Unsupported(_))));
                    continue;
                }
                let name = format!("{} ({family})", file.display());
                let yaml = match to_yaml(&case) {
                    Ok(y) => y,
                    Err(e) => {
                        failures.push(format!("{name}: {}", crate::engine::chain(&e)));
                        continue;
                    }
                };
                let loaded = match load_str(&file.with_extension("yaml"), &yaml) {
                    Ok(c) => c,
                    Err(e) => {
                        failures.push(format!("{name}: the YAML does not load:\n{e}\n{yaml}"));
                        continue;
                    }
                };
                let expected = comparable(&yaml_names(&case).unwrap());
                let got = comparable(&loaded);
                if got != expected {
                    failures.push(format!("{name}:\n{}", differences(&expected, &got).join("\n")));
                    continue;
                }
                converted += 1;
            }
        }
        println!("{converted} runs converted and loaded back, {unsupported} unsupported");
        assert!(
            failures.is_empty(),
            "{} failures:\n{}",
            failures.len(),
            failures.join("\n\n")
        );
    }
}
