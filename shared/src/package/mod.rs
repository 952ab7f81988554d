//! Packaging of a finished file: checksums and compression (encryption and manifests join
//! here).

use std::io::{self, Write};

use sha2::{Digest, Sha256};

use crate::model::spec::Compression;

/// Bytes handed to the hashing thread and the inner writer at a time.
const BLOCK: usize = 4 << 20;

/// Buffers bytes into large blocks, writes each block to `inner` and hashes it with SHA-256 on
/// a thread of its own, so hashing runs beside the writing (and beside whatever produces the
/// bytes) instead of after it. Also counts the bytes. No `BufWriter` is needed around `inner`.
pub struct HashingWriter<W: Write> {
    inner: W,
    block: Vec<u8>,
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    /// Blocks the hashing thread is done with, for reuse (no allocation per block).
    spare: std::sync::mpsc::Receiver<Vec<u8>>,
    hasher: Option<std::thread::JoinHandle<Sha256>>,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        // Four blocks in flight at most: bounded memory whatever the file's size.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let (spare_tx, spare) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let hasher = std::thread::spawn(move || {
            let mut h = Sha256::new();
            for mut block in rx {
                h.update(&block);
                block.clear();
                let _ = spare_tx.try_send(block);
            }
            h
        });
        Self { inner, block: Vec::with_capacity(BLOCK), tx: Some(tx), spare, hasher: Some(hasher), bytes: 0 }
    }

    /// An empty buffer of a block's capacity: a used one when there is one.
    pub fn spare_block(&mut self) -> Vec<u8> {
        self.spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(BLOCK))
    }

    /// Write a whole block without copying it (after what is buffered).
    pub fn write_block(&mut self, block: Vec<u8>) -> io::Result<()> {
        self.flush_block()?;
        self.send(block)
    }

    fn send(&mut self, block: Vec<u8>) -> io::Result<()> {
        self.inner.write_all(&block)?;
        self.bytes += block.len() as u64;
        self.tx.as_ref().expect("open until finish").send(block).map_err(|_| io::Error::other("the hashing thread stopped"))
    }

    fn flush_block(&mut self) -> io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let fresh = self.spare_block();
        let block = std::mem::replace(&mut self.block, fresh);
        self.send(block)
    }

    /// Bytes written so far (buffered ones included).
    pub fn written(&self) -> u64 {
        self.bytes + self.block.len() as u64
    }

    /// Write out what is buffered; return the inner writer, the hex SHA-256 and the byte count.
    pub fn finish(mut self) -> io::Result<(W, String, u64)> {
        self.flush_block()?;
        self.inner.flush()?;
        drop(self.tx.take());
        let h = self.hasher.take().expect("joined once").join().map_err(|_| io::Error::other("the hashing thread panicked"))?;
        let HashingWriter { inner, bytes, .. } = self;
        Ok((inner, hex::encode(h.finalize()), bytes))
    }
}
impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.block.extend_from_slice(buf);
        if self.block.len() >= BLOCK {
            self.flush_block()?;
        }
        Ok(buf.len())
    }

    /// Buffered bytes stay buffered (they are written in whole blocks); `finish` writes them.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
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

    /// The writer the (compressed) bytes go to.
    pub fn get_ref(&self) -> &W {
        match self {
            Compressor::Plain(w) => w,
            Compressor::Gzip(g) => g.get_ref(),
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
            Compressor::Gzip(g) => {
                buf.resize(BLOCK, 0);
                loop {
                    let n = f.read(buf)?;
                    if n == 0 {
                        return Ok(());
                    }
                    g.write_all(&buf[..n])?;
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

/// Fill `buf` from `r` as far as it goes; returns how many bytes were read (less only at the end).
fn read_full(r: &mut impl std::io::Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
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
    fn hash_of_many_blocks_is_the_hash_of_the_bytes() {
        let data: Vec<u8> = (0..(BLOCK * 3 + 12345)).map(|i| (i * 31 % 251) as u8).collect();
        let mut w = HashingWriter::new(Vec::new());
        for piece in data.chunks(100_003) {
            w.write_all(piece).unwrap();
        }
        let (out, sha, n) = w.finish().unwrap();
        assert_eq!(out, data);
        assert_eq!(n as usize, data.len());
        assert_eq!(sha, hex::encode(Sha256::digest(&data)));
    }

    #[test]
    fn gzip_round_trips_and_hash_is_of_the_written_bytes() {
        let hw = HashingWriter::new(Vec::new());
        let mut c = Compressor::new(hw, Compression::Gzip);
        c.write_all(b"hello, world\n").unwrap();
        let (bytes, sha, n) = c.finish().unwrap().finish().unwrap();
        assert_eq!(n as usize, bytes.len());
        assert_eq!(sha, hex::encode(Sha256::digest(&bytes)));
        let mut s = String::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello, world\n");
    }
}
