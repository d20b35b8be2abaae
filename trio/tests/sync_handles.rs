//! Every primitive is shared the same way: a clone is another handle to the same primitive
//! (`trio::sync` module docs). `ParkingLot` included, with no `Rc` around it.

mod common;

use common::run;
use trio::lowlevel::{
    ParkingLot, add_parking_lot_breaker, current_task, remove_parking_lot_breaker,
    wait_all_tasks_blocked,
};
use trio::{CapacityLimiter, Condition, Event, Lock, Semaphore, StrictFIFOLock};

#[test]
fn a_cloned_parking_lot_is_the_same_lot() {
    run(async {
        let lot = ParkingLot::new();
        let other = lot.clone();
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move { other.park().await })?;
            wait_all_tasks_blocked().await?;
            // The task parked through the clone: this handle sees it and unparks it.
            assert_eq!(lot.statistics().tasks_waiting, 1);
            assert_eq!(lot.unpark_all().len(), 1);
            Ok(())
        })
        .await
    });
}

#[test]
fn a_cloned_parking_lot_with_data_hands_off_through_either_handle() {
    run(async {
        let lot = ParkingLot::<u32>::new();
        let other = lot.clone();
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                let mut park = std::pin::pin!(other.park_with(1));
                park.as_mut().await?;
                assert_eq!(park.take_data(), Some(2));
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            assert_eq!(lot.unpark_one_with(|n| *n += 1), Some(()));
            Ok(())
        })
        .await
    });
}

#[test]
fn a_parking_lot_breaker_names_the_lot_not_the_handle() {
    run(async {
        let lot = ParkingLot::new();
        let for_child = lot.clone();
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                let me = current_task()?;
                add_parking_lot_breaker(&me, &for_child)?;
                Ok(())
            })?;
            Ok(())
        })
        .await?;
        // Registered through a clone, the child's exit broke the lot every handle sees.
        assert!(lot.is_broken());

        let other = ParkingLot::new();
        let task = current_task()?;
        add_parking_lot_breaker(&task, &other.clone())?;
        remove_parking_lot_breaker(&task, &other)?;
        Ok(())
    });
}

#[test]
fn every_sync_primitive_clone_shares_its_state() {
    run(async {
        let event = Event::new();
        event.clone().set();
        assert!(event.is_set());

        let lock = Lock::new();
        lock.clone().try_acquire()?;
        assert!(lock.locked());
        lock.release()?;

        let fifo = StrictFIFOLock::new();
        fifo.clone().try_acquire()?;
        assert!(fifo.locked());
        fifo.release()?;

        let semaphore = Semaphore::new(2);
        semaphore.clone().try_acquire()?;
        assert_eq!(semaphore.value(), 1);

        let limiter = CapacityLimiter::new(3);
        limiter.clone().try_acquire()?;
        assert_eq!(limiter.borrowed_tokens(), 1);
        limiter.set_total_tokens(5);
        assert_eq!(limiter.clone().total_tokens(), 5);
        limiter.release()?;

        let condition = Condition::new();
        condition.clone().try_acquire()?;
        assert!(condition.locked());
        condition.release()?;
        Ok(())
    });
}

#[test]
fn channel_clones_share_the_channel_and_close_on_their_own() {
    run(async {
        let (tx, rx) = trio::open_memory_channel::<u32>(4);
        let tx2 = tx.clone();
        let rx2 = rx.clone();
        tx2.try_send(7).map_err(trio::Error::from)?;
        assert_eq!(rx.statistics().current_buffer_used, 1);
        assert_eq!(rx2.try_receive()?, 7);
        // Each clone is a handle closed on its own (Trio's channel clones).
        tx2.close();
        assert!(!tx.is_closed());
        assert_eq!(rx.statistics().open_send_channels, 1);
        Ok(())
    });
}
