//! [`File`]: an open file whose blocking calls run in worker threads ([`to_thread`]), and the
//! stream traits on it.

use std::cell::RefCell;
use std::fmt;
use std::fs::{Metadata, OpenOptions};
use std::future::{Future, poll_fn};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use super::error::FsError;
use crate::lowlevel::checkpoint;
use crate::stream::{AsyncResource, ConflictDetector, ReceiveBuf, ReceiveStream, SendStream};
use crate::{BusyResourceError, CancelScope, ClosedResourceError, Error, Result, to_thread};

/// The file, shared with the worker threads that use it. The mutex makes each operation's
/// system calls one unit (a `write_all` is not interleaved with another task's read), also
/// when an abandoned operation's thread is still running.
type Shared = Arc<Mutex<std::fs::File>>;

type Pending<T> = Pin<Box<dyn Future<Output = Result<T>>>>;

/// How much a stream receive reads at least, however small its buffer (what is not handed
/// out yet is kept for the next receive).
const MIN_STREAM_READ: usize = 16 * 1024;
/// How much of a stream send's buffer one write takes.
const MAX_STREAM_WRITE: usize = 1024 * 1024;

/// The stream traits' operations in progress, which outlive the poll that started them.
#[derive(Default)]
struct StreamState {
    /// A read started by `poll_receive`.
    reading: Option<Pending<Vec<u8>>>,
    /// Data read ahead and not handed out yet (from `unread_start` on).
    unread: Vec<u8>,
    unread_start: usize,
    /// A write `poll_send` accepted, running shielded from cancellation (accepted data is
    /// always written).
    writing: Option<Pending<()>>,
    /// How that write failed, for the next send, flush or close to report.
    write_error: Option<Error>,
    /// The close in progress.
    closing: Option<Pending<()>>,
}

impl StreamState {
    fn unread(&self) -> &[u8] {
        &self.unread[self.unread_start..]
    }

    fn consume_unread(&mut self, n: usize) {
        self.unread_start += n;
        if self.unread_start == self.unread.len() {
            self.unread.clear();
            self.unread_start = 0;
        }
    }

    /// Waits for the accepted write to finish; its failure is kept for the caller.
    fn poll_write_done(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(writing) = &mut self.writing {
            match writing.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => {
                    self.writing = None;
                    if let Err(e) = result {
                        self.write_error.get_or_insert(e);
                    }
                }
            }
        }
        Poll::Ready(())
    }
}

/// An open file (Trio's `trio.open_file` result; std's `File`, async).
///
/// Every method that touches the file runs the blocking call in a worker thread
/// ([`to_thread::run_sync`]) and follows its rules: each is a checkpoint; cancelled while its
/// thread runs, it waits for the thread and returns what it did (the cancellation is seen at
/// the next checkpoint), so no data read or written is ever lost to a cancellation. Dropping
/// the future abandons the thread: the operation finishes unseen.
///
/// Methods take `&self`; operations from several tasks run one at a time, in no promised
/// order. Errors carry the path ([`FsError`]) when the file was opened by path.
///
/// A `File` is also a [`ReceiveStream`] and a [`SendStream`], so code written for sockets and
/// pipes reads and writes files too: `receive_some` reads (ahead: at least 16 KiB per thread
/// round trip), `send_all` writes and returns once the data is written. Close it with
/// [`aclose`](crate::AsyncResourceExt::aclose) (the close runs in a worker thread, shielded),
/// or drop it (the fd closes on the spot, or when an abandoned operation's thread ends).
///
/// ```
/// use std::io::SeekFrom;
/// use trio::stream::prelude::*;
///
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let path = std::env::temp_dir().join(format!("trio-file-doc-{}", std::process::id()));
///     let file = trio::fs::File::create(&path).await?;
///     file.write_all("hello, world").await?;
///     file.aclose().await?;
///
///     let file = trio::open_file(&path, std::fs::OpenOptions::new().read(true)).await?;
///     file.seek(SeekFrom::Start(7)).await?;
///     assert_eq!(file.read(100).await?, b"world");
///     assert_eq!(file.read(100).await?, b""); // end of file
///     trio::fs::remove_file(&path).await?;
///     Ok(())
/// })
/// # }
/// ```
pub struct File {
    file: RefCell<Option<Shared>>,
    path: Option<Arc<Path>>,
    stream: RefCell<StreamState>,
    send_detector: ConflictDetector,
    receive_detector: ConflictDetector,
}

fn lock(file: &Mutex<std::fs::File>) -> MutexGuard<'_, std::fs::File> {
    // A panic in an earlier operation's thread leaves nothing half-done in the file object.
    file.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn closed_error() -> Error {
    Error::new(ClosedResourceError::new("the file was closed"))
}

