//! 64-byte echo over loopback: a trio server and a tokio current-thread server written the
//! same way, driven by one load generator (this process, a tokio current-thread runtime),
//! with the server pinned to CPU 0 and the generator to CPU 1.
//!
//! ```text
//! cargo bench -p trio-benches --bench echo              # 1, 50, 1000 connections, 3 s each
//! cargo bench -p trio-benches --bench echo -- hold 10000 # memory of 10,000 idle connections
//! ECHO_SECONDS=5 ECHO_CONNS=50 ECHO_SERVERS=tokio,trio cargo bench -p trio-benches --bench echo
//! ```
//!
//! Per server and connection count it prints requests/s, the p50 and p99 round trip, and the
//! server's CPU time (utime + stime from /proc) per request, measured over the same window.
//! The server is a child process (this binary, `server trio|tokio`), so its CPU time is its
//! own.

#[path = "workloads/server_process.rs"]
mod server_process;

use server_process::Server;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MESSAGE: usize = 64;

fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET writes inside it; the call reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Raises the soft limit on open files to the hard limit (at most 20,000).
fn raise_nofile() {
    // SAFETY: valid rlimit values on the stack.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max.min(20_000);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

// ---- the servers -------------------------------------------------------------------------

fn trio_server() {
    use trio::stream::prelude::*;
    async fn echo(stream: trio::net::SocketStream) -> trio::Result<()> {
        let mut buf = vec![0u8; 4096];
        loop {
            let n = match stream.receive_into(&mut buf).await {
                Ok(0) | Err(_) => return Ok(()),
                Ok(n) => n,
            };
            if stream.send_all(&buf[..n]).await.is_err() {
                return Ok(());
            }
        }
    }
    trio::RunConfig::new()
        .ctrl_c(false)
        .run(async {
            let listeners = trio::net::open_tcp_listeners(0, Some("127.0.0.1")).await?;
            println!("port {}", listeners[0].local_addr()?.port());
            trio::net::serve_listeners(echo, listeners, trio::net::ServeOptions::new()).await
        })
        .expect("trio server");
}

fn tokio_server() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("port {}", listener.local_addr().unwrap().port());
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::task::spawn_local(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    let n = match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if stream.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}

// ---- the load generator ------------------------------------------------------------------

struct Figures {
    requests_per_second: f64,
    p50_us: f64,
    p99_us: f64,
    cpu_us_per_request: f64,
}

fn load(kind: &str, conns: usize, warmup: Duration, window: Duration) -> Figures {
    let server = Server::start(kind);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let measuring = Rc::new(Cell::new(false));
        let done = Rc::new(Cell::new(false));
        let requests = Rc::new(Cell::new(0u64));
        let latencies = Rc::new(RefCell::new(Vec::<u32>::with_capacity(1 << 20)));
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
                .await
                .expect("connect");
            stream.set_nodelay(true).unwrap();
            let (measuring, done, requests, latencies) = (
                measuring.clone(),
                done.clone(),
                requests.clone(),
                latencies.clone(),
            );
            tasks.push(tokio::task::spawn_local(async move {
                let out = [42u8; MESSAGE];
                let mut back = [0u8; MESSAGE];
                while !done.get() {
                    let start = Instant::now();
                    stream.write_all(&out).await.expect("send");
                    stream.read_exact(&mut back).await.expect("receive");
                    if measuring.get() {
                        requests.set(requests.get() + 1);
                        latencies
                            .borrow_mut()
                            .push(start.elapsed().as_nanos().min(u32::MAX as u128) as u32);
                    }
                }
            }));
        }
        tokio::time::sleep(warmup).await;
        let cpu_before = server.cpu_seconds();
        let start = Instant::now();
        measuring.set(true);
        tokio::time::sleep(window).await;
        measuring.set(false);
        let elapsed = start.elapsed().as_secs_f64();
        let cpu = server.cpu_seconds() - cpu_before;
        done.set(true);
        for task in tasks {
            let _ = task.await;
        }
        let n = requests.get();
        let mut lat = std::mem::take(&mut *latencies.borrow_mut());
        lat.sort_unstable();
        let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1e3;
        Figures {
            requests_per_second: n as f64 / elapsed,
            p50_us: pct(0.50),
            p99_us: pct(0.99),
            cpu_us_per_request: cpu * 1e6 / n as f64,
        }
    })
}

fn hold(kind: &str, conns: usize) -> (f64, f64) {
    let server = Server::start(kind);
    std::thread::sleep(Duration::from_millis(200));
    let before = server.rss_kib();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let streams = rt.block_on(async {
        let mut streams = Vec::with_capacity(conns);
        for _ in 0..conns {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
                .await
                .expect("connect (raise RLIMIT_NOFILE?)");
            stream.write_all(&[1u8; MESSAGE]).await.unwrap();
            let mut back = [0u8; MESSAGE];
            stream.read_exact(&mut back).await.unwrap();
            streams.push(stream);
        }
        // One more round trip on every connection: all of them are served at once.
        for stream in &mut streams {
            stream.write_all(&[2u8; MESSAGE]).await.unwrap();
        }
        for stream in &mut streams {
            let mut back = [0u8; MESSAGE];
            stream.read_exact(&mut back).await.unwrap();
        }
        streams
    });
    std::thread::sleep(Duration::from_millis(200));
    let after = server.rss_kib();
    drop(streams);
    (after - before, (after - before) / conns as f64)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    raise_nofile();
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["server", kind] => {
            pin_to_cpu(0);
            match *kind {
                "trio" => trio_server(),
                "tokio" => tokio_server(),
                other => panic!("unknown server {other}"),
            }
        }
        ["hold", n] => {
            pin_to_cpu(1);
            let conns: usize = n.parse().expect("a connection count");
            for kind in ["trio", "tokio"] {
                let (total, per) = hold(kind, conns);
                println!(
                    "{kind:<6} {conns} connections held: server RSS +{:.1} MiB, {per:.2} KiB per connection",
                    total / 1024.0
                );
            }
        }
        [] => {
            pin_to_cpu(1);
            let seconds: f64 = env_or("ECHO_SECONDS", 3.0);
            let counts: Vec<usize> = std::env::var("ECHO_CONNS")
                .ok()
                .map(|v| v.split(',').filter_map(|c| c.parse().ok()).collect())
                .unwrap_or_else(|| vec![1, 50, 1000]);
            println!(
                "{:<6} {:>6} {:>12} {:>9} {:>9} {:>12}",
                "server", "conns", "requests/s", "p50 us", "p99 us", "CPU us/req"
            );
            // ECHO_SERVERS=tokio,trio swaps the order (to see whether going first matters).
            let servers: Vec<String> = std::env::var("ECHO_SERVERS")
                .map(|v| v.split(',').map(str::to_string).collect())
                .unwrap_or_else(|_| vec!["trio".into(), "tokio".into()]);
            for &conns in &counts {
                for kind in servers.iter().map(String::as_str) {
                    let f = load(
                        kind,
                        conns,
                        Duration::from_millis(500),
                        Duration::from_secs_f64(seconds),
                    );
                    println!(
                        "{kind:<6} {conns:>6} {:>12.0} {:>9.1} {:>9.1} {:>12.2}",
                        f.requests_per_second, f.p50_us, f.p99_us, f.cpu_us_per_request
                    );
                }
            }
        }
        other => {
            eprintln!("usage: echo [hold N | server trio|tokio]; got {other:?}");
            std::process::exit(2);
        }
    }
}
