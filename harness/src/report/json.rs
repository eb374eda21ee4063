//! `report.json`: the machine-readable report of a run, schema
//! `tcpconform-report/1` ([`super::schema`], docs/REPORT.md), pretty-printed
//! with its keys in a fixed, readable order.

use std::io::{self, Write};

use super::schema::Report;

/// Writes `report` as pretty JSON followed by a newline.
pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(io::Error::other)?;
    out.write_all(b"\n")
}

/// Reads a report written by [`write`].
pub fn read(text: &str) -> serde_json::Result<Report> {
    serde_json::from_str(text)
}
