//! The page's HTTP server: hyper's HTTP/1 under the router, with what a small page on a shop's
//! network needs against stalled and hostile clients (an unauthenticated one can hold at most
//! a slot and a small buffer, for at most the header timeout):
//!
//! - **connection caps**, per client address and in all: beyond them a new connection is
//!   closed at once (the kernel's backlog does not fill, descriptors stay bounded), and one
//!   machine opening sockets by the hundred does not lock out the technician's;
//! - a **header timeout** that also ends idle keep-alive connections (hyper restarts it before
//!   every request's head) and a small read buffer per connection;
//! - **bodies** are read by the handlers only after the session is checked, with a size limit
//!   and a timeout (`read_body`);
//! - **shutdown does not wait for clients**: on Ctrl-C / SIGTERM the listener closes, idle
//!   connections end, requests in flight get a moment to finish, then everything is dropped.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// The server's bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; more are closed on arrival...
    pub connections: usize,
    /// ... and from one client address (a browser opens about six).
    pub per_client: usize,
    /// A request's head must arrive within this (from the connection's start, or from the end
    /// of the previous response on a kept-alive connection).
    pub header: Duration,
    /// Read buffer per connection (caps the size of a request's head).
    pub buffer: usize,
    /// A request's body must arrive within this...
    pub body: Duration,
    /// ... and be at most this long (a saved geometry is a few kB).
    pub body_bytes: usize,
    /// Time requests in flight get to finish at shutdown.
    pub drain: Duration,
}

pub const LIMITS: Limits = Limits {
    connections: 128,
    per_client: 16,
    header: Duration::from_secs(10),
    buffer: 16 * 1024,
    body: Duration::from_secs(10),
    body_bytes: 64 * 1024,
    drain: Duration::from_secs(1),
};

/// Serve `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.connections));
    let clients = Clients::default();
    let (closing, _) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, ip) = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => (stream, peer.ip()),
                // Out of descriptors or a connection reset before it was accepted: breathe.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(client) = clients.enter(ip, limits.per_client) else {
            drop(stream);
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        let mut closing = closing.subscribe();
        conns.spawn(async move {
            let _slots = (slot, client);
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header)
                .max_buf_size(limits.buffer)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = closing.changed() => conn.as_mut().graceful_shutdown(),
            }
            let _ = conn.await;
        });
    }
    drop(listener);
    let _ = closing.send(true);
    let drained = async { while conns.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(limits.drain, drained).await;
    conns.abort_all();
}

/// A request's body, within the limits; else the response that refuses it.
pub async fn read_body(body: Body, limits: &Limits) -> Result<Bytes, (StatusCode, String)> {
    match tokio::time::timeout(limits.body, axum::body::to_bytes(body, limits.body_bytes)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body could not be read ({e}); it must be at most {} kB; nothing was changed",
                limits.body_bytes / 1024
            ),
        )),
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} s; nothing was changed",
                limits.body.as_secs()
            ),
        )),
    }
}

/// Connections open per client address.
#[derive(Clone, Default)]
struct Clients(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One connection of a client, counted until dropped.
struct Client {
    clients: Clients,
    ip: IpAddr,
}

impl Clients {
    fn enter(&self, ip: IpAddr, max: usize) -> Option<Client> {
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Client {
            clients: self.clone(),
            ip,
        })
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let mut open = self.clients.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_share_and_gets_it_back() {
        let clients = Clients::default();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let held: Vec<Client> = (0..3).filter_map(|_| clients.enter(a, 3)).collect();
        assert_eq!(held.len(), 3);
        assert!(
            clients.enter(a, 3).is_none(),
            "a fourth from the same address"
        );
        assert!(
            clients.enter(b, 3).is_some(),
            "another machine still gets in"
        );
        drop(held);
        assert!(clients.enter(a, 3).is_some());
        assert!(clients.0.lock().unwrap().get(&a).is_none_or(|n| *n == 0));
    }
}
