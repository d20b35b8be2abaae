//! What stream implementations are made of: [`ConflictDetector`], which reports two tasks
//! using one direction of a stream, and [`ReceiveBuf`], the buffer `poll_receive` fills.

use std::cell::Cell;
use std::fmt;
use std::mem::MaybeUninit;

use crate::{BusyResourceError, Error, Result, UsageError};

/// Detects two tasks doing an operation that allows one at a time (Trio's `ConflictDetector`):
/// two `send_all`s on one stream, or two `receive_some`s. The second one fails with
/// [`BusyResourceError`] instead of interleaving bytes or stealing data.
///
/// It is not a lock: nobody waits. Holding it means "an operation is in progress"; a task
/// that finds it held has a bug (two tasks using one direction of a stream) and is told so.
///
/// A stream keeps one detector per direction and returns it from
/// [`SendStream::send_conflict_detector`](crate::stream::SendStream::send_conflict_detector) /
/// [`ReceiveStream::receive_conflict_detector`](crate::stream::ReceiveStream::receive_conflict_detector);
/// the Trio-layer futures (`send_all`, `receive_some`, ...) hold it for their whole duration.
///
/// ```
/// use trio::stream::ConflictDetector;
///
/// let detector = ConflictDetector::new("another task is sending on this stream");
/// let guard = detector.enter().unwrap();
/// let err = detector.enter().unwrap_err();
/// assert!(err.is::<trio::BusyResourceError>());
/// drop(guard);
/// assert!(detector.enter().is_ok());
/// ```
pub struct ConflictDetector {
    held: Cell<bool>,
    entries: Cell<u64>,
    message: &'static str,
}

impl ConflictDetector {
    /// A detector whose [`BusyResourceError`] carries `message` (say what the other task is
    /// doing, as Trio's "another task is already sending").
    pub const fn new(message: &'static str) -> Self {
        ConflictDetector {
            held: Cell::new(false),
            entries: Cell::new(0),
            message,
        }
    }

    /// Marks the operation as in progress until the guard is dropped; fails with
    /// [`BusyResourceError`] if it already is.
    pub fn enter(&self) -> Result<ConflictGuard<'_>> {
        if self.held.replace(true) {
            return Err(Error::new(BusyResourceError::new(self.message)));
        }
        self.entries.set(self.entries.get().wrapping_add(1));
        Ok(ConflictGuard { detector: self })
    }

    /// How many times it was entered. With [`is_held`](Self::is_held), this tells a stream
    /// that keeps state between polls whether the operation that left the state is still the
    /// one in progress: if either changed since, that operation ended (it was cancelled or
    /// dropped) and the state is stale.
    pub fn entries(&self) -> u64 {
        self.entries.get()
    }

    /// Whether an operation holds the detector now.
    pub fn is_held(&self) -> bool {
        self.held.get()
    }

    /// The message of the errors it returns.
    pub fn message(&self) -> &'static str {
        self.message
    }
}

impl fmt::Debug for ConflictDetector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConflictDetector")
            .field("held", &self.held.get())
            .field("message", &self.message)
            .finish()
    }
}

/// Proof that an operation holds a [`ConflictDetector`]; releases it when dropped.
#[must_use = "the detector is released as soon as the guard is dropped"]
pub struct ConflictGuard<'a> {
    detector: &'a ConflictDetector,
}

impl Drop for ConflictGuard<'_> {
    fn drop(&mut self) {
        self.detector.held.set(false);
    }
}

impl fmt::Debug for ConflictGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConflictGuard")
            .field("message", &self.detector.message)
            .finish()
    }
}

/// The buffer [`ReceiveStream::poll_receive`](crate::stream::ReceiveStream::poll_receive)
/// fills: a byte slice whose front part is *filled* (received data) and whose rest may be
/// uninitialised memory.
///
/// A socket reads straight into the uninitialised part (no zero-fill, no copy) and then
/// declares how much it wrote; a stream that has its data in memory copies it in with
/// [`put_slice`](Self::put_slice). The buffer tracks what is initialised, so handing it to
/// safe code can never expose uninitialised bytes: that is why `poll_receive` takes this
/// type rather than a bare `&mut [MaybeUninit<u8>]` (whose caller would have to trust the
/// implementation's count). hyper's `ReadBufCursor` and tokio's `ReadBuf` map onto it
/// without copying.
///
/// ```
/// use std::mem::MaybeUninit;
/// use trio::stream::ReceiveBuf;
///
/// let mut storage = [MaybeUninit::<u8>::uninit(); 8];
/// let mut buf = ReceiveBuf::uninit(&mut storage);
/// assert_eq!(buf.put_slice(b"hello"), 5);
/// assert_eq!(buf.filled(), b"hello");
/// assert_eq!(buf.remaining(), 3);
/// assert_eq!(buf.put_slice(b", world"), 3); // only what fits
/// assert_eq!(buf.filled(), b"hello, w");
/// ```
pub struct ReceiveBuf<'a> {
    buf: &'a mut [MaybeUninit<u8>],
    filled: usize,
    initialized: usize,
}

