//! One buyer's journey, step by step, timing each step.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::StatusCode;
use serde_json::Value;
use urr_service_common::{unix_now, unix_now_ms};

use crate::board::{Pick, SeatBoard};
use crate::gate::{Decision, EdgeView};
use crate::limits::SendLimited;
use crate::run::{LoadArgs, RunInfo, Secrets};
use crate::stats::{Counters, LineRecord, Recorder};

mod pay;
pub mod requests;

use requests::{PaymentRead, Place};

/// Everything the buyers share.
#[derive(Debug)]
pub struct Crowd {
    pub info: RunInfo,
    pub secrets: Secrets,
    pub args: LoadArgs,
    /// The edge gate, as read from the KeyValueStore.
    pub gate: Arc<EdgeView>,
    /// The page buyers open through the gate.
    pub edge_path: String,
    pub http: reqwest::Client,
    /// Requests in flight per service, at most `--connections`.
    pub limits: crate::limits::ConnectionLimits,
    pub board: SeatBoard,
    pub recorder: Arc<Recorder>,
    pub deadline: Instant,
}

/// How a journey ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Paid,
    Declined,
    Abandoned,
    SoldOut,
    TimedOut,
    Failed,
}

#[derive(Debug)]
struct Stop(Outcome);

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// An answer a client waits out and sends again (after `Retry-After`): the
/// service is overloaded (429, 503) or a replica behind the proxy is
/// restarting (502, 504).
pub(crate) fn is_busy(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::BAD_GATEWAY
            | StatusCode::GATEWAY_TIMEOUT
    )
}

pub(crate) fn retry_after(response: &reqwest::Response) -> Duration {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs)
}

impl Crowd {
    fn check_time(&self) -> Result<(), Stop> {
        if Instant::now() > self.deadline {
            Err(Stop(Outcome::TimedOut))
        } else {
            Ok(())
        }
    }

    fn fail(&self, kind: &str) -> Stop {
        self.recorder.error(kind.to_owned());
        Stop(Outcome::Failed)
    }

    /// The whole journey of buyer `n`, arriving at `arrival_ms` (Unix ms).
    pub async fn buyer(self: Arc<Self>, n: usize, arrival_ms: i64) -> Outcome {
        let wait = arrival_ms - unix_now_ms();
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
        Counters::bump(&self.recorder.counters.arrived);
        let started = Instant::now();
        let user = format!("buyer-{n:06}");
        let outcome = match self.journey(&user).await {
            Ok(outcome) | Err(Stop(outcome)) => outcome,
        };
        // Give the active slot back, whatever happened.
        let _ = requests::leave_queue(
            &self.info.event,
            &self.secrets.user_token(&user, unix_now()),
        )
        .build(&self.http, &self.info.queue_url)
        .send_limited(&self.limits)
        .await;
        let counter = match outcome {
            Outcome::Paid => &self.recorder.counters.paid,
            Outcome::Declined => &self.recorder.counters.declined,
            Outcome::Abandoned => &self.recorder.counters.abandoned,
            Outcome::SoldOut => &self.recorder.counters.sold_out,
            Outcome::TimedOut | Outcome::Failed => return outcome,
        };
        Counters::bump(counter);
        self.recorder.step("journey", ms(started));
        outcome
    }

    async fn journey(&self, user: &str) -> Result<Outcome, Stop> {
        let pass = self.edge().await?;
        let entry_token = self.queue(user, &pass).await?;
        let Some((hold, places)) = self.hold(user, &entry_token).await? else {
            return Ok(Outcome::SoldOut);
        };
        if rand::rng().random_bool(self.args.abandon_share.clamp(0.0, 1.0)) {
            self.release(user, &hold, places).await;
            return Ok(Outcome::Abandoned);
        }
        match self.pay(user, &hold).await {
            Ok(Outcome::Declined) => {
                self.release(user, &hold, places).await;
                Ok(Outcome::Declined)
            }
            Ok(outcome) => Ok(outcome),
            Err(stop) => {
                // The hold stays until it lapses, after the crowd is gone.
                self.recorder.stranded(places);
                Err(stop)
            }
        }
    }

    /// Lets a hold go, noting when its places came free (or that they did
    /// not: the hold then lapses on its own, later).
    async fn release(&self, user: &str, hold: &str, places: u64) {
        let released = requests::release_hold(
            &self.info.event,
            hold,
            &self.secrets.user_token(user, unix_now()),
        )
        .build(&self.http, &self.info.ticket_url)
        .send_limited(&self.limits)
        .await
        .is_ok_and(|response| response.status().is_success());
        if released {
            self.recorder.released(unix_now_ms(), places);
        } else {
            self.recorder.stranded(places);
        }
    }

