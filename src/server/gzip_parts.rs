//! One gzip stream compressed on several threads at once.
//!
//! Each thread compresses its share of the text into a [`DeflatePart`]: raw deflate at the
//! fastest level, with its own dictionary. Every part but the last ends with a sync flush (an
//! empty stored block, which ends the output on a byte boundary and does not end the stream),
//! the last with the final block, so the parts written one after the other are one valid
//! deflate stream (RFC 1951 §3.2.3-4). [`join`] wraps them in a single gzip member (RFC 1952):
//! the header, the parts, then the CRC-32 of the whole text (the parts' CRCs combined) and its
//! length. Any gzip reader reads it; only the compression ratio differs from one pass (each
//! part starts without the previous part's history: a few bytes per part).

use std::io;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// The gzip header [`join`] writes: no name, no time, "fastest" compression (XFL 4), OS
/// unknown (255).
const HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x04, 0xff];

/// One share of the text, compressed as it is written (see the module documentation).
pub struct DeflatePart {
    deflate: Compress,
    out: Vec<u8>,
    crc: Crc,
    text_len: usize,
}

impl std::fmt::Debug for DeflatePart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeflatePart")
            .field("out", &self.out.len())
            .field("text_len", &self.text_len)
            .finish()
    }
}

impl DeflatePart {
    /// A part whose output starts with room for `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        Self {
            deflate: Compress::new(Compression::fast(), false),
            out: Vec::with_capacity(capacity.max(256)),
            crc: Crc::new(),
            text_len: 0,
        }
    }

    /// Bytes of text written so far.
    pub fn text_len(&self) -> usize {
        self.text_len
    }

    /// Feeds `input` with `flush`, growing the output as needed; returns once all of `input`
    /// is taken and, for a flush, once the flush is complete.
    fn run(&mut self, mut input: &[u8], flush: FlushCompress) -> io::Result<()> {
        loop {
            if self.out.capacity() - self.out.len() < 64 {
                self.out
                    .reserve((input.len() / 4).max(self.out.len() / 2).max(4096));
            }
            let before = self.deflate.total_in();
            let status = self
                .deflate
                .compress_vec(input, &mut self.out, flush)
                .map_err(io::Error::other)?;
            let taken = usize::try_from(self.deflate.total_in() - before).unwrap_or(usize::MAX);
            input = input.get(taken..).unwrap_or_default();
            let room_left = self.out.len() < self.out.capacity();
            let done = match flush {
                FlushCompress::Finish => status == Status::StreamEnd,
                FlushCompress::None => input.is_empty(),
                // A flush is complete when it did not fill the output.
                _ => input.is_empty() && room_left,
            };
            if done {
                return Ok(());
            }
        }
    }
}

impl io::Write for DeflatePart {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.run(buf, FlushCompress::None)?;
        self.crc.update(buf);
        self.text_len += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The parts, in order, as one gzip member (copied into one buffer of the exact size).
/// No parts: the gzip of the empty text.
pub fn join(parts: Vec<DeflatePart>) -> io::Result<Vec<u8>> {
    let last = parts.len().saturating_sub(1);
    let mut crc = Crc::new();
    let mut text_len = 0usize;
    let mut ended = Vec::with_capacity(parts.len());
    for (i, mut part) in parts.into_iter().enumerate() {
        let flush = if i == last {
            FlushCompress::Finish
        } else {
            FlushCompress::Sync
        };
        part.run(&[], flush)?;
        crc.combine(&part.crc);
        text_len += part.text_len;
        ended.push(part.out);
    }
    if ended.is_empty() {
        let mut only = DeflatePart::new(16);
        only.run(&[], FlushCompress::Finish)?;
        ended.push(only.out);
    }
    let body: usize = ended.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(HEADER.len() + body + 8);
    out.extend_from_slice(&HEADER);
    for part in &ended {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE: the length modulo 2^32.
    out.extend_from_slice(&(text_len as u32).to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn gunzip(z: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut d = flate2::read::GzDecoder::new(z);
        d.read_to_end(&mut out).unwrap();
        // One member, nothing after it.
        let mut rest = Vec::new();
        d.into_inner().read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "{} bytes after the member", rest.len());
        out
    }

    fn parts_of(text: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut bounds = vec![0];
        bounds.extend_from_slice(cuts);
        bounds.push(text.len());
        let parts = bounds
            .windows(2)
            .map(|w| {
                let mut p = DeflatePart::new(0);
                // Several writes, as a renderer makes them.
                for piece in text[w[0]..w[1]].chunks(777) {
                    p.write_all(piece).unwrap();
                }
                assert_eq!(p.text_len(), w[1] - w[0]);
                p
            })
            .collect();
        join(parts).unwrap()
    }

    #[test]
    fn parts_join_into_one_member_of_the_whole_text() {
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("m{{a=\"{}\"}} {}\n", i % 977, i * 7).into_bytes())
            .collect();
        for cuts in [
            &[][..],
            &[1][..],
            &[text.len() / 2][..],
            &[10, 10, 500_000, text.len() - 1][..],
            &[0, text.len()][..],
        ] {
            assert_eq!(gunzip(&parts_of(&text, cuts)), text, "cuts {cuts:?}");
        }
    }

    #[test]
    fn empty_texts_and_no_parts() {
        assert_eq!(gunzip(&join(Vec::new()).unwrap()), b"");
        assert_eq!(gunzip(&parts_of(b"", &[0, 0])), b"");
        assert_eq!(gunzip(&parts_of(b"x\n", &[0])), b"x\n");
    }

    #[test]
    fn incompressible_text_grows_the_output() {
        // xorshift bytes do not compress: the output must grow past its first capacity.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let text: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert_eq!(gunzip(&parts_of(&text, &[123_456])), text);
    }
}
