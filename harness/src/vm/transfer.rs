//! How a guest's results come back to the host without any guest driver
//! beyond the 8250 UART every x86 kernel has built in: a tar of the report
//! directory, framed by a header line (exit status, length, CRC-32) and a
//! trailer line, written to the guest's second serial port, which qemu
//! writes to a file. A transfer cut short or damaged is detected, never
//! unpacked.
//!
//! ```text
//! TCPCONFORM-RESULT/1 {"status":1,"length":20480,"crc32":3735928559,"error":null}\n
//! <length bytes of tar>
//! \nTCPCONFORM-END\n
//! ```

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The first bytes of a result frame.
const MAGIC: &[u8] = b"TCPCONFORM-RESULT/1 ";
/// The last bytes of a result frame.
const TRAILER: &[u8] = b"\nTCPCONFORM-END\n";

/// Why the results could not be taken back.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// Nothing that looks like results arrived.
    #[error("the guest sent no results")]
    Missing,
    /// The header line is damaged.
    #[error("the results' header is damaged: {0}")]
    Header(String),
    /// Fewer bytes arrived than the header announced.
    #[error("the results were cut short: {got} of {expected} bytes arrived")]
    Truncated {
        /// Bytes that arrived.
        got: usize,
        /// Bytes announced.
        expected: u64,
    },
    /// The bytes are not those sent.
    #[error("the results are damaged: CRC-32 {actual:08x}, the guest sent {expected:08x}")]
    Checksum {
        /// Announced.
        expected: u32,
        /// Computed over what arrived.
        actual: u32,
    },
    /// The archive is intact but its end marker did not follow.
    #[error("the results have no end marker: the guest stopped while sending them")]
    Trailer,
    /// The archive cannot be unpacked.
    #[error("cannot unpack the report into {dir}")]
    Unpack {
        /// The destination.
        dir: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    status: u8,
    length: u64,
    crc32: u32,
    error: Option<String>,
}

/// What a guest sent back.
#[derive(Debug, PartialEq, Eq)]
pub struct Results {
    /// The exit status of `tcpconform run` in the guest.
    pub status: u8,
    /// Why the guest could not run the suite, if it could not.
    pub error: Option<String>,
    /// A tar of the report directory (empty when there is none).
    pub archive: Vec<u8>,
}

/// The frame carrying `results`.
pub fn frame(results: &Results) -> Vec<u8> {
    let header = Header {
        status: results.status,
        length: results.archive.len() as u64,
        crc32: crc32fast::hash(&results.archive),
        error: results.error.clone(),
    };
    let mut out = MAGIC.to_vec();
    out.extend(serde_json::to_vec(&header).expect("the header serializes"));
    out.push(b'\n');
    out.extend(&results.archive);
    out.extend(TRAILER);
    out
}

/// The results in `bytes`, as written by the guest's serial port.
pub fn unframe(bytes: &[u8]) -> Result<Results, TransferError> {
    let start = bytes
        .windows(MAGIC.len())
        .position(|w| w == MAGIC)
        .ok_or(TransferError::Missing)?;
    let rest = &bytes[start + MAGIC.len()..];
    let eol = rest
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(|| TransferError::Header("no end of line".into()))?;
    let header: Header = serde_json::from_slice(&rest[..eol]).map_err(|e| TransferError::Header(e.to_string()))?;
    let body = &rest[eol + 1..];
    let length = usize::try_from(header.length).map_err(|_| TransferError::Header("length too large".into()))?;
    if body.len() < length + TRAILER.len() {
        return Err(TransferError::Truncated {
            got: body.len().saturating_sub(TRAILER.len()).min(length),
            expected: header.length,
        });
    }
    let archive = &body[..length];
    let actual = crc32fast::hash(archive);
    if actual != header.crc32 {
        return Err(TransferError::Checksum {
            expected: header.crc32,
            actual,
        });
    }
    if &body[length..length + TRAILER.len()] != TRAILER {
        return Err(TransferError::Trailer);
    }
    Ok(Results {
        status: header.status,
        error: header.error,
        archive: archive.to_vec(),
    })
}

/// A tar of the files under `dir`, with paths relative to it.
pub fn pack(dir: &Path) -> io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    tar.append_dir_all(".", dir)?;
    tar.into_inner()
}

/// Unpacks a tar made by [`pack`] into `dir`.
pub fn unpack(archive: &[u8], dir: &Path) -> Result<(), TransferError> {
    let failed = |source| TransferError::Unpack {
        dir: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    tar::Archive::new(archive).unpack(dir).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Results {
        Results {
            status: 1,
            error: None,
            archive: (0..5000u32).map(|i| (i * 7) as u8).collect(),
        }
    }

    #[test]
    fn a_frame_round_trips_even_after_line_noise() {
        let mut bytes = b"\r\n".to_vec();
        bytes.extend(frame(&sample()));
        assert_eq!(unframe(&bytes).unwrap(), sample());
    }

    #[test]
    fn a_cut_frame_is_truncated() {
        let bytes = frame(&sample());
        let err = unframe(&bytes[..bytes.len() - 100]).unwrap_err();
        assert!(matches!(err, TransferError::Truncated { expected: 5000, .. }), "{err}");
    }

    #[test]
    fn a_flipped_byte_is_caught() {
        let mut bytes = frame(&sample());
        let at = bytes.len() - 200;
        bytes[at] ^= 0x40;
        assert!(matches!(unframe(&bytes), Err(TransferError::Checksum { .. })));
    }

    #[test]
    fn a_damaged_end_marker_is_caught() {
        let mut bytes = frame(&sample());
        let last = bytes.len() - 2;
        bytes[last] = b'X';
        assert!(matches!(unframe(&bytes), Err(TransferError::Trailer)));
    }

    #[test]
    fn nothing_is_missing_results() {
        assert!(matches!(unframe(b"garbage"), Err(TransferError::Missing)));
    }

    #[test]
    fn a_directory_packs_and_unpacks() {
        let base = std::env::temp_dir().join(format!("tcpconform-transfer-{}", std::process::id()));
        let (src, dst) = (base.join("src"), base.join("dst"));
        std::fs::create_dir_all(src.join("pcap")).unwrap();
        std::fs::write(src.join("report.json"), "{}\n").unwrap();
        std::fs::write(src.join("pcap/a.pcap"), [1, 2, 3]).unwrap();
        let archive = pack(&src).unwrap();
        unpack(&archive, &dst).unwrap();
        let json = std::fs::read_to_string(dst.join("report.json")).unwrap();
        let pcap = std::fs::read(dst.join("pcap/a.pcap")).unwrap();
        std::fs::remove_dir_all(&base).unwrap();
        assert_eq!((json.as_str(), pcap), ("{}\n", vec![1, 2, 3]));
    }
}
