//! What a packetdrill `%{ }%` block sees, and the Python program that
//! checks the blocks.
//!
//! At a block's time the socket under test is read ([`snapshot`]):
//! `TCP_INFO` as the running kernel fills it (`tcpi_` and the field name;
//! an older kernel returns a shorter struct, and a field it does not fill
//! is not defined, so a block using it fails with `NameError`), the
//! congestion control's `TCP_CC_INFO` where it gives one (`bbr_*`,
//! `dctcp_*`, `vegas_*`) and `SO_MEMINFO` (`SK_MEMINFO_*`). After the
//! script, [`program`] writes one Python program that runs every block in
//! order, each in a scope of its own holding its snapshot, the kernel's
//! symbolic constants ([`CONSTANTS`]), `_file` and `_line`; a name from an
//! earlier block's snapshot is not carried over. The program stops at the
//! first block that raises and prints which one and why on its last line
//! of output, which [`verdict`] reads back.

use std::fmt::Write as _;
use std::io;
use std::os::fd::RawFd;

use crate::case::Location;
use crate::command::{Exit, Finished};

/// What a code block sees: the values read from one socket at one time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Variable names and values, in the order they were read.
    pub vars: Vec<(String, u64)>,
}

impl Snapshot {
    /// The value of `name`, if the snapshot has it.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

/// How a field is stored.
#[derive(Clone, Copy)]
enum Width {
    U8,
    U16,
    U32,
    U64,
}

impl Width {
    fn bytes(self) -> usize {
        match self {
            Width::U8 => 1,
            Width::U16 => 2,
            Width::U32 => 4,
            Width::U64 => 8,
        }
    }
}

use Width::{U8, U16, U32, U64};

/// One field of a kernel struct: where it is, and for a bit field, which
/// bits of its storage unit (counted in declaration order).
#[derive(Clone, Copy)]
struct Field {
    name: &'static str,
    offset: usize,
    width: Width,
    bits: Option<(u32, u32)>,
}

const fn field(name: &'static str, offset: usize, width: Width) -> Field {
    Field {
        name,
        offset,
        width,
        bits: None,
    }
}

const fn bit_field(name: &'static str, offset: usize, width: Width, first: u32, count: u32) -> Field {
    Field {
        name,
        offset,
        width,
        bits: Some((first, count)),
    }
}

impl Field {
    /// The field's value in `bytes`, if `bytes` holds all of it.
    fn read(&self, bytes: &[u8]) -> Option<u64> {
        let raw = bytes.get(self.offset..self.offset + self.width.bytes())?;
        let unit = match self.width {
            Width::U8 => u64::from(raw[0]),
            Width::U16 => u64::from(u16::from_ne_bytes(raw.try_into().ok()?)),
            Width::U32 => u64::from(u32::from_ne_bytes(raw.try_into().ok()?)),
            Width::U64 => u64::from_ne_bytes(raw.try_into().ok()?),
        };
        Some(match self.bits {
            None => unit,
            Some((first, count)) => {
                let unit_bits = 8 * self.width.bytes() as u32;
                // The C ABI allocates bit fields from the low bits on
                // little-endian machines, from the high bits on big-endian ones.
                let shift = if cfg!(target_endian = "little") {
                    first
                } else {
                    unit_bits - first - count
                };
                (unit >> shift) & ((1u64 << count) - 1)
            }
        })
    }
}

/// `struct tcp_info` of Linux 6.18 (include/uapi/linux/tcp.h), in order.
const TCP_INFO: &[Field] = &[
    field("tcpi_state", 0, U8),
    field("tcpi_ca_state", 1, U8),
    field("tcpi_retransmits", 2, U8),
    field("tcpi_probes", 3, U8),
    field("tcpi_backoff", 4, U8),
    field("tcpi_options", 5, U8),
    bit_field("tcpi_snd_wscale", 6, U8, 0, 4),
    bit_field("tcpi_rcv_wscale", 6, U8, 4, 4),
    bit_field("tcpi_delivery_rate_app_limited", 7, U8, 0, 1),
    bit_field("tcpi_fastopen_client_fail", 7, U8, 1, 2),
    field("tcpi_rto", 8, U32),
    field("tcpi_ato", 12, U32),
    field("tcpi_snd_mss", 16, U32),
    field("tcpi_rcv_mss", 20, U32),
    field("tcpi_unacked", 24, U32),
    field("tcpi_sacked", 28, U32),
    field("tcpi_lost", 32, U32),
    field("tcpi_retrans", 36, U32),
    field("tcpi_fackets", 40, U32),
    field("tcpi_last_data_sent", 44, U32),
    field("tcpi_last_ack_sent", 48, U32),
    field("tcpi_last_data_recv", 52, U32),
    field("tcpi_last_ack_recv", 56, U32),
    field("tcpi_pmtu", 60, U32),
    field("tcpi_rcv_ssthresh", 64, U32),
    field("tcpi_rtt", 68, U32),
    field("tcpi_rttvar", 72, U32),
    field("tcpi_snd_ssthresh", 76, U32),
    field("tcpi_snd_cwnd", 80, U32),
    field("tcpi_advmss", 84, U32),
    field("tcpi_reordering", 88, U32),
    field("tcpi_rcv_rtt", 92, U32),
    field("tcpi_rcv_space", 96, U32),
    field("tcpi_total_retrans", 100, U32),
    field("tcpi_pacing_rate", 104, U64),
    field("tcpi_max_pacing_rate", 112, U64),
    field("tcpi_bytes_acked", 120, U64),
    field("tcpi_bytes_received", 128, U64),
    field("tcpi_segs_out", 136, U32),
    field("tcpi_segs_in", 140, U32),
    field("tcpi_notsent_bytes", 144, U32),
    field("tcpi_min_rtt", 148, U32),
    field("tcpi_data_segs_in", 152, U32),
    field("tcpi_data_segs_out", 156, U32),
    field("tcpi_delivery_rate", 160, U64),
    field("tcpi_busy_time", 168, U64),
    field("tcpi_rwnd_limited", 176, U64),
    field("tcpi_sndbuf_limited", 184, U64),
    field("tcpi_delivered", 192, U32),
    field("tcpi_delivered_ce", 196, U32),
    field("tcpi_bytes_sent", 200, U64),
    field("tcpi_bytes_retrans", 208, U64),
    field("tcpi_dsack_dups", 216, U32),
    field("tcpi_reord_seen", 220, U32),
    field("tcpi_rcv_ooopack", 224, U32),
    field("tcpi_snd_wnd", 228, U32),
    field("tcpi_rcv_wnd", 232, U32),
    field("tcpi_rehash", 236, U32),
    field("tcpi_total_rto", 240, U16),
    field("tcpi_total_rto_recoveries", 242, U16),
    field("tcpi_total_rto_time", 244, U32),
    field("tcpi_received_ce", 248, U32),
    field("tcpi_delivered_e1_bytes", 252, U32),
    field("tcpi_delivered_e0_bytes", 256, U32),
    field("tcpi_delivered_ce_bytes", 260, U32),
    field("tcpi_received_e1_bytes", 264, U32),
    field("tcpi_received_e0_bytes", 268, U32),
    field("tcpi_received_ce_bytes", 272, U32),
    bit_field("tcpi_ecn_mode", 276, U32, 0, 2),
    bit_field("tcpi_accecn_opt_seen", 276, U32, 2, 2),
    bit_field("tcpi_accecn_fail_mode", 276, U32, 4, 4),
    bit_field("tcpi_options2", 276, U32, 8, 24),
];

/// The size of [`TCP_INFO`]'s struct.
const TCP_INFO_SIZE: usize = 280;

/// `struct tcp_bbr_info`; `bbr_bw` joins its two halves.
const BBR_INFO: &[Field] = &[
    field("bbr_bw_lo", 0, U32),
    field("bbr_bw_hi", 4, U32),
    field("bbr_min_rtt", 8, U32),
    field("bbr_pacing_gain", 12, U32),
    field("bbr_cwnd_gain", 16, U32),
];

/// `struct tcp_dctcp_info`.
const DCTCP_INFO: &[Field] = &[
    field("dctcp_enabled", 0, U16),
    field("dctcp_ce_state", 2, U16),
    field("dctcp_alpha", 4, U32),
    field("dctcp_ab_ecn", 8, U32),
    field("dctcp_ab_tot", 12, U32),
];

/// `struct tcpvegas_info`, which vegas, westwood and illinois give.
const VEGAS_INFO: &[Field] = &[
    field("vegas_enabled", 0, U32),
    field("vegas_rttcnt", 4, U32),
    field("vegas_rtt", 8, U32),
    field("vegas_minrtt", 12, U32),
];

/// The `SO_MEMINFO` array, by index (`SK_MEMINFO_*` of linux/sock_diag.h).
const MEMINFO: [&str; 9] = [
    "SK_MEMINFO_RMEM_ALLOC",
    "SK_MEMINFO_RCVBUF",
    "SK_MEMINFO_WMEM_ALLOC",
    "SK_MEMINFO_SNDBUF",
    "SK_MEMINFO_FWD_ALLOC",
    "SK_MEMINFO_WMEM_QUEUED",
    "SK_MEMINFO_OPTMEM",
    "SK_MEMINFO_BACKLOG",
    "SK_MEMINFO_DROPS",
];

/// `SO_MEMINFO` (asm-generic/socket.h; libc does not have it).
const SO_MEMINFO: libc::c_int = 55;

/// The kernel's symbolic constants a block may compare with: TCP states
/// (include/net/tcp_states.h), congestion avoidance states, `tcpi_options`
/// bits and the AccECN values of linux/tcp.h.
pub const CONSTANTS: &[(&str, u64)] = &[
    ("TCP_ESTABLISHED", 1),
    ("TCP_SYN_SENT", 2),
    ("TCP_SYN_RECV", 3),
    ("TCP_FIN_WAIT1", 4),
    ("TCP_FIN_WAIT2", 5),
    ("TCP_TIME_WAIT", 6),
    ("TCP_CLOSE", 7),
    ("TCP_CLOSE_WAIT", 8),
    ("TCP_LAST_ACK", 9),
    ("TCP_LISTEN", 10),
    ("TCP_CLOSING", 11),
    ("TCP_CA_Open", 0),
    ("TCP_CA_Disorder", 1),
    ("TCP_CA_CWR", 2),
    ("TCP_CA_Recovery", 3),
    ("TCP_CA_Loss", 4),
    ("TCPI_OPT_TIMESTAMPS", 1),
    ("TCPI_OPT_SACK", 2),
    ("TCPI_OPT_WSCALE", 4),
    ("TCPI_OPT_ECN", 8),
    ("TCPI_OPT_ECN_SEEN", 16),
    ("TCPI_OPT_SYN_DATA", 32),
    ("TCPI_OPT_USEC_TS", 64),
    ("TCPI_OPT_TFO_CHILD", 128),
    ("TCPI_ECN_MODE_DISABLED", 0),
    ("TCPI_ECN_MODE_RFC3168", 1),
    ("TCPI_ECN_MODE_ACCECN", 2),
    ("TCPI_ECN_MODE_PENDING", 3),
    ("TCP_ACCECN_OPT_NOT_SEEN", 0),
    ("TCP_ACCECN_OPT_EMPTY_SEEN", 1),
    ("TCP_ACCECN_OPT_COUNTER_SEEN", 2),
    ("TCP_ACCECN_OPT_FAIL_SEEN", 3),
    ("TCP_ACCECN_ACE_FAIL_SEND", 1),
    ("TCP_ACCECN_ACE_FAIL_RECV", 2),
    ("TCP_ACCECN_OPT_FAIL_SEND", 4),
    ("TCP_ACCECN_OPT_FAIL_RECV", 8),
];

/// The fields of `table` that `bytes` holds whole.
fn decode(table: &[Field], bytes: &[u8], vars: &mut Vec<(String, u64)>) {
    for f in table {
        if let Some(value) = f.read(bytes) {
            vars.push((f.name.to_string(), value));
        }
    }
}

/// The congestion control information of algorithm `name` (as
/// `TCP_CONGESTION` names it), where its layout is known.
fn decode_cc(name: &str, bytes: &[u8], vars: &mut Vec<(String, u64)>) {
    match name {
        "bbr" => {
            decode(BBR_INFO, bytes, vars);
            if let (Some(lo), Some(hi)) = (BBR_INFO[0].read(bytes), BBR_INFO[1].read(bytes)) {
                vars.push(("bbr_bw".to_string(), hi << 32 | lo));
            }
        }
        "dctcp" => decode(DCTCP_INFO, bytes, vars),
        "vegas" | "westwood" | "illinois" => decode(VEGAS_INFO, bytes, vars),
        _ => {}
    }
}

/// The `SK_MEMINFO_*` values of the array `bytes` holds.
fn decode_meminfo(bytes: &[u8], vars: &mut Vec<(String, u64)>) {
    for (name, value) in MEMINFO.iter().zip(bytes.chunks_exact(4)) {
        let value = u32::from_ne_bytes([value[0], value[1], value[2], value[3]]);
        vars.push((name.to_string(), u64::from(value)));
    }
}

/// getsockopt(2) into `buf`; returns how many bytes the kernel wrote.
fn getsockopt(fd: RawFd, level: libc::c_int, name: libc::c_int, buf: &mut [u8]) -> io::Result<usize> {
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into the live buffer.
    let rc = unsafe { libc::getsockopt(fd, level, name, buf.as_mut_ptr().cast(), &mut len) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((len as usize).min(buf.len()))
}

/// Reads TCP_INFO, TCP_CC_INFO (when the congestion control gives one) and SO_MEMINFO of `fd`.
pub fn snapshot(fd: RawFd) -> io::Result<Snapshot> {
    let mut vars = Vec::new();
    // Room past the struct this code knows: a newer kernel fills more,
    // which is ignored.
    let mut buf = [0u8; 2 * TCP_INFO_SIZE];
    let n = getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_INFO, &mut buf)?;
    decode(TCP_INFO, &buf[..n], &mut vars);

    let mut name = [0u8; 16];
    let n = getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_CONGESTION, &mut name)?;
    let name = &name[..n];
    let name = String::from_utf8_lossy(name.split(|b| *b == 0).next().unwrap_or_default());
    let mut buf = [0u8; 64];
    let n = getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_CC_INFO, &mut buf)?;
    decode_cc(&name, &buf[..n], &mut vars);

    let mut buf = [0u8; 4 * 16];
    let n = getsockopt(fd, libc::SOL_SOCKET, SO_MEMINFO, &mut buf)?;
    decode_meminfo(&buf[..n], &mut vars);
    Ok(Snapshot { vars })
}