/// Opens the file at `path` with `options` (std's `OpenOptions`), in a worker thread (Trio's
/// `trio.open_file`). [`File::open`] and [`File::create`] are the common cases.
///
/// ```
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let file = trio::open_file("Cargo.toml", std::fs::OpenOptions::new().read(true)).await?;
///     assert!(!file.read(16).await?.is_empty());
///     Ok(())
/// })
/// # }
/// ```
///
/// Errors: [`FsError`] with the path (missing file, permission denied, ...).
///
/// # Checkpoint
/// Yes (as [`to_thread::run_sync`]).
///
/// # Cancel safety
/// Cancelled while the thread opens the file, it waits and returns the file; dropped, the
/// file is closed when the thread ends.
pub async fn open_file(path: impl AsRef<Path>, options: &OpenOptions) -> Result<File> {
    let path: Arc<Path> = Arc::from(path.as_ref());
    let options = options.clone();
    let in_thread = path.clone();
    let file = to_thread::run_sync(move || options.open(&in_thread))
        .await?
        .map_err(|e| FsError::new("open", &path, e))?;
    Ok(File::from_parts(file, Some(path)))
}

/// Wraps an open std file (Trio's `trio.wrap_file`). Errors of its operations carry no path.
/// Not a checkpoint.
pub fn wrap_file(file: std::fs::File) -> File {
    File::from_parts(file, None)
}

impl File {
    fn from_parts(file: std::fs::File, path: Option<Arc<Path>>) -> Self {
        File {
            file: RefCell::new(Some(Arc::new(Mutex::new(file)))),
            path,
            stream: RefCell::default(),
            send_detector: ConflictDetector::new("another task is already sending to this file"),
            receive_detector: ConflictDetector::new(
                "another task is already receiving from this file",
            ),
        }
    }

    /// Opens `path` for reading.
    ///
    /// # Checkpoint
    /// Yes, as [`open_file`].
    ///
    /// # Cancel safety
    /// As [`open_file`].
    pub async fn open(path: impl AsRef<Path>) -> Result<File> {
        open_file(path, OpenOptions::new().read(true)).await
    }

    /// Opens `path` for writing, creating it or truncating it.
    ///
    /// # Checkpoint
    /// Yes, as [`open_file`].
    ///
    /// # Cancel safety
    /// As [`open_file`].
    pub async fn create(path: impl AsRef<Path>) -> Result<File> {
        open_file(
            path,
            OpenOptions::new().write(true).create(true).truncate(true),
        )
        .await
    }

