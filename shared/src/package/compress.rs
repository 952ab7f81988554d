//! Compression of an encoded file while its rows are written, and the content type it gives.

use std::io::{self, Write};

use super::hashing::{BLOCK, HashingWriter, read_full};
use crate::model::spec::Compression;

/// gzip level: zlib's default trade of speed for size.
pub const GZIP_LEVEL: u32 = 6;
/// zstd level: zstd's default; faster than gzip 6 and smaller.
pub const ZSTD_LEVEL: i32 = 3;

/// A writer that compresses (or not) into `inner`.
pub enum Compressor<W: Write> {
    Plain(W),
    Gzip(Box<flate2::write::GzEncoder<W>>),
    Zstd(Box<zstd::stream::write::Encoder<'static, W>>),
}

impl<W: Write> Compressor<W> {
    /// A compressor for the rows of one file. `zip` archives whole files when they are
    /// packaged, so its rows are written as they are.
    pub fn new(inner: W, c: Compression) -> io::Result<Self> {
        Ok(match c {
            Compression::None | Compression::Zip => Compressor::Plain(inner),
            Compression::Gzip => Compressor::Gzip(Box::new(flate2::write::GzEncoder::new(inner, flate2::Compression::new(GZIP_LEVEL)))),
            // One thread: the encode stage runs beside extraction, and a second zstd worker
            // buys little at level 3 on two cores.
            Compression::Zstd => Compressor::Zstd(Box::new(zstd::stream::write::Encoder::new(inner, ZSTD_LEVEL)?)),
        })
    }

    /// The writer the (compressed) bytes go to.
    pub fn get_ref(&self) -> &W {
        match self {
            Compressor::Plain(w) => w,
            Compressor::Gzip(g) => g.get_ref(),
            Compressor::Zstd(z) => z.get_ref(),
        }
    }

    /// Write the compressed stream's trailer and return the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Plain(w) => Ok(w),
            Compressor::Gzip(g) => g.finish(),
            Compressor::Zstd(z) => z.finish(),
        }
    }
}

impl<X: Write> Compressor<HashingWriter<X>> {
    /// Append the file `path` from byte `skip` on. Without compression the bytes are read in
    /// whole blocks handed to the hashing writer as they are (no copy in between).
    pub fn append_file(&mut self, path: &std::path::Path, skip: u64, buf: &mut Vec<u8>) -> io::Result<()> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(path)?;
        f.seek(SeekFrom::Start(skip))?;
        match self {
            Compressor::Plain(w) => loop {
                let mut block = w.spare_block();
                block.resize(BLOCK, 0);
                let n = read_full(&mut f, &mut block)?;
                if n == 0 {
                    return Ok(());
                }
                block.truncate(n);
                w.write_block(block)?;
            },
            Compressor::Gzip(_) | Compressor::Zstd(_) => {
                buf.resize(BLOCK, 0);
                loop {
                    let n = f.read(buf)?;
                    if n == 0 {
                        return Ok(());
                    }
                    self.write_all(&buf[..n])?;
                }
            }
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Plain(w) => w.write(buf),
            Compressor::Gzip(g) => g.write(buf),
            Compressor::Zstd(z) => z.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Compressor::Plain(w) => w.write_all(buf),
            Compressor::Gzip(g) => g.write_all(buf),
            Compressor::Zstd(z) => z.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Plain(w) => w.flush(),
            Compressor::Gzip(g) => g.flush(),
            Compressor::Zstd(z) => z.flush(),
        }
    }
}

/// Content type of an encoded file (the files inside a zip archive keep their format's type;
/// the archive itself is [`ZIP_CONTENT_TYPE`]).
pub fn content_type(format_type: &str, c: Compression) -> String {
    match c {
        Compression::None | Compression::Zip => format_type.to_string(),
        Compression::Gzip => "application/gzip".to_string(),
        Compression::Zstd => "application/zstd".to_string(),
    }
}

/// Content type of a zip archive.
pub const ZIP_CONTENT_TYPE: &str = "application/zip";

#[cfg(test)]
mod tests {
    use std::io::Read;

    use sha2::{Digest, Sha256};

    use super::*;

    fn compressed(c: Compression, text: &[u8]) -> (Vec<u8>, String, u64) {
        let mut w = Compressor::new(HashingWriter::new(Vec::new()), c).unwrap();
        w.write_all(text).unwrap();
        w.finish().unwrap().finish().unwrap()
    }

    #[test]
    fn gzip_round_trips_and_hash_is_of_the_written_bytes() {
        let (bytes, sha, n) = compressed(Compression::Gzip, b"hello, world\n");
        assert_eq!(n as usize, bytes.len());
        assert_eq!(sha, hex::encode(Sha256::digest(&bytes)));
        let mut s = String::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello, world\n");
    }

    #[test]
    fn zstd_round_trips_and_hash_is_of_the_written_bytes() {
        let text = b"id,amount\n1,2.50\n".repeat(1000);
        let (bytes, sha, n) = compressed(Compression::Zstd, &text);
        assert!(bytes.len() < text.len() / 10, "{} bytes", bytes.len());
        assert_eq!(n as usize, bytes.len());
        assert_eq!(sha, hex::encode(Sha256::digest(&bytes)));
        assert_eq!(zstd::stream::decode_all(&bytes[..]).unwrap(), text);
    }

    #[test]
    fn zip_writes_rows_as_they_are() {
        let (bytes, _, _) = compressed(Compression::Zip, b"a,b\n1,2\n");
        assert_eq!(bytes, b"a,b\n1,2\n");
    }

    #[test]
    fn content_types_follow_the_compression() {
        assert_eq!(content_type("text/csv", Compression::None), "text/csv");
        assert_eq!(content_type("text/csv", Compression::Zip), "text/csv");
        assert_eq!(content_type("text/csv", Compression::Gzip), "application/gzip");
        assert_eq!(content_type("text/csv", Compression::Zstd), "application/zstd");
    }
}
