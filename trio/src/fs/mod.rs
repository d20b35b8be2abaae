//! Files and paths (Trio's `trio.open_file`, `trio.wrap_file`, `trio.Path`): the blocking
//! calls of `std::fs`, run in worker threads.
//!
//! Operating systems offer no readiness for regular files (a disk read "is always ready" and
//! then blocks), so trio does what Trio does: each operation runs in a worker thread through
//! [`to_thread::run_sync`], and follows its rules:
//!
//! - **A checkpoint**, every function and method here.
//! - **Cancellation waits for the thread**: cancelled while its thread runs, an operation
//!   finishes and returns its result, and the cancellation is seen at the next checkpoint.
//!   Nothing read or written is lost, and a file is never left half-renamed by a
//!   cancellation. (Dropping the future instead abandons the thread: the operation completes
//!   unseen.)
//! - **Limited**: the threads count against the run's default
//!   [`CapacityLimiter`](crate::CapacityLimiter) (40 at once).
//! - **Typed errors with the path**: OS errors come as [`FsError`], which says what was done
//!   to which path, and keeps the `io::ErrorKind` (`NotFound`, `PermissionDenied`, ...).
//!
//! ```
//! # fn main() -> trio::Result<()> {
//! trio::run(async {
//!     let dir = std::env::temp_dir().join(format!("trio-fs-doc-{}", std::process::id()));
//!     trio::fs::create_dir_all(dir.join("sub")).await?;
//!     trio::fs::write(dir.join("sub/a.txt"), "contents").await?;
//!     assert_eq!(trio::fs::read_to_string(dir.join("sub/a.txt")).await?, "contents");
//!     trio::fs::rename(dir.join("sub/a.txt"), dir.join("b.txt")).await?;
//!     assert_eq!(trio::fs::metadata(dir.join("b.txt")).await?.len(), 8);
//!     trio::fs::remove_dir_all(&dir).await?;
//!     Ok(())
//! })
//! # }
//! ```
//!
//! [`Path`] (also `trio::Path`) is an owned path with these operations as async methods, and
//! std's pure path methods through `Deref`.
//!
//! [`File`] is an open file with async methods (`read`, `write_all`, `seek`, `flush`,
//! `sync_all`, ...), and a [`ReceiveStream`](crate::ReceiveStream) and
//! [`SendStream`](crate::SendStream): the same code copies a file into a socket or a pipe.

mod dir;
mod error;
mod file;
mod path;
mod readahead;

use std::fs::{Metadata, Permissions};
use std::io;
use std::path::{Path as StdPath, PathBuf};

pub use dir::{ReadDir, read_dir};
pub use error::FsError;
pub use file::{File, open_file, wrap_file};
pub use path::Path;

use crate::{Result, to_thread};

/// Runs `op` on `path` in a worker thread; an error carries the operation and the path.
async fn on_path<T, F>(operation: &'static str, path: &StdPath, op: F) -> Result<T>
where
    F: FnOnce(&StdPath) -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let owned = path.to_owned();
    to_thread::run_sync(move || op(&owned))
        .await?
        .map_err(|e| FsError::new(operation, path, e).into())
}

/// Runs `op` on two paths in a worker thread.
async fn on_paths<T, F>(operation: &'static str, from: &StdPath, to: &StdPath, op: F) -> Result<T>
where
    F: FnOnce(&StdPath, &StdPath) -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let (a, b) = (from.to_owned(), to.to_owned());
    to_thread::run_sync(move || op(&a, &b))
        .await?
        .map_err(|e| FsError::two(operation, from, to, e).into())
}

