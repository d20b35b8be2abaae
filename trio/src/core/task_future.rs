//! A task's future, stored in a pooled block instead of a `Box`.
//!
//! A boxed future (`Pin<Box<dyn Future>>`) costs a malloc at spawn and a free when the task
//! ends, and more when many tasks end at once and the allocator's per-size caches run dry.
//! [`TaskFuture`] keeps the future in a block of one of a few size classes and gives finished
//! blocks back to a per-thread free list, so a run that spawns tasks steadily stops calling
//! the allocator for them.
//!
//! A future larger than the biggest class, or aligned more strictly than the blocks, gets an
//! allocation of its own exactly as a `Box` would. A zero-sized future allocates nothing.
//!
//! The block is never moved while the future lives in it, which is what `Pin` requires: the
//! `TaskFuture` value that points to it may move freely.
//!
//! # Safety
//!
//! A `TaskFuture` owns a raw block and a vtable made for the one future type it erased. The
//! invariants: the block is allocated with the layout its `Storage` names (a class's layout,
//! the future's own, or none for a zero-sized future); it holds a live future of the vtable's
//! type from `new` until `drop`, and never moves meanwhile (so polling it pinned is sound); a
//! block goes back to the pool (or is freed) only after the future in it was dropped, even if
//! that drop panics. The tests at the bottom drive every storage kind, and the whole runtime
//! suite runs over this allocator under Miri (`scripts/miri.sh`).

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

use crate::Result;

/// Block sizes; every block is aligned to [`BLOCK_ALIGN`].
const CLASSES: [usize; 4] = [64, 128, 256, 512];

/// Alignment of every pooled block.
const BLOCK_ALIGN: usize = 16;

/// How many free blocks each class keeps, smallest class first (bounded: a burst of many
/// tasks must not pin its memory for the thread's lifetime).
const KEEP: [usize; 4] = [1024, 1024, 256, 128];

/// Where a future's memory comes from.
#[derive(Clone, Copy)]
enum Storage {
    /// Zero-sized: a dangling, aligned pointer; nothing to free.
    None,
    /// A pooled block of class `CLASSES[i]`.
    Class(usize),
    /// An allocation of exactly the future's layout.
    Own,
}

/// What a `TaskFuture` needs to know about the future type it erased.
struct VTable {
    poll: unsafe fn(NonNull<u8>, &mut Context<'_>, &mut Option<Result<()>>),
    drop_in_place: unsafe fn(NonNull<u8>),
    layout: Layout,
    storage: Storage,
}

struct VTableOf<F>(PhantomData<F>);

impl<F: Future<Output = Result<()>>> VTableOf<F> {
    const VTABLE: VTable = VTable {
        poll: poll_erased::<F>,
        drop_in_place: drop_erased::<F>,
        layout: Layout::new::<F>(),
        storage: storage_for(Layout::new::<F>()),
    };
}

const fn storage_for(layout: Layout) -> Storage {
    if layout.size() == 0 {
        return Storage::None;
    }
    if layout.align() > BLOCK_ALIGN {
        return Storage::Own;
    }
    let mut i = 0;
    while i < CLASSES.len() {
        if layout.size() <= CLASSES[i] {
            return Storage::Class(i);
        }
        i += 1;
    }
    Storage::Own
}

/// Polls the `F` at `ptr`; its output, once ready, goes into `ready`.
///
/// An out-parameter rather than a returned `Poll<Result<()>>` (three words, returned
/// through memory): a pending poll, the common case, writes nothing at all.
///
/// # Safety
/// `ptr` points to a live, pinned `F`.
unsafe fn poll_erased<F: Future<Output = Result<()>>>(
    ptr: NonNull<u8>,
    cx: &mut Context<'_>,
    ready: &mut Option<Result<()>>,
) {
    // SAFETY: the caller guarantees `ptr` is a live `F`; it stays in its block until dropped,
    // so pinning it is sound.
    let future = unsafe { Pin::new_unchecked(&mut *ptr.cast::<F>().as_ptr()) };
    if let Poll::Ready(result) = future.poll(cx) {
        // The caller passes `None`: nothing to drop (an assignment would check).
        std::mem::forget(ready.replace(result));
    }
}

/// # Safety
/// `ptr` points to a live `F` that is not used again.
unsafe fn drop_erased<F>(ptr: NonNull<u8>) {
    // SAFETY: the caller guarantees `ptr` is a live `F` and gives up its use.
    unsafe { std::ptr::drop_in_place(ptr.cast::<F>().as_ptr()) }
}

fn class_layout(class: usize) -> Layout {
    match Layout::from_size_align(CLASSES[class], BLOCK_ALIGN) {
        Ok(layout) => layout,
        Err(_) => unreachable!("the block classes are valid layouts"),
    }
}

/// Free blocks of each class, for this thread.
struct Pool {
    free: [Vec<NonNull<u8>>; 4],
}

impl Drop for Pool {
    fn drop(&mut self) {
        for (class, blocks) in self.free.iter_mut().enumerate() {
            for block in blocks.drain(..) {
                // SAFETY: every pooled block was allocated by `alloc_block` with this class's
                // layout and is owned by the pool alone.
                unsafe { dealloc(block.as_ptr(), class_layout(class)) }
            }
        }
    }
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool { free: [Vec::new(), Vec::new(), Vec::new(), Vec::new()] })
    };
}

