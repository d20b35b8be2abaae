//! [`Path`]: an owned path whose file-system methods are async (Trio's `trio.Path`).
//!
//! It dereferences to `std::path::Path` for the pure methods (`file_name`, `extension`,
//! `components`, `display`, ...). Every method of `std::path::Path` that touches the file
//! system (`metadata`, `exists`, `read_dir`, ...) has an async method of the same name here,
//! and an inherent method wins over one reached through `Deref`: a blocking call cannot be
//! made by accident. Methods that build a new path (`join`, `parent`, `with_extension`, ...)
//! return a trio `Path`, so chains stay async.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{Metadata, OpenOptions, Permissions};
use std::ops::Deref;
use std::path::PathBuf;
use std::str::FromStr;

use super::{File, ReadDir, on_path, on_paths};
use crate::{Result, to_thread};

/// An owned path with async file-system methods (Trio's `trio.Path`).
///
/// Made from anything a `PathBuf` is made from (`Path::new("a/b")`, `"a/b".into()`,
/// `PathBuf::into`), and usable wherever an `AsRef<std::path::Path>` is taken, so it goes
/// straight to [`open_file`](super::open_file), [`std::fs`] or [`trio::fs`](super).
///
/// ```
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let dir = trio::Path::new(std::env::temp_dir())
///         .join(format!("trio-path-doc-{}", std::process::id()));
///     dir.create_dir_all().await?;
///     let file = dir.join("notes.txt");
///     file.write("hello").await?;
///     assert!(file.is_file().await?);
///     assert_eq!(file.read_to_string().await?, "hello");
///     assert_eq!(file.extension(), Some("txt".as_ref())); // std's, through Deref
///     let moved = file.rename(dir.join("renamed.txt")).await?;
///     assert!(!file.exists().await?);
///     assert_eq!(moved.metadata().await?.len(), 5);
///     dir.remove_dir_all().await?;
///     Ok(())
/// })
/// # }
/// ```
///
/// | Trio (`pathlib`) | here |
/// | --- | --- |
/// | `read_bytes`, `read_text`, `write_bytes`, `write_text` | [`read`](Self::read), [`read_to_string`](Self::read_to_string), [`write`](Self::write) |
/// | `stat`, `lstat` | [`metadata`](Self::metadata), [`symlink_metadata`](Self::symlink_metadata) |
/// | `exists`, `is_file`, `is_dir`, `is_symlink` | the same names |
/// | `mkdir(parents=...)`, `rmdir`, `unlink` | [`create_dir`](Self::create_dir) / [`create_dir_all`](Self::create_dir_all), [`remove_dir`](Self::remove_dir), [`remove_file`](Self::remove_file) |
/// | `iterdir` | [`read_dir`](Self::read_dir) |
/// | `resolve`, `absolute`, `readlink` | [`canonicalize`](Self::canonicalize), [`absolute`](Self::absolute), [`read_link`](Self::read_link) |
/// | `rename`, `replace` | [`rename`](Self::rename) (it replaces, as on POSIX) |
/// | `symlink_to`, `hardlink_to`, `samefile`, `touch`, `chmod` | [`symlink_to`](Self::symlink_to), [`hard_link_to`](Self::hard_link_to), [`same_file`](Self::same_file), [`touch`](Self::touch), [`set_permissions`](Self::set_permissions) |
/// | `open`, `cwd`, `home` | [`open`](Self::open), [`cwd`](Self::cwd), [`home`](Self::home) |
///
/// Every async method is a checkpoint and runs its system call in a worker thread through
/// [`to_thread::run_sync`], with the cancellation rules of [`trio::fs`](super): cancelled
/// while its thread runs, it waits for the thread and returns the result. OS errors come as
/// [`FsError`](super::FsError), naming the operation and the path.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Path {
    inner: PathBuf,
}

