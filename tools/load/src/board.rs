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

#[derive(Debug, Default)]
struct State {
    kinds: HashMap<String, bool>,
    /// When the copy was fetched, when its request was sent (Unix ms), the
    /// figures.
    availability: Option<(Instant, i64, Vec<SectionFigures>)>,
    seats: HashMap<String, (Instant, Vec<String>)>,
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

#[derive(Debug)]
pub struct SeatBoard {
    http: reqwest::Client,
    base: String,
    event: String,
    state: Mutex<State>,
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
        let kinds = info["sections"]
            .as_array()
            .map(|sections| {
                sections
                    .iter()
                    .filter_map(|s| Some((s["id"].as_str()?.to_owned(), s["kind"] == "standing")))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            http,
            base: base.to_owned(),
            event: event.to_owned(),
            state: Mutex::new(State {
                kinds,
                ..State::default()
            }),
        })
    }

    /// Chooses what to try next: a section weighted by what it has left,
    /// then 1–2 places in it.
    pub async fn pick(&self) -> Result<Pick, reqwest::Error> {
        let mut state = self.state.lock().await;
        let stale = state
            .availability
            .as_ref()
            .is_none_or(|(at, _, _)| at.elapsed() > FRESH_FOR);
        if stale {
            let requested_ms = urr_service_common::unix_now_ms();
            let fresh: Availability = self
                .http
                .get(format!(
                    "{}/v1/events/{}/availability",
                    self.base, self.event
                ))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            state.availability = Some((Instant::now(), requested_ms, fresh.sections));
        }
        // Until a section with places to try, or none is left.
        loop {
            let (as_of_ms, open): (i64, Vec<SectionFigures>) = state
                .availability
                .as_ref()
                .map(|(_, requested, s)| {
                    (
                        *requested,
                        s.iter().filter(|s| s.available > 0).cloned().collect(),
                    )
                })
                .unwrap_or_default();
            let Ok(section) = open.choose_weighted(&mut rand::rng(), |s| s.available as f64) else {
                return Ok(Pick::SoldOut { as_of_ms });
            };
            let section = section.clone();
            let quantity = rand::rng().random_range(1..=2u32);
            if state.kinds.get(&section.id).copied().unwrap_or(false) {
                return Ok(Pick::Standing {
                    quantity: quantity.min(section.available as u32).max(1),
                    section: section.id,
                });
            }
            let listing_stale = state
                .seats
                .get(&section.id)
                .is_none_or(|(at, free)| at.elapsed() > FRESH_FOR || free.is_empty());
            if listing_stale {
                let listing: SeatListing = self
                    .http
                    .get(format!(
                        "{}/v1/events/{}/sections/{}/seats",
                        self.base, self.event, section.id
                    ))
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                let free = listing
                    .seats
                    .into_iter()
                    .filter(|s| s.status == "available")
                    .map(|s| s.seat_id)
                    .collect();
                state
                    .seats
                    .insert(section.id.clone(), (Instant::now(), free));
            }
            let free = state
                .seats
                .get_mut(&section.id)
                .map(|(_, free)| free)
                .filter(|free| !free.is_empty());
            let Some(free) = free else {
                // The listing says full although the figures did not yet:
                // this copy of the figures no longer offers the section, and
                // another one is tried (sold out only when none is left).
                if let Some((_, _, sections)) = state.availability.as_mut() {
                    sections.retain(|s| s.id != section.id);
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
}
