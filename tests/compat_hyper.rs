//! hyper 1.x on trio (feature `hyper`): client and server both on trio over loopback TCP,
//! HTTP/1 and HTTP/2 (whose tasks run in a nursery through `NurseryExecutor`), a handler
//! cancelled by a deadline, and hyper's timeouts on `TrioTimer` in virtual time.

use std::cell::Cell;
use std::convert::Infallible;
use std::rc::Rc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::rt::{Executor, Timer};
use hyper::service::service_fn;
use hyper::{Request, Response};
use trio::CancelScope;
use trio::compat::{NurseryExecutor, TrioSleep, TrioTimer, cancellable};
use trio::stream::prelude::*;

#[path = "common/virtual_loopback.rs"]
mod virtual_loopback;

use virtual_loopback::{run, tcp_pair};

/// Answers `hello <path>` and, for a POST, the size of the body it received.
async fn hello(
    request: Request<Incoming>,
) -> std::result::Result<Response<Full<Bytes>>, hyper::Error> {
    let path = request.uri().path().to_string();
    let body = request.into_body().collect().await?.to_bytes();
    let text = match body.len() {
        0 => format!("hello {path}"),
        n => format!("hello {path}, {n} bytes"),
    };
    Ok(Response::new(Full::new(Bytes::from(text))))
}

/// The text of a response's body.
async fn body_text(response: Response<Incoming>) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

/// Polls `future` once, in the current task's context.
async fn poll_once<F: Future + Unpin>(future: &mut F) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut *future).poll(cx)))
        .await
}

fn approx(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[test]
fn http1_client_and_server_on_trio() {
    run(async {
        let (client, server) = tcp_pair().await?;
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TrioTimer::new()?)
                    .serve_connection(server, service_fn(hello));
                cancellable(connection)
                    .await?
                    .expect("the server connection");
                Ok(())
            })?;
            let (mut sender, connection) = hyper::client::conn::http1::handshake(client)
                .await
                .expect("handshake");
            nursery.start_soon(async move {
                cancellable(connection)
                    .await?
                    .expect("the client connection");
                Ok(())
            })?;
            let response = sender
                .send_request(Request::get("/first").body(Full::new(Bytes::new()))?)
                .await
                .expect("first response");
            assert_eq!(response.status(), 200);
            assert_eq!(body_text(response).await, "hello /first");
            // Keep-alive: a second request on the same connection, with a 1 MB body.
            let big = Full::new(Bytes::from(vec![b'x'; 1 << 20]));
            let response = sender
                .send_request(Request::post("/upload").body(big)?)
                .await
                .expect("second response");
            assert_eq!(body_text(response).await, "hello /upload, 1048576 bytes");
            // Dropping the sender ends the client connection, which closes the socket and
            // ends the server connection.
            drop(sender);
            Ok(())
        })
        .await
    });
}

#[test]
fn http2_client_and_server_on_trio_with_nursery_executors() {
    run(async {
        let (client, server) = tcp_pair().await?;
        let served = Rc::new(Cell::new(0));
        let counter = served.clone();
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                // One nursery per connection: its HTTP/2 streams are its children.
                trio::open_nursery(|streams| async move {
                    let service = service_fn(move |request| {
                        counter.set(counter.get() + 1);
                        hello(request)
                    });
                    let connection =
                        hyper::server::conn::http2::Builder::new(NurseryExecutor::new(streams))
                            .timer(TrioTimer::new()?)
                            .serve_connection(server, service);
                    cancellable(connection)
                        .await?
                        .expect("the server connection");
                    Ok(())
                })
                .await
            })?;
            let (sender, connection) =
                hyper::client::conn::http2::Builder::new(NurseryExecutor::new(nursery.clone()))
                    .timer(TrioTimer::new()?)
                    .handshake::<_, Full<Bytes>>(client)
                    .await
                    .expect("handshake");
            nursery.start_soon(async move {
                cancellable(connection)
                    .await?
                    .expect("the client connection");
                Ok(())
            })?;
            // Three requests at once, multiplexed on the one connection.
            let texts = Rc::new(std::cell::RefCell::new(Vec::new()));
            trio::open_nursery(|requests| {
                let texts = texts.clone();
                async move {
                    for i in 0..3 {
                        let mut sender = sender.clone();
                        let texts = texts.clone();
                        requests.start_soon(async move {
                            let request = Request::get(format!("http://localhost/{i}"))
                                .body(Full::new(Bytes::new()))?;
                            let response = cancellable(sender.send_request(request))
                                .await?
                                .expect("response");
                            assert_eq!(response.version(), hyper::Version::HTTP_2);
                            let text = body_text(response).await;
                            texts.borrow_mut().push(text);
                            Ok(())
                        })?;
                    }
                    drop(sender);
                    Ok(())
                }
            })
            .await?;
            let mut texts = texts.borrow().clone();
            texts.sort();
            assert_eq!(texts, ["hello /0", "hello /1", "hello /2"]);
            Ok(())
        })
        .await?;
        assert_eq!(served.get(), 3);
        Ok(())
    });
}

