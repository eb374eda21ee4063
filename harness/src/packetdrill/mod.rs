//! The packetdrill front end: a `.pkt` script is a case in a second syntax.
//!
//! The kernel's TCP selftests are packetdrill scripts. This module reads
//! them as they are ([`parser`] builds the [`ast`]) and lowers them into the
//! same [`Case`](crate::case::Case) model the YAML loader builds, so they run
//! on the same engine and land in the same reports. packetdrill's own
//! conventions (its sequence numbering, timing model and tolerance, fd
//! numbers, the socket under test) are decided here, in lowering; the
//! engine only sees steps.

pub mod ast;
pub mod invocation;
mod lexer;
pub mod lower;
pub mod parser;
pub mod symbols;

pub use self::parser::{Defines, parse};
