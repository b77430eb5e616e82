//! A TCP forwarder between a client under test and a real server, for forcing retries.
//!
//! - [`Proxy::cut_next_reply`]: the next bytes any client sends are forwarded to the server;
//!   the server's reply to them is swallowed and both connections are closed. The server has
//!   done the work; the client never hears about it. That is the case that duplicates data when
//!   a retry is not idempotent.
//! - [`Proxy::refuse`]: new connections are accepted and closed at once, and the live ones are
//!   cut, until `refuse(false)`: an outage.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy; stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    ctl: Arc<Ctl>,
    accept: tokio::task::JoinHandle<()>,
}

struct Ctl {
    upstream: SocketAddr,
    refusing: AtomicBool,
    /// Bumped by `refuse(true)`: live connections watch it and close.
    generation: watch::Sender<u64>,
    cut_armed: AtomicBool,
    cuts: AtomicUsize,
    accepted: AtomicUsize,
    refused: AtomicUsize,
}

impl Proxy {
    /// A proxy on `127.0.0.1:0` forwarding to `upstream`. Runs on the current tokio runtime.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let ctl = Arc::new(Ctl {
            upstream,
            refusing: AtomicBool::new(false),
            generation: watch::channel(0).0,
            cut_armed: AtomicBool::new(false),
            cuts: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&ctl)));
        Proxy { addr, ctl, accept }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Arms a one-shot cut: see the module docs.
    pub fn cut_next_reply(&self) {
        self.ctl.cut_armed.store(true, Ordering::SeqCst);
    }

    /// Whether an armed cut is still waiting for a client write.
    pub fn cut_pending(&self) -> bool {
        self.ctl.cut_armed.load(Ordering::SeqCst)
    }

    /// Starts (`true`) or ends an outage. Starting one also closes the live connections.
    pub fn refuse(&self, refuse: bool) {
        self.ctl.refusing.store(refuse, Ordering::SeqCst);
        if refuse {
            self.ctl.generation.send_modify(|g| *g += 1);
        }
    }

    /// Replies swallowed by cuts so far.
    pub fn cuts(&self) -> usize {
        self.ctl.cuts.load(Ordering::SeqCst)
    }

    /// Connections forwarded so far.
    pub fn accepted(&self) -> usize {
        self.ctl.accepted.load(Ordering::SeqCst)
    }

    /// Connections refused so far.
    pub fn refused(&self) -> usize {
        self.ctl.refused.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.ctl.generation.send_modify(|g| *g += 1);
    }
}

async fn accept_loop(listener: TcpListener, ctl: Arc<Ctl>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if ctl.refusing.load(Ordering::SeqCst) {
            ctl.refused.fetch_add(1, Ordering::SeqCst);
            drop(client);
            continue;
        }
        ctl.accepted.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(forward(client, Arc::clone(&ctl)));
    }
}

async fn forward(mut client: TcpStream, ctl: Arc<Ctl>) {
    let mut closed = ctl.generation.subscribe();
    let Ok(mut server) = TcpStream::connect(ctl.upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let mut from_client = vec![0u8; 64 * 1024];
    let mut from_server = vec![0u8; 64 * 1024];
    // Set once this connection carried the write whose reply is to be swallowed.
    let mut cutting = false;
    loop {
        tokio::select! {
            read = client.read(&mut from_client) => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if !cutting && ctl.cut_armed.swap(false, Ordering::SeqCst) {
                    cutting = true;
                }
                if server.write_all(&from_client[..n]).await.is_err() {
                    return;
                }
            }
            read = server.read(&mut from_server) => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if cutting {
                    ctl.cuts.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                if client.write_all(&from_server[..n]).await.is_err() {
                    return;
                }
            }
            _ = closed.changed() => return,
        }
    }
}
