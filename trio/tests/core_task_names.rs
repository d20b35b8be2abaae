//! Task names, as Trio's: a task is called after what it runs (the async fn's name), or, for
//! an async block, after the place it was spawned; never after a closure's type path.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::run;
use trio::lowlevel::{current_task, spawn_system_task, wait_all_tasks_blocked};

type Names = Rc<RefCell<Vec<String>>>;

async fn fetch(url: &'static str, names: Names) -> trio::Result<()> {
    names.borrow_mut().push(current_task()?.name());
    let _ = url;
    Ok(())
}

struct Server;

impl Server {
    async fn handle(self, names: Names) -> trio::Result<()> {
        names.borrow_mut().push(current_task()?.name());
        Ok(())
    }
}

#[test]
fn a_task_is_named_after_its_async_fn() {
    let names = Names::default();
    let seen = names.clone();
    run(async move {
        trio::open_nursery(|n| async move {
            n.start_soon(fetch("https://example.com", names.clone()))?;
            n.start_soon(Server.handle(names.clone()))?;
            let value = n
                .start(|status| {
                    let names = names.clone();
                    async move {
                        status.started(1)?;
                        fetch("x", names).await
                    }
                })
                .await?;
            assert_eq!(value, 1);
            Ok(())
        })
        .await
    });
    let names = seen.borrow();
    assert!(names.contains(&"fetch".to_string()), "{names:?}");
    assert!(names.contains(&"Server::handle".to_string()), "{names:?}");
}

#[test]
fn an_async_block_is_named_after_its_spawn_site() {
    let names = Names::default();
    let seen = names.clone();
    let line = line!() + 5;
    run(async move {
        trio::open_nursery(|n| async move {
            let names = names.clone();
            let system_names = names.clone();
            n.start_soon(async move {
                names.borrow_mut().push(current_task()?.name());
                Ok(())
            })?;
            spawn_system_task("housekeeping", async move {
                system_names.borrow_mut().push(current_task()?.name());
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            Ok(())
        })
        .await
    });
    let mut names = seen.borrow().clone();
    names.sort();
    assert_eq!(
        names,
        ["housekeeping".to_string(), format!("{}:{line}", file!())]
    );
}

#[test]
fn a_given_name_is_kept() {
    run(async {
        trio::open_nursery(|n| async move {
            n.start_soon_named("fetch-3", async {
                assert_eq!(current_task()?.name(), "fetch-3");
                Ok(())
            })
        })
        .await
    });
}

#[test]
fn start_named_names_the_task_before_and_after_started() {
    run(async {
        trio::open_nursery(|nursery| async move {
            let before = nursery
                .start_named("listener", |status: trio::TaskStatus<String>| async move {
                    let name = trio::lowlevel::current_task()?.name();
                    status.started(name)?;
                    trio::lowlevel::sleep_forever().await
                })
                .await?;
            assert_eq!(before, "listener");
            let names: Vec<String> = nursery.child_tasks().iter().map(|t| t.name()).collect();
            assert_eq!(names, ["listener"]);
            nursery.cancel_scope().cancel();
            Ok(())
        })
        .await
    });
}
