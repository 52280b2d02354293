//! The buyers' shared view of what is left: availability and seat listings,
//! fetched from the ticket service at most every half second and shared by
//! every buyer task (a crowd of browsers would each fetch; their CDN would
//! then serve them from cache, which is what this stands for).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::seq::IndexedRandom;
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::limits::SendLimited;

const FRESH_FOR: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SectionFigures {
    id: String,
    available: i64,
}

#[derive(Debug, Clone, Deserialize)]
struct Availability {
    sections: Vec<SectionFigures>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeatEntry {
    seat_id: String,
    status: String,
}

#[derive(Debug, Clone, Deserialize)]
struct SeatListing {
    seats: Vec<SeatEntry>,
}

/// A fetched copy: when it arrived, when its request was sent (Unix ms).
#[derive(Debug)]
struct Copy<T> {
    fetched: Instant,
    requested_ms: i64,
    value: T,
}

impl<T> Copy<T> {
    fn fresh(&self) -> bool {
        self.fetched.elapsed() <= FRESH_FOR
    }
}

/// The copies. Locked only to read or write them, never across a request:
/// a buyer waits for a fetch only when there is no usable copy at all.
#[derive(Debug, Default)]
struct Copies {
    availability: Option<Copy<Vec<SectionFigures>>>,
    /// Free seats per seated section; buyers take theirs out of the copy.
    seats: HashMap<String, Copy<Vec<String>>>,
}

/// What a buyer tries to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    Standing {
        section: String,
        quantity: u32,
    },
    Seats(Vec<String>),
    /// Nothing left in figures requested at `as_of_ms` (Unix ms; the
    /// service may have answered from its own copy, up to a second older).
    SoldOut {
        as_of_ms: i64,
    },
}

/// Whether a copy can be used as it is.
enum Usable {
    /// Fresh: use it.
    Fresh,
    /// Old but usable: refresh it unless another buyer already is, and use it meanwhile.
    Stale,
    /// None, or old and empty: wait for a fresh one.
    No,
}

/// The board: the crowd's shared copies, refreshed single-flight. The first
/// version held one lock across every fetch, so under a busy ticket service
/// each buyer waited for every other buyer's listing request: admitted
/// buyers queued at the board while the queue counted them active, and the
/// 20,000-buyer sale took twice as long with the services half idle.
#[derive(Debug)]
pub struct SeatBoard {
    http: reqwest::Client,
    base: String,
    event: String,
    /// Section id → standing (true) or seated.
    kinds: HashMap<String, bool>,
    copies: std::sync::Mutex<Copies>,
    /// Its reads are sent again when their connection breaks, like the
    /// buyers' requests (the board's own limit: it has at most one read per
    /// copy in flight anyway).
    limits: crate::limits::ConnectionLimits,
    /// One fetch at a time per copy: the availability's and each section's.
    availability_fetch: Mutex<()>,
    seat_fetches: HashMap<String, Mutex<()>>,
}

