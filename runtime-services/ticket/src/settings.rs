//! The event settings the operator renders into the service's ConfigMap
//! (`URR_EVENT_SETTINGS`, see `operator/src/children/config_map.rs`): name, sale window,
//! hold timeout, limits and the seat map. Parsed and checked once at start;
//! a malformed document stops the service with the reason instead of
//! selling from a half-read seat map.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSettings {
    pub event: String,
    pub display_name: String,
    #[serde(default)]
    pub sales_open_at: Option<String>,
    #[serde(default)]
    pub sales_close_at: Option<String>,
    pub hold_timeout_seconds: u32,
    pub limits: Limits,
    pub seat_map: SeatMap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    pub max_seats_per_order: u32,
    pub max_seats_per_user: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatMap {
    pub sections: Vec<SectionSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SectionSpec {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub rows: Option<u32>,
    #[serde(default)]
    pub seats_per_row: Option<u32>,
    #[serde(default)]
    pub capacity: Option<u32>,
    pub price: Price,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Price {
    pub amount_minor: i64,
    pub currency: String,
}

/// A section as the service sells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SectionKind {
    /// Numbered seats, `rows × seatsPerRow`.
    Seated { rows: u32, seats_per_row: u32 },
    /// A counted capacity.
    Standing { capacity: u32 },
}

impl SectionKind {
    pub fn capacity(self) -> u32 {
        match self {
            SectionKind::Seated {
                rows,
                seats_per_row,
            } => rows.saturating_mul(seats_per_row),
            SectionKind::Standing { capacity } => capacity,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SectionKind::Seated { .. } => "seated",
            SectionKind::Standing { .. } => "standing",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("URR_EVENT_SETTINGS is not valid JSON of the expected shape: {0}")]
    Malformed(String),
    #[error("URR_EVENT_SETTINGS names event {found:?} but this service serves {expected:?}")]
    WrongEvent { expected: String, found: String },
    #[error("section {0:?}: give either rows and seatsPerRow, or capacity")]
    SectionKind(String),
    #[error("section id {0:?} appears twice")]
    DuplicateSection(String),
    #[error("the seat map has no sections")]
    NoSections,
    #[error("limits: maxSeatsPerOrder must be at least 1 and at most maxSeatsPerUser")]
    Limits,
    #[error("holdTimeoutSeconds must be at least 30")]
    HoldTimeout,
    #[error("every section must be priced in the same currency")]
    MixedCurrencies,
    #[error("{field} is not an RFC 3339 time: {value:?}")]
    BadTime { field: &'static str, value: String },
}

/// The checked seat map: sections by id, in spec order.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub settings: EventSettings,
    pub sections: Vec<CatalogSection>,
    by_id: HashMap<String, usize>,
    /// SHA-256 of the canonical settings JSON: import is skipped when the
    /// database already holds this exact version.
    pub hash: String,
    /// The sale window, parsed once (holds are refused outside it).
    pub opens_at: Option<chrono::DateTime<chrono::Utc>>,
    pub closes_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogSection {
    pub id: String,
    pub name: String,
    pub kind: SectionKind,
    pub price: Price,
}

/// A numbered seat: `<section>:<row>:<number>`, both 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeatRef {
    pub section: String,
    pub row: u32,
    pub number: u32,
}

impl SeatRef {
    pub fn id(&self) -> String {
        format!("{}:{}:{}", self.section, self.row, self.number)
    }
}

impl Catalog {
    pub fn from_json(json: &str, expected_event: &str) -> Result<Self, SettingsError> {
        let settings: EventSettings =
            serde_json::from_str(json).map_err(|e| SettingsError::Malformed(e.to_string()))?;
        Self::new(settings, expected_event)
    }

    pub fn new(settings: EventSettings, expected_event: &str) -> Result<Self, SettingsError> {
        if settings.event != expected_event {
            return Err(SettingsError::WrongEvent {
                expected: expected_event.to_owned(),
                found: settings.event,
            });
        }
        if settings.seat_map.sections.is_empty() {
            return Err(SettingsError::NoSections);
        }
        let limits = settings.limits;
        if limits.max_seats_per_order == 0 || limits.max_seats_per_order > limits.max_seats_per_user
        {
            return Err(SettingsError::Limits);
        }
        if settings.hold_timeout_seconds < 30 {
            return Err(SettingsError::HoldTimeout);
        }
        let mut sections = Vec::new();
        let mut by_id = HashMap::new();
        for spec in &settings.seat_map.sections {
            let kind = match (spec.rows, spec.seats_per_row, spec.capacity) {
                (Some(rows), Some(seats_per_row), None) if rows > 0 && seats_per_row > 0 => {
                    SectionKind::Seated {
                        rows,
                        seats_per_row,
                    }
                }
                (None, None, Some(capacity)) if capacity > 0 => SectionKind::Standing { capacity },
                _ => return Err(SettingsError::SectionKind(spec.id.clone())),
            };
            if by_id.insert(spec.id.clone(), sections.len()).is_some() {
                return Err(SettingsError::DuplicateSection(spec.id.clone()));
            }
            sections.push(CatalogSection {
                id: spec.id.clone(),
                name: spec.name.clone(),
                kind,
                price: spec.price.clone(),
            });
        }
        if sections
            .iter()
            .any(|s| s.price.currency != sections[0].price.currency)
        {
            return Err(SettingsError::MixedCurrencies);
        }
        let parse_time = |field: &'static str, value: &Option<String>| match value {
            None => Ok(None),
            Some(value) => chrono::DateTime::parse_from_rfc3339(value)
                .map(|t| Some(t.with_timezone(&chrono::Utc)))
                .map_err(|_| SettingsError::BadTime {
                    field,
                    value: value.clone(),
                }),
        };
        let opens_at = parse_time("salesOpenAt", &settings.sales_open_at)?;
        let closes_at = parse_time("salesCloseAt", &settings.sales_close_at)?;
        let canonical = serde_json::to_vec(&settings).unwrap_or_default();
        let hash = format!("{:x}", Sha256::digest(&canonical));
        Ok(Self {
            settings,
            sections,
            by_id,
            hash,
            opens_at,
            closes_at,
        })
    }

    pub fn event(&self) -> &str {
        &self.settings.event
    }

    pub fn section(&self, id: &str) -> Option<&CatalogSection> {
        self.by_id.get(id).map(|&index| &self.sections[index])
    }

    pub fn total_capacity(&self) -> u64 {
        self.sections
            .iter()
            .map(|s| u64::from(s.kind.capacity()))
            .sum()
    }

    pub fn currency(&self) -> &str {
        &self.sections[0].price.currency
    }

    /// Parses and range-checks a seat id against the seat map, without the
    /// database: unknown seats are refused before anything is locked.
    pub fn seat(&self, seat_id: &str) -> Option<SeatRef> {
        let mut parts = seat_id.rsplitn(3, ':');
        let number: u32 = parts.next()?.parse().ok()?;
        let row: u32 = parts.next()?.parse().ok()?;
        let section_id = parts.next()?;
        let section = self.section(section_id)?;
        match section.kind {
            SectionKind::Seated {
                rows,
                seats_per_row,
            } if (1..=rows).contains(&row) && (1..=seats_per_row).contains(&number) => {
                Some(SeatRef {
                    section: section_id.to_owned(),
                    row,
                    number,
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> serde_json::Value {
        serde_json::json!({
            "event": "e1",
            "displayName": "Test",
            "salesOpenAt": "2026-12-12T11:00:00Z",
            "holdTimeoutSeconds": 600,
            "limits": {"maxSeatsPerOrder": 4, "maxSeatsPerUser": 6},
            "seatMap": {"sections": [
                {"id": "floor", "name": "Floor", "capacity": 100, "rows": null, "seatsPerRow": null,
                 "price": {"amountMinor": 1000, "currency": "KRW"}},
                {"id": "a1", "name": "A1", "rows": 10, "seatsPerRow": 20,
                 "price": {"amountMinor": 2000, "currency": "KRW"}}
            ]}
        })
    }

    #[test]
    fn parses_the_operator_rendering() {
        let catalog = Catalog::from_json(&settings().to_string(), "e1").expect("valid");
        assert_eq!(catalog.total_capacity(), 300);
        assert_eq!(
            catalog.section("a1").map(|s| s.kind),
            Some(SectionKind::Seated {
                rows: 10,
                seats_per_row: 20
            })
        );
        assert_eq!(catalog.currency(), "KRW");
    }

    #[test]
    fn seat_ids_are_range_checked() {
        let catalog = Catalog::from_json(&settings().to_string(), "e1").expect("valid");
        let seat = catalog.seat("a1:10:20").expect("last seat exists");
        assert_eq!(seat.id(), "a1:10:20");
        for bad in [
            "a1:0:1",
            "a1:11:1",
            "a1:1:21",
            "a1:1",
            "floor:1:1",
            "zz:1:1",
            "a1:x:1",
            "",
        ] {
            assert_eq!(catalog.seat(bad), None, "{bad}");
        }
    }

    #[test]
    fn refuses_bad_documents_with_a_reason() {
        let mut wrong = settings();
        wrong["seatMap"]["sections"][1]["capacity"] = 5.into();
        assert_eq!(
            Catalog::new(serde_json::from_value(wrong).expect("shape"), "e1").err(),
            Some(SettingsError::SectionKind("a1".into()))
        );
        assert!(matches!(
            Catalog::from_json("{", "e1"),
            Err(SettingsError::Malformed(_))
        ));
        assert!(matches!(
            Catalog::from_json(&settings().to_string(), "other"),
            Err(SettingsError::WrongEvent { .. })
        ));
        let mut bad_time = settings();
        bad_time["salesOpenAt"] = "next friday".into();
        assert!(matches!(
            Catalog::from_json(&bad_time.to_string(), "e1"),
            Err(SettingsError::BadTime {
                field: "salesOpenAt",
                ..
            })
        ));
        let mut dup = settings();
        dup["seatMap"]["sections"][1]["id"] = "floor".into();
        assert!(matches!(
            Catalog::from_json(&dup.to_string(), "e1"),
            Err(SettingsError::DuplicateSection(_))
        ));
    }

    #[test]
    fn the_hash_changes_with_the_seat_map() {
        let one = Catalog::from_json(&settings().to_string(), "e1").expect("valid");
        let mut changed = settings();
        changed["seatMap"]["sections"][0]["capacity"] = 120.into();
        let two = Catalog::from_json(&changed.to_string(), "e1").expect("valid");
        assert_ne!(one.hash, two.hash);
    }
}