/// One `%{ }%` block to evaluate: its place, its text, its snapshot.
pub struct Block<'a> {
    /// Where the block's text starts (the line of `%{`).
    pub location: &'a Location,
    /// The Python code between `%{` and `}%`.
    pub code: &'a str,
    /// The socket's values at the block's time.
    pub snapshot: &'a Snapshot,
}

/// What the program prints before its verdict, on its last line of output.
const VERDICT_MARK: &str = "tcpconform-verdict ";

/// The runner that follows the data in [`program`].
const RUNNER: &str = r#"
def verdict(**fields):
    print(VERDICT_MARK + json.dumps(fields), flush=True)


for index, (file, line, values, code) in enumerate(BLOCKS):
    scope = dict(CONSTANTS)
    scope.update(values)
    scope["_file"] = file
    scope["_line"] = line
    try:
        # Blank lines first, so that line numbers are the script's. The
        # newline after the code ends a line continued with a backslash.
        exec(compile("\n" * (line - 1) + code + "\n", file, "exec"), scope)
    except BaseException as e:
        sys.stdout.flush()
        # The traceback from the block's frame on: this loop is no news.
        traceback.print_exception(type(e), e, e.__traceback__.tb_next)
        message = str(e)
        verdict(failed=index, reason=type(e).__name__ + (": " + message if message else ""))
        sys.exit(1)
