//! A bounded in-process pipe of large blocks: one thread writes (zip, gzip), another reads
//! (encryption), so two cores work on one file and memory stays at a few blocks.

use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

enum Msg {
    Data(Vec<u8>),
    /// The writer finished: everything was sent.
    End,
}

/// The writing end. Call [`PipeWriter::finish`] at the end: a writer dropped without it (its
/// producer failed) makes the reader fail instead of seeing a clean end of file.
pub struct PipeWriter {
    tx: SyncSender<Msg>,
    buf: Vec<u8>,
    block: usize,
    /// Blocks the reader is done with, for reuse.
    spare: Receiver<Vec<u8>>,
}

/// The reading end.
pub struct PipeReader {
    rx: Receiver<Msg>,
    cur: Vec<u8>,
    pos: usize,
    ended: bool,
    spare: SyncSender<Vec<u8>>,
}

/// A pipe of `block`-byte blocks with at most `depth` blocks in flight.
pub fn pipe(block: usize, depth: usize) -> (PipeWriter, PipeReader) {
    let (tx, rx) = sync_channel(depth.max(1));
    let (spare_tx, spare_rx) = sync_channel(depth.max(1) + 1);
    let block = block.max(1);
    (
        PipeWriter { tx, buf: Vec::with_capacity(block), block, spare: spare_rx },
        PipeReader { rx, cur: Vec::new(), pos: 0, ended: false, spare: spare_tx },
    )
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the reading side of the pipe stopped")
}

impl PipeWriter {
    fn send_block(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let fresh = self.spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(self.block));
        let full = std::mem::replace(&mut self.buf, fresh);
        self.tx.send(Msg::Data(full)).map_err(|_| closed())
    }

    /// Send what is buffered and mark the end of the stream.
    pub fn finish(mut self) -> io::Result<()> {
        self.send_block()?;
        self.tx.send(Msg::End).map_err(|_| closed())
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.block - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= self.block {
            self.send_block()?;
        }
        Ok(n)
    }

    /// Blocks are sent when full (or at `finish`): a flush keeps nothing from the reader that it
    /// needs to make progress, since the writer goes on writing.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        while self.pos >= self.cur.len() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Msg::Data(block)) => {
                    let mut used = std::mem::replace(&mut self.cur, block);
                    used.clear();
                    let _ = self.spare.try_send(used);
                    self.pos = 0;
                }
                Ok(Msg::End) => self.ended = true,
                Err(_) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the writing side of the pipe stopped before the end")),
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_in_order() {
        let data: Vec<u8> = (0..1_000_003u32).map(|i| (i * 7 % 253) as u8).collect();
        let (mut w, mut r) = pipe(4096, 2);
        let sent = data.clone();
        let t = std::thread::spawn(move || {
            for piece in sent.chunks(1000) {
                w.write_all(piece).unwrap();
            }
            w.finish().unwrap();
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        t.join().unwrap();
        assert_eq!(got, data);
    }

    #[test]
    fn a_writer_dropped_before_the_end_is_an_error_not_an_end_of_file() {
        let (mut w, mut r) = pipe(16, 2);
        w.write_all(b"partial data, more than a block").unwrap();
        drop(w);
        let mut got = Vec::new();
        let e = r.read_to_end(&mut got).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_reader_gone_stops_the_writer() {
        let (mut w, r) = pipe(16, 1);
        drop(r);
        let e = w.write_all(&[0u8; 64]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }
}
