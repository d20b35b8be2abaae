//! I/O cases: processes (and files once `trio::fs` lands), trio beside tokio.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use super::rt::trio_run;

/// A tokio current_thread runtime with every driver (I/O and signals: tokio's child
/// processes need them), and a `LocalSet`.
pub struct TokioIo {
    rt: tokio::runtime::Runtime,
    local: tokio::task::LocalSet,
}

impl TokioIo {
    pub fn new() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        TokioIo {
            rt,
            local: tokio::task::LocalSet::new(),
        }
    }

    pub fn run<F: std::future::Future>(&self, body: F) -> F::Output {
        self.local.block_on(&self.rt, body)
    }
}

/// `iters` times `run_process("true")`: spawn, wait, reap (stdin /dev/null, output inherited).
pub fn trio_run_true(iters: u64) -> Duration {
    trio_run(async move {
        let start = Instant::now();
        for _ in 0..iters {
            let done = trio::run_process("true").await?;
            assert!(done.status.success());
        }
        Ok(start.elapsed())
    })
}

/// The same with tokio: `Command::new("true").stdin(null()).status()`.
pub fn tokio_run_true(tokio: &TokioIo, iters: u64) -> Duration {
    tokio.run(async move {
        let start = Instant::now();
        for _ in 0..iters {
            let status = tokio::process::Command::new("true")
                .stdin(std::process::Stdio::null())
                .status()
                .await
                .expect("tokio status");
            assert!(status.success());
        }
        start.elapsed()
    })
}

/// The file the read cases read: 256 MiB in the temp dir (or `TRIO_BENCH_FILE`), written once
/// and then in the page cache, so the cases measure trio's and tokio's machinery, not the disk.
pub fn bench_file() -> std::path::PathBuf {
    use std::io::Write;
    let path = std::env::var_os("TRIO_BENCH_FILE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("trio-bench-256mib"));
    let len = 256u64 << 20;
    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(len) {
        let mut file = std::fs::File::create(&path).expect("create the bench file");
        let chunk: Vec<u8> = (0..(1 << 20)).map(|i: u32| (i % 251) as u8).collect();
        for _ in 0..256 {
            file.write_all(&chunk).expect("write the bench file");
        }
    }
    // Warm the page cache.
    let _ = std::fs::read(&path);
    path
}

pub const CHUNK: usize = 64 * 1024;

/// `iters` times: read the whole file in 64 KiB chunks with `trio::fs::File::read`.
pub fn trio_read_file(iters: u64) -> Duration {
    let path = bench_file();
    trio_run(async move {
        let start = Instant::now();
        for _ in 0..iters {
            let file = trio::fs::File::open(&path).await?;
            let mut total = 0;
            loop {
                let chunk = file.read(CHUNK).await?;
                if chunk.is_empty() {
                    break;
                }
                total += chunk.len();
            }
            assert_eq!(total, 256 << 20);
        }
        Ok(start.elapsed())
    })
}

/// The same with `File::read_into` and one 64 KiB buffer, as tokio's case reads.
pub fn trio_read_file_into(iters: u64) -> Duration {
    let path = bench_file();
    trio_run(async move {
        let start = Instant::now();
        let mut buf = vec![0u8; CHUNK];
        for _ in 0..iters {
            let file = trio::fs::File::open(&path).await?;
            let mut total = 0;
            loop {
                let n = file.read_into(&mut buf).await?;
                if n == 0 {
                    break;
                }
                total += n;
            }
            assert_eq!(total, 256 << 20);
        }
        Ok(start.elapsed())
    })
}

/// The same through the stream trait: `receive_some(64 KiB)` on the file.
pub fn trio_receive_file(iters: u64) -> Duration {
    use trio::stream::prelude::*;
    let path = bench_file();
    trio_run(async move {
        let start = Instant::now();
        for _ in 0..iters {
            let file = trio::fs::File::open(&path).await?;
            let mut total = 0;
            loop {
                let chunk = file.receive_some(CHUNK).await?;
                if chunk.is_empty() {
                    break;
                }
                total += chunk.len();
            }
            assert_eq!(total, 256 << 20);
        }
        Ok(start.elapsed())
    })
}

/// The same with tokio: `tokio::fs::File::read` into one 64 KiB buffer.
pub fn tokio_read_file(tokio: &TokioIo, iters: u64) -> Duration {
    use tokio::io::AsyncReadExt;
    let path = bench_file();
    tokio.run(async move {
        let start = Instant::now();
        let mut buf = vec![0u8; CHUNK];
        for _ in 0..iters {
            let mut file = tokio::fs::File::open(&path).await.expect("open");
            let mut total = 0;
            loop {
                let n = file.read(&mut buf).await.expect("read");
                if n == 0 {
                    break;
                }
                total += n;
            }
            assert_eq!(total, 256 << 20);
        }
        start.elapsed()
    })
}
