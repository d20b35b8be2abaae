//! [`File`]: an open file whose blocking calls run in worker threads ([`to_thread`]), and the
//! stream traits on it.

use std::cell::RefCell;
use std::fmt;
use std::fs::{Metadata, OpenOptions};
use std::future::{Future, poll_fn};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use super::error::FsError;
use super::readahead::ReadAhead;
use crate::lowlevel::checkpoint;
use crate::stream::{AsyncResource, ConflictDetector, ReceiveBuf, ReceiveStream, SendStream};
use crate::{BusyResourceError, CancelScope, ClosedResourceError, Error, Result, to_thread};

/// The file, shared with the worker threads that use it.
pub(super) struct Shared {
    /// The mutex makes each operation's system calls one unit (a `write_all` is not
    /// interleaved with another task's read), also when an abandoned operation's thread is
    /// still running.
    file: Mutex<std::fs::File>,
    /// How far the kernel's position is ahead of the caller's because of data read ahead and
    /// given up: the next job seeks back by this much first.
    rewind: AtomicU64,
}

impl Shared {
    pub(super) fn rewind(&self, bytes: u64) {
        if bytes > 0 {
            self.rewind.fetch_add(bytes, Ordering::SeqCst);
        }
    }
}

/// Runs `op` on the file under its lock, after moving the position back over data that was
/// read ahead and given up.
pub(super) fn with_file<T>(
    shared: &Shared,
    op: impl FnOnce(&mut std::fs::File) -> io::Result<T>,
) -> io::Result<T> {
    let mut file = lock(&shared.file);
    let back = shared.rewind.swap(0, Ordering::SeqCst);
    if back > 0 {
        if let Err(e) = file.seek(SeekFrom::Current(-(back as i64))) {
            shared.rewind.fetch_add(back, Ordering::SeqCst);
            return Err(e);
        }
    }
    op(&mut file)
}

fn lock(file: &Mutex<std::fs::File>) -> MutexGuard<'_, std::fs::File> {
    // A panic in an earlier operation's thread leaves nothing half-done in the file object.
    file.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

type Pending<T> = Pin<Box<dyn Future<Output = Result<T>>>>;

/// How much a stream receive reads at least from a regular file, however small its buffer
/// (what is not handed out yet is kept for the next receive).
const MIN_STREAM_READ: usize = 16 * 1024;
/// How much of a stream send's buffer one write takes.
const MAX_STREAM_WRITE: usize = 1024 * 1024;

/// Operations in progress, which outlive the poll that started them.
struct State {
    ahead: ReadAhead,
    /// A write `poll_send` accepted, running shielded from cancellation (accepted data is
    /// always written).
    writing: Option<Pending<()>>,
    /// How that write failed, for the next operation to report.
    write_error: Option<Error>,
    /// The close in progress.
    closing: Option<Pending<()>>,
}

impl State {
    /// Waits for the accepted write, then for the read-ahead batch in flight.
    fn poll_settle(&mut self, cx: &mut Context<'_>) -> Poll<()> {
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
        self.ahead.poll_in_flight(cx)
    }

