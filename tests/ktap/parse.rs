//! A strict reader of KTAP version 1 for the tests, written from the
//! kernel's Documentation/dev-tools/ktap.rst: a version line (`KTAP version
//! 1`, or `TAP version 13` as kselftest's runners print), one plan, result
//! lines numbered from 1 with the diagnostic lines (`#`) before each, and
//! nothing else. It checks the shape; the tests check the content.

/// A result line and the diagnostics above it.
#[derive(Debug)]
pub struct TestLine {
    /// `ok` (true) or `not ok`.
    pub ok: bool,
    /// The test's name.
    pub name: String,
    /// The directive after ` # `: `SKIP` or `ERROR`, and its text.
    pub directive: Option<(String, String)>,
    /// The diagnostic lines since the previous result, without `# `.
    pub diagnostics: Vec<String>,
}

/// A parsed KTAP document.
#[derive(Debug)]
pub struct Ktap {
    /// The version line.
    pub version: String,
    /// The plan's N.
    pub plan: usize,
    /// The results, in order.
    pub tests: Vec<TestLine>,
    /// Diagnostic lines after the last result (`# Totals: ...`).
    pub trailer: Vec<String>,
}

/// Parses `text`, or says which line breaks the format.
pub fn parse(text: &str) -> Result<Ktap, String> {
    let mut lines = text.lines().enumerate();
    let version = match lines.next() {
        Some((_, v @ ("KTAP version 1" | "TAP version 13"))) => v.to_string(),
        other => return Err(format!("line 1 is not a version line: {other:?}")),
    };
    let mut plan = None;
    let mut tests = Vec::new();
    let mut pending = Vec::new();
    for (i, line) in lines {
        let at = i + 1;
        if let Some(d) = line.strip_prefix('#') {
            pending.push(d.strip_prefix(' ').unwrap_or(d).to_string());
            continue;
        }
        if let Some(n) = line.strip_prefix("1..") {
            if plan.is_some() || !tests.is_empty() {
                return Err(format!("line {at}: a plan after the plan or a result"));
            }
            plan = Some(
                n.parse::<usize>()
                    .map_err(|_| format!("line {at}: bad plan {line:?}"))?,
            );
            // Diagnostics before the plan are about the run, not its first test.
            pending.clear();
            continue;
        }
        let (ok, rest) = if let Some(rest) = line.strip_prefix("ok ") {
            (true, rest)
        } else if let Some(rest) = line.strip_prefix("not ok ") {
            (false, rest)
        } else {
            return Err(format!("line {at}: not a KTAP line: {line:?}"));
        };
        if plan.is_none() {
            return Err(format!("line {at}: a result before the plan"));
        }
        let (number, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let number: usize = number.parse().map_err(|_| format!("line {at}: bad test number"))?;
        if number != tests.len() + 1 {
            return Err(format!("line {at}: test {number} where {} was due", tests.len() + 1));
        }
        let (name, directive) = match rest.split_once(" # ") {
            Some((name, directive)) => {
                let (kind, text) = directive.split_once(' ').unwrap_or((directive, ""));
                (name, Some((kind.to_string(), text.to_string())))
            }
            None => (rest, None),
        };
        if name.is_empty() || name.contains(char::is_whitespace) || name.contains('#') {
            return Err(format!("line {at}: bad test name {name:?}"));
        }
        tests.push(TestLine {
            ok,
            name: name.to_string(),
            directive,
            diagnostics: std::mem::take(&mut pending),
        });
    }
    let plan = plan.ok_or("no plan")?;
    if plan != tests.len() {
        return Err(format!("the plan says {plan} tests, {} ran", tests.len()));
    }
    Ok(Ktap {
        version,
        plan,
        tests,
        trailer: pending,
    })
}

impl TestLine {
    /// The verdict the line says: `pass`, `fail` (`not ok`, or an expected
    /// failure), `skip` or `error`.
    pub fn verdict(&self) -> &'static str {
        match (self.ok, self.directive.as_ref().map(|(k, _)| k.as_str())) {
            (true, Some("SKIP")) => "skip",
            (true, Some("XFAIL")) | (false, None) => "fail",
            (false, Some("ERROR")) => "error",
            (true, _) => "pass",
            (false, Some(_)) => "fail",
        }
    }
}

/// Checks `ktap` against the `results` of the report.json of the same run:
/// one line per result in order, named `<id>.<family>`, `ok` for a pass and
/// a skip, `# SKIP` with the reason on one line, `# ERROR` for an error, and
/// a failure's reason (from its `file:line:col`) in the diagnostics above it.
pub fn check_against_report(ktap: &Ktap, results: &[serde_json::Value]) -> Result<(), String> {
    if ktap.version != "KTAP version 1" {
        return Err(format!("the version line is {:?}", ktap.version));
    }
    if ktap.plan != results.len() {
        return Err(format!("plan {} for {} results", ktap.plan, results.len()));
    }
    for (t, r) in ktap.tests.iter().zip(results) {
        let name = format!(
            "{}.{}",
            r["id"].as_str().unwrap_or_default(),
            r["family"].as_str().unwrap_or_default()
        );
        let verdict = r["verdict"].as_str().unwrap_or_default();
        let reason = r["reason"].as_str().unwrap_or_default();
        let one_line: Vec<&str> = reason.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let wrong = |what: &str| Err(format!("{name} ({verdict}): {what}: {t:?}"));
        if t.name != name {
            return wrong("the name differs");
        }
        let directive = t.directive.as_ref().map(|(k, v)| (k.as_str(), v.as_str()));
        match verdict {
            "pass" if t.ok && directive.is_none() && t.diagnostics.is_empty() => {}
            "skip" if t.ok && directive == Some(("SKIP", &one_line.join("; "))) => {}
            "fail" if !t.ok && directive.is_none() => {
                let headline = reason.lines().next().unwrap_or_default();
                let located = headline
                    .split(": ")
                    .next()
                    .is_some_and(|loc| loc.rsplitn(3, ':').filter(|n| n.parse::<u32>().is_ok()).count() == 2);
                if !located {
                    return wrong("the failure has no file:line:col");
                }
                let above: Vec<&str> = t
                    .diagnostics
                    .iter()
                    .map(String::as_str)
                    .take(reason.lines().count())
                    .collect();
                let expected: Vec<&str> = reason.lines().map(str::trim_end).collect();
                if above != expected {
                    return wrong("the diagnostics are not the reason");
                }
            }
            "error" if !t.ok && directive.is_some_and(|(k, _)| k == "ERROR") => {}
            _ => return wrong("the line does not say the verdict"),
        }
    }
    Ok(())
}
