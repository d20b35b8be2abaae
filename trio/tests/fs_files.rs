//! Files and paths (Trio's `test_file_io.py`, `test_path.py`): every `trio::fs` function
//! against std, `File`'s methods, files as streams, errors that carry the path, and
//! to_thread's cancellation rules (a cancelled operation finishes and reports its result).

mod common;

use std::io::SeekFrom;
use std::rc::Rc;

use common::fs::{TempDir, fs_error};
use common::*;
use trio::fs::{File, FsError};
use trio::stream::prelude::*;
use trio::{BusyResourceError, CancelScope, ClosedResourceError};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn path_functions_do_what_std_does() {
    let dir = TempDir::new("paths");
    let root = dir.0.clone();
    run(async move {
        let sub = root.join("a/b/c");
        trio::fs::create_dir_all(&sub).await?;
        trio::fs::create_dir_all(&sub).await?; // existing is fine
        assert!(trio::fs::metadata(&sub).await?.is_dir());
        trio::fs::create_dir(root.join("d")).await?;

        let file = sub.join("f.txt");
        trio::fs::write(&file, "hello").await?;
        assert_eq!(trio::fs::read(&file).await?, b"hello");
        assert_eq!(trio::fs::read_to_string(&file).await?, "hello");
        assert_eq!(trio::fs::metadata(&file).await?.len(), 5);
        assert!(trio::fs::try_exists(&file).await?);
        assert!(!trio::fs::try_exists(root.join("nope")).await?);

        assert_eq!(trio::fs::copy(&file, root.join("copy.txt")).await?, 5);
        assert_eq!(std::fs::read(root.join("copy.txt"))?, b"hello");
        trio::fs::rename(root.join("copy.txt"), root.join("moved.txt")).await?;
        assert!(!root.join("copy.txt").exists());
        trio::fs::hard_link(root.join("moved.txt"), root.join("linked.txt")).await?;
        assert_eq!(std::fs::read(root.join("linked.txt"))?, b"hello");

        std::os::unix::fs::symlink(&file, root.join("sym"))?;
        assert_eq!(trio::fs::read_link(root.join("sym")).await?, file);
        assert!(
            trio::fs::symlink_metadata(root.join("sym"))
                .await?
                .is_symlink()
        );
        assert_eq!(
            trio::fs::canonicalize(root.join("a/b/../b/c/f.txt")).await?,
            std::fs::canonicalize(&file)?
        );

        let mut permissions = trio::fs::metadata(&file).await?.permissions();
        permissions.set_readonly(true);
        trio::fs::set_permissions(&file, permissions).await?;
        assert!(std::fs::metadata(&file)?.permissions().readonly());

        trio::fs::remove_file(root.join("linked.txt")).await?;
        trio::fs::remove_dir(root.join("d")).await?;
        trio::fs::remove_dir_all(root.join("a")).await?;
        assert!(!root.join("a").exists());

        // Invalid UTF-8 is InvalidData, with the path.
        trio::fs::write(root.join("bin"), vec![0xff, 0xfe]).await?;
        let error = trio::fs::read_to_string(root.join("bin"))
            .await
            .unwrap_err();
        fs_error(&error, std::io::ErrorKind::InvalidData, &root.join("bin"));
        Ok(())
    });
}

#[test]
fn read_dir_lists_everything_in_batches() {
    let dir = TempDir::new("read-dir");
    // More than one batch of 64.
    for i in 0..150 {
        std::fs::write(dir.join(&format!("f{i:03}")), "").unwrap();
    }
    let root = dir.0.clone();
    run(async move {
        let mut entries = trio::fs::read_dir(&root).await?;
        assert_eq!(entries.path(), root);
        let mut names = Vec::new();
        while let Some(entry) = entries.next().await? {
            names.push(entry.file_name().into_string().unwrap());
        }
        assert_eq!(entries.next().await?.map(|e| e.path()), None);
        names.sort();
        let expected: Vec<String> = (0..150).map(|i| format!("f{i:03}")).collect();
        assert_eq!(names, expected);

        // As a futures Stream too.
        let mut entries = trio::fs::read_dir(&root).await?;
        let mut count = 0;
        while let Some(entry) = std::future::poll_fn(|cx| {
            futures_core::Stream::poll_next(std::pin::Pin::new(&mut entries), cx)
        })
        .await
        {
            entry?;
            count += 1;
        }
        assert_eq!(count, 150);

        // A `next` dropped at each of its polls (the fetch in flight stays with the listing).
        let mut entries = trio::fs::read_dir(&root).await?;
        let mut count = 0;
        loop {
            let mut next = Box::pin(entries.next());
            if let std::task::Poll::Ready(entry) = poll_once(&mut next).await {
                panic!("next returned at its first poll: {entry:?}");
            }
            drop(next);
            trio::lowlevel::checkpoint().await?;
            match entries.next().await? {
                Some(_) => count += 1,
                None => break,
            }
        }
        assert_eq!(count, 150, "a dropped next lost entries");
        Ok(())
    });
}

