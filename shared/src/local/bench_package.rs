//! `egress bench-package`: gzip and OpenPGP-encrypt one file the way the Encrypt stage
//! packages a gzip export (flate2 level 6 and rpgp, on two threads joined by a bounded pipe of
//! large blocks), and report MB/s and peak RSS. `infra/bench/packaging.sh` runs
//! `gzip -6 | gpg --encrypt` on the same file in the same run and prints the ratio.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::bench::{peak_rss_mb, reset_peak_rss};
use crate::model::spec::Compression;
use crate::package::hashing::HashingWriter;
use crate::package::openpgp;
use crate::package::pipe::pipe;
use crate::package::{Compressor, PackageError};

/// Bytes read from the input at a time, and the size of the blocks between the threads.
const BLOCK: usize = 1 << 20;
/// Blocks in flight between the compressing and the encrypting thread.
const DEPTH: usize = 4;

/// One measured run.
#[derive(Debug, Clone, Serialize)]
pub struct PackageBenchResult {
    pub tool: &'static str,
    /// `gzip+openpgp` or `openpgp`.
    pub pipeline: String,
    pub input_bytes: u64,
    pub output_bytes: u64,
    pub seconds: f64,
    /// Input MB (10^6 bytes) per second.
    pub mb_per_s: f64,
    pub peak_rss_mb: f64,
    /// Hex SHA-256 of the output, taken while it was written.
    pub sha256: String,
}

/// Package `input` into `output`: gzip (when `gzip`) on one thread, OpenPGP encryption to the
/// key in `recipient_key` (armored or binary) on this one.
pub fn run(input: &Path, recipient_key: &Path, output: &Path, gzip: bool, armor: bool) -> Result<PackageBenchResult, String> {
    let key_bytes = std::fs::read(recipient_key).map_err(|e| format!("reading {}: {e}", recipient_key.display()))?;
    let key = openpgp::parse_public_key(&key_bytes).map_err(|e| format!("{}: {e}", recipient_key.display()))?;
    let input_bytes = std::fs::metadata(input).map_err(|e| format!("{}: {e}", input.display()))?.len();
    reset_peak_rss();
    let start = Instant::now();
    let file = std::fs::File::create(output).map_err(|e| format!("creating {}: {e}", output.display()))?;
    let mut out = HashingWriter::new(file);
    let compression = if gzip { Compression::Gzip } else { Compression::None };
    std::thread::scope(|s| -> Result<(), String> {
        let (pw, pr) = pipe(BLOCK, DEPTH);
        let producer = s.spawn(move || -> std::io::Result<()> {
            let mut f = std::fs::File::open(input)?;
            let mut w = Compressor::new(pw, compression)?;
            let mut buf = vec![0u8; BLOCK];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                w.write_all(&buf[..n])?;
            }
            w.finish()?.finish()
        });
        let encrypted = openpgp::encrypt(pr, &mut out, std::slice::from_ref(&key), armor);
        let produced = producer.join().map_err(|_| "the compressing thread panicked".to_string())?;
        produced.map_err(|e| format!("reading or compressing {}: {e}", input.display()))?;
        encrypted.map_err(|e| PackageError::from(e).to_string())
    })?;
    let (_, sha256, output_bytes) = out.finish().map_err(|e| format!("writing {}: {e}", output.display()))?;
    let seconds = start.elapsed().as_secs_f64();
    Ok(PackageBenchResult {
        tool: "egress",
        pipeline: if gzip { "gzip+openpgp" } else { "openpgp" }.into(),
        input_bytes,
        output_bytes,
        seconds,
        mb_per_s: input_bytes as f64 / 1e6 / seconds.max(1e-9),
        peak_rss_mb: peak_rss_mb(),
        sha256,
    })
}
