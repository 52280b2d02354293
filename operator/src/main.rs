#![forbid(unsafe_code)]
//! `urr-operator`: thin entry point.
//!
//! ```text
//! urr-operator render -f examples/event.yaml [--at 2026-12-12T10:45:00Z] [--namespace urr-demo]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use k8s_openapi::jiff::Timestamp;
use urr_operator::children::Defaults;
use urr_operator::render::render;

#[derive(Parser)]
#[command(name = "urr-operator", version, about = "URR operator")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the child objects the controller would apply for the Events in FILEs.
    Render {
        /// Manifests holding Events (other kinds are skipped).
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        /// The moment to render for (replicas depend on it); default now.
        #[arg(long)]
        at: Option<Timestamp>,
        /// Namespace of Events that name none.
        #[arg(long, default_value = "default", env = "URR_NAMESPACE")]
        namespace: String,
        /// Image tag of the runtime services when an Event names no image.
        #[arg(long, env = "URR_IMAGE_TAG", default_value = env!("CARGO_PKG_VERSION"))]
        image_tag: String,
    },
}

fn main() -> ExitCode {
    match Args::parse().command {
        Command::Render {
            files,
            at,
            namespace,
            image_tag,
        } => {
            let defaults = Defaults {
                image_tag,
                ..Defaults::default()
            };
            let now = at.unwrap_or_else(Timestamp::now);
            let mut documents = Vec::new();
            for file in &files {
                let text = match std::fs::read_to_string(file) {
                    Ok(text) => text,
                    Err(error) => {
                        eprintln!("urr-operator: cannot read {}: {error}", file.display());
                        return ExitCode::FAILURE;
                    }
                };
                match render(&text, now, &namespace, &defaults) {
                    Ok(rendered) => documents.extend(rendered),
                    Err(error) => {
                        eprintln!("urr-operator: {}: {error}", file.display());
                        return ExitCode::FAILURE;
                    }
                }
            }
            print!("{}", documents.join("---\n"));
            ExitCode::SUCCESS
        }
    }
}
