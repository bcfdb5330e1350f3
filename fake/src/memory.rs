//! In-memory connections: a [`Connector`] that opens a pipe to a fake
//! broker instead of a socket, so a client and the cluster can run in one
//! runtime with no I/O at all (the simulation's paused clock then moves
//! only when every task waits).

use std::sync::Arc;

use klamm::net::{BoxedStream, ConnectFuture, Connector};

use crate::server::{self, Shared};

/// Bytes buffered each way in a pipe.
const PIPE: usize = 256 * 1024;

pub(crate) struct InMemory {
    pub shared: Arc<Shared>,
}

impl Connector for InMemory {
    fn connect<'a>(&'a self, addr: &'a str) -> ConnectFuture<'a> {
        let found = addr
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .and_then(|port| {
                let st = self.shared.lock();
                st.brokers
                    .iter()
                    .find(|(_, b)| b.port == port)
                    .map(|(&id, b)| (id, b.up))
            });
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            match found {
                Some((id, true)) => {
                    let (client, broker) = tokio::io::duplex(PIPE);
                    tokio::spawn(server::serve(shared, id, broker));
                    Ok(Box::new(client) as BoxedStream)
                }
                Some((_, false)) => Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    format!("fake broker at {addr} is down"),
                )),
                None => Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    format!("no fake broker at {addr}"),
                )),
            }
        })
    }
}
