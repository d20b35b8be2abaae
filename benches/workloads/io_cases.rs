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
