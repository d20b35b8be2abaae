//! [`read_dir`] and [`ReadDir`]: a directory's entries, fetched in batches in a worker thread.

use std::collections::VecDeque;
use std::fmt;
use std::fs::DirEntry;
use std::future::{Future, poll_fn};
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use super::error::FsError;
use crate::lowlevel::checkpoint;
use crate::{Error, Result, to_thread};

/// How many entries one thread round trip reads.
const BATCH: usize = 64;

type Batch = (Vec<io::Result<DirEntry>>, bool);

/// The entries of a directory (std's `ReadDir`, async), from [`read_dir`].
///
/// Loop with [`next`](Self::next), or use it as a `futures_core::Stream` of
/// `Result<DirEntry>`. Entries come in batches of 64 read by a worker thread, so most calls
/// to `next` need no thread. The entries are std's: their `path()` and `file_name()` are free,
/// `file_type()` usually is (the kernel says), and `metadata()` blocks: call
/// [`trio::fs::metadata`](super::metadata) on the path instead.
pub struct ReadDir {
    path: Arc<Path>,
    iter: Arc<Mutex<std::fs::ReadDir>>,
    buffered: VecDeque<io::Result<DirEntry>>,
    ended: bool,
    fetching: Option<Pin<Box<dyn Future<Output = Result<Batch>>>>>,
}

/// Opens the directory at `path` for listing (std's `read_dir`).
///
/// ```
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let mut entries = trio::fs::read_dir(".").await?;
///     let mut names = Vec::new();
///     while let Some(entry) = entries.next().await? {
///         names.push(entry.file_name());
///     }
///     assert!(names.iter().any(|n| n == "Cargo.toml"));
///     Ok(())
/// })
/// # }
/// ```
///
/// Errors: [`FsError`] with the path (missing directory, not a directory, permission denied).
///
/// # Checkpoint
/// Yes (as [`to_thread::run_sync`]).
///
/// # Cancel safety
/// Cancelled while the thread opens the directory, it waits and returns it.
pub async fn read_dir(path: impl AsRef<Path>) -> Result<ReadDir> {
    let path: Arc<Path> = Arc::from(path.as_ref());
    let in_thread = path.clone();
    let iter = to_thread::run_sync(move || std::fs::read_dir(&in_thread))
        .await?
        .map_err(|e| FsError::new("read the directory", &path, e))?;
    Ok(ReadDir {
        path,
        iter: Arc::new(Mutex::new(iter)),
        buffered: VecDeque::new(),
        ended: false,
        fetching: None,
    })
}

impl ReadDir {
    /// The next entry, or `None` after the last.
    ///
    /// # Checkpoint
    /// Yes, also when the entry was fetched already.
    ///
    /// # Cancel safety
    /// Safe: cancelled while a thread fetches entries, it waits for them (the cancellation is
    /// seen at the next checkpoint). Dropped before it returns, it has taken nothing: a fetch
    /// in flight belongs to the listing, and the next call takes its entries.
    pub async fn next(&mut self) -> Result<Option<DirEntry>> {
        if self.buffered.is_empty() && !self.ended {
            poll_fn(|cx| self.poll_fetch(cx)).await?;
        } else {
            checkpoint().await?;
        }
        self.pop()
    }

    /// The directory being listed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn pop(&mut self) -> Result<Option<DirEntry>> {
        match self.buffered.pop_front() {
            None => Ok(None),
            Some(Ok(entry)) => Ok(Some(entry)),
            Some(Err(e)) => Err(Error::new(FsError::new(
                "read the directory",
                &self.path,
                e,
            ))),
        }
    }

    /// Fetches the next batch into `buffered` (ready at once if the listing has ended).
    fn poll_fetch(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if self.ended {
            return Poll::Ready(Ok(()));
        }
        let iter = self.iter.clone();
        let fetching = self.fetching.get_or_insert_with(|| {
            Box::pin(to_thread::run_sync(move || {
                let mut iter = iter.lock().unwrap_or_else(|p| p.into_inner());
                let batch: Vec<_> = iter.by_ref().take(BATCH).collect();
                let ended = batch.len() < BATCH;
                (batch, ended)
            }))
        });
        let polled = fetching.as_mut().poll(cx);
        if let Poll::Ready(result) = polled {
            self.fetching = None;
            let (batch, ended) = result?;
            self.buffered.extend(batch);
            self.ended = ended;
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }
}

impl fmt::Debug for ReadDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadDir")
            .field("path", &self.path)
            .field("buffered", &self.buffered.len())
            .field("ended", &self.ended)
            .finish()
    }
}

impl futures_core::Stream for ReadDir {
    type Item = Result<DirEntry>;

    /// As [`ReadDir::next`], without its checkpoint when an entry is buffered already.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<DirEntry>>> {
        let this = self.get_mut();
        if this.buffered.is_empty() && !this.ended {
            match this.poll_fetch(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Ok(())) => {}
            }
        }
        Poll::Ready(this.pop().transpose())
    }
}
