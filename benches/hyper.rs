//! hyper's hello-world server on trio and on tokio's current-thread runtime: HTTP/1 driven by
//! `wrk`, HTTP/2 by `h2load` (Debian: `apt-get install wrk nghttp2-client`).
//!
//! ```text
//! cargo bench -p trio-benches --bench hyper                 # 3 rounds, 50 connections, 5 s
//! HYPER_ROUNDS=5 HYPER_CONNS=1,50 HYPER_SECONDS=5 cargo bench -p trio-benches --bench hyper
//! HYPER_TIMER=0 cargo bench -p trio-benches --bench hyper   # both servers without a timer
//! HYPER_PROTO=h2 cargo bench -p trio-benches --bench hyper  # HTTP/2: h2load -m10
//! ```
//!
//! For HTTP/2 each connection's streams run as tasks: on trio in a nursery per connection
//! (`NurseryExecutor`), on tokio through hyper-util's `TokioExecutor` (`spawn` on the same
//! current-thread runtime); `h2load -t1 -cC -m10` for the same time.
//!
//! Each server is a child process (this binary, `server trio|tokio`) pinned to CPU 0; `wrk -t1`
//! is pinned to CPU 1. The rounds interleave the two servers (trio, tokio, trio, tokio, ...),
//! so that the load of the rest of the machine falls on both alike. Per run it prints wrk's
//! requests/s and the server's CPU time (utime + stime from /proc) per request.
//!
//! Both servers are written the same way: an accept loop, a task per connection, hyper's
//! `http1::Builder` with a timer (hyper's default 30 s `header_read_timeout` is on, as in
//! production; `HYPER_TIMER=0` leaves the timer out), `TCP_NODELAY`, and a handler that
//! answers `Hello, World!`. trio: `serve_listeners` + `cancellable(serve_connection(..))` on
//! `SocketStream` with `TrioTimer`; tokio: `LocalSet` + `spawn_local`, hyper-util's `TokioIo`
//! and `TokioTimer`.

#[path = "workloads/server_process.rs"]
mod server_process;

use server_process::Server;

use std::convert::Infallible;
use std::process::Command;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};

fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET writes inside it; the call reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"Hello, World!",
    ))))
}

fn http2() -> bool {
    std::env::var("HYPER_PROTO").is_ok_and(|v| v == "h2")
}

fn with_timer() -> bool {
    std::env::var("HYPER_TIMER").map_or(true, |v| v != "0")
}

// ---- the servers -------------------------------------------------------------------------

fn trio_server() {
    use trio::compat::{NurseryExecutor, TrioTimer, cancellable};
    async fn connection(
        stream: trio::net::SocketStream,
        timer: Option<TrioTimer>,
    ) -> trio::Result<()> {
        if http2() {
            // The connection's streams are tasks of a nursery of its own.
            return trio::open_nursery(|streams| async move {
                let mut builder =
                    hyper::server::conn::http2::Builder::new(NurseryExecutor::new(streams));
                if let Some(timer) = timer {
                    builder.timer(timer);
                }
                let _ = cancellable(builder.serve_connection(stream, service_fn(hello))).await?;
                Ok(())
            })
            .await;
        }
        let mut builder = hyper::server::conn::http1::Builder::new();
        if let Some(timer) = timer {
            builder.timer(timer);
        }
        // A client's error ends its connection, not the server.
        let _ = cancellable(builder.serve_connection(stream, service_fn(hello))).await?;
        Ok(())
    }
    trio::RunConfig::new()
        .ctrl_c(false)
        .run(async {
            let listeners = trio::net::open_tcp_listeners(0, Some("127.0.0.1")).await?;
            println!("port {}", listeners[0].local_addr()?.port());
            let timer = with_timer().then(TrioTimer::new).transpose()?;
            let handler = move |stream| connection(stream, timer.clone());
            trio::net::serve_listeners(handler, listeners, trio::net::ServeOptions::new()).await
        })
        .expect("trio server");
}

