//! [`Connector`]: what opens the byte stream of a broker connection, when
//! it is not TCP — an in-process cluster for tests (klamm-fake's), a
//! simulation's in-memory pipes.

use std::future::Future;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

/// A byte stream a connection can run over.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// A boxed [`Stream`].
pub type BoxedStream = Box<dyn Stream>;

/// The future [`Connector::connect`] returns.
pub type ConnectFuture<'a> =
    Pin<Box<dyn Future<Output = std::io::Result<BoxedStream>> + Send + 'a>>;

/// Opens broker connections in place of TCP. Given to a client through
/// [`ClientOptions::connector`](crate::client::ClientOptions::connector),
/// every connection of the client is opened by it (`addr` is the broker's
/// `host:port` as the cluster names it); the rest — version negotiation,
/// SASL, pipelining — runs over the stream as over a socket. TLS is not
/// applied to such streams.
///
/// ```
/// use klamm::net::{BoxedStream, ConnectFuture, Connector};
///
/// /// Connects every address to one in-memory peer (for illustration).
/// struct Pipe(std::sync::Mutex<Option<tokio::io::DuplexStream>>);
///
/// impl Connector for Pipe {
///     fn connect<'a>(&'a self, addr: &'a str) -> ConnectFuture<'a> {
///         let end = self.0.lock().unwrap().take();
///         Box::pin(async move {
///             end.map(|s| Box::new(s) as BoxedStream).ok_or_else(|| {
///                 std::io::Error::new(std::io::ErrorKind::ConnectionRefused, addr.to_string())
///             })
///         })
///     }
/// }
/// ```
pub trait Connector: Send + Sync + 'static {
    /// Opens a stream to the broker at `addr`.
    fn connect<'a>(&'a self, addr: &'a str) -> ConnectFuture<'a>;
}