#[test]
fn missing_paths_are_typed_errors_with_the_path() {
    let dir = TempDir::new("missing");
    let root = dir.0.clone();
    run(async move {
        let missing = root.join("missing");
        let other = root.join("other");
        use std::io::ErrorKind::NotFound;
        fs_error(
            &trio::fs::read(&missing).await.unwrap_err(),
            NotFound,
            &missing,
        );
        fs_error(&File::open(&missing).await.unwrap_err(), NotFound, &missing);
        fs_error(
            &trio::fs::metadata(&missing).await.unwrap_err(),
            NotFound,
            &missing,
        );
        fs_error(
            &trio::fs::read_dir(&missing).await.unwrap_err(),
            NotFound,
            &missing,
        );
        fs_error(
            &trio::fs::remove_file(&missing).await.unwrap_err(),
            NotFound,
            &missing,
        );
        fs_error(
            &trio::fs::remove_dir_all(&missing).await.unwrap_err(),
            NotFound,
            &missing,
        );
        fs_error(
            &trio::fs::canonicalize(&missing).await.unwrap_err(),
            NotFound,
            &missing,
        );

        let error = trio::fs::rename(&missing, &other).await.unwrap_err();
        fs_error(&error, NotFound, &missing);
        let fs = error.downcast_ref::<FsError>().unwrap();
        assert_eq!(fs.other_path(), Some(other.as_path()));
        assert_eq!(fs.operation(), "rename");
        assert!(error.to_string().contains(" to `"), "{error}");
        fs_error(
            &trio::fs::copy(&missing, &other).await.unwrap_err(),
            NotFound,
            &missing,
        );

        // create_dir on an existing path, a file where a directory is expected.
        trio::fs::write(&other, "x").await?;
        let error = trio::fs::create_dir(&other).await.unwrap_err();
        fs_error(&error, std::io::ErrorKind::AlreadyExists, &other);
        let error = trio::fs::read_dir(&other).await.unwrap_err();
        fs_error(&error, std::io::ErrorKind::NotADirectory, &other);

        // `?` into std::io::Error keeps the kind and carries the FsError.
        let io: std::io::Error = trio::fs::read(&missing).await.unwrap_err().into();
        assert_eq!(io.kind(), NotFound);
        assert!(io.get_ref().unwrap().is::<FsError>());
        Ok(())
    });
}

#[test]
fn file_methods() {
    let dir = TempDir::new("file");
    let path = dir.join("data");
    run(async move {
        let options = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .clone();
        let file = trio::open_file(&path, &options).await?;
        assert_eq!(file.path(), Some(path.as_path()));
        file.write_all("0123456789").await?;
        file.flush().await?;
        file.sync_all().await?;
        file.sync_data().await?;
        assert_eq!(file.metadata().await?.len(), 10);
        assert_eq!(file.seek(SeekFrom::Start(2)).await?, 2);
        assert_eq!(file.read(3).await?, b"234");
        assert_eq!(file.seek(SeekFrom::Current(1)).await?, 6);
        assert_eq!(file.read_to_end().await?, b"6789");
        assert_eq!(file.read(10).await?, b"");
        file.set_len(4).await?;
        assert_eq!(file.seek(SeekFrom::End(0)).await?, 4);
        let error = file.read(0).await.unwrap_err();
        assert!(error.is::<trio::UsageError>());
        assert!(format!("{file:?}").contains("closed: false"));
        file.aclose().await?;
        file.aclose().await?; // twice is fine
        assert!(format!("{file:?}").contains("closed: true"));
        assert_err::<ClosedResourceError, _>(file.read(1).await);
        assert_err::<ClosedResourceError, _>(file.write_all("x").await);

        // create and open.
        let file = File::create(&path).await?;
        file.write_all(pattern(100_000)).await?;
        drop(file);
        let file = File::open(&path).await?;
        assert_eq!(file.read_to_end().await?, pattern(100_000));
        // A read-only file refuses writes, with the path.
        let error = file.write_all("x").await.unwrap_err();
        let fs = error.downcast_ref::<FsError>().expect("an FsError");
        assert_eq!(fs.operation(), "write");
        assert_eq!(fs.path(), path);
        Ok(())
    });
}

