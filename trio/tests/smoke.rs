use std::cell::Cell;
use std::rc::Rc;
use trio_test::MockClock;

#[test]
fn smoke() {
    let clock = MockClock::new().with_autojump_threshold(0).unwrap();
    let c2 = clock.clone();
    let r = trio::RunConfig::new()
        .clock(clock)
        .fail_on_deadlock(true)
        .run(async move {
            let count = Rc::new(Cell::new(0));
            let t0 = trio::current_time()?;
            trio::open_nursery(|n| {
                let count = count.clone();
                async move {
                    for i in 0..3 {
                        let count = count.clone();
                        n.start_soon(async move {
                            trio::sleep(i as f64).await?;
                            count.set(count.get() + 1);
                            Ok(())
                        })?;
                    }
                    Ok(())
                }
            })
            .await?;
            assert_eq!(count.get(), 3);
            assert_eq!(trio::current_time()? - t0, 2.0);
            trio::sleep(3600).await?;
            assert_eq!(c2.current_time(), 3602.0);
            let r = trio::move_on_after(1.0, trio::sleep_forever()).await?;
            assert!(r.is_none());
            Ok(7)
        });
    assert_eq!(r.unwrap(), 7);
}
