//! Helpers of the file and path tests.

use std::path::{Path, PathBuf};

use trio::fs::FsError;

/// A fresh directory under the system's temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("trio-fs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `FsError` inside `error`, checked to be of `kind` and about `path`.
#[track_caller]
pub fn fs_error(error: &trio::Error, kind: std::io::ErrorKind, path: &Path) {
    let fs = error
        .downcast_ref::<FsError>()
        .unwrap_or_else(|| panic!("expected an FsError, got {error:?}"));
    assert_eq!(fs.kind(), kind, "{error}");
    assert_eq!(fs.path(), path, "{error}");
    assert_eq!(error.io_kind(), kind);
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
}
