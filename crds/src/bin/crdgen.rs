//! `crdgen`: writes the generated CRD YAML and checks manifests offline.
//!
//! ```text
//! crdgen                       print every CRD (multi-document YAML) to stdout
//! crdgen write [--dir DIR]     write one file per CRD (default crds/generated)
//! crdgen check FILE...         check Event/WaitingRoom manifests as the API
//!                              server and the operator would; one line per
//!                              violation, exit status 1 if any is invalid
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use urr_crds::generate::{self, GENERATED_DIR};
use urr_crds::manifest::check_manifest;

#[derive(Parser)]
#[command(
    name = "crdgen",
    about = "Generate URR CRDs and validate URR manifests offline"
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print every CRD to stdout (the default).
    Print,
    /// Write one YAML file per CRD.
    Write {
        #[arg(long, default_value = GENERATED_DIR)]
        dir: PathBuf,
    },
    /// Validate manifests: schema, unknown fields, CEL rules and the operator's checks.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command.unwrap_or(Command::Print) {
        Command::Print => print(),
        Command::Write { dir } => write(&dir),
        Command::Check { files } => return check(&files),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("crdgen: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Why the CRDs could not be printed or written.
#[derive(Debug, thiserror::Error)]
enum OutputError {
    #[error("cannot render CRDs: {0}")]
    Render(#[source] serde_yaml::Error),
    #[error("cannot create {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn print() -> Result<(), OutputError> {
    let files = generate::all_files().map_err(OutputError::Render)?;
    let documents: Vec<&str> = files.iter().map(|f| f.contents.as_str()).collect();
    print!("{}", documents.join("---\n"));
    Ok(())
}

fn write(dir: &std::path::Path) -> Result<(), OutputError> {
    std::fs::create_dir_all(dir).map_err(|source| OutputError::Create {
        path: dir.to_owned(),
        source,
    })?;
    for file in generate::all_files().map_err(OutputError::Render)? {
        let path = dir.join(&file.file_name);
        if let Err(source) = std::fs::write(&path, &file.contents) {
            return Err(OutputError::Write { path, source });
        }
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Prints `FILE: Kind/name: path: message` per violation, so the output greps
/// and reads like a compiler's.
fn check(files: &[PathBuf]) -> ExitCode {
    let mut invalid = 0usize;
    let mut checked = 0usize;
    for file in files {
        let shown = file.display();
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(error) => {
                println!("{shown}: cannot read: {error}");
                invalid += 1;
                continue;
            }
        };
        let reports = match check_manifest(&text) {
            Ok(reports) => reports,
            Err(error) => {
                println!("{shown}: {error}");
                invalid += 1;
                continue;
            }
        };
        for report in reports.iter().filter(|r| r.kind.is_some()) {
            checked += 1;
            if report.is_valid() {
                println!("{shown}: {}: valid", report.display_name);
                continue;
            }
            invalid += 1;
            for violation in &report.server {
                println!("{shown}: {}: {violation} [api-server]", report.display_name);
            }
            for violation in &report.operator {
                println!("{shown}: {}: {violation} [operator]", report.display_name);
            }
        }
    }
    eprintln!("{checked} resource(s) checked, {invalid} invalid");
    if invalid == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
