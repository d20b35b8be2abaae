//! A first trio program: a nursery with three children and a timeout.
//!
//! ```text
//! cargo run --example hello
//! ```
//!
//! Each child sleeps a different time and reports; the slowest one is cut off by a
//! `move_on_after`, which cancels it at its next checkpoint. The nursery waits for all of them.
//! Then `join` and `race` run futures side by side inside the main task, borrowing its data.

use std::cell::RefCell;
use std::rc::Rc;

async fn child(
    name: &'static str,
    seconds: f64,
    log: Rc<RefCell<Vec<String>>>,
) -> trio::Result<()> {
    let finished = trio::move_on_after(0.25, trio::sleep(seconds)).await?;
    let line = match finished {
        Some(()) => format!("{name}: slept {seconds} s"),
        None => format!("{name}: cancelled after 0.25 s (wanted {seconds} s)"),
    };
    println!("{line}");
    log.borrow_mut().push(line);
    Ok(())
}

#[trio::main]
async fn main() -> trio::Result<()> {
    let log = Rc::new(RefCell::new(Vec::new()));
    let start = trio::current_time()?;
    trio::open_nursery(|nursery| {
        let log = log.clone();
        async move {
            nursery.start_soon_named("fast", child("fast", 0.05, log.clone()))?;
            nursery.start_soon_named("medium", child("medium", 0.1, log.clone()))?;
            nursery.start_soon_named("slow", child("slow", 10.0, log))?;
            Ok(())
        }
    })
    .await?;
    let elapsed = trio::current_time()? - start;
    println!("all {} children done in {elapsed:.2} s", log.borrow().len());

    // No task, no `Rc` clone: both branches borrow `log`.
    let (count, first) = trio::join((async { Ok(log.borrow().len()) }, async {
        Ok(log.borrow()[0].clone())
    }))
    .await?;
    println!("join: {count} lines, the first was {first:?}");
    // The first to finish wins; the other is cancelled, and has ended when `race` returns.
    let winner = trio::race((
        async {
            trio::sleep(0.01).await?;
            Ok("quick")
        },
        async {
            trio::sleep(1.0).await?;
            Ok("slow")
        },
    ))
    .await?;
    println!("race: the {winner} branch won");
    Ok(())
}