fn tokio_server() {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("port {}", listener.local_addr().unwrap().port());
        let timer = with_timer();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::task::spawn_local(async move {
                if http2() {
                    let mut builder =
                        hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                    if timer {
                        builder.timer(TokioTimer::new());
                    }
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service_fn(hello))
                        .await;
                    return;
                }
                let mut builder = hyper::server::conn::http1::Builder::new();
                if timer {
                    builder.timer(TokioTimer::new());
                }
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service_fn(hello))
                    .await;
            });
        }
    });
}

// ---- the load ----------------------------------------------------------------------------

/// wrk (or h2load) against a fresh `kind` server: (requests/s, server CPU µs per request).
fn load(kind: &str, conns: usize, seconds: u64) -> (f64, f64) {
    let server = Server::start(kind);
    let url = format!("http://127.0.0.1:{}/", server.port);
    let run = |seconds: u64| {
        let conns = format!("-c{conns}");
        let duration = format!("-D{seconds}");
        let wrk_duration = format!("-d{seconds}s");
        let args: Vec<&str> = if http2() {
            vec!["h2load", "-t1", &conns, "-m10", &duration, &url]
        } else {
            vec!["wrk", "-t1", &conns, &wrk_duration, &url]
        };
        let out = Command::new("taskset")
            .args(["-c", "1"])
            .args(&args)
            .output()
            .expect("run the load generator (apt-get install wrk nghttp2-client)");
        assert!(out.status.success(), "{args:?} failed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // A short warm-up, so that connection setup is not in the window.
    run(1);
    let cpu_before = server.cpu_seconds();
    let text = run(seconds);
    let cpu = server.cpu_seconds() - cpu_before;
    let (rps, requests) = if http2() {
        // "finished in 5.00s, 105000.00 req/s, ..." and "requests: N total, N started, N done, N succeeded, ..."
        let rps = text
            .lines()
            .find_map(|l| l.strip_prefix("finished in "))
            .and_then(|l| l.split(", ").nth(1))
            .and_then(|v| v.trim_end_matches(" req/s").parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no req/s in h2load's output:\n{text}"));
        let done = text
            .lines()
            .find_map(|l| l.strip_prefix("requests: "))
            .and_then(|l| l.split(", ").find_map(|f| f.strip_suffix(" succeeded")))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(rps * seconds as f64);
        (rps, done)
    } else {
        let rps = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no Requests/sec in wrk's output:\n{text}"));
        let requests = text
            .lines()
            .find(|l| l.contains("requests in"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(rps * seconds as f64);
        (rps, requests)
    };
    assert!(requests > 0.0, "no request succeeded:\n{text}");
    (rps, cpu * 1e6 / requests)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if let [server, kind] = args.as_slice()
        && server == "server"
    {
        pin_to_cpu(0);
        match kind.as_str() {
            "trio" => trio_server(),
            "tokio" => tokio_server(),
            other => panic!("unknown server {other}"),
        }
        return;
    }
    let rounds: usize = env_or("HYPER_ROUNDS", 3);
    let seconds: u64 = env_or("HYPER_SECONDS", 5);
    let conns: Vec<usize> = std::env::var("HYPER_CONNS")
        .unwrap_or_else(|_| "50".into())
        .split(',')
        .map(|c| c.trim().parse().expect("HYPER_CONNS: numbers"))
        .collect();
    println!(
        "hyper {} hello, {} -t1, {seconds} s per run, timer {}",
        if http2() { "HTTP/2" } else { "HTTP/1" },
        if http2() { "h2load -m10" } else { "wrk" },
        if with_timer() { "on" } else { "off" }
    );
    for &c in &conns {
        for round in 1..=rounds {
            for kind in ["trio", "tokio"] {
                let (rps, cpu) = load(kind, c, seconds);
                println!(
                    "c={c:<5} round {round} {kind:<6} {rps:>10.0} req/s  {cpu:>6.2} µs CPU/request"
                );
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
