//! Packaging of a finished file: checksums and compression (encryption and manifests join
//! here).

use std::io::{self, Write};

use sha2::{Digest, Sha256};

use crate::model::spec::Compression;

/// Passes bytes through, counting them and hashing them with SHA-256.
pub struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self { inner, hasher: Sha256::new(), bytes: 0 }
    }

    /// The inner writer, the hex SHA-256 and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.hasher.finalize()), self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A writer that compresses (or not) into `inner`.
pub enum Compressor<W: Write> {
    Plain(W),
    Gzip(Box<flate2::write::GzEncoder<W>>),
}

impl<W: Write> Compressor<W> {
    pub fn new(inner: W, c: Compression) -> Self {
        match c {
            Compression::None => Compressor::Plain(inner),
            Compression::Gzip => Compressor::Gzip(Box::new(flate2::write::GzEncoder::new(inner, flate2::Compression::new(6)))),
        }
    }

    /// Write the compressed stream's trailer and return the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Plain(w) => Ok(w),
            Compressor::Gzip(g) => g.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Plain(w) => w.write(buf),
            Compressor::Gzip(g) => g.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Compressor::Plain(w) => w.write_all(buf),
            Compressor::Gzip(g) => g.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Plain(w) => w.flush(),
            Compressor::Gzip(g) => g.flush(),
        }
    }
}

/// Content type of a delivered file.
pub fn content_type(format_type: &str, c: Compression) -> String {
    match c {
        Compression::None => format_type.to_string(),
        Compression::Gzip => "application/gzip".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn gzip_round_trips_and_hash_is_of_the_written_bytes() {
        let hw = HashingWriter::new(Vec::new());
        let mut c = Compressor::new(hw, Compression::Gzip);
        c.write_all(b"hello, world\n").unwrap();
        let (bytes, sha, n) = c.finish().unwrap().finish();
        assert_eq!(n as usize, bytes.len());
        assert_eq!(sha, hex::encode(Sha256::digest(&bytes)));
        let mut s = String::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello, world\n");
    }
}
