//! tcpconform: a conformance test suite for the Linux kernel's TCP stack.
//!
//! A case (YAML under `cases/`, see [`case`]) scripts an exchange with the
//! kernel: socket calls in a network namespace, segments injected on a raw
//! socket, segments, states and errnos expected. The [`engine`] runs it in
//! a [`lab`] of its own: the kernel's real TCP stack in one anonymous
//! namespace, the harness's [`wire`] in another, joined by a veth pair.
//! Results flow as [`event`]s to the [`report`]ers.

pub mod behaviors;
pub mod case;
pub mod cli;
pub mod clock;
pub mod command;
pub(crate) mod cpu;
pub mod dropin;
pub mod engine;
pub mod event;
pub mod lab;
pub mod listing;
pub mod netlink;
pub mod packet;
pub mod packetdrill;
pub mod probe;
pub mod report;
pub mod requirements;
pub mod sockets;
pub mod suite;
pub mod sysctl;
pub mod tcpinfo;
pub mod vm;
pub mod wire;