impl<'a> ReceiveBuf<'a> {
    /// A buffer over initialised bytes (whose old contents are overwritten), nothing filled.
    #[inline]
    pub fn new(buf: &'a mut [u8]) -> Self {
        let initialized = buf.len();
        // SAFETY: `MaybeUninit<u8>` has the layout of `u8`. The bytes are initialised and stay
        // so: this type never writes uninitialised bytes, and hands out the uninitialised view
        // only through `unfilled_mut`, whose caller promises the same.
        let buf = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
        ReceiveBuf {
            buf,
            filled: 0,
            initialized,
        }
    }

    /// A buffer over possibly uninitialised memory, nothing filled.
    pub fn uninit(buf: &'a mut [MaybeUninit<u8>]) -> Self {
        ReceiveBuf {
            buf,
            filled: 0,
            initialized: 0,
        }
    }

    /// The total size of the buffer.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// The data received so far.
    #[inline]
    pub fn filled(&self) -> &[u8] {
        // SAFETY: the first `filled` bytes are initialised (`filled <= initialized` always).
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr().cast::<u8>(), self.filled) }
    }

    /// How many more bytes fit.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.filled
    }

    /// Copies as much of `data` as fits after the filled part, marks it filled, and returns
    /// how many bytes that was.
    pub fn put_slice(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.remaining());
        // SAFETY: `filled + n <= len`, and the source is `n` initialised bytes that cannot
        // overlap a `&mut` borrow.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.buf.as_mut_ptr().add(self.filled).cast::<u8>(),
                n,
            );
        }
        self.filled += n;
        self.initialized = self.initialized.max(self.filled);
        n
    }

    /// The part after the filled bytes as initialised memory, zero-filling what was not
    /// initialised yet (once: later calls reuse it). Write into it, then call
    /// [`advance`](Self::advance). Costs a memset the first time; code that can write into
    /// uninitialised memory uses [`unfilled_mut`](Self::unfilled_mut) instead.
    pub fn initialize_unfilled(&mut self) -> &mut [u8] {
        let len = self.buf.len();
        for byte in &mut self.buf[self.initialized..] {
            byte.write(0);
        }
        self.initialized = len;
        let unfilled = &mut self.buf[self.filled..];
        // SAFETY: every byte up to `len` is initialised now.
        unsafe { &mut *(unfilled as *mut [MaybeUninit<u8>] as *mut [u8]) }
    }

    /// Marks `n` more bytes as filled. They must be initialised already (written through
    /// [`initialize_unfilled`](Self::initialize_unfilled), or declared with
    /// [`assume_init`](Self::assume_init)); otherwise this is a [`UsageError`] and nothing
    /// changes.
    #[inline]
    pub fn advance(&mut self, n: usize) -> Result<()> {
        match self.filled.checked_add(n) {
            Some(end) if end <= self.initialized => {
                self.filled = end;
                Ok(())
            }
            _ => Err(self.advance_error(n)),
        }
    }

    #[cold]
    #[inline(never)]
    fn advance_error(&self, n: usize) -> Error {
        Error::new(UsageError::new(format!(
            "ReceiveBuf::advance({n}): only {} initialised bytes follow the {} filled ones",
            self.initialized - self.filled,
            self.filled
        )))
    }

    /// The part after the filled bytes, possibly uninitialised: for a `recv` that writes
    /// into uninitialised memory. Afterwards declare what was written with
    /// [`assume_init`](Self::assume_init) and [`advance`](Self::advance).
    ///
    /// # Safety
    /// The caller must not write uninitialised bytes into it (`MaybeUninit::uninit()`): the
    /// memory may be an initialised `&mut [u8]` of the caller's caller.
    #[inline]
    pub unsafe fn unfilled_mut(&mut self) -> &mut [MaybeUninit<u8>] {
        &mut self.buf[self.filled..]
    }

    /// Declares the first `n` bytes after the filled part initialised (they were written
    /// through [`unfilled_mut`](Self::unfilled_mut)). `n` beyond the buffer's end is clamped.
    ///
    /// # Safety
    /// Those `n` bytes must really be initialised.
    #[inline]
    pub unsafe fn assume_init(&mut self, n: usize) {
        let end = self.filled.saturating_add(n).min(self.buf.len());
        self.initialized = self.initialized.max(end);
    }
}

