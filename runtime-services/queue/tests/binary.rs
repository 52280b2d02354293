//! The `urr-queue` binary as the operator starts it for an Event whose
//! WaitingRoom has no edge: no `URR_VWR_SIGNING_KEY` in its environment. It
//! used to refuse to start (a required flag), so such an Event never sold.

mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{ENTRY_SECRET, USER_SECRET, redis_url, unique_event};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// Kills the process when the test ends, passed or not.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn starts_and_serves_without_a_pass_key() {
    let event = unique_event();
    let (public, internal) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_urr-queue"))
        .env_clear()
        .env("URR_LISTEN", format!("127.0.0.1:{public}"))
        .env("URR_INTERNAL_LISTEN", format!("127.0.0.1:{internal}"))
        .env("URR_REDIS_URL", redis_url())
        .env("URR_EVENT_ID", &event)
        .env(
            "URR_USER_JWT_SECRET",
            String::from_utf8_lossy(USER_SECRET).as_ref(),
        )
        .env(
            "URR_ENTRY_TOKEN_KEY",
            String::from_utf8_lossy(ENTRY_SECRET).as_ref(),
        )
        .env("URR_COOKIE_SECURE", "false")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn urr-queue");
    let mut running = Running(child);
    let http = urr_service_common::http_client::builder()
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = running.0.try_wait().expect("wait") {
            let mut stderr = String::new();
            if let Some(mut pipe) = running.0.stderr.take() {
                use std::io::Read;
                let _ = pipe.read_to_string(&mut stderr);
            }
            panic!("urr-queue exited with {status}: {stderr}");
        }
        let ready = http
            .get(format!("http://127.0.0.1:{internal}/readyz"))
            .send()
            .await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(Instant::now() < deadline, "urr-queue not ready in 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let number = http
        .post(format!(
            "http://127.0.0.1:{public}/v1/rooms/{event}/numbers"
        ))
        .send()
        .await
        .expect("numbers");
    assert_eq!(number.status(), 404);
    let problem: serde_json::Value = number.json().await.expect("problem json");
    assert_eq!(problem["type"], "https://urr.dev/problems/no-tier-one");
}