/// Defines async methods that call the [`trio::fs`](super) function of the same name on
/// `self`, with the standard doc sections.
macro_rules! path_methods {
    ($($(#[$doc:meta])* $name:ident -> $ret:ty;)*) => {$(
        $(#[$doc])*
        ///
        /// # Checkpoint
        /// Yes (as [`to_thread::run_sync`]).
        ///
        /// # Cancel safety
        /// Safe: cancelled while its thread runs, it waits for it and returns the result.
        pub async fn $name(&self) -> Result<$ret> {
            super::$name(&self.inner).await
        }
    )*};
}

impl Path {
    /// A path from anything a `PathBuf` is made from. Not a checkpoint.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Path { inner: path.into() }
    }

    /// The std path (also reached through `Deref` and `AsRef`).
    pub fn as_std_path(&self) -> &std::path::Path {
        &self.inner
    }

    /// The owned std path.
    pub fn into_path_buf(self) -> PathBuf {
        self.inner
    }

    /// `self` with `path` appended (std's `Path::join`: an absolute `path` replaces it).
    pub fn join(&self, path: impl AsRef<std::path::Path>) -> Path {
        Path::new(self.inner.join(path))
    }

    /// The path without its last component; `None` for a root or an empty path.
    pub fn parent(&self) -> Option<Path> {
        self.inner.parent().map(Path::new)
    }

    /// `self` with its file name replaced (std's `Path::with_file_name`).
    pub fn with_file_name(&self, file_name: impl AsRef<OsStr>) -> Path {
        Path::new(self.inner.with_file_name(file_name))
    }

    /// `self` with its extension replaced or added (std's `Path::with_extension`).
    pub fn with_extension(&self, extension: impl AsRef<OsStr>) -> Path {
        Path::new(self.inner.with_extension(extension))
    }

    /// The current working directory (Trio's `Path.cwd()`).
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: it changes nothing.
    pub async fn cwd() -> Result<Path> {
        on_path(
            "read the current directory",
            std::path::Path::new("."),
            |_| std::env::current_dir(),
        )
        .await
        .map(Path::new)
    }

    /// The current user's home directory (Trio's `Path.home()`): `$HOME`, or the password
    /// database's entry. A [`FsError`](super::FsError) of kind `NotFound` if there is none.
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: it changes nothing.
    pub async fn home() -> Result<Path> {
        on_path("find the home directory", std::path::Path::new("~"), |_| {
            std::env::home_dir().ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "no home directory is known")
            })
        })
        .await
        .map(Path::new)
    }

    path_methods! {
        /// The metadata, following symlinks (std's `fs::metadata`; Trio's `stat`).
        metadata -> Metadata;
        /// The metadata of the path itself, not following a symlink (Trio's `lstat`).
        symlink_metadata -> Metadata;
        /// Whether the path exists: `Ok(false)` only when it surely does not; an error such as
        /// permission denied on a parent is an [`FsError`](super::FsError).
        try_exists -> bool;
        /// Reads the whole file (std's `fs::read`; Trio's `read_bytes`).
        read -> Vec<u8>;
        /// Reads the whole file as UTF-8 (Trio's `read_text`); invalid UTF-8 is an
        /// `InvalidData` [`FsError`](super::FsError).
        read_to_string -> String;
        /// Creates the directory; its parent must exist (Trio's `mkdir()`).
        create_dir -> ();
        /// Creates the directory and any missing parents; one that exists already is fine
        /// (Trio's `mkdir(parents=True, exist_ok=True)`).
        create_dir_all -> ();
        /// Removes the file (Trio's `unlink`).
        remove_file -> ();
        /// Removes the empty directory (Trio's `rmdir`).
        remove_dir -> ();
        /// Removes the directory and everything in it.
        remove_dir_all -> ();
    }

    /// Creates the file if it is missing, and sets its modification time to now (Trio's
    /// `touch`). Its contents are kept.
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: cancelled while its thread runs, it waits for it and returns the result.
    pub async fn touch(&self) -> Result<()> {
        on_path("touch", &self.inner, |p| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?
                .set_modified(std::time::SystemTime::now())
        })
        .await
    }

    /// Whether the path exists, following symlinks (std's `Path::exists`, Trio's `exists`): an
    /// error finding out (a broken symlink, permission denied on a parent) is `false`.
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: it changes nothing.
    pub async fn exists(&self) -> Result<bool> {
        self.ask(|p| p.exists()).await
    }

    /// Whether the path is a regular file, following symlinks; `false` on any error (std's
    /// `Path::is_file`).
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: it changes nothing.
    pub async fn is_file(&self) -> Result<bool> {
        self.ask(|p| p.is_file()).await
    }

    /// Whether the path is a directory, following symlinks; `false` on any error (std's
    /// `Path::is_dir`).
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: it changes nothing.
    pub async fn is_dir(&self) -> Result<bool> {
        self.ask(|p| p.is_dir()).await
    }

    /// Whether the path itself is a symlink; `false` on any error (std's `Path::is_symlink`).
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: it changes nothing.
    pub async fn is_symlink(&self) -> Result<bool> {
        self.ask(|p| p.is_symlink()).await
    }

    /// Runs a question that cannot fail on the path in a worker thread.
    async fn ask(&self, question: fn(&std::path::Path) -> bool) -> Result<bool> {
        let path = self.inner.clone();
        to_thread::run_sync(move || question(&path)).await
    }

    /// The absolute path, resolving every symlink and `.`/`..` (std's `fs::canonicalize`;
    /// Trio's `resolve(strict=True)`): the path must exist.
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: it changes nothing.
    pub async fn canonicalize(&self) -> Result<Path> {
        super::canonicalize(&self.inner).await.map(Path::new)
    }

    /// The path made absolute against the current directory, without touching the file system
    /// otherwise: `..` and symlinks are kept (std's `path::absolute`; Trio's `absolute`).
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]: it reads the current directory).
    ///
    /// # Cancel safety
    /// Safe: it changes nothing.
    pub async fn absolute(&self) -> Result<Path> {
        on_path("make absolute", &self.inner, |p| std::path::absolute(p))
            .await
            .map(Path::new)
    }

    /// Where the symlink points (Trio's `readlink`).
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: it changes nothing.
    pub async fn read_link(&self) -> Result<Path> {
        super::read_link(&self.inner).await.map(Path::new)
    }

    /// The entries of the directory (Trio's `iterdir`), as [`trio::fs::read_dir`](super::read_dir).
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Cancelled while the thread opens the directory, it waits and returns it.
    pub async fn read_dir(&self) -> Result<ReadDir> {
        super::read_dir(&self.inner).await
    }

    /// Writes `contents` as the whole file, creating or truncating it (Trio's `write_bytes`
    /// and `write_text`).
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: cancelled while its thread writes, it finishes the write and returns.
    pub async fn write(&self, contents: impl Into<Vec<u8>>) -> Result<()> {
        super::write(&self.inner, contents).await
    }

    /// Opens the file with `options` (Trio's `Path.open`), as [`open_file`](super::open_file).
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Cancelled while the thread opens the file, it waits and returns the file; dropped, the
    /// file is closed when the thread ends.
    pub async fn open(&self, options: &OpenOptions) -> Result<File> {
        super::open_file(&self.inner, options).await
    }

    /// Renames the path to `target`, replacing `target` if it is a file, and returns the new
    /// path (Trio's `rename` and `replace`).
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: cancelled while its thread runs, the rename happens (or fails) and is reported.
    pub async fn rename(&self, target: impl AsRef<std::path::Path>) -> Result<Path> {
        let target = target.as_ref();
        super::rename(&self.inner, target).await?;
        Ok(Path::new(target))
    }

    /// Copies the file's contents and permissions to `target`, returning the bytes copied
    /// (std's `fs::copy`).
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: cancelled while its thread copies, it finishes the copy and returns.
    pub async fn copy(&self, target: impl AsRef<std::path::Path>) -> Result<u64> {
        super::copy(&self.inner, target).await
    }

    /// Makes this path a hard link to the file `target` (Trio's `hardlink_to`).
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: cancelled while its thread runs, it waits for it.
    pub async fn hard_link_to(&self, target: impl AsRef<std::path::Path>) -> Result<()> {
        super::hard_link(target, &self.inner).await
    }

    /// Makes this path a symbolic link pointing at `target` (Trio's `symlink_to`). `target`
    /// is stored as given: a relative one is relative to the link's directory.
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: cancelled while its thread runs, it waits for it.
    #[cfg(unix)]
    pub async fn symlink_to(&self, target: impl AsRef<std::path::Path>) -> Result<()> {
        on_paths("symlink", target.as_ref(), &self.inner, |target, link| {
            std::os::unix::fs::symlink(target, link)
        })
        .await
    }

    /// Sets the file's permissions (Trio's `chmod`).
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: cancelled while its thread runs, it waits for it.
    pub async fn set_permissions(&self, permissions: Permissions) -> Result<()> {
        super::set_permissions(&self.inner, permissions).await
    }

    /// Whether this path and `other` are the same file, following symlinks (Trio's
    /// `samefile`): the same device and inode. Either missing is an [`FsError`](super::FsError).
    ///
    /// # Checkpoint
    /// Yes (as [`to_thread::run_sync`]).
    ///
    /// # Cancel safety
    /// Safe: it changes nothing.
    #[cfg(unix)]
    pub async fn same_file(&self, other: impl AsRef<std::path::Path>) -> Result<bool> {
        use std::os::unix::fs::MetadataExt;
        on_paths("compare", &self.inner, other.as_ref(), |a, b| {
            let (a, b) = (std::fs::metadata(a)?, std::fs::metadata(b)?);
            Ok(a.dev() == b.dev() && a.ino() == b.ino())
        })
        .await
    }
}

