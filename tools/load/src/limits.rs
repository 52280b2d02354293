//! At most `--connections` requests in flight per service, so the crowd
//! reaches each service over a bounded set of pooled connections, as
//! buyers reach the origin through CloudFront and a load balancer in
//! production. Without it every waiting buyer opened a connection of its
//! own: past the local load balancer's connection limit (HAProxy here, its
//! file limit fixed by the machine), thousands of buyers failed to connect
//! at the open. Waiting for a permit counts in a step's latency, as an
//! origin's queue would.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::{RequestBuilder, Response};
use tokio::sync::Semaphore;

/// One semaphore per origin (scheme, host and port), and the count of
/// requests sent again after their connection broke.
#[derive(Debug)]
pub struct ConnectionLimits {
    per_origin: usize,
    origins: Mutex<HashMap<String, Arc<Semaphore>>>,
    resent: Arc<AtomicU64>,
}

/// How often a request whose connection broke is sent again. Every buyer
/// request is safe to repeat (reads; joins and confirms that find their
/// first effect; holds and payments under their `Idempotency-Key`), and a
/// buyer's app does repeat them: a connection reset by a restarting load
/// balancer or a killed process is not the buyer giving up.
const RESENDS: u32 = 2;

impl ConnectionLimits {
    pub fn new(per_origin: usize) -> Self {
        Self {
            per_origin: per_origin.max(1),
            origins: Mutex::default(),
            resent: Arc::default(),
        }
    }

    /// Requests sent again after their connection broke, so far.
    pub fn resent(&self) -> u64 {
        self.resent.load(Ordering::Relaxed)
    }

    fn of(&self, origin: String) -> Arc<Semaphore> {
        let mut origins = self.origins.lock().unwrap_or_else(|p| p.into_inner());
        origins
            .entry(origin)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_origin)))
            .clone()
    }
}

/// `send()` within the request's origin's limit.
pub trait SendLimited {
    fn send_limited(
        self,
        limits: &ConnectionLimits,
    ) -> BoxFuture<'static, reqwest::Result<Response>>;
}

impl SendLimited for RequestBuilder {
    fn send_limited(
        self,
        limits: &ConnectionLimits,
    ) -> BoxFuture<'static, reqwest::Result<Response>> {
        let (client, request) = self.build_split();
        let semaphore = request
            .as_ref()
            .ok()
            .map(|r| limits.of(r.url().origin().ascii_serialization()));
        let resent = limits.resent.clone();
        Box::pin(async move {
            let request = request?;
            // The semaphore is never closed, so a permit always comes.
            let _permit = match &semaphore {
                Some(semaphore) => semaphore.acquire().await.ok(),
                None => None,
            };
            let mut attempt = 0;
            loop {
                let Some(copy) = request.try_clone() else {
                    // A streamed body cannot be sent twice.
                    return client.execute(request).await;
                };
                match client.execute(copy).await {
                    Err(error)
                        if attempt < RESENDS && (error.is_connect() || error.is_request()) =>
                    {
                        attempt += 1;
                        resent.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(150 * u64::from(attempt))).await;
                    }
                    answer => return answer,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that counts the connections it is holding at once.
    #[tokio::test]
    async fn no_more_requests_in_flight_per_origin_than_the_limit() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let open = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        {
            let (open, peak) = (open.clone(), peak.clone());
            tokio::spawn(async move {
                while let Ok((mut socket, _)) = listener.accept().await {
                    let (open, peak) = (open.clone(), peak.clone());
                    tokio::spawn(async move {
                        let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        let mut buffer = [0u8; 4096];
                        let _ = socket.read(&mut buffer).await;
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        let _ = socket
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                            .await;
                        open.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            });
        }
        let http = reqwest::Client::new();
        let limits = Arc::new(ConnectionLimits::new(4));
        let requests: Vec<_> = (0..40)
            .map(|_| {
                let request = http.get(format!("http://{address}/")).send_limited(&limits);
                tokio::spawn(request)
            })
            .collect();
        for request in requests {
            let response = request.await.expect("task").expect("response");
            assert_eq!(response.status(), 200);
        }
        let peak = peak.load(Ordering::SeqCst);
        assert!(peak <= 4, "{peak} connections at once with a limit of 4");
        assert!(peak >= 2, "the requests did run concurrently ({peak})");
    }

    /// A server that drops the first connection without an answer (a
    /// killed process, a load balancer reloading): the request is sent
    /// again on a new connection, and counted.
    #[tokio::test]
    async fn a_request_whose_connection_broke_is_sent_again() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let mut first = true;
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer).await;
                if std::mem::take(&mut first) {
                    drop(socket);
                    continue;
                }
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            }
        });
        let limits = ConnectionLimits::new(4);
        let response = reqwest::Client::new()
            .post(format!("http://{address}/"))
            .body("{}")
            .send_limited(&limits)
            .await
            .expect("answered on the second connection");
        assert_eq!(response.status(), 200);
        assert_eq!(limits.resent(), 1);
    }
}
