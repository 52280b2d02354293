#![forbid(unsafe_code)]
//! `urr-seat-map -f examples/event.yaml --max-places 1000`: prints the merge
//! patch that shrinks the Event's seat map to at most that many places
//! (`kubectl patch event … --type merge -p "$(urr-seat-map …)"`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use urr_crds::Event;
use urr_crds::event::Section;
use urr_crds::validation::Validate;
use urr_load::seat_map::scale_seat_map;

#[derive(Parser)]
#[command(
    name = "urr-seat-map",
    about = "A merge patch that shrinks an Event's seat map"
)]
struct Args {
    /// The Event manifest.
    #[arg(short = 'f', long = "filename")]
    file: PathBuf,
    /// At most this many places, every section kept and smaller in proportion.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_places: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let text = match std::fs::read_to_string(&args.file) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("urr-seat-map: cannot read {}: {error}", args.file.display());
            return ExitCode::FAILURE;
        }
    };
    let mut event: Event = match serde_yaml::from_str(&text) {
        Ok(event) => event,
        Err(error) => {
            eprintln!(
                "urr-seat-map: {} is not an Event: {error}",
                args.file.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let before: u64 = event
        .spec
        .seat_map
        .sections
        .iter()
        .map(Section::capacity)
        .sum();
    if let Err(error) = scale_seat_map(&mut event.spec.seat_map.sections, args.max_places) {
        eprintln!("urr-seat-map: {error}");
        return ExitCode::FAILURE;
    }
    // The smaller map must still be a valid Event.
    if let Err(violations) = event.validate() {
        eprintln!("urr-seat-map: the scaled seat map is invalid: {violations}");
        return ExitCode::FAILURE;
    }
    let after: u64 = event
        .spec
        .seat_map
        .sections
        .iter()
        .map(Section::capacity)
        .sum();
    eprintln!("urr-seat-map: {before} places -> {after}");
    let patch = serde_json::json!({"spec": {"seatMap": event.spec.seat_map}});
    println!("{patch}");
    ExitCode::SUCCESS
}