/// Inlined into `TaskFuture::new`, where `storage` is a constant, so only the path of the
/// future's class is left.
#[inline]
fn alloc_block(storage: Storage, layout: Layout) -> NonNull<u8> {
    let layout = match storage {
        Storage::None => return dangling_for(layout),
        Storage::Class(class) => {
            let reused = POOL
                .try_with(|pool| pool.borrow_mut().free[class].pop())
                .ok()
                .flatten();
            if let Some(block) = reused {
                return block;
            }
            class_layout(class)
        }
        Storage::Own => layout,
    };
    // SAFETY: `layout` has a non-zero size (zero-sized futures took the `None` arm).
    let ptr = unsafe { alloc(layout) };
    match NonNull::new(ptr) {
        Some(ptr) => ptr,
        None => handle_alloc_error(layout),
    }
}

/// A well-aligned pointer for a zero-sized value (never dereferenced for reads or writes of
/// any byte).
fn dangling_for(layout: Layout) -> NonNull<u8> {
    match NonNull::new(std::ptr::without_provenance_mut::<u8>(layout.align())) {
        Some(ptr) => ptr,
        None => unreachable!("alignments are never zero"),
    }
}

/// # Safety
/// `ptr` came from `alloc_block(storage, layout)` and holds no live value.
#[inline]
unsafe fn free_block(ptr: NonNull<u8>, storage: Storage, layout: Layout) {
    match storage {
        Storage::None => {}
        Storage::Class(class) => {
            let kept = POOL
                .try_with(|pool| {
                    let mut pool = pool.borrow_mut();
                    let list = &mut pool.free[class];
                    if list.len() < KEEP[class] {
                        list.push(ptr);
                        true
                    } else {
                        false
                    }
                })
                .unwrap_or(false);
            if !kept {
                // SAFETY: the block was allocated with this class's layout (caller's contract).
                unsafe { dealloc(ptr.as_ptr(), class_layout(class)) }
            }
        }
        // SAFETY: allocated with exactly `layout` (caller's contract).
        Storage::Own => unsafe { dealloc(ptr.as_ptr(), layout) },
    }
}

/// A task's future in a pooled block: what the run loop polls.
pub(crate) struct TaskFuture {
    ptr: NonNull<u8>,
    vtable: &'static VTable,
}

impl TaskFuture {
    /// Moves `future` into a block.
    pub(crate) fn new<F>(future: F) -> Self
    where
        F: Future<Output = Result<()>> + 'static,
    {
        let vtable: &'static VTable = &VTableOf::<F>::VTABLE;
        let ptr = alloc_block(vtable.storage, vtable.layout);
        // SAFETY: the block is at least `size_of::<F>()` bytes and aligned for `F` (the class
        // was chosen from `F`'s layout, or the allocation is `F`'s own layout), and unused.
        unsafe { ptr.cast::<F>().as_ptr().write(future) };
        TaskFuture { ptr, vtable }
    }