    /// The path the file was opened with (`None` for [`wrap_file`]).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn shared(&self) -> Result<Shared> {
        self.file.borrow().clone().ok_or_else(closed_error)
    }

    fn error(&self, operation: &'static str, error: io::Error) -> Error {
        match &self.path {
            Some(path) => Error::new(FsError::new(operation, path, error)),
            None => Error::new(error),
        }
    }

    /// Waits for a write the stream traits accepted, so that operations keep their order;
    /// reports how it failed.
    async fn settle(&self) -> Result<()> {
        poll_fn(|cx| self.stream.borrow_mut().poll_write_done(cx)).await;
        match self.stream.borrow_mut().write_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Runs `op` on the file in a worker thread.
    async fn blocking<T, F>(&self, operation: &'static str, op: F) -> Result<T>
    where
        F: FnOnce(&mut std::fs::File) -> io::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.settle().await?;
        let file = self.shared()?;
        to_thread::run_sync(move || op(&mut lock(&file)))
            .await?
            .map_err(|e| self.error(operation, e))
    }

    /// Reads up to `max_bytes` (fewer only at the end of the file; none there).
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: cancelled while the thread reads, it returns what was read.
    pub async fn read(&self, max_bytes: usize) -> Result<Vec<u8>> {
        if max_bytes == 0 {
            return Err(Error::usage("File::read(0): max_bytes must be at least 1"));
        }
        let buffered = {
            let mut stream = self.stream.borrow_mut();
            let n = stream.unread().len().min(max_bytes);
            let data = stream.unread()[..n].to_vec();
            stream.consume_unread(n);
            data
        };
        if !buffered.is_empty() {
            checkpoint().await?;
            return Ok(buffered);
        }
        self.blocking("read", move |file| {
            let mut data = Vec::with_capacity(max_bytes);
            file.take(max_bytes as u64).read_to_end(&mut data)?;
            Ok(data)
        })
        .await
    }

    /// Reads everything from the current position to the end of the file.
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: cancelled while the thread reads, it returns what was read.
    pub async fn read_to_end(&self) -> Result<Vec<u8>> {
        let mut data = std::mem::take(&mut self.stream.borrow_mut().unread);
        let start = std::mem::take(&mut self.stream.borrow_mut().unread_start);
        data.drain(..start);
        self.blocking("read", move |file| {
            file.read_to_end(&mut data)?;
            Ok(data)
        })
        .await
    }

    /// Writes all of `data`.
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: cancelled while the thread writes, it finishes writing and returns.
    pub async fn write_all(&self, data: impl Into<Vec<u8>>) -> Result<()> {
        let data = data.into();
        self.blocking("write", move |file| file.write_all(&data))
            .await
    }

    /// Moves the position; returns the new one from the start of the file. Data the stream
    /// traits read ahead is given up (the position accounts for it).
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: cancelled while the thread seeks, it returns the new position.
    pub async fn seek(&self, position: SeekFrom) -> Result<u64> {
        self.settle().await?;
        let ahead = {
            let mut stream = self.stream.borrow_mut();
            let ahead = stream.unread().len() as i64;
            stream.unread.clear();
            stream.unread_start = 0;
            ahead
        };
        let position = match position {
            SeekFrom::Current(offset) => SeekFrom::Current(offset - ahead),
            other => other,
        };
        self.blocking("seek in", move |file| file.seek(position))
            .await
    }

    /// Waits until every write is done (a write the stream traits accepted included). A
    /// `std::fs::File` buffers nothing, so there is nothing else to push out; see
    /// [`sync_all`](Self::sync_all) for the disk.
    ///
    /// # Checkpoint
    /// Yes.
    ///
    /// # Cancel safety
    /// Safe.
    pub async fn flush(&self) -> Result<()> {
        self.settle().await?;
        self.shared()?;
        checkpoint().await
    }

    /// Writes the file's data and metadata to the disk (`fsync`).
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: cancelled while the thread syncs, it waits for the sync.
    pub async fn sync_all(&self) -> Result<()> {
        self.blocking("sync", |file| file.sync_all()).await
    }

    /// Writes the file's data to the disk (`fdatasync`).
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: cancelled while the thread syncs, it waits for the sync.
    pub async fn sync_data(&self) -> Result<()> {
        self.blocking("sync", |file| file.sync_data()).await
    }

    /// Truncates or extends the file to `size` bytes.
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: cancelled while the thread works, it waits for it.
    pub async fn set_len(&self, size: u64) -> Result<()> {
        self.blocking("set the length of", move |file| file.set_len(size))
            .await
    }

    /// The file's metadata (`fstat`).
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe.
    pub async fn metadata(&self) -> Result<Metadata> {
        self.blocking("read the metadata of", |file| file.metadata())
            .await
    }

    /// The std file back, positioned where the next read of this one would have read. Fails
    /// with [`BusyResourceError`] while an operation (an abandoned one's thread included) still
    /// uses it, and with [`ClosedResourceError`] once closed. Not a checkpoint.
    pub fn into_std(self) -> Result<std::fs::File> {
        let mut stream = self.stream.borrow_mut();
        if stream.writing.is_some() || stream.reading.is_some() || stream.closing.is_some() {
            return Err(Error::new(BusyResourceError::new(
                "the file has an operation in progress",
            )));
        }
        let ahead = stream.unread().len() as i64;
        stream.unread.clear();
        stream.unread_start = 0;
        drop(stream);
        let shared = self.file.borrow_mut().take().ok_or_else(closed_error)?;
        let file = match Arc::try_unwrap(shared) {
            Ok(mutex) => mutex.into_inner().unwrap_or_else(|p| p.into_inner()),
            Err(shared) => {
                *self.file.borrow_mut() = Some(shared);
                return Err(Error::new(BusyResourceError::new(
                    "an abandoned operation's thread still uses the file",
                )));
            }
        };
        if ahead > 0 {
            (&file)
                .seek(SeekFrom::Current(-ahead))
                .map_err(|e| self.error("seek in", e))?;
        }
        Ok(file)
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("File");
        if let Some(path) = &self.path {
            d.field("path", path);
        }
        d.field("closed", &self.file.borrow().is_none()).finish()
    }
}