verdict(passed=len(BLOCKS))
"#;

/// `s` as a Python string literal, in ASCII.
fn py_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            c if (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Builds the program that evaluates every block in order and exits
/// non-zero at the first failing one, saying which (by index) and why (the
/// exception's message, e.g. `AssertionError: 7`).
pub fn program(blocks: &[Block]) -> String {
    let mut out = String::new();
    out.push_str("# The %{ }% blocks of a packetdrill script, each with the values read from\n");
    out.push_str("# its socket at its time. Written by tcpconform.\n");
    out.push_str("import json\nimport sys\nimport traceback\n\n");
    let _ = writeln!(out, "VERDICT_MARK = {}", py_str(VERDICT_MARK));
    out.push_str("CONSTANTS = {\n");
    for (name, value) in CONSTANTS {
        let _ = writeln!(out, "    {}: {value},", py_str(name));
    }
    out.push_str("}\n\n# (file, line, values, code)\nBLOCKS = [\n");
    for block in blocks {
        let file = block.location.file.display().to_string();
        let _ = writeln!(out, "    ({}, {}, {{", py_str(&file), block.location.line.max(1));
        for (name, value) in &block.snapshot.vars {
            let _ = writeln!(out, "        {}: {value},", py_str(name));
        }
        // As packetdrill's lexer does: spaces and tabs off both ends.
        let code = block.code.trim_matches([' ', '\t']);
        let _ = writeln!(out, "    }}, {}),", py_str(code));
    }
    out.push_str("]\n");
    out.push_str(RUNNER);
    out
}

/// Why the blocks did not pass.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockFailure {
    /// A block raised an exception.
    #[error("block {index}: {reason}")]
    Block {
        /// The block's index in [`program`]'s slice.
        index: usize,
        /// The exception in one line, e.g. `AssertionError: 7`.
        reason: String,
        /// Python's traceback.
        traceback: String,
    },
    /// The program did not run to a verdict (no python3, killed, timed out).
    #[error("the Python program of the code blocks ended without a verdict: {exit}")]
    Program {
        /// How it ended.
        exit: Exit,
        /// What it printed on its standard error.
        stderr: String,
    },
}