/// Defines async forms of `std::fs` functions on one path.
macro_rules! path_fns {
    ($($(#[$doc:meta])* $name:ident($op:literal) -> $ret:ty = $std:expr;)*) => {$(
        $(#[$doc])*
        ///
        /// Errors: [`FsError`] with the path.
        ///
        /// # Checkpoint
        /// Yes (as [`to_thread::run_sync`]).
        ///
        /// # Cancel safety
        /// Safe: cancelled while its thread runs, it waits for it and returns the result.
        pub async fn $name(path: impl AsRef<StdPath>) -> Result<$ret> {
            on_path($op, path.as_ref(), $std).await
        }
    )*};
}

path_fns! {
    /// Reads the whole file (std's `fs::read`).
    read("read") -> Vec<u8> = |p| std::fs::read(p);
    /// Reads the whole file as UTF-8 text (std's `fs::read_to_string`); invalid UTF-8 is an
    /// `InvalidData` error.
    read_to_string("read") -> String = |p| std::fs::read_to_string(p);
    /// The metadata of the file, following symlinks (std's `fs::metadata`).
    metadata("read the metadata of") -> Metadata = |p| std::fs::metadata(p);
    /// The metadata of the path itself, not following a symlink (std's
    /// `fs::symlink_metadata`).
    symlink_metadata("read the metadata of") -> Metadata = |p| std::fs::symlink_metadata(p);
    /// Whether the path exists (std's `fs::exists`): `Ok(false)` only when it surely does not;
    /// a permission error is an error.
    try_exists("check") -> bool = |p: &StdPath| p.try_exists();
    /// Creates a directory (std's `fs::create_dir`); its parent must exist.
    create_dir("create the directory") -> () = |p| std::fs::create_dir(p);
    /// Creates a directory and any missing parents (std's `fs::create_dir_all`); one that
    /// exists already is fine.
    create_dir_all("create the directory") -> () = |p| std::fs::create_dir_all(p);
    /// Removes a file (std's `fs::remove_file`).
    remove_file("remove the file") -> () = |p| std::fs::remove_file(p);
    /// Removes an empty directory (std's `fs::remove_dir`).
    remove_dir("remove the directory") -> () = |p| std::fs::remove_dir(p);
    /// Removes a directory and everything in it (std's `fs::remove_dir_all`).
    remove_dir_all("remove the directory") -> () = |p| std::fs::remove_dir_all(p);
    /// The absolute path with every symlink and `.`/`..` resolved (std's `fs::canonicalize`).
    canonicalize("canonicalize") -> PathBuf = |p| std::fs::canonicalize(p);
    /// Where a symlink points (std's `fs::read_link`).
    read_link("read the link") -> PathBuf = |p| std::fs::read_link(p);
}

/// Writes `contents` as the whole file, creating or truncating it (std's `fs::write`).
///
/// Errors: [`FsError`] with the path.
///
/// # Checkpoint
/// Yes (as [`to_thread::run_sync`]).
///
/// # Cancel safety
/// Safe: cancelled while its thread writes, it finishes the write and returns.
pub async fn write(path: impl AsRef<StdPath>, contents: impl Into<Vec<u8>>) -> Result<()> {
    let contents = contents.into();
    on_path("write", path.as_ref(), move |p| std::fs::write(p, contents)).await
}

/// Sets the permissions of the file (std's `fs::set_permissions`).
///
/// Errors: [`FsError`] with the path.
///
/// # Checkpoint
/// Yes (as [`to_thread::run_sync`]).
///
/// # Cancel safety
/// Safe: cancelled while its thread runs, it waits for it.
pub async fn set_permissions(path: impl AsRef<StdPath>, permissions: Permissions) -> Result<()> {
    on_path("set the permissions of", path.as_ref(), move |p| {
        std::fs::set_permissions(p, permissions)
    })
    .await
}

/// Renames `from` to `to`, replacing `to` if it is a file (std's `fs::rename`).
///
/// Errors: [`FsError`] with both paths.
///
/// # Checkpoint
/// Yes (as [`to_thread::run_sync`]).
///
/// # Cancel safety
/// Safe: cancelled while its thread runs, the rename happens (or fails) and is reported.
pub async fn rename(from: impl AsRef<StdPath>, to: impl AsRef<StdPath>) -> Result<()> {
    on_paths("rename", from.as_ref(), to.as_ref(), |a, b| {
        std::fs::rename(a, b)
    })
    .await
}

/// Copies the contents and permissions of the file `from` to `to`, and returns how many bytes
/// it copied (std's `fs::copy`, which uses `copy_file_range` where it can).
///
/// Errors: [`FsError`] with both paths.
///
/// # Checkpoint
/// Yes (as [`to_thread::run_sync`]).
///
/// # Cancel safety
/// Safe: cancelled while its thread copies, it finishes the copy and returns.
pub async fn copy(from: impl AsRef<StdPath>, to: impl AsRef<StdPath>) -> Result<u64> {
    on_paths("copy", from.as_ref(), to.as_ref(), |a, b| {
        std::fs::copy(a, b)
    })
    .await
}

/// Makes `link` a new hard link to the file `original` (std's `fs::hard_link`).
///
/// Errors: [`FsError`] with both paths.
///
/// # Checkpoint
/// Yes (as [`to_thread::run_sync`]).
///
/// # Cancel safety
/// Safe: cancelled while its thread runs, it waits for it.
pub async fn hard_link(original: impl AsRef<StdPath>, link: impl AsRef<StdPath>) -> Result<()> {
    on_paths("link", original.as_ref(), link.as_ref(), |a, b| {
        std::fs::hard_link(a, b)
    })
    .await
}
