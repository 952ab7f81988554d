//! SHA-256 and byte count of a stream, computed beside the writing.

use std::io::{self, Write};

use sha2::{Digest, Sha256};

/// Bytes handed to the hashing thread and the inner writer at a time.
pub(crate) const BLOCK: usize = 4 << 20;

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

/// Fill `buf` from `r` as far as it goes; returns how many bytes were read (less only at the end).
pub(crate) fn read_full(r: &mut impl std::io::Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
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
}