/// The verdict line's fields.
#[derive(serde::Deserialize)]
struct Mark {
    passed: Option<usize>,
    failed: Option<usize>,
    reason: Option<String>,
}

/// Whether `line` of the program's output is its verdict, not something a block printed.
pub fn is_verdict_line(line: &str) -> bool {
    line.starts_with(VERDICT_MARK)
}

/// Reads a finished program's output back: Ok(()) or the failing block's
/// index and a one-line reason (with the traceback for details).
pub fn verdict(finished: &Finished) -> Result<(), BlockFailure> {
    let mark = finished
        .stdout
        .text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(VERDICT_MARK))
        .and_then(|json| serde_json::from_str::<Mark>(json).ok());
    match mark {
        Some(Mark { passed: Some(_), .. }) if finished.success() => Ok(()),
        Some(Mark {
            failed: Some(index),
            reason,
            ..
        }) => Err(BlockFailure::Block {
            index,
            reason: reason.unwrap_or_default().split('\n').collect::<Vec<_>>().join(" "),
            traceback: finished.stderr.to_string(),
        }),
        _ => Err(BlockFailure::Program {
            exit: finished.exit,
            stderr: finished.stderr.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::command::Output;

    fn finished(exit: Exit, stdout: &str, stderr: &str) -> Finished {
        let out = |s: &str| Output {
            text: s.to_string(),
            dropped: 0,
        };
        Finished {
            exit,
            stdout: out(stdout),
            stderr: out(stderr),
            started: Timestamp(0),
            ended: Timestamp(0),
        }
    }

    #[test]
    fn the_table_is_the_kernels_struct() {
        let mut end = 0;
        for f in TCP_INFO {
            assert!(f.offset >= end || f.bits.is_some(), "{} overlaps", f.name);
            end = f.offset + f.width.bytes();
        }
        assert_eq!(end, TCP_INFO_SIZE);
    }

    #[test]
    fn bit_fields_are_decoded() {
        let mut bytes = [0u8; TCP_INFO_SIZE];
        let little = cfg!(target_endian = "little");
        // snd_wscale = 0xa, rcv_wscale = 7.
        bytes[6] = if little { 0x7a } else { 0xa7 };
        // delivery_rate_app_limited = 1, fastopen_client_fail = 2.
        bytes[7] = if little { 0b101 } else { 0b1100_0000 };
        let word: u32 = if little {
            3 | 1 << 2 | 0xa << 4 | 0x123456 << 8
        } else {
            3 << 30 | 1 << 28 | 0xa << 24 | 0x123456
        };
        bytes[276..280].copy_from_slice(&word.to_ne_bytes());
        let mut vars = Vec::new();
        decode(TCP_INFO, &bytes, &mut vars);
        let snap = Snapshot { vars };
        assert_eq!(snap.get("tcpi_snd_wscale"), Some(0xa));
        assert_eq!(snap.get("tcpi_rcv_wscale"), Some(0x7));
        assert_eq!(snap.get("tcpi_delivery_rate_app_limited"), Some(1));
        assert_eq!(snap.get("tcpi_fastopen_client_fail"), Some(2));
        assert_eq!(snap.get("tcpi_ecn_mode"), Some(3));
        assert_eq!(snap.get("tcpi_accecn_opt_seen"), Some(1));
        assert_eq!(snap.get("tcpi_accecn_fail_mode"), Some(0xa));
        assert_eq!(snap.get("tcpi_options2"), Some(0x123456));
    }

    #[test]
    fn fields_past_what_the_kernel_returned_are_left_out() {
        let mut bytes = [0u8; TCP_INFO_SIZE];
        bytes[240..242].copy_from_slice(&7u16.to_ne_bytes());
        let mut vars = Vec::new();
        // A 6.7 kernel's struct ends after tcpi_total_rto_time.
        decode(TCP_INFO, &bytes[..248], &mut vars);
        let snap = Snapshot { vars };
        assert_eq!(snap.get("tcpi_total_rto"), Some(7));
        assert!(snap.get("tcpi_total_rto_time").is_some());
        assert_eq!(snap.get("tcpi_received_ce"), None);
        assert_eq!(snap.get("tcpi_ecn_mode"), None);
        // Half a field is no field.
        let mut vars = Vec::new();
        decode(TCP_INFO, &bytes[..250], &mut vars);
        assert_eq!(Snapshot { vars }.get("tcpi_received_ce"), None);
    }

    #[test]
    fn bbr_bandwidth_joins_its_halves() {
        let mut bytes = [0u8; 20];
        bytes[0..4].copy_from_slice(&5u32.to_ne_bytes());
        bytes[4..8].copy_from_slice(&1u32.to_ne_bytes());
        let mut vars = Vec::new();
        decode_cc("bbr", &bytes, &mut vars);
        assert_eq!(Snapshot { vars }.get("bbr_bw"), Some(1 << 32 | 5));
        let mut vars = Vec::new();
        decode_cc("cubic", &bytes, &mut vars);
        assert!(vars.is_empty());
    }

    #[test]
    fn python_strings_are_ascii_and_escaped() {
        assert_eq!(py_str("a\"b\\c\nd\0é😀"), r#""a\"b\\c\nd\x00\xe9\U0001f600""#);
    }

    #[test]
    fn the_verdict_line_is_read_back() {
        let passed = finished(Exit::Code(0), "hello\ntcpconform-verdict {\"passed\": 2}\n", "");
        assert_eq!(verdict(&passed), Ok(()));
        let failed = finished(
            Exit::Code(1),
            "tcpconform-verdict {\"failed\": 1, \"reason\": \"AssertionError: a\\nb\"}\n",
            "Traceback",
        );
        assert_eq!(
            verdict(&failed),
            Err(BlockFailure::Block {
                index: 1,
                reason: "AssertionError: a b".into(),
                traceback: "Traceback".into()
            })
        );
        // A pass that did not exit 0 is no pass.
        let odd = finished(Exit::Signal(9), "tcpconform-verdict {\"passed\": 2}\n", "");
        assert!(matches!(verdict(&odd), Err(BlockFailure::Program { .. })));
        let gone = finished(Exit::TimedOut(std::time::Duration::from_secs(1)), "", "");
        assert_eq!(
            verdict(&gone).unwrap_err().to_string(),
            "the Python program of the code blocks ended without a verdict: still running after 1s: killed"
        );
    }
}
