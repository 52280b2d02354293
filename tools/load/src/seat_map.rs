//! `--max-places` of the local flash sale: a smaller seat map, so a small
//! crowd sells the house out and contends for the last places. It is applied
//! as a patch of the Event on the API server (`urr-seat-map`), so the
//! operator and every service see the same, smaller sale; nothing is changed
//! behind the operator's back.

use urr_crds::event::Section;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SeatMapError {
    #[error(
        "--max-places {max} is fewer than the {sections} sections (each keeps at least one place)"
    )]
    FewerPlacesThanSections { max: u64, sections: usize },
}

/// Shrinks `sections` to at most `max` places in all (for `--max-places`):
/// each section to its share of `max` (none below one place; a seated one
/// to the rows × seats per row within its old shape that come closest to
/// the share), then the largest trimmed until the total fits. `Ok(false)`
/// when it already fits.
pub fn scale_seat_map(sections: &mut [Section], max: u64) -> Result<bool, SeatMapError> {
    let total: u64 = sections.iter().map(Section::capacity).sum();
    if total <= max {
        return Ok(false);
    }
    if max < sections.len() as u64 {
        return Err(SeatMapError::FewerPlacesThanSections {
            max,
            sections: sections.len(),
        });
    }
    let factor = max as f64 / total as f64;
    for section in sections.iter_mut() {
        let share = ((section.capacity() as f64 * factor).floor() as u32).max(1);
        if let Some(capacity) = section.capacity.as_mut() {
            *capacity = share;
        } else if let (Some(rows), Some(per_row)) =
            (section.rows.as_mut(), section.seats_per_row.as_mut())
        {
            // The most seats up to the share; of equals, the rows nearest
            // the old shape scaled down.
            let shape = f64::from(*rows) * factor.sqrt();
            let (best_rows, best_per_row) = (1..=*rows)
                .map(|r| (r, (share / r).clamp(1, *per_row)))
                .filter(|(r, p)| r * p <= share.max(1))
                .max_by(|a, b| {
                    (a.0 * a.1).cmp(&(b.0 * b.1)).then_with(|| {
                        (f64::from(b.0) - shape)
                            .abs()
                            .total_cmp(&(f64::from(a.0) - shape).abs())
                    })
                })
                .unwrap_or((1, 1));
            *rows = best_rows;
            *per_row = best_per_row;
        }
    }
    // A section kept at one place can overshoot the share it had.
    while sections.iter().map(Section::capacity).sum::<u64>() > max {
        let Some(largest) = sections
            .iter_mut()
            .filter(|s| s.capacity() > 1)
            .max_by_key(|s| s.capacity())
        else {
            break;
        };
        if let Some(capacity) = largest.capacity.as_mut() {
            *capacity -= 1;
        } else if let (Some(rows), Some(per_row)) =
            (largest.rows.as_mut(), largest.seats_per_row.as_mut())
        {
            // More than one place: the larger side is at least 2.
            if *rows >= *per_row {
                *rows -= 1;
            } else {
                *per_row -= 1;
            }
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use urr_crds::Event;

    fn example_sections() -> Vec<Section> {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/event.yaml"
        ))
        .expect("the example");
        let event: Event = serde_yaml::from_str(&text).expect("the example is an Event");
        event.spec.seat_map.sections
    }

    fn total(sections: &[Section]) -> u64 {
        sections.iter().map(Section::capacity).sum()
    }

    #[test]
    fn max_places_shrinks_every_section_in_proportion_and_fits() {
        let original = example_sections();
        assert_eq!(total(&original), 13_480);
        for max in [18, 19, 100, 1_000, 2_500, 13_479] {
            let mut sections = original.clone();
            assert_eq!(scale_seat_map(&mut sections, max), Ok(true), "{max}");
            let places = total(&sections);
            assert!(places <= max, "{max}: {places}");
            // Close to the target, not just under it (floors lose a little).
            assert!(places as f64 >= max as f64 * 0.75, "{max}: {places}");
            assert_eq!(sections.len(), original.len());
            for (scaled, before) in sections.iter().zip(&original) {
                assert_eq!(scaled.id, before.id);
                assert_eq!(scaled.price, before.price);
                assert!(scaled.capacity() >= 1 && scaled.capacity() <= before.capacity());
                // A section keeps its kind.
                assert_eq!(scaled.capacity.is_some(), before.capacity.is_some());
                assert_eq!(scaled.rows.is_some(), before.rows.is_some());
            }
        }
        let mut sections = original.clone();
        scale_seat_map(&mut sections, 1_000).expect("fits");
        // Standing 1,500 of 13,480 → 111 of 1,000; seated 750 → 55 (5 × 11, the
        // shape nearest 25 × 30 scaled by √(1,000 / 13,480)).
        assert_eq!(sections[0].capacity, Some(111));
        assert_eq!(
            (sections[2].rows, sections[2].seats_per_row),
            (Some(5), Some(11))
        );
        assert_eq!(total(&sections), 2 * 111 + 8 * 55 + 8 * 40);
    }

    #[test]
    fn max_places_leaves_a_small_map_alone_and_refuses_fewer_places_than_sections() {
        let mut sections = example_sections();
        assert_eq!(scale_seat_map(&mut sections, 13_480), Ok(false));
        assert_eq!(scale_seat_map(&mut sections, 20_000), Ok(false));
        assert_eq!(sections, example_sections());
        assert!(scale_seat_map(&mut sections, 17).is_err());
    }
}