    fn take_write_error(&mut self) -> Result<()> {
        match self.write_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// An open file (Trio's `trio.open_file` result; std's `File`, async).
///
/// Every method that touches the file runs the blocking call in a worker thread
/// ([`to_thread::run_sync`]) and follows its rules: each is a checkpoint; cancelled while its
/// thread runs, it waits for the thread and returns what it did (the cancellation is seen at
/// the next checkpoint), so no data read or written is lost to a cancellation. Dropping the
/// future while its thread runs abandons the thread: the operation completes unseen.
///
/// Sequential reads of a regular file read ahead: after the first, each thread round trip
/// fetches several chunks of the size asked for (up to 1 MiB), and the next batch is read
/// while the caller works through the last one. Seeking, writing and the other operations
/// that depend on the position give the unread data up first, so the file behaves as if
/// nothing was read ahead ([`into_std`](Self::into_std) included).
///
/// Methods take `&self`; operations from several tasks run one at a time, in no promised
/// order. Errors carry the path ([`FsError`]) when the file was opened by path.
///
/// A `File` is also a [`ReceiveStream`] and a [`SendStream`], so code written for sockets and
/// pipes reads and writes files too: `receive_some` reads (ahead, as above), `send_all` writes
/// and returns once the data is written. Close it with
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
    file: RefCell<Option<Arc<Shared>>>,
    path: Option<Arc<Path>>,
    state: RefCell<State>,
    send_detector: ConflictDetector,
    receive_detector: ConflictDetector,
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
    let (file, regular) = to_thread::run_sync(move || {
        let file = options.open(&in_thread)?;
        let regular = file.metadata()?.is_file();
        Ok((file, regular))
    })
    .await?
    .map_err(|e| FsError::new("open", &path, e))?;
    Ok(File::from_parts(file, regular, Some(path)))
}

/// Wraps an open std file (Trio's `trio.wrap_file`). Errors of its operations carry no path.
/// Not a checkpoint (it asks the OS, with one `fstat`, whether the file is a regular file).
pub fn wrap_file(file: std::fs::File) -> File {
    let regular = file.metadata().is_ok_and(|m| m.is_file());
    File::from_parts(file, regular, None)
}

impl File {
    fn from_parts(file: std::fs::File, regular: bool, path: Option<Arc<Path>>) -> Self {
        File {
            file: RefCell::new(Some(Arc::new(Shared {
                file: Mutex::new(file),
                rewind: AtomicU64::new(0),
            }))),
            path,
            state: RefCell::new(State {
                ahead: ReadAhead::new(regular),
                writing: None,
                write_error: None,
                closing: None,
            }),
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

    fn shared(&self) -> Result<Arc<Shared>> {
        self.file.borrow().clone().ok_or_else(closed_error)
    }

    fn error(&self, operation: &'static str, error: io::Error) -> Error {
        path_error(self.path.as_ref(), operation, error)
    }

    /// Waits for operations that the stream traits or read-ahead left running; gives up the
    /// data read ahead when the next operation depends on the position (`rewind`).
    async fn settle(&self, rewind: bool) -> Result<Arc<Shared>> {
        poll_fn(|cx| self.state.borrow_mut().poll_settle(cx)).await;
        let shared = self.shared()?;
        let mut state = self.state.borrow_mut();
        state.take_write_error()?;
        if rewind {
            state.ahead.discard(&shared)?;
        }
        Ok(shared)
    }

    /// Runs `op` on the file in a worker thread (after settling, see [`settle`](Self::settle)).
    async fn blocking<T, F>(&self, operation: &'static str, rewind: bool, op: F) -> Result<T>
    where
        F: FnOnce(&mut std::fs::File) -> io::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let shared = self.settle(rewind).await?;
        to_thread::run_sync(move || with_file(&shared, op))
            .await?
            .map_err(|e| self.error(operation, e))
    }

    /// Reads up to `max_bytes`: fewer at the end of the file (none there), and, on a pipe or
    /// terminal, what one read gives.
    ///
    /// # Checkpoint
    /// Yes: a whole checkpoint before it reads, also when the data was read ahead already.
    ///
    /// # Cancel safety
    /// Safe: cancelled while a thread reads, it waits and returns the data; dropped, the
    /// data stays read ahead for the next read.
    pub async fn read(&self, max_bytes: usize) -> Result<Vec<u8>> {
        if max_bytes == 0 {
            return Err(Error::usage("File::read(0): max_bytes must be at least 1"));
        }
        // The whole checkpoint comes before the read: data read ahead is taken and returned
        // at once, never held across a yield where a dropped future would lose it.
        checkpoint().await?;
        let shared = self.shared()?;
        poll_fn(|cx| {
            self.poll_read(cx, &shared, max_bytes, max_bytes, |ahead| {
                ahead.take(max_bytes)
            })
        })
        .await
    }

    /// Reads into `buf`; returns how many bytes it read: `buf.len()` unless the end of the
    /// file comes first (0 there), and, on a pipe or terminal, what one read gives. (std's
    /// `Read::read`, and what `tokio::fs::File` offers; [`read`](Self::read) returns a new
    /// `Vec` instead.)
    ///
    /// # Checkpoint
    /// Yes: a whole checkpoint before it reads, also when the data was read ahead already.
    ///
    /// # Cancel safety
    /// Safe: cancelled while a thread reads, it waits and fills `buf`; dropped, the data
    /// stays read ahead for the next read.
    pub async fn read_into(&self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Err(Error::usage(
                "File::read_into(&mut []): the buffer is empty",
            ));
        }
        // As in `read`: the checkpoint first, then a read that returns at once.
        checkpoint().await?;
        let shared = self.shared()?;
        let size = buf.len();
        poll_fn(|cx| self.poll_read(cx, &shared, size, size, |ahead| ahead.copy_to_slice(buf)))
            .await
    }

    /// Fills the read-ahead up to `want` bytes if needed (reads come after accepted writes),
    /// then takes data with `take` and starts the next batch if it is time.
    fn poll_read<T>(
        &self,
        cx: &mut Context<'_>,
        shared: &Arc<Shared>,
        size: usize,
        want: usize,
        take: impl FnOnce(&mut ReadAhead) -> T,
    ) -> Poll<Result<T>> {
        let mut state = self.state.borrow_mut();
        if state.ahead.buffered() < want {
            if let Some(writing) = &mut state.writing {
                let Poll::Ready(result) = writing.as_mut().poll(cx) else {
                    return Poll::Pending;
                };
                state.writing = None;
                result?;
            }
            state.take_write_error()?;
            let path = self.path.as_ref();
            match state.ahead.poll_fill(cx, shared, path, size, want) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {}
            }
        }
        let out = take(&mut state.ahead);
        state.ahead.prefetch(cx, shared, self.path.as_ref(), size);
        Poll::Ready(Ok(out))
    }