impl Deref for Path {
    type Target = std::path::Path;

    fn deref(&self) -> &std::path::Path {
        &self.inner
    }
}

impl AsRef<std::path::Path> for Path {
    fn as_ref(&self) -> &std::path::Path {
        &self.inner
    }
}

impl AsRef<OsStr> for Path {
    fn as_ref(&self) -> &OsStr {
        self.inner.as_os_str()
    }
}

impl fmt::Debug for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

/// The path as std's `Path::display` shows it (lossy for non-UTF-8 names).
impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner.display(), f)
    }
}

impl From<PathBuf> for Path {
    fn from(path: PathBuf) -> Self {
        Path::new(path)
    }
}

impl From<&std::path::Path> for Path {
    fn from(path: &std::path::Path) -> Self {
        Path::new(path)
    }
}

impl From<&str> for Path {
    fn from(path: &str) -> Self {
        Path::new(path)
    }
}

impl From<String> for Path {
    fn from(path: String) -> Self {
        Path::new(path)
    }
}

impl From<OsString> for Path {
    fn from(path: OsString) -> Self {
        Path::new(path)
    }
}

impl From<Path> for PathBuf {
    fn from(path: Path) -> Self {
        path.inner
    }
}

impl FromStr for Path {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(Path::new(s))
    }
}

impl PartialEq<std::path::Path> for Path {
    fn eq(&self, other: &std::path::Path) -> bool {
        self.inner == other
    }
}

impl PartialEq<PathBuf> for Path {
    fn eq(&self, other: &PathBuf) -> bool {
        &self.inner == other
    }
}

impl<P: AsRef<std::path::Path>> FromIterator<P> for Path {
    fn from_iter<I: IntoIterator<Item = P>>(iter: I) -> Self {
        Path::new(iter.into_iter().collect::<PathBuf>())
    }
}
