//! [`serve_listeners`] and [`serve_tcp`]: accept loops that start a handler task per
//! connection (Trio's `_highlevel_serve_listeners.py`).

use std::fmt;
use std::future::Future;
use std::rc::Rc;

use super::listener::{ACCEPT_CAPACITY_ERRNOS, errno_of};
use super::{SocketListener, SocketStream, open_tcp_listeners_with};
use crate::stream::{Listener, ListenerExt};
use crate::{Nursery, Result, TaskStatus};

/// How long [`serve_listeners`] waits after an accept error that means the system is out of
/// resources (Trio's `SLEEP_TIME`).
pub const ACCEPT_RETRY_DELAY: f64 = 0.1;

/// Options of [`serve_listeners`] and [`serve_tcp`]; the defaults are Trio's.
pub struct ServeOptions<L> {
    handler_nursery: Option<Nursery>,
    task_status: Option<TaskStatus<Vec<Rc<L>>>>,
    host: Option<String>,
    backlog: Option<u32>,
    #[cfg(feature = "tls")]
    https_compatible: bool,
}

impl<L> Default for ServeOptions<L> {
    fn default() -> Self {
        ServeOptions {
            handler_nursery: None,
            task_status: None,
            host: None,
            backlog: None,
            #[cfg(feature = "tls")]
            https_compatible: false,
        }
    }
}

impl<L> fmt::Debug for ServeOptions<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeOptions")
            .field("handler_nursery", &self.handler_nursery)
            .field("task_status", &self.task_status.is_some())
            .field("host", &self.host)
            .field("backlog", &self.backlog)
            .finish()
    }
}

impl<L> ServeOptions<L> {
    /// The defaults: handlers in a nursery of the server's own, no `started`, every interface,
    /// the system's largest backlog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reports the listeners through `status` once they accept connections, for
    /// [`Nursery::start`](crate::Nursery::start) (Trio's `task_status`).
    pub fn task_status(mut self, status: TaskStatus<Vec<Rc<L>>>) -> Self {
        self.task_status = Some(status);
        self
    }

    /// Starts the handlers in `nursery` instead of a nursery of the server's own (Trio's
    /// `handler_nursery`): a handler's error then goes where that nursery sends it.
    pub fn handler_nursery(mut self, nursery: Nursery) -> Self {
        self.handler_nursery = Some(nursery);
        self
    }

    /// [`serve_tcp`] only: the interface to listen on (see
    /// [`open_tcp_listeners`](super::open_tcp_listeners)); default every interface.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// [`serve_tcp`] only: the listen backlog; default the system's largest.
    pub fn backlog(mut self, backlog: u32) -> Self {
        self.backlog = Some(backlog);
        self
    }

    /// `trio::tls::serve_ssl_over_tcp` only: gives the TLS streams Trio's `https_compatible`
    /// (see [`SslStream`](crate::tls::SslStream)); default `false`.
    #[cfg(feature = "tls")]
    pub fn https_compatible(mut self, https_compatible: bool) -> Self {
        self.https_compatible = https_compatible;
        self
    }

    /// Whether `serve_ssl_over_tcp`'s streams are `https_compatible`.
    #[cfg(feature = "tls")]
    pub(crate) fn is_https_compatible(&self) -> bool {
        self.https_compatible
    }

    /// The interface and backlog [`serve_tcp`] listens with (also read by
    /// `trio::tls::serve_ssl_over_tcp`).
    pub(crate) fn listen_args(&self) -> (Option<&str>, Option<u32>) {
        (self.host.as_deref(), self.backlog)
    }
}