#[test]
#[should_panic(expected = "the handler exploded")]
fn an_http2_handler_s_panic_surfaces_from_the_connection_nursery() {
    run(async {
        let (client, server) = tcp_pair().await?;
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                trio::open_nursery(|streams| async move {
                    let service = service_fn(|_request: Request<Incoming>| async {
                        panic!("the handler exploded");
                        #[allow(unreachable_code)]
                        Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
                    });
                    let connection =
                        hyper::server::conn::http2::Builder::new(NurseryExecutor::new(streams))
                            .serve_connection(server, service);
                    let _ = cancellable(connection).await?;
                    Ok(())
                })
                .await
            })?;
            let (mut sender, connection) =
                hyper::client::conn::http2::Builder::new(NurseryExecutor::new(nursery.clone()))
                    .handshake::<_, Empty<Bytes>>(client)
                    .await
                    .expect("handshake");
            nursery.start_soon(async move {
                let _ = cancellable(connection).await?;
                Ok(())
            })?;
            let request = Request::get("http://localhost/").body(Empty::<Bytes>::new())?;
            // The stream task's panic cancels everything here, this request too.
            let _ = cancellable(sender.send_request(request)).await?;
            Ok(())
        })
        .await
    });
}

/// Notes that it was dropped.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn a_handler_is_cancelled_by_the_server_scope_s_deadline() {
    run(async {
        let (client, server) = tcp_pair().await?;
        let handler_dropped = Rc::new(Cell::new(false));
        let flag = handler_dropped.clone();
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                let start = trio::current_time()?;
                // The handler never answers: only the deadline ends the connection.
                let service = service_fn(move |_request: Request<Incoming>| {
                    let guard = DropFlag(flag.clone());
                    async move {
                        let _guard = guard;
                        std::future::pending::<()>().await;
                        Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
                    }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TrioTimer::new()?)
                    .serve_connection(server, service);
                let outcome = trio::move_on_after(5.0, cancellable(connection)).await?;
                assert!(outcome.is_none(), "the deadline ended the connection");
                assert!(approx(trio::current_time()? - start, 5.0));
                Ok(())
            })?;
            let (mut sender, connection) = hyper::client::conn::http1::handshake(client)
                .await
                .expect("handshake");
            nursery.start_soon(async move {
                // The server dropped the connection: the client connection ends (its error,
                // if any, is the one the request reports).
                let _ = cancellable(connection).await?;
                Ok(())
            })?;
            let err = sender
                .send_request(Request::get("/slow").body(Empty::<Bytes>::new())?)
                .await
                .expect_err("the server gave up");
            assert!(err.is_incomplete_message() || err.is_closed(), "{err:?}");
            Ok(())
        })
        .await?;
        assert!(handler_dropped.get(), "the handler's future was dropped");
        Ok(())
    });
}

#[test]
fn header_read_timeout_expires_in_virtual_time() {
    run(async {
        let (client, server) = tcp_pair().await?;
        let start = trio::current_time()?;
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TrioTimer::new()?)
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(server, service_fn(hello));
                let err = cancellable(connection)
                    .await?
                    .expect_err("the client never finished its request head");
                assert!(err.is_timeout(), "{err:?}");
                assert!(approx(trio::current_time()? - start, 10.0));
                Ok(())
            })?;
            // A slow client: half a request head, then nothing.
            client.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await?;
            // The server closes the connection when its timeout expires.
            loop {
                if client.receive_some(1024).await?.is_empty() {
                    break;
                }
            }
            assert!(approx(trio::current_time()? - start, 10.0));
            Ok(())
        })
        .await
    });
}

