//! `tcpconform vm` boots Debian's 6.1 kernel (fetched by
//! `scripts/fetch-kernels 6.1`, which `.ci/run` calls) and runs cases in it:
//! a real case, a delayed ACK at 40 ms, and the same delayed ACK expected
//! at once, which must fail in the VM as on bare metal, slack included;
//! and two packetdrill scripts whose commands run the host's programs in
//! the guest (a bash script beside the case with sysctl and tc, nstat piped
//! into grep, a Python block), one of them failing in Python on purpose.
//! The report must come back whole, and say which kernel and tolerance it
//! ran with. Without qemu, the test is ignored only when the fetch script
//! recorded why qemu cannot be installed (`kernels/qemu/UNAVAILABLE`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use serde_json::Value;
use tcpconform::vm::qemu;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn tcpconform(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .current_dir(REPO)
        .args(args)
        .output()
        .expect("the tcpconform binary runs")
}

/// The 6.1 kernel `scripts/fetch-kernels` unpacks.
fn kernel() -> Result<PathBuf, Failed> {
    let path = Path::new(REPO).join("kernels/6.1/vmlinuz");
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} is missing: run scripts/fetch-kernels 6.1 (.ci/run does)",
            path.display()
        )
        .into())
    }
}

/// Ok(None) when the machine has a qemu; the reason to skip when it cannot have one.
fn qemu_unavailable() -> Result<Option<String>, Failed> {
    if qemu::find(None).is_ok() {
        return Ok(None);
    }
    match std::fs::read_to_string(Path::new(REPO).join("kernels/qemu/UNAVAILABLE")) {
        Ok(reason) => Ok(Some(format!("qemu cannot be installed here: {}", reason.trim()))),
        Err(_) => Err("no qemu: run scripts/fetch-kernels 6.1 (.ci/run does)".into()),
    }
}

fn check(condition: bool, message: impl FnOnce() -> String) -> Result<(), Failed> {
    if condition { Ok(()) } else { Err(message().into()) }
}

/// The verdict of `id` on `family` in a report.
fn verdict<'a>(report: &'a Value, id: &str, family: &str) -> Option<&'a Value> {
    report["results"]
        .as_array()?
        .iter()
        .find(|r| r["id"] == id && r["family"] == family)
}

fn boots_6_1_and_runs_cases() -> Result<Completion, Failed> {
    if let Some(reason) = qemu_unavailable()? {
        return Ok(Completion::ignored_with(reason));
    }
    let kernel = kernel()?;
    let out = std::env::temp_dir().join(format!("tcpconform-vm-test-{}", std::process::id()));
    let run = tcpconform(&[
        "vm",
        "--kernel",
        kernel.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--",
        "cases/opening/passive_handshake.yaml",
        "tests/fixtures/vm",
    ]);
    let report = std::fs::read_to_string(out.join("report.json"));
    let _ = std::fs::remove_dir_all(&out);
    let said = || {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        )
    };
    // One fixture fails on purpose: exit status 1, not 0 (all passed) or 2 (broken).
    check(run.status.code() == Some(1), || {
        format!("exit status {}\n{}", run.status, said())
    })?;
    let report: Value = serde_json::from_str(&report.map_err(|e| format!("no report.json: {e}\n{}", said()))?)
        .map_err(|e| format!("report.json: {e}"))?;
    let release = report["kernel"]["release"].as_str().unwrap_or_default();
    check(release.starts_with("6.1.0-"), || {
        format!("the report's kernel is {release:?}")
    })?;
    let slack = report["slack_ms"].as_f64();
    let accel_tcg = String::from_utf8_lossy(&run.stderr).contains(", tcg,");
    check(slack == Some(if accel_tcg { 8.0 } else { 0.0 }), || {
        format!("slack in the report: {}", report["slack_ms"])
    })?;
    for family in ["ipv4", "ipv6"] {
        for (id, want) in [
            ("opening/passive_handshake", "pass"),
            ("delayed_ack", "pass"),
            ("delayed_ack_expected_at_once", "fail"),
        ] {
            let got = verdict(&report, id, family);
            check(got.is_some_and(|r| r["verdict"] == want), || {
                format!("{id}::{family}: expected {want}, got {got:?}\n{}", said())
            })?;
        }
        let reason = verdict(&report, "delayed_ack_expected_at_once", family).map(|r| r["reason"].to_string());
        check(reason.as_ref().is_some_and(|r| r.contains("arrived too late")), || {
            format!("the delayed ACK must fail on its timing: {reason:?}")
        })?;
    }
    for (id, want) in [("commands", "pass"), ("python_fails", "fail")] {
        let got = verdict(&report, id, "ipv4");
        check(got.is_some_and(|r| r["verdict"] == want), || {
            format!("{id}::ipv4: expected {want}, got {got:?}\n{}", said())
        })?;
    }
    let reason = verdict(&report, "python_fails", "ipv4").map(|r| r["reason"].to_string());
    check(
        reason
            .as_ref()
            .is_some_and(|r| r.contains("AssertionError: the listener is not established")),
        || format!("python_fails must fail in its Python block: {reason:?}"),
    )?;
    Ok(Completion::Completed)
}

