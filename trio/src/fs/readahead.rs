//! Read-ahead for [`File`](super::File): sequential reads fetch several chunks per thread
//! round trip, and the next batch is read in the background while the caller works through
//! the current one.
//!
//! A read of `n` bytes that follows another read (no seek or write between) asks the worker
//! thread for twice as many chunks of `n` bytes as the last time, up to 1 MiB (and 32 chunks)
//! per round trip; once the data left ahead is below half a batch, the next batch is started
//! without waiting for it. A first read, or one after a seek, reads just what it asks.
//!
//! The chunk buffers are reused: a chunk handed out (copied to the caller) goes back to a
//! pool, and the next batch reads into the pool's buffers. Memory the worker thread allocated
//! and the trio thread freed would go back to the allocator (and be trimmed) batch after
//! batch, and every chunk would then be fresh memory, paid for in page faults (16 per 64 KiB:
//! several times the cost of the copy).
//!
//! The kernel's file position is ahead of the caller's by what is buffered and in flight.
//! Every operation that depends on the position first waits for the batch in flight and gives
//! the buffered data up ([`ReadAhead::discard`]); the bytes given up are added to the file's
//! pending rewind, which the next thread job (whichever runs first, under the file's lock)
//! applies with a seek before it does anything else. So the position is right even if the
//! operation that gave the data up never gets to run (cancelled while it waited for a
//! limiter token, say).
//!
//! Only regular files read ahead. On a pipe, terminal or socket, a read asks once for what
//! it wants and returns what one `read(2)` gives, as the OS file would.

use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, Read};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::error::FsError;
use super::file::{Shared, with_file};
use crate::stream::ReceiveBuf;
use crate::{Error, Result, to_thread};

/// The most one round trip reads ahead.
const MAX_BATCH_BYTES: usize = 1 << 20;
/// The most chunks one round trip reads.
const MAX_BATCH_CHUNKS: usize = 32;

/// Chunks read by one round trip, and whether the end of the file was reached.
type Batch = (Vec<Vec<u8>>, bool);

#[derive(Default)]
pub(super) struct ReadAhead {
    chunks: VecDeque<Vec<u8>>,
    /// How much of the front chunk was handed out already.
    front_offset: usize,
    /// Bytes buffered (in `chunks`, after `front_offset`).
    len: usize,
    reading: Option<Pin<Box<dyn Future<Output = Result<Batch>>>>>,
    /// How many chunks the last batch asked for (0: no sequential reading yet).
    depth: usize,
    /// The last batch reached the end of the file: read no further ahead until a read finds
    /// the buffer empty (the file may have grown by then).
    at_end: bool,
    /// A background batch failed: reported by the next read.
    error: Option<Error>,
    /// Whether the file is a regular file (only those read ahead).
    regular: bool,
    /// Emptied chunk buffers, for the next batch to read into.
    spare: Vec<Vec<u8>>,
}

impl ReadAhead {
    pub(super) fn new(regular: bool) -> Self {
        ReadAhead {
            regular,
            ..ReadAhead::default()
        }
    }

    pub(super) fn buffered(&self) -> usize {
        self.len
    }

    /// Starts a batch of `depth` chunks of `size` bytes and polls it once, so that the worker
    /// thread gets the job now.
    fn start(
        &mut self,
        cx: &mut Context<'_>,
        file: &Arc<Shared>,
        path: Option<&Arc<Path>>,
        size: usize,
        depth: usize,
    ) {
        let file = file.clone();
        let path = path.cloned();
        let regular = self.regular;
        let keep = self.spare.len().saturating_sub(depth);
        let buffers = self.spare.split_off(keep);
        self.depth = depth;
        self.reading = Some(Box::pin(async move {
            to_thread::run_sync(move || {
                with_file(&file, |f| read_chunks(f, size, depth, regular, buffers))
            })
            .await?
            .map_err(|e| match path {
                Some(path) => Error::new(FsError::new("read", &path, e)),
                None => Error::new(e),
            })
        }));
        let _ = self.poll_in_flight(cx);
    }