#[test]
fn wrap_file_and_into_std() {
    let dir = TempDir::new("wrap");
    let path = dir.join("data");
    std::fs::write(&path, "abcdef").unwrap();
    run(async move {
        let file = trio::wrap_file(std::fs::File::open(&path)?);
        assert_eq!(file.path(), None);
        assert_eq!(file.read(2).await?, b"ab");
        // Read ahead by the stream side, then given back: the std file continues at "d".
        assert_eq!(file.receive_some(1).await?, b"c");
        let mut std_file = file.into_std().await?;
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut std_file, &mut rest)?;
        assert_eq!(rest, "def");
        // Without a path, errors are plain io::Errors.
        let file = trio::wrap_file(std::fs::File::open(&path)?);
        let error = file.write_all("x").await.unwrap_err();
        assert!(error.is::<std::io::Error>(), "{error:?}");
        Ok(())
    });
}

#[test]
fn a_file_is_a_stream_like_any_other() {
    // The same generic copy moves a file into a pipe, and a pipe into a file.
    async fn copy(from: &dyn ReceiveStream, to: &dyn SendStream) -> trio::Result<u64> {
        let mut total = 0;
        loop {
            let chunk = from.receive_some(64 * 1024).await?;
            if chunk.is_empty() {
                return Ok(total);
            }
            total += chunk.len() as u64;
            to.send_all(&chunk).await?;
        }
    }

    let dir = TempDir::new("stream");
    let (source, target) = (dir.join("source"), dir.join("target"));
    let data = pattern(3 << 20);
    std::fs::write(&source, &data).unwrap();
    run(async move {
        let (send, receive) = trio::process::pipe()?;
        let file = File::open(&source).await?;
        let out = File::create(&target).await?;
        let (file2, out2) = (Rc::new(file), Rc::new(out));
        let (f, o) = (file2.clone(), out2.clone());
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                assert_eq!(copy(&*f, &send).await?, 3 << 20);
                send.aclose().await
            })?;
            n.start_soon(async move {
                assert_eq!(copy(&receive, &*o).await?, 3 << 20);
                o.aclose().await
            })?;
            Ok(())
        })
        .await?;
        assert!(std::fs::read(&target)? == pattern(3 << 20));

        // send_all returns once the data is written; a large buffer goes in several writes.
        let out = File::create(&target).await?;
        out.send_all(&pattern(3 << 20)).await?;
        assert_eq!(std::fs::metadata(&target)?.len(), 3 << 20);
        out.send_all(b"").await?;
        out.wait_send_all_might_not_block().await?;
        out.aclose().await?;
        assert_err::<ClosedResourceError, _>(out.send_all(b"x").await);
        assert_err::<ClosedResourceError, _>(out.receive_some(1).await);

        // A write error surfaces in send_all, with the path.
        let read_only = File::open(&source).await?;
        let error = read_only.send_all(b"x").await.unwrap_err();
        assert!(error.is::<FsError>(), "{error:?}");
        Ok(())
    });
}

#[test]
fn two_receives_at_once_are_busy() {
    let dir = TempDir::new("busy");
    let path = dir.join("data");
    std::fs::write(&path, pattern(1 << 20)).unwrap();
    run(async move {
        let file = Rc::new(File::open(&path).await?);
        let (a, b) = (file.clone(), file.clone());
        let result = trio::open_nursery(|n| async move {
            n.start_soon(async move { a.receive_some(10).await.map(drop) })?;
            n.start_soon(async move { b.receive_some(10).await.map(drop) })?;
            Ok(())
        })
        .await;
        let error = result.unwrap_err();
        let group = error.as_group().expect("a group");
        assert!(group.errors().iter().all(|e| e.is::<BusyResourceError>()));
        assert_eq!(group.len(), 1);
        Ok(())
    });
}

#[test]
fn a_receive_cancelled_mid_read_loses_nothing() {
    let dir = TempDir::new("cancelled-receive");
    let path = dir.join("data");
    std::fs::write(&path, pattern(200_000)).unwrap();
    run(async move {
        let file = Rc::new(File::open(&path).await?);
        let got = Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut cancelled = 0;
        loop {
            // Every other receive is cancelled once it has started (its read is in a thread,
            // or done and not yet handed out).
            let scope = CancelScope::new();
            let (f, g, s) = (file.clone(), got.clone(), scope.clone());
            let ended = Rc::new(std::cell::Cell::new(false));
            let e = ended.clone();
            trio::open_nursery(|n| async move {
                n.start_soon(async move {
                    if let Some(chunk) = s.run(f.receive_some(5000)).await? {
                        e.set(chunk.is_empty());
                        g.borrow_mut().extend(chunk);
                    }
                    Ok(())
                })?;
                let task = n.child_tasks().pop().expect("the receiving task");
                while task.cancel_points() == 0 {
                    trio::lowlevel::checkpoint().await?;
                }
                if cancelled % 2 == 0 {
                    scope.cancel();
                }
                Ok(())
            })
            .await?;
            cancelled += 1;
            if ended.get() {
                break;
            }
        }
        assert!(*got.borrow() == pattern(200_000));
        Ok(())
    });
}

