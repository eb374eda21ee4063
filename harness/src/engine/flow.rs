//! Flow state: what the harness knows about one TCP connection it plays
//! the peer of. Like packetimpact's connection objects, a flow tracks
//! sequence numbers itself, so a case writes only what matters; like
//! packetdrill, it maps every segment between absolute numbers (the wire)
//! and numbers relative to each side's ISN (the case).

use std::time::Duration;

use crate::case::FlowSpec;
use crate::packet::pattern::{Context, Fill, Num, OptionPattern, SegmentPattern};
use crate::packet::tcp::{Flags, SackBlock, TcpOption, TcpSegment};

/// One flow during a run.
#[derive(Clone, Debug)]
pub struct Flow {
    /// Name in the case.
    pub name: String,
    /// The harness's port.
    pub peer_port: u16,
    /// The kernel's port, once known.
    pub kernel_port: Option<u16>,
    /// The harness's ISN (absolute).
    pub harness_isn: u32,
    /// The kernel's ISN (absolute), 0 until its SYN is seen.
    pub kernel_isn: u32,
    /// Next relative sequence number the harness sends.
    pub snd_nxt: u32,
    /// Next relative sequence number expected from the kernel.
    pub rcv_nxt: u32,
    /// Window the harness advertises by default.
    pub window: u16,
    /// Last TS val the kernel sent.
    pub kernel_tsval: Option<u32>,
    /// Last TS val the harness sent.
    pub harness_tsval: Option<u32>,
    /// packetdrill's TS vals: each script value an expectation gave, with
    /// the kernel's value in the segment it matched, in order.
    ts_vals: Vec<(u32, u32)>,
}

/// `a` is after `b` in sequence space.
fn seq_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

fn map_sack(options: &mut [TcpOption], f: impl Fn(u32) -> u32) {
    for option in options {
        if let TcpOption::Sack(blocks) = option {
            for b in blocks.iter_mut() {
                *b = SackBlock {
                    left: f(b.left),
                    right: f(b.right),
                };
            }
        }
    }
}

fn tsval(options: &[TcpOption]) -> Option<u32> {
    options.iter().find_map(|o| match o {
        TcpOption::Timestamp { val, .. } => Some(*val),
        _ => None,
    })
}

impl Flow {
    /// A flow in its initial state.
    pub fn new(spec: &FlowSpec) -> Flow {
        Flow {
            name: spec.name.clone(),
            peer_port: spec.peer_port,
            kernel_port: spec.kernel_port,
            harness_isn: spec.isn,
            kernel_isn: 0,
            snd_nxt: 0,
            rcv_nxt: 0,
            window: spec.window,
            kernel_tsval: None,
            harness_tsval: None,
            ts_vals: Vec::new(),
        }
    }

    /// Remembers that the kernel's `seg` matched an expectation with TS val
    /// `script`, and, with a `tick`, checks that the kernel's clock moved as
    /// the script's did since the first TS val: within `tolerance`, counted
    /// in ticks. Returns the problem, if any.
    pub fn map_ts_val(
        &mut self,
        script: u32,
        seg: &TcpSegment,
        tick: Option<Duration>,
        tolerance: Duration,
    ) -> Option<String> {
        let live = tsval(&seg.options)?;
        self.ts_vals.push((script, live));
        let (first_script, first_live) = self.ts_vals[0];
        let tick = tick.filter(|t| !t.is_zero())?;
        let in_script = first_script.wrapping_add(live.wrapping_sub(first_live));
        let off = (in_script.wrapping_sub(script) as i32).unsigned_abs();
        let allowed = tolerance.as_nanos() / tick.as_nanos();
        (u128::from(off) > allowed).then(|| {
            format!(
                "TS val: expected {script}, got {in_script} in the script's clock ({live} on the wire): {off} ticks of {}us off, at most {allowed}",
                tick.as_micros()
            )
        })
    }

    /// The kernel's TS val for packetdrill's TS ecr `script`: that of the
    /// segment whose expectation gave this TS val (the latest, if several).
    pub fn map_ts_ecr(&self, script: u32) -> Option<u32> {
        self.ts_vals.iter().rev().find(|(s, _)| *s == script).map(|(_, l)| *l)
    }

