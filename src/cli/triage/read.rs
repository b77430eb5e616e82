//! Reading inputs in blocks of whole lines, and parsing a block into compact records.

use std::io::{self, BufRead, BufReader, Read};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::parse::{detect, parse_line, Format, Line, ParseError};

/// Bytes read per block (a block ends at the last line end within it), with one input.
pub(crate) const BLOCK: usize = 512 * 1024;
/// The smallest block, when many inputs are merged.
pub(crate) const MIN_BLOCK: usize = 64 * 1024;
/// Lines longer than this are skipped (counted as malformed) without being held in memory.
pub(crate) const MAX_LINE: usize = 16 * 1024 * 1024;

/// Bytes consumed from an input (compressed bytes for gzip), for the progress bar.
pub(crate) struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens an input: `-` is stdin; gzip is recognised by its magic bytes, whatever the name.
///
/// # Errors
/// The file cannot be opened or read.
pub(crate) fn open(name: &str, count: Arc<AtomicU64>) -> io::Result<Box<dyn Read + Send>> {
    let raw: Box<dyn Read + Send> = if name == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(std::fs::File::open(name)?)
    };
    let mut buf = BufReader::with_capacity(256 * 1024, Counting { inner: raw, count });
    let head = buf.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(buf)))
    } else {
        Ok(Box::new(buf))
    }
}

/// A run of whole lines from one input.
pub(crate) enum Block {
    /// Lines (the last one may lack its line end at the end of input).
    Lines(Vec<u8>),
    /// One line longer than [`MAX_LINE`], skipped.
    TooLong,
}

/// Splits an input into blocks of whole lines, holding at most one block and one
/// [`MAX_LINE`]-long line.
pub(crate) struct BlockReader {
    inner: Box<dyn Read + Send>,
    carry: Vec<u8>,
    eof: bool,
    block: usize,
}

impl BlockReader {
    /// Reads blocks of about `block` bytes.
    pub(crate) fn new(inner: Box<dyn Read + Send>, block: usize) -> Self {
        BlockReader {
            inner,
            carry: Vec::new(),
            eof: false,
            block: block.max(1),
        }
    }

    fn fill(&mut self, buf: &mut Vec<u8>, upto: usize) -> io::Result<()> {
        while buf.len() < upto && !self.eof {
            let want = (upto - buf.len()) as u64;
            let n = (&mut self.inner).take(want).read_to_end(buf)?;
            if n == 0 {
                self.eof = true;
            }
        }
        Ok(())
    }

    /// The next block, `None` at the end.
    ///
    /// # Errors
    /// A read error (or a corrupt gzip stream).
    pub(crate) fn next_block(&mut self) -> io::Result<Option<Block>> {
        let mut buf = std::mem::take(&mut self.carry);
        let mut target = self.block.max(buf.len() + 1);
        loop {
            let searched = buf.len();
            self.fill(&mut buf, target)?;
            // A line end in the carried part would have ended the previous block.
            if let Some(i) = memchr::memrchr(b'\n', &buf[searched..]).map(|i| i + searched) {
                self.carry = buf[i + 1..].to_vec();
                buf.truncate(i + 1);
                return Ok(Some(Block::Lines(buf)));
            }
            if self.eof {
                return Ok((!buf.is_empty()).then_some(Block::Lines(buf)));
            }
            if buf.len() >= MAX_LINE {
                self.skip_line()?;
                return Ok(Some(Block::TooLong));
            }
            target = (buf.len() + self.block).min(MAX_LINE);
        }
    }

    /// Discards input up to and including the next line end.
    fn skip_line(&mut self) -> io::Result<()> {
        let mut chunk = Vec::with_capacity(self.block);
        loop {
            chunk.clear();
            self.fill(&mut chunk, self.block)?;
            if let Some(i) = memchr::memchr(b'\n', &chunk) {
                self.carry = chunk[i + 1..].to_vec();
                return Ok(());
            }
            if self.eof {
                return Ok(());
            }
        }
    }
}

/// Where a text field of a [`Rec`] lives: in the block, or (when escapes were decoded) in the
/// batch's side buffer. `len == u32::MAX` means absent.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    start: u32,
    len: u32,
}

const EXTRA: u32 = 1 << 31;

impl Span {
    pub(crate) const NONE: Span = Span {
        start: 0,
        len: u32::MAX,
    };

    pub(crate) fn is_some(self) -> bool {
        self.len != u32::MAX
    }
}

/// One parsed line, compact and without pointers into its block.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rec {
    pub(crate) time_ms: i64,
    pub(crate) ip: IpAddr,
    /// Line number within the batch (0-based).
    pub(crate) line: u32,
    pub(crate) status: u16,
    pub(crate) bytes: Option<u64>,
    pub(crate) raw: Span,
    pub(crate) user: Span,
    pub(crate) method: Span,
    pub(crate) path: Span,
    pub(crate) query: Span,
    pub(crate) user_agent: Span,
}

/// A malformed line: its number within the batch, why, and its start.
pub(crate) struct Malformed {
    pub(crate) line: u32,
    pub(crate) why: ParseError,
    pub(crate) excerpt: String,
}