impl AsyncResource for File {
    /// Finishes an accepted write, then closes the file in a worker thread, shielded from
    /// cancellation (closing can block, on a network file system). Reports a failed write.
    fn poll_close(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut stream = self.stream.borrow_mut();
        if stream.poll_write_done(cx).is_pending() {
            return Poll::Pending;
        }
        if stream.closing.is_none() {
            let Some(shared) = self.file.borrow_mut().take() else {
                return Poll::Ready(match stream.write_error.take() {
                    Some(e) => Err(e),
                    None => Ok(()),
                });
            };
            // A read in flight is abandoned: its thread holds the file until it ends.
            stream.reading = None;
            stream.unread.clear();
            stream.unread_start = 0;
            stream.closing = Some(Box::pin(shielded(to_thread::run_sync(move || {
                drop(shared);
            }))));
        }
        let Some(closing) = &mut stream.closing else {
            unreachable!("set just above");
        };
        match closing.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                stream.closing = None;
                Poll::Ready(match stream.write_error.take() {
                    Some(e) => Err(e),
                    None => result,
                })
            }
        }
    }
}

/// Runs `op` shielded from cancellation.
async fn shielded<T>(op: impl Future<Output = Result<T>>) -> Result<T> {
    match CancelScope::new().shielded(true).run(op).await? {
        Some(value) => Ok(value),
        None => Err(Error::usage("a shielded scope absorbed a cancellation")),
    }
}

impl SendStream for File {
    /// Takes up to 1 MiB of `buf` (a copy) and starts writing it in a worker thread; the next
    /// send (and `send_all`'s final flush) waits for that write. Accepted data is always
    /// written, even if the task is cancelled meanwhile.
    fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize>> {
        let mut stream = self.stream.borrow_mut();
        if stream.poll_write_done(cx).is_pending() {
            return Poll::Pending;
        }
        if let Some(e) = stream.write_error.take() {
            return Poll::Ready(Err(e));
        }
        let Some(shared) = self.file.borrow().clone() else {
            return Poll::Ready(Err(closed_error()));
        };
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let data = buf[..buf.len().min(MAX_STREAM_WRITE)].to_vec();
        let n = data.len();
        let path = self.path.clone();
        let mut writing: Pending<()> = Box::pin(shielded(async move {
            to_thread::run_sync(move || lock(&shared).write_all(&data))
                .await?
                .map_err(|e| match path {
                    Some(path) => Error::new(FsError::new("write", &path, e)),
                    None => Error::new(e),
                })
        }));
        // Started now (the thread gets the job), finished by whoever polls next.
        match writing.as_mut().poll(cx) {
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {}
            Poll::Pending => stream.writing = Some(writing),
        }
        Poll::Ready(Ok(n))
    }

    /// Ready once no accepted write is in progress.
    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut stream = self.stream.borrow_mut();
        if stream.poll_write_done(cx).is_pending() {
            return Poll::Pending;
        }
        match stream.write_error.take() {
            Some(e) => Poll::Ready(Err(e)),
            None if self.file.borrow().is_none() => Poll::Ready(Err(closed_error())),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_wait_send_all_might_not_block(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.poll_flush(cx)
    }

    fn send_conflict_detector(&self) -> Option<&ConflictDetector> {
        Some(&self.send_detector)
    }
}

impl ReceiveStream for File {
    /// Hands out data read ahead, or reads (at least 16 KiB) in a worker thread. A receive
    /// that is cancelled while the thread reads leaves the data for the next one.
    fn poll_receive(&self, cx: &mut Context<'_>, buf: &mut ReceiveBuf<'_>) -> Poll<Result<()>> {
        let mut stream = self.stream.borrow_mut();
        let Some(shared) = self.file.borrow().clone() else {
            return Poll::Ready(Err(closed_error()));
        };
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if stream.unread().is_empty() {
            // Reads come after accepted writes.
            if stream.poll_write_done(cx).is_pending() {
                return Poll::Pending;
            }
            if let Some(e) = stream.write_error.take() {
                return Poll::Ready(Err(e));
            }
            let reading = stream.reading.get_or_insert_with(|| {
                let want = buf.remaining().max(MIN_STREAM_READ);
                let path = self.path.clone();
                Box::pin(async move {
                    to_thread::run_sync(move || {
                        let mut data = Vec::with_capacity(want);
                        let mut file = lock(&shared);
                        (&mut *file).take(want as u64).read_to_end(&mut data)?;
                        Ok(data)
                    })
                    .await?
                    .map_err(|e: io::Error| match path {
                        Some(path) => Error::new(FsError::new("read", &path, e)),
                        None => Error::new(e),
                    })
                })
            });
            match reading.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => {
                    stream.reading = None;
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(data)) => {
                    stream.reading = None;
                    stream.unread = data;
                    stream.unread_start = 0;
                }
            }
        }
        let n = buf.put_slice(stream.unread());
        stream.consume_unread(n);
        Poll::Ready(Ok(()))
    }

    fn receive_conflict_detector(&self) -> Option<&ConflictDetector> {
        Some(&self.receive_detector)
    }
}