impl fmt::Debug for ReceiveBuf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiveBuf")
            .field("filled", &self.filled)
            .field("initialized", &self.initialized)
            .field("capacity", &self.buf.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn second_entry_is_busy_until_the_guard_drops() {
        let d = ConflictDetector::new("another task is receiving");
        assert!(!d.is_held());
        assert_eq!(d.entries(), 0);
        let g = d.enter().expect("first entry");
        assert_eq!(d.entries(), 1);
        assert!(d.is_held());
        let err = d.enter().expect_err("second entry");
        let busy = err.downcast_ref::<BusyResourceError>().expect("busy");
        assert_eq!(busy.to_string(), "resource busy: another task is receiving");
        drop(g);
        assert!(!d.is_held());
        drop(d.enter().expect("free again"));
        assert_eq!(d.entries(), 2);
        assert_eq!(d.message(), "another task is receiving");
        assert!(format!("{d:?}").contains("held: false"));
    }
    #[test]
    fn put_slice_fills_and_clamps() {
        let mut storage = [1u8; 4];
        let mut buf = ReceiveBuf::new(&mut storage);
        assert_eq!(buf.capacity(), 4);
        assert_eq!(buf.filled(), b"");
        assert_eq!(buf.put_slice(b"ab"), 2);
        assert_eq!(buf.put_slice(b"cde"), 2);
        assert_eq!(buf.put_slice(b"f"), 0);
        assert_eq!(buf.filled(), b"abcd");
        assert_eq!(buf.remaining(), 0);
        assert_eq!(storage, *b"abcd");
    }

    #[test]
    fn initialize_unfilled_then_advance() {
        let mut storage = [MaybeUninit::<u8>::uninit(); 6];
        let mut buf = ReceiveBuf::uninit(&mut storage);
        buf.put_slice(b"x");
        // Nothing beyond the filled byte is initialised yet.
        assert!(buf.advance(1).unwrap_err().is::<UsageError>());
        let rest = buf.initialize_unfilled();
        assert_eq!(rest, &[0; 5]);
        rest[..2].copy_from_slice(b"yz");
        buf.advance(2).expect("initialised");
        assert_eq!(buf.filled(), b"xyz");
        assert!(buf.advance(4).is_err());
        assert!(buf.advance(usize::MAX).is_err());
        assert_eq!(buf.filled(), b"xyz");
        buf.advance(3).expect("the zeroes count");
        assert_eq!(buf.filled(), b"xyz\0\0\0");
        assert!(format!("{buf:?}").contains("filled: 6"));
    }

    #[test]
    fn an_initialised_buffer_can_be_advanced_directly() {
        let mut storage = *b"data";
        let mut buf = ReceiveBuf::new(&mut storage);
        buf.advance(3).expect("initialised");
        assert_eq!(buf.filled(), b"dat");
    }

    #[test]
    fn writing_through_unfilled_mut() {
        let mut storage = [MaybeUninit::<u8>::uninit(); 5];
        let mut buf = ReceiveBuf::uninit(&mut storage);
        // SAFETY: only initialised bytes are written.
        let unfilled = unsafe { buf.unfilled_mut() };
        for (slot, byte) in unfilled.iter_mut().zip(b"abc") {
            slot.write(*byte);
        }
        // SAFETY: three bytes were written just above.
        unsafe { buf.assume_init(3) };
        buf.advance(3).expect("declared");
        assert_eq!(buf.filled(), b"abc");
        // Clamped to the buffer's end; declaring nothing new changes nothing.
        // SAFETY: no byte is claimed beyond what was written (the claim is clamped to 5, and
        // bytes 3 and 4 are not advanced over).
        unsafe { buf.assume_init(0) };
        assert!(buf.advance(1).is_err());
    }
}