fn the_modules_of_6_1_are_resolved_in_dependency_order() -> Result<Completion, Failed> {
    let dir = Path::new(REPO).join("kernels/6.1/lib/modules");
    let release = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}: run scripts/fetch-kernels 6.1", dir.display()))?
        .flatten()
        .next()
        .ok_or("no module directory")?
        .file_name();
    let release = release.to_string_lossy();
    let modules = tcpconform::vm::modules::resolve(&dir.join(&*release), Some(&release)).map_err(|e| e.to_string())?;
    let names: Vec<&str> = modules.load.iter().map(|m| m.name.as_str()).collect();
    check(names == ["veth", "tun", "inet_diag", "tcp_diag", "sch_fq"], || {
        format!("loaded {names:?}")
    })?;
    check(modules.builtin == ["af_packet", "ipv6"], || {
        format!("built in {:?}", modules.builtin)
    })?;
    Ok(Completion::Completed)
}

fn a_missing_kernel_is_one_clear_line() -> Result<Completion, Failed> {
    let run = tcpconform(&["vm", "--kernel", "/nonexistent/vmlinuz", "--", "cases"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    check(run.status.code() == Some(2), || format!("exit status {}", run.status))?;
    check(
        stderr.trim()
            == "tcpconform vm: cannot read the kernel /nonexistent/vmlinuz: No such file or directory (os error 2)",
        || format!("stderr: {stderr}"),
    )?;
    Ok(Completion::Completed)
}

fn a_missing_qemu_is_one_clear_line() -> Result<Completion, Failed> {
    let kernel = kernel()?;
    let run = tcpconform(&[
        "vm",
        "--kernel",
        kernel.to_str().unwrap(),
        "--qemu",
        "/nonexistent/qemu",
        "--",
        "cases",
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    check(run.status.code() == Some(2), || format!("exit status {}", run.status))?;
    check(
        stderr.lines().count() == 1 && stderr.contains("qemu not found (looked for /nonexistent/qemu)"),
        || format!("stderr: {stderr}"),
    )?;
    Ok(Completion::Completed)
}

fn main() {
    let args = Arguments::from_args();
    let trial = |name: &str, f: fn() -> Result<Completion, Failed>| Trial::ignorable_test(name, f);
    let trials = vec![
        trial("vm::boots_6_1_and_runs_cases", boots_6_1_and_runs_cases),
        trial(
            "vm::the_modules_of_6_1_are_resolved_in_dependency_order",
            the_modules_of_6_1_are_resolved_in_dependency_order,
        ),
        trial(
            "vm::a_missing_kernel_is_one_clear_line",
            a_missing_kernel_is_one_clear_line,
        ),
        trial("vm::a_missing_qemu_is_one_clear_line", a_missing_qemu_is_one_clear_line),
    ];
    libtest_mimic::run(&args, trials).exit();
}
