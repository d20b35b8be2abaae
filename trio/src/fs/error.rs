//! [`FsError`]: an OS error from a file operation, with the operation and the path.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A file-system operation failed: which operation, on which path (and, for `rename`, `copy`
/// and `hard_link`, the second path), and the OS error.
///
/// Every function of [`trio::fs`](crate::fs) and every method of a
/// [`File`](crate::fs::File) opened by path reports OS errors as this type, so a message
/// says what was wrong where (std's `io::Error` does not carry the path):
///
/// ```
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let error = trio::fs::read("/does/not/exist").await.unwrap_err();
///     let fs = error.downcast_ref::<trio::fs::FsError>().unwrap();
///     assert_eq!(fs.kind(), std::io::ErrorKind::NotFound);
///     assert_eq!(fs.path(), std::path::Path::new("/does/not/exist"));
///     assert_eq!(error.io_kind(), std::io::ErrorKind::NotFound);
///     assert!(error.to_string().starts_with("cannot read `/does/not/exist`: "));
///     Ok(())
/// })
/// # }
/// ```
///
/// With `?` into `std::io::Error` it keeps its kind (`NotFound`, `PermissionDenied`, ...)
/// and carries this error as its payload.
#[derive(Debug)]
pub struct FsError {
    operation: &'static str,
    path: PathBuf,
    other_path: Option<PathBuf>,
    source: io::Error,
}

impl FsError {
    pub(crate) fn new(operation: &'static str, path: &Path, source: io::Error) -> Self {
        FsError {
            operation,
            path: path.to_owned(),
            other_path: None,
            source,
        }
    }

    pub(crate) fn two(operation: &'static str, from: &Path, to: &Path, source: io::Error) -> Self {
        FsError {
            operation,
            path: from.to_owned(),
            other_path: Some(to.to_owned()),
            source,
        }
    }

    /// What was being done ("open", "read", "remove the directory", ...).
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The path the operation was on (for `rename`, `copy` and `hard_link`, the source).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The destination of `rename`, `copy` and `hard_link`.
    pub fn other_path(&self) -> Option<&Path> {
        self.other_path.as_deref()
    }

    /// The kind of the OS error (`NotFound`, `PermissionDenied`, `AlreadyExists`, ...).
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }

    /// The OS error.
    pub fn io_error(&self) -> &io::Error {
        &self.source
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot {} `{}`", self.operation, self.path.display())?;
        if let Some(other) = &self.other_path {
            write!(f, " to `{}`", other.display())?;
        }
        write!(f, ": {}", self.source)
    }
}

impl std::error::Error for FsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