#[test]
fn the_timer_follows_the_run_s_clock() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<TrioTimer>();
    send_sync::<TrioSleep>();
    run(async {
        let timer = TrioTimer::new()?;
        let before = timer.now();
        let start = trio::current_time()?;
        timer.sleep(Duration::from_secs(3)).await;
        assert!(approx(trio::current_time()? - start, 3.0));
        let elapsed = timer.now() - before;
        assert!(approx(elapsed.as_secs_f64(), 3.0), "{elapsed:?}");
        // sleep_until an Instant from now(), and reset to a later one.
        let mut sleep = timer.sleep_until(timer.now() + Duration::from_secs(1));
        timer.reset(&mut sleep, timer.now() + Duration::from_secs(4));
        sleep.await;
        assert!(approx(trio::current_time()? - start, 7.0));
        // A deadline in the past is ready at once, without waiting for the clock.
        timer.sleep_until(before).await;
        assert!(approx(trio::current_time()? - start, 7.0));
        Ok(())
    });
}

#[test]
fn earlier_sleeps_registered_later_still_wake_first() {
    run(async {
        let timer = TrioTimer::new()?;
        let order = Rc::new(std::cell::RefCell::new(Vec::new()));
        let start = trio::current_time()?;
        trio::open_nursery(|nursery| {
            let order = order.clone();
            async move {
                for (name, secs) in [("long", 9), ("short", 2), ("dropped", 1), ("mid", 5)] {
                    let (timer, order) = (timer.clone(), order.clone());
                    nursery.start_soon(async move {
                        let sleep = timer.sleep(Duration::from_secs(secs));
                        if name == "dropped" {
                            // Registered, then dropped: it wakes nothing.
                            let mut sleep = sleep;
                            let polled = poll_once(&mut sleep).await;
                            assert!(polled.is_pending());
                            drop(sleep);
                            return Ok(());
                        }
                        sleep.await;
                        order
                            .borrow_mut()
                            .push((name, trio::current_time()? - start));
                        Ok(())
                    })?;
                    // Each registers before the next is started.
                    trio::lowlevel::checkpoint().await?;
                }
                Ok(())
            }
        })
        .await?;
        let order = order.borrow();
        let names: Vec<_> = order.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["short", "mid", "long"]);
        for ((_, at), want) in order.iter().zip([2.0, 5.0, 9.0]) {
            assert!(approx(*at, want));
        }
        Ok(())
    });
}

#[test]
fn a_sleep_from_another_run_completes_at_once() {
    let timer = trio::RunConfig::new()
        .ctrl_c(false)
        .run(async { TrioTimer::new() })
        .expect("a timer");
    run(async move {
        let start = trio::current_time()?;
        // Its timer belongs to a run that is over: nothing could wake it, so it does not
        // wait (and a tracing error says why).
        timer.sleep(Duration::from_secs(60)).await;
        assert_eq!(trio::current_time()?, start);
        Ok(())
    });
}

#[test]
fn the_executor_runs_futures_in_its_nursery_and_cancels_them_with_it() {
    run(async {
        let ran = Rc::new(Cell::new(false));
        let dropped = Rc::new(Cell::new(false));
        let (ran2, dropped2) = (ran.clone(), dropped.clone());
        let scope = CancelScope::new();
        let outcome = scope
            .run(trio::open_nursery(|nursery| async move {
                let executor = NurseryExecutor::new(nursery.clone());
                executor.execute(async move { ran2.set(true) });
                let guard = DropFlag(dropped2);
                // A foreign future that never ends: the nursery's cancellation drops it.
                executor.execute(async move {
                    let _guard = guard;
                    std::future::pending::<()>().await
                });
                trio::sleep(1.0).await?;
                nursery.cancel_scope().cancel();
                Ok(())
            }))
            .await?;
        assert!(outcome.is_some());
        assert!(ran.get());
        assert!(dropped.get());
        // A closed nursery cannot take a task: the future is dropped at once.
        let late = Rc::new(Cell::new(None));
        let late2 = late.clone();
        trio::open_nursery(|nursery| async move {
            late2.set(Some(NurseryExecutor::new(nursery)));
            Ok(())
        })
        .await?;
        let executor = late.take().expect("kept");
        let flag = Rc::new(Cell::new(false));
        let guard = DropFlag(flag.clone());
        executor.execute(async move {
            let _guard = guard;
        });
        assert!(flag.get(), "dropped, not run");
        Ok(())
    });
}