#[test]
fn reads_dropped_mid_way_lose_nothing() {
    let dir = TempDir::new("dropped-read");
    let path = dir.join("data");
    std::fs::write(&path, pattern(100_000)).unwrap();
    run(async move {
        let file = File::open(&path).await?;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 3000];
        loop {
            // Each read is first polled once and dropped (as by a `select` that chose another
            // branch), once it has read ahead too; then read for real.
            for _ in 0..3 {
                let mut read = Box::pin(file.read(1000));
                if let std::task::Poll::Ready(r) = poll_once(&mut read).await {
                    panic!("a read returned at its first poll: {r:?}");
                }
                drop(read);
                let mut read_into = Box::pin(file.read_into(&mut buf));
                let _ = poll_once(&mut read_into).await;
                drop(read_into);
                trio::lowlevel::checkpoint().await?;
            }
            let chunk = file.read(1000).await?;
            if chunk.is_empty() {
                break;
            }
            got.extend(chunk);
        }
        assert!(got == pattern(100_000), "data lost by a dropped read");
        Ok(())
    });
}

#[test]
fn a_cancelled_operation_finishes_and_reports_its_result() {
    // to_thread's rule: cancelled while its thread runs, the write completes and returns Ok;
    // the cancellation comes at the next checkpoint.
    let dir = TempDir::new("cancelled-write");
    let path = dir.join("big");
    let len = 64 << 20;
    let p = path.clone();
    run(async move {
        let scope = CancelScope::new();
        let outcome = Rc::new(std::cell::RefCell::new(None));
        let (s, o) = (scope.clone(), outcome.clone());
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                let caught = s
                    .run(async move {
                        let written = trio::fs::write(&p, vec![7u8; len]).await;
                        *o.borrow_mut() = Some(written.is_ok());
                        trio::lowlevel::checkpoint().await
                    })
                    .await?;
                assert!(caught.is_none(), "the next checkpoint is cancelled");
                Ok(())
            })?;
            // Cancel once the thread has started writing.
            while std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) == 0 {
                trio::lowlevel::checkpoint().await?;
            }
            scope.cancel();
            Ok(())
        })
        .await?;
        assert_eq!(*outcome.borrow(), Some(true));
        Ok(())
    });
    assert_eq!(
        std::fs::metadata(dir.join("big")).unwrap().len(),
        len as u64
    );
}

#[test]
fn every_function_is_a_checkpoint() {
    let dir = TempDir::new("checkpoints");
    let root = dir.0.clone();
    run(async move {
        let file = root.join("f");
        trio::fs::write(&file, "x").await?;
        // A schedule point...
        yields(trio::fs::metadata(&file)).await?;
        yields(trio::fs::read(&file)).await?;
        let opened = yields(File::open(&file)).await?;
        yields(opened.read(1)).await?;
        yields(opened.flush()).await?;
        yields(opened.seek(SeekFrom::Start(0))).await?;
        // ... and a cancel point: in a cancelled scope nothing happens.
        let scope = CancelScope::new();
        scope.cancel();
        let dir2 = root.join("not-created");
        let d = dir2.clone();
        assert!(scope.run(trio::fs::create_dir(d)).await?.is_none());
        assert!(!dir2.exists());
        let scope = CancelScope::new();
        scope.cancel();
        assert!(scope.run(opened.read(1)).await?.is_none());
        Ok(())
    });
}

#[test]
fn files_need_no_real_time_under_autojump() {
    // A thread in flight stops the MockClock's autojump: a timeout around file work does not
    // fire early.
    let dir = TempDir::new("autojump");
    let path = dir.join("f");
    run(async move {
        let done = trio::fail_after(1, async {
            for i in 0..20 {
                trio::fs::write(&path, vec![i as u8; 100_000]).await?;
                assert_eq!(trio::fs::read(&path).await?.len(), 100_000);
            }
            Ok(())
        })
        .await;
        assert!(done.is_ok(), "{done:?}");
        Ok(())
    });
}