/// A parsed block.
pub(crate) struct Batch {
    pub(crate) input: u16,
    /// Line number (1-based) of the block's first line in its input; set by the reader.
    pub(crate) line_base: u64,
    pub(crate) lines: u32,
    pub(crate) malformed: u32,
    pub(crate) samples: Vec<Malformed>,
    pub(crate) recs: Vec<Rec>,
    buf: Vec<u8>,
    extra: Vec<u8>,
}

/// Malformed lines sampled per batch (the report shows the first few overall).
const SAMPLES_PER_BATCH: usize = 8;

impl Batch {
    /// The text of a span.
    pub(crate) fn text(&self, s: Span) -> Option<&[u8]> {
        if !s.is_some() {
            return None;
        }
        let (src, start) = if s.start & EXTRA != 0 {
            (&self.extra, (s.start & !EXTRA) as usize)
        } else {
            (&self.buf, s.start as usize)
        };
        src.get(start..start + s.len as usize)
    }

    pub(crate) fn too_long(input: u16) -> Batch {
        Batch {
            input,
            line_base: 0,
            lines: 1,
            malformed: 1,
            samples: vec![Malformed {
                line: 0,
                why: ParseError::TooLong,
                excerpt: format!("(longer than {} MiB)", MAX_LINE >> 20),
            }],
            recs: Vec::new(),
            buf: Vec::new(),
            extra: Vec::new(),
        }
    }

    /// Parses every line of a block. A line that fails in `format` is tried in the other
    /// family (JSON or CLF) before it counts as malformed, so a mixed file still parses.
    pub(crate) fn parse(input: u16, buf: Vec<u8>, format: Format) -> Batch {
        let mut b = Batch {
            input,
            line_base: 0,
            lines: 0,
            malformed: 0,
            samples: Vec::new(),
            recs: Vec::with_capacity(buf.len() / 160),
            buf: Vec::new(),
            extra: Vec::new(),
        };
        let block = (buf.as_ptr() as usize, buf.len());
        let mut start = 0;
        let mut lines = 0u32;
        let mut recs = std::mem::take(&mut b.recs);
        while start < buf.len() {
            let end = memchr::memchr(b'\n', &buf[start..]).map_or(buf.len(), |i| start + i);
            let raw = &buf[start..end];
            let no = lines;
            lines += 1;
            start = end + 1;
            let parsed = parse_line(format, raw).or_else(|e| match e {
                ParseError::Empty => Err(e),
                _ => {
                    let other = if raw.first() == Some(&b'{') {
                        Format::Json
                    } else if format == Format::Json {
                        Format::Combined
                    } else {
                        return Err(e);
                    };
                    parse_line(other, raw).map_err(|_| e)
                }
            });
            match parsed {
                Ok(l) => recs.push(b.rec(block, no, raw, &l)),
                Err(ParseError::Empty) => {}
                Err(why) => {
                    b.malformed += 1;
                    if b.samples.len() < SAMPLES_PER_BATCH {
                        b.samples.push(Malformed {
                            line: no,
                            why,
                            excerpt: excerpt(raw, 120),
                        });
                    }
                }
            }
        }
        b.lines = lines;
        b.recs = recs;
        b.buf = buf;
        b
    }

    /// A span for `t`: in the block when `t` lies inside it (`base..base + len`), else copied
    /// to the side buffer (decoded escapes, constants).
    fn span(&mut self, (base, len): (usize, usize), t: Option<&[u8]>) -> Span {
        let Some(t) = t else { return Span::NONE };
        let p = t.as_ptr() as usize;
        if p >= base && p + t.len() <= base + len {
            return Span {
                start: (p - base) as u32,
                len: t.len() as u32,
            };
        }
        let start = self.extra.len() as u32 | EXTRA;
        self.extra.extend_from_slice(t);
        Span {
            start,
            len: t.len() as u32,
        }
    }

    fn rec(&mut self, block: (usize, usize), no: u32, raw: &[u8], l: &Line<'_>) -> Rec {
        Rec {
            time_ms: l.time_ms,
            ip: l.ip,
            line: no,
            status: l.status,
            bytes: l.bytes,
            raw: self.span(block, Some(trim_cr(raw))),
            user: self.span(block, l.user.as_deref()),
            method: self.span(block, Some(&l.method)),
            path: self.span(block, Some(l.path())),
            query: self.span(block, l.query()),
            user_agent: self.span(block, l.user_agent.as_deref()),
        }
    }
}

fn trim_cr(raw: &[u8]) -> &[u8] {
    raw.strip_suffix(b"\r").unwrap_or(raw)
}

/// The start of a line for humans: lossy UTF-8, control characters escaped, at most `max`
/// characters.
pub(crate) fn excerpt(raw: &[u8], max: usize) -> String {
    let raw = trim_cr(raw);
    let text = String::from_utf8_lossy(&raw[..raw.len().min(max * 4)]);
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The format of an input under `--format auto`: from its first block's lines.
pub(crate) fn detect_block(buf: &[u8]) -> Option<Format> {
    detect(buf.split(|&b| b == b'\n').take(64))
}
