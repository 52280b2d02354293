//! The places the ticket service has left, read by the admitter's leader
//! once a tick from the ticket service's `/internal/stats` (the internal
//! listener, as the operator reads it) and recorded in Redis for every
//! replica and the tick script: the queue stops admitting while fewer than
//! `minPlaces` are left, instead of letting people wait for stock that is gone.

use std::time::Duration;

use urr_service_common::contracts::TicketStats;

/// Where the ticket service's figures are read.
#[derive(Debug, Clone)]
pub struct TicketInventory {
    client: reqwest::Client,
    stats_url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("the ticket service's stats at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
}

impl TicketInventory {
    /// `ticket_url`: the ticket service's internal base URL (`URR_TICKET_URL`).
    pub fn new(ticket_url: &str) -> Self {
        Self {
            // Shorter than a tick: a slow ticket service must not hold admission.
            client: urr_service_common::http_client::builder()
                .timeout(Duration::from_millis(800))
                .build()
                .unwrap_or_default(),
            stats_url: format!("{}/internal/stats", ticket_url.trim_end_matches('/')),
        }
    }

    /// The places neither sold nor held, and the held ones.
    pub async fn places(&self) -> Result<Places, InventoryError> {
        let unreachable = |source| InventoryError::Unreachable {
            url: self.stats_url.clone(),
            source,
        };
        let stats: TicketStats = self
            .client
            .get(&self.stats_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unreachable)?
            .json()
            .await
            .map_err(unreachable)?;
        Ok(Places::from(&stats))
    }
}

/// One read of the ticket service's places.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Places {
    pub left: u64,
    pub held: u64,
}

impl From<&TicketStats> for Places {
    fn from(stats: &TicketStats) -> Self {
        Places {
            left: (stats.total - stats.held - stats.sold).max(0) as u64,
            held: stats.held.max(0) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_left_are_neither_sold_nor_held_and_never_negative() {
        let stats = |total, held, sold| TicketStats {
            event: "aurora".to_owned(),
            total,
            held,
            sold,
            as_of_ms: 0,
        };
        assert_eq!(
            Places::from(&stats(100, 20, 30)),
            Places { left: 50, held: 20 }
        );
        assert_eq!(Places::from(&stats(100, 10, 95)).left, 0);
    }
}