    /// Whether a segment from the kernel with these ports belongs to this flow.
    pub fn owns(&self, kernel_port: u16, peer_port: u16) -> bool {
        self.peer_port == peer_port && self.kernel_port.is_none_or(|p| p == kernel_port)
    }

    /// Takes in a segment the kernel sent (absolute numbers) and returns it
    /// with relative numbers, learning the kernel's port and ISN on the way.
    /// A SYN starts a connection: the kernel's numbering restarts from it,
    /// even when an earlier connection on the same ports went further.
    pub fn receive(&mut self, seg: &TcpSegment) -> TcpSegment {
        self.kernel_port = Some(seg.src_port);
        if seg.flags.contains(Flags::SYN) {
            self.kernel_isn = seg.seq;
        }
        let mut rel = seg.clone();
        rel.seq = seg.seq.wrapping_sub(self.kernel_isn);
        rel.ack = if seg.flags.contains(Flags::ACK) || seg.ack != 0 {
            seg.ack.wrapping_sub(self.harness_isn)
        } else {
            0
        };
        let isn = self.harness_isn;
        map_sack(&mut rel.options, |n| n.wrapping_sub(isn));
        let end = rel.seq.wrapping_add(seg.seq_len());
        if seg.flags.contains(Flags::SYN) || seq_after(end, self.rcv_nxt) {
            self.rcv_nxt = end;
        }
        if let Some(v) = tsval(&seg.options) {
            self.kernel_tsval = Some(v);
        }
        rel
    }

    /// Turns a segment to inject (relative numbers) into the absolute one,
    /// with this flow's ports, and advances the flow's send state. A SYN
    /// starts a connection: the harness's next sequence number follows it.
    pub fn send(&mut self, rel: &TcpSegment) -> TcpSegment {
        let mut seg = rel.clone();
        seg.src_port = self.peer_port;
        seg.dst_port = self.kernel_port.unwrap_or(0);
        seg.seq = rel.seq.wrapping_add(self.harness_isn);
        seg.ack = if rel.flags.contains(Flags::ACK) || rel.ack != 0 {
            rel.ack.wrapping_add(self.kernel_isn)
        } else {
            0
        };
        let isn = self.kernel_isn;
        map_sack(&mut seg.options, |n| n.wrapping_add(isn));
        let end = rel.seq.wrapping_add(rel.seq_len());
        if rel.flags.contains(Flags::SYN) || seq_after(end, self.snd_nxt) {
            self.snd_nxt = end;
        }
        if let Some(v) = tsval(&rel.options) {
            self.harness_tsval = Some(v);
        }
        seg
    }

    /// Values for the fields an injected segment leaves out.
    pub fn fill(&self) -> Fill {
        Fill {
            seq: self.snd_nxt,
            ack: self.rcv_nxt,
            win: self.window,
        }
    }

    /// Context for resolving an injected segment (`echo` is the kernel's last TS val).
    pub fn inject_context(&self, mss: u32) -> Context {
        Context {
            mss,
            echo: self.kernel_tsval,
        }
    }

    /// Context for matching a segment from the kernel (`echo` is the harness's last TS val).
    pub fn expect_context(&self, mss: u32) -> Context {
        Context {
            mss,
            echo: self.harness_tsval,
        }
    }
}