    /// Polls the batch in flight; once it is in, its chunks are buffered (its error kept).
    pub(super) fn poll_in_flight(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(reading) = &mut self.reading else {
            return Poll::Ready(());
        };
        let Poll::Ready(result) = reading.as_mut().poll(cx) else {
            return Poll::Pending;
        };
        self.reading = None;
        match result {
            Ok((chunks, at_end)) => {
                self.len += chunks.iter().map(Vec::len).sum::<usize>();
                self.chunks.extend(chunks);
                self.at_end = at_end;
            }
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        Poll::Ready(())
    }

    /// Ready when `want` bytes are buffered (a regular file; anything buffered otherwise), or
    /// the end of the file is reached, or a read failed. Starts a batch sized for reads of
    /// `size` bytes if none is in flight.
    pub(super) fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        file: &Arc<Shared>,
        path: Option<&Arc<Path>>,
        size: usize,
        want: usize,
    ) -> Poll<Result<()>> {
        let want = if self.regular { want.max(1) } else { 1 };
        loop {
            if let Some(e) = self.error.take() {
                return Poll::Ready(Err(e));
            }
            if self.len >= want {
                return Poll::Ready(Ok(()));
            }
            if self.reading.is_none() {
                if self.at_end {
                    // The end is reported once (with what is left); the next read looks again.
                    self.at_end = false;
                    self.depth = 0;
                    return Poll::Ready(Ok(()));
                }
                let depth = self.next_depth(size);
                self.start(cx, file, path, size, depth);
                continue;
            }
            if self.poll_in_flight(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    /// Twice the last depth (1 for a first read), within the limits.
    fn next_depth(&self, size: usize) -> usize {
        if !self.regular {
            return 1;
        }
        let limit = (MAX_BATCH_BYTES / size.max(1)).clamp(1, MAX_BATCH_CHUNKS);
        (self.depth * 2).clamp(1, limit)
    }

    /// Starts the next batch in the background once less than half a batch is buffered.
    pub(super) fn prefetch(
        &mut self,
        cx: &mut Context<'_>,
        file: &Arc<Shared>,
        path: Option<&Arc<Path>>,
        size: usize,
    ) {
        let idle = self.reading.is_none() && !self.at_end && self.error.is_none();
        if !self.regular || !idle || self.depth == 0 {
            return;
        }
        let depth = self.next_depth(size);
        if self.len < depth * size / 2 {
            self.start(cx, file, path, size, depth);
        }
    }

    /// Takes up to `max` buffered bytes, as a copy (see the module docs for why).
    pub(super) fn take(&mut self, max: usize) -> Vec<u8> {
        let n = self.len.min(max);
        let mut data = Vec::with_capacity(n);
        while data.len() < n {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let end = front.len().min(self.front_offset + n - data.len());
            data.extend_from_slice(&front[self.front_offset..end]);
            let taken = end - self.front_offset;
            self.consume(taken);
        }
        data
    }

    /// Copies buffered bytes into `out`; returns how many.
    pub(super) fn copy_to_slice(&mut self, out: &mut [u8]) -> usize {
        let mut copied = 0;
        while copied < out.len() {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let n = (front.len() - self.front_offset).min(out.len() - copied);
            out[copied..copied + n]
                .copy_from_slice(&front[self.front_offset..self.front_offset + n]);
            copied += n;
            self.consume(n);
        }
        copied
    }

    /// Copies buffered bytes into `buf`.
    pub(super) fn copy_into(&mut self, buf: &mut ReceiveBuf<'_>) {
        while buf.remaining() > 0 {
            let Some(front) = self.chunks.front() else {
                return;
            };
            let n = buf.put_slice(&front[self.front_offset..]);
            self.consume(n);
        }
    }

    fn consume(&mut self, n: usize) {
        self.front_offset += n;
        self.len -= n;
        if self
            .chunks
            .front()
            .is_some_and(|front| self.front_offset == front.len())
        {
            if let Some(mut chunk) = self.chunks.pop_front() {
                if self.spare.len() < MAX_BATCH_CHUNKS {
                    chunk.clear();
                    self.spare.push(chunk);
                }
            }
            self.front_offset = 0;
        }
    }

    /// Gives up everything buffered (the batch in flight must be in already): the bytes go
    /// to `file`'s pending rewind. Sequential reading starts over. Reports a background
    /// batch's failure.
    pub(super) fn discard(&mut self, file: &Shared) -> Result<()> {
        debug_assert!(self.reading.is_none());
        file.rewind(self.len as u64);
        for mut chunk in self.chunks.drain(..) {
            if self.spare.len() < MAX_BATCH_CHUNKS {
                chunk.clear();
                self.spare.push(chunk);
            }
        }
        self.front_offset = 0;
        self.len = 0;
        self.depth = 0;
        self.at_end = false;
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Forgets everything, the batch in flight included (its thread finishes unseen).
    pub(super) fn abandon(&mut self) {
        *self = ReadAhead::new(self.regular);
    }
}

/// Reads up to `depth` chunks of `size` bytes (a regular file); stops early at the end of the
/// file. Anything else gets one `read(2)`: on a pipe or terminal, filling a chunk would wait
/// for more input than the caller asked to wait for.
fn read_chunks(
    file: &mut std::fs::File,
    size: usize,
    depth: usize,
    regular: bool,
    mut buffers: Vec<Vec<u8>>,
) -> io::Result<Batch> {
    if !regular {
        let mut chunk = vec![0; size];
        let n = loop {
            match file.read(&mut chunk) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        chunk.truncate(n);
        let at_end = n == 0;
        return Ok((if at_end { Vec::new() } else { vec![chunk] }, at_end));
    }
    let mut chunks = Vec::with_capacity(depth);
    for _ in 0..depth {
        let mut chunk = buffers.pop().unwrap_or_default();
        chunk.reserve(size);
        (&mut *file).take(size as u64).read_to_end(&mut chunk)?;
        let full = chunk.len() == size;
        if !chunk.is_empty() {
            chunks.push(chunk);
        }
        if !full {
            return Ok((chunks, true));
        }
    }
    Ok((chunks, false))
}
