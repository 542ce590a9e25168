//! The serving port's connections. Each is accepted with TCP_NODELAY and takes one of
//! `--max-connections` slots; past the limit a new connection is closed as soon as it is accepted
//! (and counted), so that a flood of idle or slow clients cannot exhaust memory or file
//! descriptors. With TLS, each handshake runs in its own task with a time limit, beside the accept
//! loop, so a slow or silent client holds up neither the loop nor anyone else; it uses the
//! certificate current when the connection arrived. A connection's slot is freed when it closes.
use super::tls::TlsReloader;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::Stream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Longest a TLS handshake may take before the connection is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// An accepted (and, with TLS, handshaken) connection holding one of the limited slots.
pub struct Conn {
    io: Io,
    _slot: OwnedSemaphorePermit,
}

/// The stream of connections the server takes; dropping it stops accepting and closes the
/// listening socket.
pub struct Incoming {
    rx: mpsc::Receiver<Conn>,
    accept: tokio::task::JoinHandle<()>,
}

impl Stream for Incoming {
    type Item = io::Result<Conn>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|c| c.map(Ok))
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Which port the connections are for: it picks the TLS protocols and labels what is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    Grpc,
    Http,
}

impl Port {
    fn name(self) -> &'static str {
        match self {
            Port::Grpc => "grpc",
            Port::Http => "http",
        }
    }
}

fn refused(port: Port, reason: &'static str) {
    let door = port.name();
    metrics::counter!("churn_refused_total", "door" => door, "reason" => reason).increment(1);
}

/// Accepts connections from `listener`, at most `max` open at once, speaking TLS with `tls`'s
/// current configuration for `port` if given.
pub fn incoming(
    listener: TcpListener,
    max: usize,
    tls: Option<Arc<TlsReloader>>,
    port: Port,
) -> Incoming {
    let (tx, rx) = mpsc::channel(64);
    let slots = Arc::new(Semaphore::new(max));
    let accept = tokio::spawn(async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors, say: wait a little instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                refused(port, "connections");
                tracing::debug!(
                    %peer,
                    max,
                    "connection refused: the server has --max-connections open"
                );
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let Some(tls) = &tls else {
                let conn = Conn {
                    io: Io::Plain(tcp),
                    _slot: slot,
                };
                if tx.send(conn).await.is_err() {
                    return;
                }
                continue;
            };
            let acceptor = TlsAcceptor::from(match port {
                Port::Grpc => tls.current(),
                Port::Http => tls.current_http(),
            });
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let conn = Conn {
                            io: Io::Tls(Box::new(stream)),
                            _slot: slot,
                        };
                        let _ = tx.send(conn).await;
                    }
                    Ok(Err(e)) => {
                        refused(port, "tls_handshake");
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    }
                    Err(_) => {
                        refused(port, "tls_handshake");
                        tracing::debug!(%peer, "TLS handshake timed out");
                    }
                }
            });
        }
    });
    Incoming { rx, accept }
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        match &self.io {
            Io::Plain(s) => s.connect_info(),
            Io::Tls(s) => s.get_ref().0.connect_info(),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }
}