impl SeatBoard {
    pub async fn new(
        http: reqwest::Client,
        base: &str,
        event: &str,
    ) -> Result<Self, reqwest::Error> {
        let info: serde_json::Value = http
            .get(format!("{base}/v1/events/{event}"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let kinds: HashMap<String, bool> = info["sections"]
            .as_array()
            .map(|sections| {
                sections
                    .iter()
                    .filter_map(|s| Some((s["id"].as_str()?.to_owned(), s["kind"] == "standing")))
                    .collect()
            })
            .unwrap_or_default();
        let seat_fetches = kinds
            .iter()
            .filter(|(_, standing)| !**standing)
            .map(|(id, _)| (id.clone(), Mutex::new(())))
            .collect();
        Ok(Self {
            http,
            base: base.to_owned(),
            event: event.to_owned(),
            kinds,
            copies: std::sync::Mutex::new(Copies::default()),
            limits: crate::limits::ConnectionLimits::new(64),
            availability_fetch: Mutex::new(()),
            seat_fetches,
        })
    }

    fn copies(&self) -> std::sync::MutexGuard<'_, Copies> {
        // A panic elsewhere while the copies were locked leaves them usable.
        self.copies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Chooses what to try next: a section weighted by what it has left,
    /// then 1–2 places in it.
    pub async fn pick(&self) -> Result<Pick, reqwest::Error> {
        self.refresh_availability().await?;
        // Until a section with places to try, or none is left.
        loop {
            let section = {
                let copies = self.copies();
                let Some(availability) = copies.availability.as_ref() else {
                    return Ok(Pick::SoldOut { as_of_ms: 0 });
                };
                let open: Vec<&SectionFigures> = availability
                    .value
                    .iter()
                    .filter(|s| s.available > 0)
                    .collect();
                let Ok(section) = open.choose_weighted(&mut rand::rng(), |s| s.available as f64)
                else {
                    return Ok(Pick::SoldOut {
                        as_of_ms: availability.requested_ms,
                    });
                };
                (*section).clone()
            };
            let quantity = rand::rng().random_range(1..=2u32);
            if self.kinds.get(&section.id).copied().unwrap_or(false) {
                return Ok(Pick::Standing {
                    quantity: quantity.min(section.available as u32).max(1),
                    section: section.id,
                });
            }
            self.refresh_seats(&section.id).await?;
            let mut copies = self.copies();
            let free = copies
                .seats
                .get_mut(&section.id)
                .map(|copy| &mut copy.value)
                .filter(|free| !free.is_empty());
            let Some(free) = free else {
                // The listing says full although the figures did not yet:
                // this copy of the figures no longer offers the section, and
                // another one is tried (sold out only when none is left).
                if let Some(availability) = copies.availability.as_mut() {
                    availability.value.retain(|s| s.id != section.id);
                }
                continue;
            };
            let chosen: Vec<String> = free
                .choose_multiple(&mut rand::rng(), quantity as usize)
                .cloned()
                .collect();
            // Others should not pick the same seats from this copy.
            free.retain(|s| !chosen.contains(s));
            return Ok(Pick::Seats(chosen));
        }
    }

    async fn refresh_availability(&self) -> Result<(), reqwest::Error> {
        let usable = |copies: &Copies| match &copies.availability {
            Some(copy) if copy.fresh() => Usable::Fresh,
            Some(_) => Usable::Stale,
            None => Usable::No,
        };
        let Some(_fetching) =
            single_flight(&self.availability_fetch, || usable(&self.copies())).await
        else {
            return Ok(());
        };
        let fresh: Copy<Availability> = self.fetch("availability").await?;
        self.copies().availability = Some(Copy {
            fetched: fresh.fetched,
            requested_ms: fresh.requested_ms,
            value: fresh.value.sections,
        });
        Ok(())
    }

    async fn refresh_seats(&self, section: &str) -> Result<(), reqwest::Error> {
        let Some(lock) = self.seat_fetches.get(section) else {
            return Ok(());
        };
        let usable = |copies: &Copies| match copies.seats.get(section) {
            Some(copy) if copy.fresh() => Usable::Fresh,
            Some(copy) if !copy.value.is_empty() => Usable::Stale,
            _ => Usable::No,
        };
        let Some(_fetching) = single_flight(lock, || usable(&self.copies())).await else {
            return Ok(());
        };
        let listing: Copy<SeatListing> = self.fetch(&format!("sections/{section}/seats")).await?;
        let free = listing
            .value
            .seats
            .into_iter()
            .filter(|s| s.status == "available")
            .map(|s| s.seat_id)
            .collect();
        self.copies().seats.insert(
            section.to_owned(),
            Copy {
                fetched: listing.fetched,
                requested_ms: listing.requested_ms,
                value: free,
            },
        );
        Ok(())
    }

    /// `GET /v1/events/{event}/{path}`, read as `T`, with when it was asked.
    async fn fetch<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Copy<T>, reqwest::Error> {
        // A busy or briefly unready ticket service (503 while PostgreSQL is
        // paused, 502 while a replica restarts) is waited out as a buyer's
        // page would, as every other step of the journey does: without it
        // one refused read failed the buyer who happened to fetch (36 in one
        // fault drill).
        const ATTEMPTS: usize = 10;
        let url = format!("{}/v1/events/{}/{path}", self.base, self.event);
        let mut attempt = 1;
        let (requested_ms, response) = loop {
            let requested_ms = urr_service_common::unix_now_ms();
            let response = self.http.get(&url).send_limited(&self.limits).await?;
            if !crate::buyer::is_busy(response.status()) || attempt == ATTEMPTS {
                break (requested_ms, response);
            }
            attempt += 1;
            tokio::time::sleep(crate::buyer::retry_after(&response)).await;
        };
        let value = response.error_for_status()?.json().await?;
        Ok(Copy {
            fetched: Instant::now(),
            requested_ms,
            value,
        })
    }
}

/// Decides whether this buyer fetches: `Some(guard)` when it must (hold the
/// guard while fetching), `None` when the copy can be used as it is. A
/// stale copy is used while another buyer refreshes it; without a usable
/// copy the buyer waits for the fetch in flight and re-checks, so a crowd
/// arriving at once sends one request, not thousands.
async fn single_flight<'a>(
    lock: &'a Mutex<()>,
    usable: impl Fn() -> Usable,
) -> Option<tokio::sync::MutexGuard<'a, ()>> {
    match usable() {
        Usable::Fresh => None,
        Usable::Stale => {
            let guard = lock.try_lock().ok()?;
            // Someone may have refreshed it between the check and the lock.
            matches!(usable(), Usable::Stale | Usable::No).then_some(guard)
        }
        Usable::No => {
            let guard = lock.lock().await;
            matches!(usable(), Usable::Stale | Usable::No).then_some(guard)
        }
    }
}