#[test]
fn read_ahead_never_shows_through() {
    // Random reads (into a Vec and into a buffer), receives, seeks, writes, truncations and
    // read_to_end on a trio File, and the same on a std File (the model): every result must
    // match, whatever trio read ahead.
    use std::io::{Read, Seek, Write};
    let dir = TempDir::new("model");
    let (a, b) = (dir.join("trio"), dir.join("model"));
    let data = pattern(3 << 20);
    std::fs::write(&a, &data).unwrap();
    std::fs::write(&b, &data).unwrap();
    run(async move {
        let options = std::fs::OpenOptions::new().read(true).write(true).clone();
        let file = trio::open_file(&a, &options).await?;
        let mut model = options.open(&b)?;
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for step in 0..600 {
            match next(20) {
                0..=2 => {
                    let n = [1, 4096, 65536, 100_000][next(4) as usize];
                    let mut got = vec![0; n];
                    let len = file.read_into(&mut got).await?;
                    got.truncate(len);
                    let mut want = Vec::new();
                    (&mut model).take(n as u64).read_to_end(&mut want)?;
                    assert!(got == want, "step {step}: read_into({n})");
                }
                3..=9 => {
                    let n = [1, 100, 4096, 65536, 200_000][next(5) as usize];
                    let got = file.read(n).await?;
                    let mut want = Vec::new();
                    (&mut model).take(n as u64).read_to_end(&mut want)?;
                    assert!(got == want, "step {step}: read({n})");
                }
                10..=12 => {
                    let n = [1, 5000, 70_000][next(3) as usize];
                    let got = file.receive_some(n).await?;
                    let mut want = Vec::new();
                    (&mut model)
                        .take(n.max(16 * 1024) as u64)
                        .read_to_end(&mut want)?;
                    // A receive may return less than it asked; the model gives the rest back.
                    assert!(want.starts_with(&got), "step {step}: receive_some({n})");
                    model.seek(std::io::SeekFrom::Current(
                        got.len() as i64 - want.len() as i64,
                    ))?;
                }
                13..=15 => {
                    let to = match next(3) {
                        0 => SeekFrom::Start(next(4 << 20)),
                        1 => SeekFrom::Current(next(200_000) as i64 - 100_000),
                        _ => SeekFrom::End(-(next(1 << 20) as i64)),
                    };
                    let got = file.seek(to).await;
                    let want = model.seek(to);
                    assert_eq!(got.is_ok(), want.is_ok(), "step {step}: seek {to:?}");
                    if let (Ok(g), Ok(w)) = (got, want) {
                        assert_eq!(g, w, "step {step}: seek {to:?}");
                    }
                }
                16..=17 => {
                    let bytes = vec![step as u8; next(10_000) as usize + 1];
                    if next(2) == 0 {
                        file.write_all(bytes.clone()).await?;
                    } else {
                        file.send_all(&bytes).await?;
                    }
                    model.write_all(&bytes)?;
                }
                18 => {
                    let len = next(4 << 20);
                    file.set_len(len).await?;
                    model.set_len(len)?;
                }
                _ => {
                    let got = file.read_to_end().await?;
                    let mut want = Vec::new();
                    model.read_to_end(&mut want)?;
                    assert!(got == want, "step {step}: read_to_end");
                }
            }
        }
        // The position carries over to std.
        let position = model.stream_position()?;
        let mut std_file = file.into_std().await?;
        assert_eq!(std_file.stream_position()?, position);
        Ok(())
    });
    assert!(std::fs::read(dir.join("trio")).unwrap() == std::fs::read(dir.join("model")).unwrap());
}

#[test]
fn a_pipe_wrapped_as_a_file_returns_what_one_read_gives() {
    run(async {
        let mut fds = [0; 2];
        // SAFETY: fds is a valid array for pipe to fill.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: both fds are new and owned here.
        let (read, write) = unsafe {
            use std::os::fd::FromRawFd;
            (
                std::fs::File::from_raw_fd(fds[0]),
                std::fs::File::from_raw_fd(fds[1]),
            )
        };
        let (reader, writer) = (trio::wrap_file(read), trio::wrap_file(write));
        writer.write_all("hello").await?;
        // No read-ahead on a pipe: the read does not wait for 100 bytes.
        assert_eq!(reader.read(100).await?, b"hello");
        writer.send_all(b"again").await?;
        assert_eq!(reader.receive_some(100).await?, b"again");
        writer.aclose().await?;
        assert_eq!(reader.read(100).await?, b"");
        Ok(())
    });
}
