//! The pipe streams (`PipeSendStream`, `PipeReceiveStream`) against Trio's one-way stream
//! conformance suite (Trio's `test_unix_pipes.py`), and their own details.

mod common;

use std::os::fd::{AsRawFd, OwnedFd};

use common::*;
use trio::process::{PipeReceiveStream, PipeSendStream, pipe};
use trio::stream::prelude::*;
use trio::{BrokenResourceError, ClosedResourceError};
use trio_test::{check_one_way_stream, no_clogged};

/// A pipe whose buffer is full, so that a send blocks until the reader reads.
fn clogged_pipe() -> trio::Result<(PipeSendStream, PipeReceiveStream)> {
    let (send, receive) = pipe()?;
    let fd = send.as_raw_fd().expect("open");
    // Writes bigger than PIPE_BUF, so that a partly full pipe still takes some.
    let chunk = vec![b'x'; 16 * 1024];
    loop {
        // SAFETY: writing from a valid buffer to an fd we own.
        let n = unsafe { libc::write(fd, chunk.as_ptr().cast(), chunk.len()) };
        if n < 0 {
            break;
        }
    }
    Ok((send, receive))
}

#[test]
fn pipes_pass_the_one_way_stream_suite() {
    run(async {
        check_one_way_stream(
            async || {
                trio::lowlevel::checkpoint().await?;
                pipe()
            },
            Some(async || {
                trio::lowlevel::checkpoint().await?;
                clogged_pipe()
            }),
        )
        .await
    });
}

#[test]
fn pipes_pass_the_suite_without_the_clogged_checks() {
    run(async { check_one_way_stream(async || pipe(), no_clogged()).await });
}

#[test]
fn a_megabyte_through_a_pipe_in_4k_receives() {
    run(async {
        let (send, receive) = pipe()?;
        const COUNT: usize = 1 << 20;
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                let data: Vec<u8> = (0..COUNT).map(|i| (i % 251) as u8).collect();
                send.send_all(&data).await?;
                send.aclose().await
            })?;
            n.start_soon(async move {
                let mut got = Vec::new();
                loop {
                    let chunk = receive.receive_some(4096).await?;
                    if chunk.is_empty() {
                        break;
                    }
                    got.extend(chunk);
                }
                assert_eq!(got.len(), COUNT);
                assert!(got.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
                Ok(())
            })?;
            Ok(())
        })
        .await
    });
}

#[test]
fn from_fd_wraps_a_pipe_and_closing_closes_the_fd() {
    run(async {
        let mut fds = [0; 2];
        // SAFETY: fds is a valid array for pipe to fill.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: both fds are new and owned here.
        let (read, write) = unsafe {
            use std::os::fd::FromRawFd;
            (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
        };
        let (read_fd, write_fd) = (read.as_raw_fd(), write.as_raw_fd());
        let send = PipeSendStream::from_fd(write)?;
        let receive = PipeReceiveStream::from_fd(read)?;
        assert_eq!(send.as_raw_fd(), Some(write_fd));
        assert!(format!("{send:?}").contains(&format!("fd: {write_fd}")));
        send.send_all(b"123").await?;
        assert_eq!(receive.receive_some(8).await?, b"123");
        let clone = send.clone();
        clone.aclose().await?;
        // Closing a clone closed the fd for every handle.
        assert_eq!(send.as_raw_fd(), None);
        assert!(format!("{send:?}").contains("closed"));
        // SAFETY: fcntl on a closed fd number only reports EBADF.
        assert_eq!(unsafe { libc::fcntl(write_fd, libc::F_GETFD) }, -1);
        assert_err::<ClosedResourceError, _>(send.send_all(b"x").await);
        assert_eq!(receive.receive_some(8).await?, b"");
        drop(receive);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::fcntl(read_fd, libc::F_GETFD) }, -1);
        Ok(())
    });
}

#[test]
fn sending_to_a_pipe_whose_reader_closed_is_broken() {
    run(async {
        let (send, receive) = pipe()?;
        receive.aclose().await?;
        assert_err::<BrokenResourceError, _>(send.send_all(b"x").await);
        Ok(())
    });
}

#[test]
fn pipes_need_a_run() {
    let error = pipe().unwrap_err();
    assert!(error.to_string().contains("run"), "{error}");
}

/// The writer's hangup comes with the same readiness edge as its last data: after a short read
/// the next receive must still see end-of-file rather than wait for an edge that never comes.
#[test]
fn end_of_file_right_after_a_short_read() {
    run(async {
        let (send, receive) = pipe()?;
        send.send_all(b"last").await?;
        send.aclose().await?;
        assert_eq!(receive.receive_some(100).await?, b"last");
        assert_eq!(receive.receive_some(100).await?, b"");
        Ok(())
    });
}

/// Trio's `FdStream` turns every OS error of a read or write into `BrokenResourceError`
/// (`EBADF` into `ClosedResourceError`), as socket streams do: a stream user handles the
/// stream errors, not errno values (Trio's `test_bizarro_OSError_from_receive`).
#[test]
fn a_bizarre_os_error_from_receive_or_send_is_broken_resource_error() {
    run(async {
        let (send, receive) = pipe()?;
        // Make the read end readable, so that the next receive goes straight to read(2).
        send.send_all(b"ab").await?;
        assert_eq!(receive.receive_some(1).await?, b"a");
        let path = std::ffi::CString::new("/").expect("no NUL");
        // SAFETY: opening "/" read-only as a directory; the fd is closed below.
        let dir = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY) };
        assert!(dir >= 0);
        let fd = receive.as_raw_fd().expect("open");
        // SAFETY: replaces the read end's fd (owned by `receive`) with a directory: read(2)
        // on it fails with EISDIR.
        assert_eq!(unsafe { libc::dup2(dir, fd) }, fd);
        let e = assert_err::<BrokenResourceError, _>(receive.receive_some(10).await);
        assert!(e.to_string().contains("directory"), "{e}");
        // SAFETY: `dir` is ours.
        unsafe { libc::close(dir) };

        // The same for a write: /dev/full fails every write with ENOSPC.
        let path = std::ffi::CString::new("/dev/full").expect("no NUL");
        // SAFETY: opening /dev/full for writing; the fd is closed below.
        let full = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY) };
        assert!(full >= 0);
        let fd = send.as_raw_fd().expect("open");
        // SAFETY: replaces the write end's fd (owned by `send`) with /dev/full.
        assert_eq!(unsafe { libc::dup2(full, fd) }, fd);
        let e = assert_err::<BrokenResourceError, _>(send.send_all(b"x").await);
        assert!(e.to_string().contains("space"), "{e}");
        // SAFETY: `full` is ours.
        unsafe { libc::close(full) };
        Ok(())
    });
}

/// Trio's `test_misdirected_aclose_regression`: closing a pipe end a second time, after its fd
/// number went to a new pipe, must not close the new pipe's fd.
#[test]
fn closing_twice_does_not_close_a_reused_fd_number() {
    run(async {
        let (send, receive) = pipe()?;
        send.aclose().await?;
        receive.aclose().await?;
        // The lowest free numbers come back, so the new pipe gets the old numbers (unless a
        // test running beside this one took them first: then the check is weaker, not wrong).
        let (send2, receive2) = pipe()?;
        receive.aclose().await?;
        send.aclose().await?;
        drop((send, receive));
        send2.send_all(b"x").await?;
        assert_eq!(receive2.receive_some(10).await?, b"x");
        send2.aclose().await?;
        assert_eq!(receive2.receive_some(10).await?, b"");
        Ok(())
    });
}