/// Accepts connections on every listener and starts `handler(stream)` for each in a task of
/// its own (Trio's `serve_listeners`). Takes charge of the listeners: they are closed when
/// it returns. It returns only with an error: cancelled, or an accept error, or (without a
/// `handler_nursery`) a handler's error, which cancels the server like any child's error, as
/// in Trio (catch errors in the handler to keep serving).
///
/// A handler owns its stream; the stream is closed when the handler drops it (at the latest
/// when the handler returns).
///
/// Accept errors that mean the system ran out of resources (`EMFILE`, `ENFILE`, `ENOMEM`,
/// `ENOBUFS`) are logged at `ERROR` level through [`tracing`] (target
/// `trio::serve_listeners`) and retried after [`ACCEPT_RETRY_DELAY`]; other accept errors end
/// the server.
///
/// ```no_run
/// use trio::net::{SocketStream, open_tcp_listeners, serve_listeners, ServeOptions};
/// use trio::stream::prelude::*;
///
/// async fn echo(stream: SocketStream) -> trio::Result<()> {
///     loop {
///         let data = stream.receive_some(65536).await?;
///         if data.is_empty() {
///             return Ok(());
///         }
///         stream.send_all(&data).await?;
///     }
/// }
///
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let listeners = open_tcp_listeners(8000, None).await?;
///     serve_listeners(echo, listeners, ServeOptions::new()).await
/// })
/// # }
/// ```
///
/// # Checkpoint
/// Yes: it waits for connections until cancelled.
///
/// # Cancel safety
/// Cancelling it stops accepting, cancels the handlers in its own nursery (not those in a
/// `handler_nursery`) and closes the listeners.
pub async fn serve_listeners<L, H, Fut>(
    handler: H,
    listeners: Vec<L>,
    options: ServeOptions<L>,
) -> Result<()>
where
    L: Listener + 'static,
    L::Stream: 'static,
    H: Fn(L::Stream) -> Fut + 'static,
    Fut: Future<Output = Result<()>> + 'static,
{
    let handler = Rc::new(handler);
    let listeners: Vec<Rc<L>> = listeners.into_iter().map(Rc::new).collect();
    let ServeOptions {
        handler_nursery,
        task_status,
        ..
    } = options;
    crate::open_nursery(|nursery| async move {
        let handler_nursery = handler_nursery.unwrap_or_else(|| nursery.clone());
        for listener in &listeners {
            let (handler, handler_nursery) = (handler.clone(), handler_nursery.clone());
            // The handler's own future is the task, so the task is named after the handler
            // (`echo` for `async fn echo(stream)`), as Trio names it.
            let start = move |stream| handler_nursery.start_soon(handler(stream));
            nursery.start_soon(serve_one(listener.clone(), start))?;
        }
        // The listeners queue connections already; `started` comes last in case starting the
        // loops failed.
        if let Some(status) = task_status {
            status.started(listeners)?;
        }
        Ok(())
    })
    .await
}

/// Serves one listener: accepts connections and passes each to `start`, then closes it.
async fn serve_one<L: Listener>(
    listener: Rc<L>,
    start: impl Fn(L::Stream) -> Result<()>,
) -> Result<()> {
    let result = accept_loop(&*listener, start).await;
    // Trio's `async with listener`: closed on the way out, whatever the way.
    let _ = crate::stream::aclose_forcefully(&*listener).await;
    result
}

/// Accepts connections on `listener` and passes each to `start`, until an error that is not
/// a lack of resources.
async fn accept_loop<L: Listener>(
    listener: &L,
    start: impl Fn(L::Stream) -> Result<()>,
) -> Result<()> {
    loop {
        match listener.accept().await {
            Ok(stream) => start(stream)?,
            Err(e) => match errno_of(&e) {
                Some(errno) if ACCEPT_CAPACITY_ERRNOS.contains(&errno) => {
                    tracing::error!(
                        target: "trio::serve_listeners",
                        errno,
                        error = %e,
                        "accept returned {}; retrying in {} seconds",
                        std::io::Error::from_raw_os_error(errno),
                        ACCEPT_RETRY_DELAY,
                    );
                    crate::sleep(ACCEPT_RETRY_DELAY).await?;
                }
                _ => return Err(e),
            },
        }
    }
}

/// Listens for TCP connections on `port` and starts `handler(stream)` for each (Trio's
/// `serve_tcp`): [`open_tcp_listeners`](super::open_tcp_listeners) and [`serve_listeners`]
/// in one call. Port 0 lets the system choose; with
/// [`ServeOptions::task_status`] and [`Nursery::start`](crate::Nursery::start) the caller
/// learns which port it is:
///
/// ```
/// use std::rc::Rc;
/// use trio::net::{ServeOptions, SocketListener, SocketStream, open_tcp_stream, serve_tcp};
/// use trio::stream::prelude::*;
///
/// async fn shout(stream: SocketStream) -> trio::Result<()> {
///     let data = stream.receive_some(1024).await?;
///     stream.send_all(&data.to_ascii_uppercase()).await
/// }
///
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     trio::open_nursery(|nursery| async move {
///         let listeners: Vec<Rc<SocketListener>> = nursery
///             .start(|status| {
///                 serve_tcp(shout, 0, ServeOptions::new().host("127.0.0.1").task_status(status))
///             })
///             .await?;
///         let port = listeners[0].local_addr()?.port();
///         let client = open_tcp_stream("127.0.0.1", port).await?;
///         client.send_all(b"hi").await?;
///         assert_eq!(client.receive_some(1024).await?, b"HI");
///         nursery.cancel_scope().cancel();
///         Ok(())
///     })
///     .await
/// })
/// # }
/// ```
///
/// # Checkpoint
/// Yes: it waits for connections until cancelled.
///
/// # Cancel safety
/// As [`serve_listeners`].
pub async fn serve_tcp<H, Fut>(
    handler: H,
    port: u16,
    options: ServeOptions<SocketListener>,
) -> Result<()>
where
    H: Fn(SocketStream) -> Fut + 'static,
    Fut: Future<Output = Result<()>> + 'static,
{
    let (host, backlog) = options.listen_args();
    let listeners = open_tcp_listeners_with(port, host, backlog).await?;
    serve_listeners(handler, listeners, options).await
}