    /// Polls the future in place; once it is ready, its output goes into `ready` (which the
    /// caller passes as `None`).
    #[inline]
    pub(crate) fn poll_into(&mut self, cx: &mut Context<'_>, ready: &mut Option<Result<()>>) {
        // SAFETY: `ptr` holds the live future `vtable` was made for until `self` is dropped,
        // and it never moves.
        unsafe { (self.vtable.poll)(self.ptr, cx, ready) }
    }

    /// Polls the future in place.
    #[cfg(test)]
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut ready = None;
        self.poll_into(cx, &mut ready);
        ready.map_or(Poll::Pending, Poll::Ready)
    }
}

impl Drop for TaskFuture {
    fn drop(&mut self) {
        // Frees the block even if the future's destructor panics.
        struct FreeOnExit<'a>(&'a TaskFuture);
        impl Drop for FreeOnExit<'_> {
            // Inlined, with `free_block`, into the drop of a task's future.
            #[inline]
            fn drop(&mut self) {
                let TaskFuture { ptr, vtable } = *self.0;
                // SAFETY: the block came from `alloc_block` with this vtable's storage and
                // layout; the future in it has just been dropped.
                unsafe { free_block(ptr, vtable.storage, vtable.layout) }
            }
        }
        let _free = FreeOnExit(self);
        // SAFETY: the future is live and is not used again: `self` is being dropped.
        unsafe { (self.vtable.drop_in_place)(self.ptr) }
    }
}

impl std::fmt::Debug for TaskFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskFuture")
            .field("size", &self.vtable.layout.size())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;
    use std::task::Waker;

    struct CountsDrops<const N: usize> {
        drops: Rc<Cell<u32>>,
        _pad: [u8; N],
    }

    impl<const N: usize> Future for CountsDrops<N> {
        type Output = Result<()>;
        fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl<const N: usize> Drop for CountsDrops<N> {
        fn drop(&mut self) {
            self.drops.set(self.drops.get() + 1);
        }
    }

    fn poll_drop<const N: usize>() {
        let drops = Rc::new(Cell::new(0));
        let mut f = TaskFuture::new(CountsDrops::<N> {
            drops: drops.clone(),
            _pad: [7; N],
        });
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(f.poll(&mut cx), Poll::Ready(Ok(()))));
        drop(f);
        assert_eq!(drops.get(), 1);
    }

    #[test]
    fn every_storage_class_polls_and_drops_once() {
        poll_drop::<0>();
        poll_drop::<100>();
        poll_drop::<400>();
        poll_drop::<4000>();
        // Reused blocks too.
        for _ in 0..3 {
            poll_drop::<100>();
        }
    }

    #[test]
    fn zero_sized_and_over_aligned_futures() {
        #[repr(align(64))]
        struct Aligned([u8; 3]);
        impl Future for Aligned {
            type Output = Result<()>;
            fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<()>> {
                assert_eq!((&raw const *self) as usize % 64, 0);
                assert_eq!(self.0, [1, 2, 3]);
                Poll::Ready(Ok(()))
            }
        }
        let mut cx = Context::from_waker(Waker::noop());
        let mut f = TaskFuture::new(Aligned([1, 2, 3]));
        assert!(f.poll(&mut cx).is_ready());
        struct Zst;
        impl Future for Zst {
            type Output = Result<()>;
            fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<()>> {
                Poll::Ready(Ok(()))
            }
        }
        let mut z = TaskFuture::new(Zst);
        assert!(z.poll(&mut cx).is_ready());
    }

    #[test]
    fn a_panicking_destructor_still_frees_the_block() {
        struct Panics;
        impl Future for Panics {
            type Output = Result<()>;
            fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<()>> {
                Poll::Pending
            }
        }
        impl Drop for Panics {
            fn drop(&mut self) {
                panic!("drop panics");
            }
        }
        let f = TaskFuture::new(async {
            let _p = Panics;
            std::future::pending::<()>().await;
            Ok(())
        });
        let mut f = f;
        let mut cx = Context::from_waker(Waker::noop());
        assert!(f.poll(&mut cx).is_pending());
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(f)));
        assert!(result.is_err());
    }
}