    /// Tier 1 and the gate: a number, then the page behind the gate,
    /// decided as the CloudFront function decides from the entry the
    /// operator published (active, `enforceFrom`, protected paths, the pass
    /// checked with the room's own `key/<room>/<kid>`, the serving counter); a buyer the edge
    /// holds waits until the counter reaches their number. Returns the
    /// pass, which the join carries as the browser's cookie would (chained
    /// tiers: the queue checks it is served).
    async fn edge(&self) -> Result<String, Stop> {
        let started = Instant::now();
        let response = loop {
            self.check_time()?;
            let response = requests::take_number(&self.info.room)
                .build(&self.http, &self.info.queue_url)
                .send_limited(&self.limits)
                .await
                .map_err(|_| self.fail("numbers: unreachable"))?;
            match response.status() {
                status if status.is_success() => break response,
                // Overloaded: the waiting page retries after Retry-After, and so do we.
                status if is_busy(status) => {
                    self.recorder
                        .recovered(format!("numbers: {}", response.status()));
                    tokio::time::sleep(retry_after(&response)).await;
                }
                status => return Err(self.fail(&format!("numbers: {status}"))),
            }
        };
        let token = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(requests::pass_of)
            .ok_or_else(|| self.fail("numbers: no pass cookie"))?;
        self.recorder.step("tier-1 number", ms(started));
        let mut first = true;
        loop {
            self.check_time()?;
            let now = unix_now();
            let gate = self.gate.current();
            let decision = gate.decide(&self.edge_path, Some(&token), now);
            if first {
                self.recorder.edge(match &decision {
                    Decision::Open(why) => format!("open: {why}"),
                    Decision::Served { .. } => "served at once".to_owned(),
                    Decision::Wait { .. } => "held".to_owned(),
                    Decision::Closed => "closed".to_owned(),
                });
                first = false;
            }
            match decision {
                Decision::Open(_) | Decision::Served { .. } => break,
                Decision::Wait {
                    refused: Some(error),
                    ..
                } => {
                    return Err(self.fail(&format!("edge: pass refused ({})", error.outcome())));
                }
                Decision::Wait {
                    number: Some(number),
                    ..
                } => {
                    let wait = gate
                        .entry
                        .serving
                        .seconds_until_served(number, now)
                        .clamp(1, 5);
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                }
                Decision::Wait { .. } => return Err(self.fail("edge: held without a pass")),
                // The organiser closed the sale: nothing to buy here.
                Decision::Closed => return Err(Stop(Outcome::SoldOut)),
            }
        }
        Counters::bump(&self.recorder.counters.passed_edge);
        self.recorder.step("edge wait (tier 1)", ms(started));
        Ok(token)
    }

    async fn join(&self, user: &str, pass: &str) -> Result<Place, Stop> {
        loop {
            self.check_time()?;
            let response = requests::join(
                &self.info.event,
                &self.secrets.user_token(user, unix_now()),
                pass,
            )
            .build(&self.http, &self.info.queue_url)
            .send_limited(&self.limits)
            .await
            .map_err(|_| self.fail("join: unreachable"))?;
            match response.status() {
                StatusCode::OK | StatusCode::CREATED => {
                    return response
                        .json()
                        .await
                        .map(|place: Value| Place::read(&place))
                        .map_err(|_| self.fail("join: unreadable"));
                }
                status if is_busy(status) => {
                    self.recorder
                        .recovered(format!("join: {}", response.status()));
                    tokio::time::sleep(retry_after(&response)).await;
                }
                // Too early: the queue is not open, or the pass is not
                // served yet (the edge and the queue read the counter a
                // moment apart). A refused pass is a failure, not a wait.
                StatusCode::FORBIDDEN => {
                    let pause = retry_after(&response);
                    let problem: Value = response.json().await.unwrap_or(Value::Null);
                    let kind = requests::problem_kind(&problem);
                    if !requests::JOIN_WAITS.contains(&kind.as_str()) {
                        return Err(self.fail(&format!("join: 403 {kind}")));
                    }
                    self.recorder.recovered(format!("join: 403 {kind}"));
                    tokio::time::sleep(pause).await;
                }
                status => return Err(self.fail(&format!("join: {status}"))),
            }
        }
    }