/// `pattern` with the TS ecr of its timestamp option set to `ecr`.
pub fn with_ts_ecr(pattern: &SegmentPattern, ecr: u32) -> SegmentPattern {
    let mut out = pattern.clone();
    for option in out.options.iter_mut().flatten() {
        if let OptionPattern::Timestamp { ecr: e, .. } = option {
            *e = Num::Lit(ecr);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FlowSpec {
        FlowSpec {
            name: "c".into(),
            peer_port: 40000,
            kernel_port: None,
            isn: 1000,
            window: 65535,
        }
    }

    fn seg(flags: Flags, seq: u32, ack: u32, len: usize) -> TcpSegment {
        TcpSegment {
            src_port: 8080,
            dst_port: 40000,
            seq,
            ack,
            flags,
            window: 100,
            checksum: 0,
            urgent: 0,
            options: vec![],
            payload: vec![0; len],
        }
    }

    #[test]
    fn a_handshake_maps_to_relative_numbers() {
        let mut flow = Flow::new(&spec());
        let syn = flow.send(&seg(Flags::SYN, 0, 0, 0));
        assert_eq!((syn.seq, syn.ack, syn.src_port), (1000, 0, 40000));
        assert_eq!(flow.snd_nxt, 1);
        let synack = flow.receive(&seg(Flags::SYN | Flags::ACK, 7_000_000, 1001, 0));
        assert_eq!((synack.seq, synack.ack), (0, 1));
        assert_eq!(
            (flow.kernel_port, flow.kernel_isn, flow.rcv_nxt),
            (Some(8080), 7_000_000, 1)
        );
        let ack = flow.send(&seg(Flags::ACK, 1, 1, 5));
        assert_eq!((ack.seq, ack.ack, ack.dst_port), (1001, 7_000_001, 8080));
        assert_eq!(flow.snd_nxt, 6);
        let data = flow.receive(&seg(Flags::ACK | Flags::FIN, 7_000_001, 1006, 3));
        assert_eq!((data.seq, data.ack), (1, 6));
        assert_eq!(flow.rcv_nxt, 5);
    }

    #[test]
    fn a_rst_to_a_syn_keeps_its_absolute_zero_seq() {
        let mut flow = Flow::new(&spec());
        flow.send(&seg(Flags::SYN, 0, 0, 0));
        let rst = flow.receive(&seg(Flags::RST | Flags::ACK, 0, 1001, 0));
        assert_eq!((rst.seq, rst.ack), (0, 1));
    }

    #[test]
    fn numbers_wrap_around_the_sequence_space() {
        let mut flow = Flow::new(&FlowSpec {
            isn: u32::MAX,
            ..spec()
        });
        let syn = flow.send(&seg(Flags::SYN, 0, 0, 0));
        assert_eq!(syn.seq, u32::MAX);
        let synack = flow.receive(&seg(Flags::SYN | Flags::ACK, u32::MAX - 1, 0, 0));
        assert_eq!(synack.ack, 1);
        let data = flow.receive(&seg(Flags::ACK, 0, 0, 10));
        assert_eq!(data.seq, 2);
        assert_eq!(flow.rcv_nxt, 12);
    }

    #[test]
    fn a_new_connection_on_the_same_ports_restarts_the_numbering() {
        let mut flow = Flow::new(&spec());
        flow.send(&seg(Flags::SYN, 0, 0, 0));
        flow.receive(&seg(Flags::SYN | Flags::ACK, 7_000_000, 1001, 0));
        flow.send(&seg(Flags::ACK, 1, 1, 0));
        flow.receive(&seg(Flags::ACK | Flags::FIN, 7_000_001, 1001, 100));
        assert_eq!((flow.snd_nxt, flow.rcv_nxt), (1, 102));
        // The harness reconnects from its old ISN; the kernel picks a new one.
        flow.send(&seg(Flags::SYN, 0, 0, 0));
        assert_eq!(flow.snd_nxt, 1);
        let synack = flow.receive(&seg(Flags::SYN | Flags::ACK, 9_000_000, 1001, 0));
        assert_eq!((synack.seq, synack.ack), (0, 1));
        assert_eq!(flow.fill().ack, 1);
        // A SYN further on in the harness's sequence space (TIME_WAIT reuse).
        flow.send(&seg(Flags::SYN, 500, 0, 0));
        assert_eq!(flow.fill().seq, 501);
    }

    #[test]
    fn sack_blocks_are_relative_to_the_receiver() {
        let mut flow = Flow::new(&spec());
        let mut s = seg(Flags::ACK, 0, 1001, 0);
        s.options = vec![TcpOption::Sack(vec![SackBlock {
            left: 1005,
            right: 1010,
        }])];
        let rel = flow.receive(&s);
        assert_eq!(
            rel.options,
            vec![TcpOption::Sack(vec![SackBlock { left: 5, right: 10 }])]
        );
    }
}
