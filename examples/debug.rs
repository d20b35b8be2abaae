//! Where is it stuck? A program with a stuck pipeline, and the ways trio shows it.
//!
//! ```text
//! cargo run --example debug             # runs until Ctrl-C; `kill -USR1 <pid>` prints a task dump
//! cargo run --example debug -- --now    # prints the task dump once everything is blocked
//! cargo run --example debug -- --deadlock   # no heartbeat: the run reports its deadlock
//! ```
//!
//! Two fetchers wait for the cache lock; the cache writer holds it while it waits for a
//! message; the producer that would send it waits for a config event nobody sets. A heartbeat
//! task keeps the program alive (it sleeps, so the run is stuck, not deadlocked). The task dump
//! says all of that: each task with its spawn site, what it is blocked in (the lock's owner,
//! the channel's statistics, the sleep's deadline), its `#[trio::wchan]` frames and its cancel
//! scopes.

use trio::lowlevel::{task_dump, wait_all_tasks_blocked};
use trio::sync::{Event, Lock};
use trio::{MemoryReceiveChannel, MemorySendChannel, RunConfig};

#[trio::wchan("fetching a page")]
async fn fetch(url: &'static str, cache: Lock) -> trio::Result<()> {
    store(url, cache).await
}

#[trio::wchan]
async fn store(url: &'static str, cache: Lock) -> trio::Result<()> {
    let _guard = cache.lock().await?;
    println!("stored {url}");
    Ok(())
}

async fn cache_writer(cache: Lock, updates: MemoryReceiveChannel<String>) -> trio::Result<()> {
    let _guard = cache.lock().await?;
    while let Some(update) = updates.recv().await? {
        println!("cache update: {update}");
    }
    Ok(())
}

async fn producer(config: Event, updates: MemorySendChannel<String>) -> trio::Result<()> {
    config.wait().await?;
    updates
        .send("config loaded".into())
        .await
        .map_err(trio::Error::from)
}

async fn heartbeat() -> trio::Result<()> {
    loop {
        trio::move_on_after(1.0, trio::lowlevel::sleep_forever()).await?;
    }
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let deadlock = mode == "--deadlock";
    let now = mode == "--now";
    if !deadlock && !now {
        eprintln!(
            "stuck on purpose; run `kill -USR1 {}` for a task dump, Ctrl-C to stop",
            std::process::id()
        );
    }
    let result = RunConfig::new()
        .dump_on_signal(true)
        .fail_on_deadlock(deadlock)
        .detect_slow_steps(0.1)
        .run(async move {
            let cache = Lock::new();
            let config = Event::new();
            let (tx, rx) = trio::open_memory_channel(0);
            trio::open_nursery(|nursery| async move {
                nursery.start_soon_named("cache writer", cache_writer(cache.clone(), rx))?;
                trio::sleep(0.01).await?;
                nursery.start_soon(fetch("https://example.org/a", cache.clone()))?;
                nursery.start_soon(fetch("https://example.org/b", cache.clone()))?;
                nursery.start_soon_named("producer", producer(config, tx))?;
                if !deadlock {
                    nursery.start_soon(heartbeat())?;
                }
                if now {
                    wait_all_tasks_blocked().await?;
                    print!("{}", task_dump()?);
                    nursery.cancel_scope().cancel();
                }
                Ok(())
            })
            .await
        });
    if let Err(error) = result {
        eprintln!("Error: {error}");
        std::process::exit(1);
    }
}
