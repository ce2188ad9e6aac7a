//! Feeding a whole reader (a file, stdin) through the parser into a sink.

use std::io::Read;

use crate::exposition::{ParseError, ParseOptions, Parser};
use crate::limits::{LimitHit, LimitSink};

/// Size of the buffer [`read_all`] reads into.
pub const READ_CHUNK: usize = 1 << 20;

/// Reading input failed: an I/O error or a parse error.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The reader failed.
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
    /// The input is not valid exposition text.
    #[error("{0}")]
    Parse(#[from] ParseError),
    /// A series broke a label limit.
    #[error("{0}")]
    Limit(#[from] LimitHit),
}

/// Parses everything `reader` yields into `sink`, [`READ_CHUNK`] bytes at a time (memory does
/// not grow with the input); returns the number of bytes read.
pub fn read_all<R: Read, S: LimitSink>(
    mut reader: R,
    opts: ParseOptions,
    sink: &mut S,
) -> Result<u64, InputError> {
    let mut parser = Parser::new(opts);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        total += n as u64;
        parser.feed(&buf[..n], sink)?;
        if let Some(hit) = sink.limit_hit() {
            return Err(hit.clone().into());
        }
    }
    parser.finish(sink)?;
    if let Some(hit) = sink.limit_hit() {
        return Err(hit.clone().into());
    }
    Ok(total)
}
