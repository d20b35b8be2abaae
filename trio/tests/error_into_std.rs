//! `?` from trio code into ordinary Rust code: `trio::Error` into `Box<dyn Error + Send + Sync>`,
//! `Box<dyn Error>` and `io::Error`, keeping the error, its kind and its source chain.

mod common;

use std::error::Error as StdError;
use std::fmt;
use std::io;

use trio::{
    BrokenResourceError, BusyResourceError, CancelScope, ClosedResourceError, EndOfChannel,
    TooSlowError, UsageError, WouldBlock,
};

/// An error with a source, to follow the chain.
#[derive(Debug)]
struct Outer(io::Error);

impl fmt::Display for Outer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("loading the config failed")
    }
}

impl StdError for Outer {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.0)
    }
}

fn trio_fails_with(error: impl StdError + Send + Sync + 'static) -> trio::Result<()> {
    Err(trio::Error::new(error))
}

fn via_box_send_sync(
    e: impl StdError + Send + Sync + 'static,
) -> Result<(), Box<dyn StdError + Send + Sync>> {
    trio_fails_with(e)?;
    Ok(())
}

fn via_box(e: impl StdError + Send + Sync + 'static) -> Result<(), Box<dyn StdError>> {
    trio_fails_with(e)?;
    Ok(())
}

fn via_io(e: impl StdError + Send + Sync + 'static) -> io::Result<()> {
    trio_fails_with(e)?;
    Ok(())
}

#[test]
fn question_mark_into_a_boxed_error_keeps_the_error_itself() {
    let boxed =
        via_box_send_sync(io::Error::new(io::ErrorKind::ConnectionReset, "reset")).unwrap_err();
    let io = boxed
        .downcast_ref::<io::Error>()
        .expect("the io::Error itself");
    assert_eq!(io.kind(), io::ErrorKind::ConnectionReset);
    assert_eq!(boxed.to_string(), "reset");

    let boxed = via_box(TooSlowError).unwrap_err();
    assert!(boxed.is::<TooSlowError>());
}

#[test]
fn the_source_chain_survives_every_conversion() {
    let inner = || Outer(io::Error::new(io::ErrorKind::NotFound, "no such file"));
    let boxed = via_box(inner()).unwrap_err();
    assert_eq!(boxed.to_string(), "loading the config failed");
    let source = boxed.source().expect("the chain is kept");
    assert_eq!(
        source.downcast_ref::<io::Error>().map(io::Error::kind),
        Some(io::ErrorKind::NotFound)
    );

    let boxed = via_box_send_sync(inner()).unwrap_err();
    assert!(boxed.source().is_some_and(|s| s.is::<io::Error>()));

    // An io::Error shows its payload and continues the chain with the payload's source.
    let io = via_io(inner()).unwrap_err();
    assert_eq!(io.to_string(), "loading the config failed");
    assert!(io.get_ref().is_some_and(|p| p.is::<Outer>()));
    assert_eq!(
        io.source().map(ToString::to_string).as_deref(),
        Some("no such file")
    );
}

#[test]
fn an_io_error_comes_back_out_as_itself() {
    let original = io::Error::from_raw_os_error(104); // ECONNRESET on Linux
    let kind = original.kind();
    let io = via_io(original).unwrap_err();
    assert_eq!(io.raw_os_error(), Some(104));
    assert_eq!(io.kind(), kind);
}

#[test]
fn trio_kinds_map_to_io_kinds() {
    use io::ErrorKind as K;
    let cases: Vec<(trio::Error, K)> = vec![
        (BrokenResourceError::new("peer gone").into(), K::BrokenPipe),
        (ClosedResourceError::new("closed").into(), K::NotConnected),
        (BusyResourceError::new("busy").into(), K::ResourceBusy),
        (WouldBlock.into(), K::WouldBlock),
        (EndOfChannel.into(), K::UnexpectedEof),
        (TooSlowError.into(), K::TimedOut),
        (UsageError::new("bad").into(), K::InvalidInput),
        (trio::KeyboardInterrupt::new().into(), K::Other),
        (io::Error::other("plain").into(), K::Other),
    ];
    for (error, kind) in cases {
        let message = error.to_string();
        assert_eq!(error.io_kind(), kind, "{message}");
        let io = io::Error::from(error);
        assert_eq!(io.kind(), kind, "{message}");
        assert_eq!(io.to_string(), message);
    }
}

#[test]
fn cancelled_is_other_not_the_retried_interrupted() {
    let scope = CancelScope::new();
    let kind = common::run(async move {
        scope.cancel();
        let got = scope
            .run(async {
                let e = trio::lowlevel::checkpoint().await.unwrap_err();
                assert!(e.is_cancelled());
                let io = io::Error::from(e);
                assert!(io.get_ref().is_some_and(|p| p.is::<trio::Cancelled>()));
                Ok(io.kind())
            })
            .await?;
        Ok(got)
    });
    assert_eq!(kind, Some(io::ErrorKind::Other));
}

/// I/O code in the middle: it speaks io::Result, the code around it trio::Result.
async fn io_layer() -> io::Result<()> {
    trio::sleep_forever().await?;
    Ok(())
}

#[test]
fn a_cancelled_that_went_through_io_code_is_still_absorbed_by_its_scope() {
    let out = common::run(async {
        let finished = trio::move_on_after(1, async {
            io_layer().await?; // io::Error -> trio::Error: the Cancelled again
            Ok(())
        })
        .await?;
        Ok(finished)
    });
    assert_eq!(out, None, "the timeout's scope absorbed its cancellation");
}

#[test]
fn round_trips_through_io_error_give_the_trio_kind_back() {
    let e: trio::Error = io::Error::from(trio::Error::new(BrokenResourceError::new("x"))).into();
    assert!(e.is::<BrokenResourceError>());
    let e = trio::Error::from_boxed(Box::new(io::Error::from(trio::Error::new(TooSlowError))));
    assert!(e.is::<TooSlowError>());
    // An io::Error carrying anything else stays an io::Error.
    let e: trio::Error = io::Error::new(io::ErrorKind::InvalidData, "bad header").into();
    assert_eq!(
        e.downcast_ref::<io::Error>().map(io::Error::kind),
        Some(io::ErrorKind::InvalidData)
    );
}

#[test]
fn a_group_has_the_kind_its_errors_share() {
    let failed = |errors: Vec<trio::Error>| {
        common::try_run(async move {
            trio::open_nursery(|nursery| async move {
                for e in errors {
                    nursery.start_soon(async move { Err(e) })?;
                }
                Ok(())
            })
            .await
        })
        .unwrap_err()
    };
    let one = failed(vec![BrokenResourceError::new("a").into()]);
    assert!(one.as_group().is_some());
    assert_eq!(io::Error::from(one).kind(), io::ErrorKind::BrokenPipe);
    let mixed = failed(vec![
        BrokenResourceError::new("a").into(),
        TooSlowError.into(),
    ]);
    let io = io::Error::from(mixed);
    assert_eq!(io.kind(), io::ErrorKind::Other);
    assert!(io.get_ref().is_some_and(|p| p.is::<trio::ErrorGroup>()));
}
