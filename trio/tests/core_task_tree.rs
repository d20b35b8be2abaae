//! The task tree: Trio's `test_task_tree_introspection`, ported (parent and child links,
//! `eventual_parent_nursery` during `start`, upward links that outlive the tasks).

mod common;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use common::run;
use trio::Nursery;
use trio::lowlevel::{Task, current_task, wait_all_tasks_blocked};

#[derive(Default)]
struct Tree {
    tasks: HashMap<&'static str, Task>,
    nurseries: HashMap<&'static str, Nursery>,
}

#[test]
fn the_task_tree_links_both_ways_and_upward_links_outlive_the_tasks() {
    run(async {
        let tree = Rc::new(RefCell::new(Tree::default()));
        let t = tree.clone();
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                let me = current_task()?;
                t.borrow_mut().tasks.insert("parent", me.clone());
                assert!(me.child_nurseries().is_empty());
                let me2 = me.clone();
                trio::open_nursery(|n1| async move {
                    trio::open_nursery(|n2| async move {
                        assert_eq!(me2.child_nurseries(), vec![n1.clone(), n2.clone()]);
                        Ok(())
                    })
                    .await
                })
                .await?;
                assert!(me.child_nurseries().is_empty());
                let t2 = t.clone();
                trio::open_nursery(|nursery| async move {
                    t2.borrow_mut().nurseries.insert("parent", nursery.clone());
                    let t3 = t2.clone();
                    let parent_nursery = nursery.clone();
                    nursery
                        .start(move |st: trio::TaskStatus<()>| async move {
                            let me = current_task()?;
                            t3.borrow_mut().tasks.insert("child1", me.clone());
                            let parent = t3.borrow().tasks["parent"].clone();
                            assert_eq!(me.parent_nursery().unwrap().parent_task(), Some(parent));
                            assert_ne!(me.parent_nursery(), Some(parent_nursery.clone()));
                            assert_eq!(me.eventual_parent_nursery(), Some(parent_nursery.clone()));
                            st.started(())?;
                            assert_eq!(me.parent_nursery(), Some(parent_nursery.clone()));
                            assert_eq!(me.eventual_parent_nursery(), None);
                            wait_all_tasks_blocked().await?;
                            let t4 = t3.clone();
                            trio::open_nursery(|nc| async move {
                                t4.borrow_mut().nurseries.insert("child1", nc.clone());
                                let t5 = t4.clone();
                                nc.start_soon(async move {
                                    let me = current_task()?;
                                    let tr = t5.borrow();
                                    assert_eq!(
                                        tr.tasks["parent"].child_nurseries(),
                                        vec![tr.nurseries["parent"].clone()]
                                    );
                                    assert_eq!(
                                        tr.nurseries["parent"].child_tasks(),
                                        vec![tr.tasks["child1"].clone()]
                                    );
                                    assert_eq!(
                                        tr.tasks["child1"].child_nurseries(),
                                        vec![tr.nurseries["child1"].clone()]
                                    );
                                    assert_eq!(
                                        tr.nurseries["child1"].child_tasks(),
                                        vec![me.clone()]
                                    );
                                    assert!(me.child_nurseries().is_empty());
                                    drop(tr);
                                    t5.borrow_mut().tasks.insert("child2", me);
                                    Ok(())
                                })?;
                                Ok(())
                            })
                            .await
                        })
                        .await
                })
                .await?;
                let tr = t.borrow();
                assert_eq!(
                    tr.nurseries["parent"].parent_task(),
                    Some(tr.tasks["parent"].clone())
                );
                assert_eq!(
                    tr.tasks["child1"].parent_nursery(),
                    Some(tr.nurseries["parent"].clone())
                );
                assert_eq!(
                    tr.nurseries["child1"].parent_task(),
                    Some(tr.tasks["child1"].clone())
                );
                assert_eq!(
                    tr.tasks["child2"].parent_nursery(),
                    Some(tr.nurseries["child1"].clone())
                );
                let mut nursery = current_task()?.parent_nursery();
                while let Some(n) = nursery {
                    nursery = n.parent_task().and_then(|t| t.parent_nursery());
                }
                Ok(())
            })?;
            Ok(())
        })
        .await?;
        for task in tree.borrow().tasks.values() {
            assert!(task.eventual_parent_nursery().is_none());
        }
        Ok(())
    });
}