    /// Reads everything from the current position to the end of the file.
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Cancelled while the thread reads, it waits and returns what was read. Dropped before it
    /// returns (by a `select`, say), what it read is lost and the position has moved past it;
    /// call [`read`](Self::read) in a loop where that matters: a dropped `read` loses nothing.
    pub async fn read_to_end(&self) -> Result<Vec<u8>> {
        poll_fn(|cx| self.state.borrow_mut().poll_settle(cx)).await;
        let mut data = Vec::new();
        {
            let mut state = self.state.borrow_mut();
            while state.ahead.buffered() > 0 {
                data.extend(state.ahead.take(usize::MAX));
            }
        }
        self.blocking("read", true, move |file| {
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
        self.blocking("write", true, move |file| file.write_all(&data))
            .await
    }

    /// Moves the position; returns the new one, from the start of the file.
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: cancelled while the thread seeks, it returns the new position.
    pub async fn seek(&self, position: SeekFrom) -> Result<u64> {
        self.blocking("seek in", true, move |file| file.seek(position))
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
        self.settle(false).await?;
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
        self.blocking("sync", false, |file| file.sync_all()).await
    }

    /// Writes the file's data to the disk (`fdatasync`).
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: cancelled while the thread syncs, it waits for the sync.
    pub async fn sync_data(&self) -> Result<()> {
        self.blocking("sync", false, |file| file.sync_data()).await
    }

    /// Truncates or extends the file to `size` bytes.
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: cancelled while the thread works, it waits for it.
    pub async fn set_len(&self, size: u64) -> Result<()> {
        self.blocking("set the length of", true, move |file| file.set_len(size))
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
        self.blocking("read the metadata of", false, |file| file.metadata())
            .await
    }

    /// The std file back, positioned where the next read of this one would have read (data
    /// read ahead is given back). Waits for operations in progress first. Fails with
    /// [`ClosedResourceError`] once the file is closed, and with [`BusyResourceError`] if the
    /// thread of an abandoned operation (a dropped future's) still uses it: the file is then
    /// closed when that thread ends.
    ///
    /// # Checkpoint
    /// Yes.
    ///
    /// # Cancel safety
    /// Cancelled while it waits for an operation, the file is dropped (and closed).
    pub async fn into_std(self) -> Result<std::fs::File> {
        let shared = self.settle(true).await?;
        if self.state.borrow().closing.is_some() {
            return Err(closed_error());
        }
        self.file.borrow_mut().take();
        let shared = Arc::try_unwrap(shared).map_err(|_| {
            Error::new(BusyResourceError::new(
                "an abandoned operation's thread still uses the file",
            ))
        })?;
        let back = shared.rewind.load(Ordering::SeqCst);
        let mut file = shared.file.into_inner().unwrap_or_else(|p| p.into_inner());
        if back > 0 {
            file.seek(SeekFrom::Current(-(back as i64)))
                .map_err(|e| self.error("seek in", e))?;
        }
        checkpoint().await?;
        Ok(file)
    }
}

fn path_error(path: Option<&Arc<Path>>, operation: &'static str, error: io::Error) -> Error {
    match path {
        Some(path) => Error::new(FsError::new(operation, path, error)),
        None => Error::new(error),
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
        let mut state = self.state.borrow_mut();
        if let Some(writing) = &mut state.writing {
            let Poll::Ready(result) = writing.as_mut().poll(cx) else {
                return Poll::Pending;
            };
            state.writing = None;
            if let Err(e) = result {
                state.write_error.get_or_insert(e);
            }
        }
        if state.closing.is_none() {
            let Some(shared) = self.file.borrow_mut().take() else {
                return Poll::Ready(state.take_write_error());
            };
            // A read in flight is abandoned: its thread holds the file until it ends.
            state.ahead.abandon();
            state.closing = Some(Box::pin(shielded(to_thread::run_sync(move || {
                drop(shared);
            }))));
        }
        let Some(closing) = &mut state.closing else {
            unreachable!("set just above");
        };
        let Poll::Ready(result) = closing.as_mut().poll(cx) else {
            return Poll::Pending;
        };
        state.closing = None;
        state.take_write_error()?;
        Poll::Ready(result)
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
    /// operation (and `send_all`'s final flush) waits for that write. Accepted data is always
    /// written, even if the task is cancelled meanwhile.
    fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize>> {
        let mut state = self.state.borrow_mut();
        if state.poll_settle(cx).is_pending() {
            return Poll::Pending;
        }
        state.take_write_error()?;
        let Some(shared) = self.file.borrow().clone() else {
            return Poll::Ready(Err(closed_error()));
        };
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        state.ahead.discard(&shared)?;
        let data = buf[..buf.len().min(MAX_STREAM_WRITE)].to_vec();
        let n = data.len();
        let path = self.path.clone();
        let mut writing: Pending<()> = Box::pin(shielded(async move {
            to_thread::run_sync(move || with_file(&shared, |file| file.write_all(&data)))
                .await?
                .map_err(|e| path_error(path.as_ref(), "write", e))
        }));
        // Started now (the thread gets the job), finished by whoever polls next.
        match writing.as_mut().poll(cx) {
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {}
            Poll::Pending => state.writing = Some(writing),
        }
        Poll::Ready(Ok(n))
    }

    /// Ready once no accepted write is in progress.
    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut state = self.state.borrow_mut();
        if state.poll_settle(cx).is_pending() {
            return Poll::Pending;
        }
        state.take_write_error()?;
        if self.file.borrow().is_none() {
            return Poll::Ready(Err(closed_error()));
        }
        Poll::Ready(Ok(()))
    }

    fn poll_wait_send_all_might_not_block(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.poll_flush(cx)
    }

    fn send_conflict_detector(&self) -> Option<&ConflictDetector> {
        Some(&self.send_detector)
    }
}

impl ReceiveStream for File {
    /// Hands out data read ahead, or reads (at least 16 KiB of a regular file) in a worker
    /// thread. A receive that is cancelled while the thread reads leaves the data for the
    /// next one.
    fn poll_receive(&self, cx: &mut Context<'_>, buf: &mut ReceiveBuf<'_>) -> Poll<Result<()>> {
        let Some(shared) = self.file.borrow().clone() else {
            return Poll::Ready(Err(closed_error()));
        };
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let size = buf.remaining().max(MIN_STREAM_READ);
        self.poll_read(cx, &shared, size, 1, |ahead| ahead.copy_into(buf))
    }

    fn receive_conflict_detector(&self) -> Option<&ConflictDetector> {
        Some(&self.receive_detector)
    }
}