    /// Tier 2: join, then poll at the interval the server asks for until
    /// admitted; returns the entry token. A buyer dropped for missing
    /// heartbeats joins again, as the waiting page does.
    async fn queue(&self, user: &str, pass: &str) -> Result<String, Stop> {
        let started = Instant::now();
        let mut place = self.join(user, pass).await?;
        let mut joined_ms = unix_now_ms();
        let pre_queue = joined_ms / 1000 < self.info.sales_open_at;
        Counters::bump(&self.recorder.counters.joined);
        self.recorder.step("join", ms(started));
        let waiting = Instant::now();
        let mut rejoins = 0;
        loop {
            if place.admitted() {
                let token = place
                    .entry_token
                    .clone()
                    .ok_or_else(|| self.fail("queue: admitted without a token"))?;
                self.recorder.line(LineRecord {
                    user: user.to_owned(),
                    joined_ms,
                    admitted_ms: unix_now_ms(),
                    pre_queue: pre_queue && rejoins == 0,
                    rejoined: rejoins > 0,
                    entry_expires_at: place.entry_token_expires_at.unwrap_or_default(),
                });
                Counters::bump(&self.recorder.counters.admitted);
                self.recorder.step("queue wait (tier 2)", ms(waiting));
                return Ok(token);
            }
            // The room knows its inventory: nothing left and nothing held
            // that could come back is final, as the waiting page tells it.
            if place.finally_sold_out() {
                self.recorder.sold_out_seen(unix_now_ms());
                Counters::bump(&self.recorder.counters.sold_out_in_line);
                return Err(Stop(Outcome::SoldOut));
            }
            self.check_time()?;
            let poll = place.poll_after_ms.unwrap_or(1000).clamp(100, 30_000);
            tokio::time::sleep(Duration::from_millis(poll)).await;
            let response = requests::queue_status(
                &self.info.event,
                &self.secrets.user_token(user, unix_now()),
            )
            .build(&self.http, &self.info.queue_url)
            .send_limited(&self.limits)
            .await
            .map_err(|_| self.fail("poll: unreachable"))?;
            match response.status() {
                StatusCode::OK => {
                    let answer: Value = response
                        .json()
                        .await
                        .map_err(|_| self.fail("poll: unreadable"))?;
                    place = Place::read(&answer);
                }
                StatusCode::NOT_FOUND if rejoins < 3 => {
                    rejoins += 1;
                    self.recorder.recovered("poll: 404, joined again");
                    place = self.join(user, pass).await?;
                    joined_ms = unix_now_ms();
                }
                status if is_busy(status) => {
                    self.recorder
                        .recovered(format!("poll: {}", response.status()));
                    tokio::time::sleep(retry_after(&response)).await;
                }
                status => return Err(self.fail(&format!("poll: {status}"))),
            }
        }
    }

    /// Holds seats (or standing places), trying other places on a conflict;
    /// returns the hold and how many places it has.
    async fn hold(&self, user: &str, entry_token: &str) -> Result<Option<(String, u64)>, Stop> {
        for _ in 0..8 {
            self.check_time()?;
            let picking = Instant::now();
            let pick = self
                .board
                .pick()
                .await
                .map_err(|_| self.fail("availability: unreachable"))?;
            // What the buyer's page spends reading availability and listings.
            self.recorder.step("pick places", ms(picking));
            if let Pick::SoldOut { as_of_ms } = pick {
                self.recorder.sold_out_seen(as_of_ms);
                return Ok(None);
            }
            let Some((body, places)) = requests::hold_body(&pick) else {
                return Ok(None);
            };
            let started = Instant::now();
            let response = requests::create_hold(
                &self.info.event,
                &self.secrets.user_token(user, unix_now()),
                entry_token,
                &uuid::Uuid::new_v4().to_string(),
                body,
            )
            .build(&self.http, &self.info.ticket_url)
            .send_limited(&self.limits)
            .await
            .map_err(|_| {
                // The hold may exist without the buyer knowing it.
                self.recorder.stranded(places);
                self.fail("hold: unreachable")
            })?;
            self.recorder.step("hold", ms(started));
            match response.status() {
                StatusCode::CREATED => {
                    let hold: Value = response.json().await.map_err(|_| {
                        self.recorder.stranded(places);
                        self.fail("hold: unreadable")
                    })?;
                    Counters::bump(&self.recorder.counters.held);
                    return Ok(Some((
                        requests::hold_id(&hold).unwrap_or_default().to_owned(),
                        places,
                    )));
                }
                StatusCode::CONFLICT => continue, // taken meanwhile: try other places
                StatusCode::UNPROCESSABLE_ENTITY => return Err(self.fail("hold: limit")),
                StatusCode::SERVICE_UNAVAILABLE => tokio::time::sleep(retry_after(&response)).await,
                // The load balancer lost the process mid-request: the hold
                // may exist (it lapses at its timeout); the buyer tries again.
                StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => {
                    self.recorder.stranded(places);
                    self.recorder
                        .recovered(format!("hold: {}", response.status()));
                    tokio::time::sleep(retry_after(&response)).await;
                }
                status => return Err(self.fail(&format!("hold: {status}"))),
            }
        }
        Ok(None)
    }

    /// Sends what `request` builds until the answer is not "overloaded":
    /// a 503 or 429 is retried after its `Retry-After`, as the buyer's app
    /// does when the service says "retry shortly" (the payment service's
    /// create answers 503 when its quote call to a loaded ticket service
    /// times out). Every request retried this way is idempotent: a create
    /// carries the same `Idempotency-Key`, a confirm with the same method is
    /// harmless to repeat, a read is a read.
    async fn send_retrying(
        &self,
        step: &str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Stop> {
        const ATTEMPTS: usize = 10;
        for _ in 1..ATTEMPTS {
            self.check_time()?;
            let response = request()
                .send_limited(&self.limits)
                .await
                .map_err(|_| self.fail(&format!("{step}: unreachable")))?;
            match response.status() {
                status if is_busy(status) => {
                    self.recorder
                        .recovered(format!("{step}: {}", response.status()));
                    tokio::time::sleep(retry_after(&response)).await;
                }
                _ => return Ok(response),
            }
        }
        self.check_time()?;
        request()
            .send_limited(&self.limits)
            .await
            .map_err(|_| self.fail(&format!("{step}: unreachable")))
    }
}
