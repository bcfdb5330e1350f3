//! The TCP connect: resolving `host:port`, the socket options of the `net`
//! configuration (`TCP_NODELAY`, `SO_KEEPALIVE`, `SO_SNDBUF`, `SO_RCVBUF`),
//! and the connect timeout.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};

use crate::error::{Error, Result};

/// Options set on every broker socket before it connects.
///
/// ```
/// use klamm::net::SocketOptions;
///
/// let opts = SocketOptions {
///     receive_buffer_size: Some(1 << 20),
///     ..SocketOptions::default()
/// };
/// assert!(opts.nodelay && opts.keepalive);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOptions {
    /// `TCP_NODELAY`: send small writes at once. Default on.
    pub nodelay: bool,
    /// `SO_KEEPALIVE`: let the kernel probe an idle connection. Default on.
    pub keepalive: bool,
    /// `SO_SNDBUF` in bytes; `None` keeps the kernel's (self-tuning)
    /// default. Default `None`.
    pub send_buffer_size: Option<u32>,
    /// `SO_RCVBUF` in bytes, set before the connect so that the TCP window
    /// scale agrees with it; `None` keeps the kernel's (self-tuning)
    /// default. Default `None`.
    pub receive_buffer_size: Option<u32>,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            nodelay: true,
            keepalive: true,
            send_buffer_size: None,
            receive_buffer_size: None,
        }
    }
}

/// A socket for `addr`'s family with `opts` set.
fn socket_for(addr: SocketAddr, opts: &SocketOptions) -> std::io::Result<TcpSocket> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_nodelay(opts.nodelay)?;
    socket.set_keepalive(opts.keepalive)?;
    if let Some(n) = opts.send_buffer_size {
        socket.set_send_buffer_size(n)?;
    }
    if let Some(n) = opts.receive_buffer_size {
        socket.set_recv_buffer_size(n)?;
    }
    Ok(socket)
}

/// Opens a TCP connection to `addr` (`host:port`) within `timeout`: each
/// address the name resolves to in turn, as `TcpStream::connect` does, on
/// sockets with `opts`.
pub(crate) async fn tcp_connect(
    addr: &str,
    timeout: Duration,
    opts: &SocketOptions,
) -> Result<TcpStream> {
    let attempt = async {
        let resolved = tokio::net::lookup_host(addr).await.map_err(|e| Error::Io {
            context: format!("resolving {addr}"),
            source: e,
        })?;
        let mut last = None;
        for target in resolved {
            let socket = socket_for(target, opts).map_err(|e| Error::Io {
                context: format!("configuring the socket to {addr}"),
                source: e,
            })?;
            match socket.connect(target).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(Error::Io {
            context: format!("connecting to {addr}"),
            source: last.unwrap_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "the name has no address")
            }),
        })
    };
    match tokio::time::timeout(timeout, attempt).await {
        Err(_) => Err(Error::Timeout {
            what: format!("connecting to {addr}"),
            after: timeout,
        }),
        Ok(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    #[tokio::test]
    async fn the_options_are_set_on_the_socket_and_the_defaults_leave_the_buffers_alone() {
        let defaults = socket_for(local(), &SocketOptions::default()).unwrap();
        assert!(defaults.nodelay().unwrap());
        assert!(defaults.keepalive().unwrap());
        let (os_send, os_recv) = (
            defaults.send_buffer_size().unwrap(),
            defaults.recv_buffer_size().unwrap(),
        );
        let opts = SocketOptions {
            nodelay: false,
            keepalive: false,
            send_buffer_size: Some(300_000),
            receive_buffer_size: Some(200_000),
        };
        let set = socket_for(local(), &opts).unwrap();
        assert!(!set.nodelay().unwrap());
        assert!(!set.keepalive().unwrap());
        // Linux doubles what it is given (for its bookkeeping) and clamps
        // it to wmem_max/rmem_max: at least the asked size or the clamp,
        // and in any case not the default the control above read.
        let (send, recv) = (
            set.send_buffer_size().unwrap(),
            set.recv_buffer_size().unwrap(),
        );
        assert_ne!(send, os_send, "SO_SNDBUF unchanged");
        assert_ne!(recv, os_recv, "SO_RCVBUF unchanged");
    }

    #[tokio::test]
    async fn a_connection_keeps_its_options_and_a_closed_port_is_a_network_error() {
        let listener = tokio::net::TcpListener::bind(local()).await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accept = tokio::spawn(async move {
            let a = listener.accept().await.map(|(s, _)| s);
            let b = listener.accept().await.map(|(s, _)| s);
            (a, b)
        });
        let off = SocketOptions {
            nodelay: false,
            ..SocketOptions::default()
        };
        let without = tcp_connect(&addr, Duration::from_secs(5), &off)
            .await
            .unwrap();
        let with = tcp_connect(&addr, Duration::from_secs(5), &SocketOptions::default())
            .await
            .unwrap();
        assert!(!without.nodelay().unwrap());
        assert!(with.nodelay().unwrap(), "control: the default is on");
        let (a, b) = accept.await.unwrap();
        drop((a.unwrap(), b.unwrap()));
        // A port nothing listens on any more.
        let closed = {
            let l = std::net::TcpListener::bind(local()).unwrap();
            l.local_addr().unwrap().to_string()
        };
        let err = tcp_connect(&closed, Duration::from_secs(5), &SocketOptions::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Network, "{err}");
        assert!(err.to_string().contains("connecting to"), "{err}");
    }
}
