//! `trio::Path` (Trio's `test_path.py`): pure methods stay sync and return trio paths, every
//! file-system method is async, a checkpoint, and does what std does, with errors that carry
//! the path.

mod common;

use std::io::ErrorKind;
use std::path::PathBuf;

use common::fs::{TempDir, fs_error};
use common::*;
use trio::Path;
use trio::stream::prelude::*;

#[test]
fn pure_methods_are_sync_and_keep_the_type() {
    let p = Path::new("/srv/data/report.txt");
    let joined: Path = Path::new("/srv").join("data").join("report.txt");
    assert_eq!(joined, p);
    assert_eq!(p.parent(), Some(Path::new("/srv/data")));
    assert_eq!(Path::new("/").parent(), None);
    assert_eq!(p.with_extension("csv"), Path::new("/srv/data/report.csv"));
    assert_eq!(p.with_file_name("x"), Path::new("/srv/data/x"));
    // std's pure methods, through Deref.
    assert_eq!(p.file_name(), Some("report.txt".as_ref()));
    assert_eq!(p.extension(), Some("txt".as_ref()));
    assert!(p.is_absolute());
    assert_eq!(p.components().count(), 4);
    // Conversions both ways, and display.
    let from_str: Path = "a/b".into();
    let from_string: Path = String::from("a/b").into();
    let from_buf: Path = PathBuf::from("a/b").into();
    let parsed: Path = "a/b".parse().expect("infallible");
    assert!(from_str == from_string && from_string == from_buf && from_buf == parsed);
    assert_eq!(PathBuf::from(parsed.clone()), PathBuf::from("a/b"));
    assert_eq!(parsed.as_std_path(), std::path::Path::new("a/b"));
    assert_eq!(parsed, PathBuf::from("a/b"));
    assert_eq!(parsed.to_string(), "a/b");
    assert_eq!(format!("{parsed:?}"), "\"a/b\"");
    let collected: Path = ["a", "b", "c"].iter().collect();
    assert_eq!(collected, Path::new("a/b/c"));
    // An AsRef<std::path::Path>: std and trio::fs take it as it is.
    assert_eq!(
        std::path::Path::new("a/b"),
        AsRef::<std::path::Path>::as_ref(&from_str)
    );
}

#[test]
fn file_system_methods_do_what_std_does() {
    let dir = TempDir::new("path-methods");
    let root = Path::new(&dir.0);
    run(async move {
        let sub = root.join("sub/deeper");
        sub.create_dir_all().await?;
        assert!(sub.is_dir().await? && !sub.is_file().await?);
        let file = sub.join("a.txt");
        file.write("contents").await?;
        assert!(file.is_file().await? && file.exists().await? && file.try_exists().await?);
        assert_eq!(file.read().await?, b"contents");
        assert_eq!(file.read_to_string().await?, "contents");
        assert_eq!(file.metadata().await?.len(), 8);
        assert!(file.symlink_metadata().await?.is_file());

        // rename returns the new path; the old one is gone.
        let moved = file.rename(root.join("b.txt")).await?;
        assert_eq!(moved, root.join("b.txt"));
        assert!(!file.exists().await? && !file.try_exists().await?);
        assert_eq!(moved.copy(root.join("c.txt")).await?, 8);

        // Links: hard (the same file), symbolic (read back, not followed by symlink_metadata).
        let hard = root.join("hard.txt");
        hard.hard_link_to(&moved).await?;
        assert!(hard.same_file(&moved).await?);
        assert!(!hard.same_file(root.join("c.txt")).await?);
        let link = root.join("link.txt");
        link.symlink_to("b.txt").await?;
        assert!(link.is_symlink().await? && !moved.is_symlink().await?);
        assert_eq!(link.read_link().await?, Path::new("b.txt"));
        assert!(link.symlink_metadata().await?.file_type().is_symlink());
        assert_eq!(link.read_to_string().await?, "contents");
        assert_eq!(link.canonicalize().await?, moved.canonicalize().await?);

        // absolute keeps `..`; canonicalize resolves it.
        let relative = Path::new("x/../y");
        let absolute = relative.absolute().await?;
        assert_eq!(absolute, Path::cwd().await?.join("x/../y"));
        let dotted = root.join("sub/../b.txt");
        assert_eq!(dotted.canonicalize().await?, moved.canonicalize().await?);

        // touch: creates a missing file, keeps an existing one's contents.
        let touched = root.join("touched");
        touched.touch().await?;
        assert_eq!(touched.metadata().await?.len(), 0);
        let long_ago = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        std::fs::File::options()
            .append(true)
            .open(&moved)
            .and_then(|f| f.set_modified(long_ago))
            .expect("set mtime");
        moved.touch().await?;
        assert_eq!(moved.read_to_string().await?, "contents");
        assert!(moved.metadata().await?.modified().expect("mtime") > long_ago);

        // open with options; permissions.
        let file = moved.open(std::fs::OpenOptions::new().append(true)).await?;
        file.write_all(b"!").await?;
        file.aclose().await?;
        assert_eq!(moved.read_to_string().await?, "contents!");
        let mut permissions = moved.metadata().await?.permissions();
        permissions.set_readonly(true);
        moved.set_permissions(permissions).await?;
        assert!(moved.metadata().await?.permissions().readonly());

        // read_dir lists the entries.
        let mut entries = root.read_dir().await?;
        let mut names = Vec::new();
        while let Some(entry) = entries.next().await? {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        assert_eq!(
            names,
            ["b.txt", "c.txt", "hard.txt", "link.txt", "sub", "touched"]
        );

        // Removal.
        root.join("c.txt").remove_file().await?;
        sub.remove_dir().await?;
        assert!(!sub.exists().await?);
        root.join("sub").remove_dir_all().await?;
        assert!(!root.join("sub").exists().await?);
        Ok(())
    });
}

#[test]
fn errors_name_the_path_and_questions_answer_false() {
    let dir = TempDir::new("path-errors");
    let missing = Path::new(dir.join("missing"));
    run(async move {
        for error in [
            missing.read().await.map(drop).unwrap_err(),
            missing.metadata().await.map(drop).unwrap_err(),
            missing.canonicalize().await.map(drop).unwrap_err(),
            missing.remove_file().await.unwrap_err(),
            missing.read_dir().await.map(drop).unwrap_err(),
            missing.same_file(&missing).await.map(drop).unwrap_err(),
        ] {
            fs_error(&error, ErrorKind::NotFound, &missing);
        }
        let error = missing.join("x").create_dir().await.unwrap_err();
        fs_error(&error, ErrorKind::NotFound, &missing.join("x"));
        // The questions std answers with a bool answer false here too.
        assert!(!missing.exists().await?);
        assert!(!missing.try_exists().await?);
        assert!(!missing.is_file().await? && !missing.is_dir().await?);
        assert!(!missing.is_symlink().await?);
        Ok(())
    });
}

#[test]
fn every_method_is_a_checkpoint() {
    let dir = TempDir::new("path-checkpoints");
    let root = Path::new(&dir.0);
    std::fs::write(root.join("f"), "x").expect("write");
    run(async move {
        let f = root.join("f");
        // In a cancelled scope, each one raises Cancelled (its cancel point) and does nothing.
        let out = in_cancelled_scope(async {
            assert!(is_cancelled(f.exists().await));
            assert!(is_cancelled(f.is_file().await));
            assert!(is_cancelled(f.metadata().await));
            assert!(is_cancelled(f.read().await));
            assert!(is_cancelled(f.write("y").await));
            assert!(is_cancelled(f.remove_file().await));
            assert!(is_cancelled(f.touch().await));
            assert!(is_cancelled(Path::cwd().await));
            assert!(is_cancelled(Path::home().await));
            Ok(())
        })
        .await?;
        assert_eq!(out, Some(()), "each Cancelled was caught");
        assert_eq!(f.read_to_string().await?, "x", "nothing was done");
        // Outside it, each one yields.
        yields(f.exists()).await?;
        yields(f.metadata()).await?;
        yields(Path::cwd()).await?;
        Ok(())
    });
}

#[test]
fn cwd_and_home() {
    run(async {
        assert_eq!(Path::cwd().await?, std::env::current_dir().expect("cwd"));
        if let Some(home) = std::env::home_dir() {
            assert_eq!(Path::home().await?, home);
        }
        Ok(())
    });
}
