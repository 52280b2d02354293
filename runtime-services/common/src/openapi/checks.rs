//! The checks of a finished document: [`lint`] (what utoipa does not
//! check) and [`check_or_write`] (the drift of the checked-in files).

use std::path::{Path, PathBuf};

use utoipa::openapi::OpenApi;

use super::PROBLEM_JSON;

/// Why a checked-in document differs from the code.
#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error(
        "{path} differs from what the code describes: run `URR_OPENAPI_WRITE=1 cargo test -p {package} --test openapi` and commit it"
    )]
    Drifted { path: PathBuf, package: String },
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Compares `generated` with the file `name` under the repository's `dir`
/// (`docs/openapi`, `docs/api`), or writes it: into `$URR_OPENAPI_DIR/<name>`
/// when that is set (scripts/test diffs the directory, as it does the
/// CRDs), into the checked-in file with `URR_OPENAPI_WRITE=1`.
pub fn check_or_write(
    repo_root: &Path,
    dir: &str,
    name: &str,
    generated: &str,
    package: &str,
) -> Result<(), DriftError> {
    let write = |path: PathBuf| {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| DriftError::Io {
                path: parent.to_owned(),
                source,
            })?;
        }
        std::fs::write(&path, generated).map_err(|source| DriftError::Io { path, source })
    };
    if let Some(out) = std::env::var_os("URR_OPENAPI_DIR") {
        return write(PathBuf::from(out).join(dir).join(name));
    }
    let path = repo_root.join(dir).join(name);
    if std::env::var("URR_OPENAPI_WRITE").is_ok_and(|v| v == "1") {
        return write(path);
    }
    let checked_in = std::fs::read_to_string(&path).map_err(|source| DriftError::Io {
        path: path.clone(),
        source,
    })?;
    if checked_in == generated {
        Ok(())
    } else {
        Err(DriftError::Drifted {
            path,
            package: package.to_owned(),
        })
    }
}

/// What a finished document must hold, beyond what utoipa checks: every
/// operation has an id and a tag, declares each `{parameter}` of its path,
/// and answers every 4xx and 5xx with a problem. Each finding is a line.
pub fn lint(api: &OpenApi) -> Vec<String> {
    let doc = serde_json::to_value(api).unwrap_or_default();
    let mut findings = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    let Some(paths) = doc["paths"].as_object() else {
        return vec!["the document has no paths".into()];
    };
    for (path, item) in paths {
        for method in ["get", "put", "post", "delete", "patch"] {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let at = format!("{} {path}", method.to_uppercase());
            match operation["operationId"].as_str() {
                Some(id) if ids.insert(id.to_owned()) => {}
                Some(id) => findings.push(format!("{at}: operationId {id} is used twice")),
                None => findings.push(format!("{at}: no operationId")),
            }
            if operation["tags"].as_array().is_none_or(Vec::is_empty) {
                findings.push(format!("{at}: no tag"));
            }
            let declared: Vec<&str> = operation["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .filter_map(|p| p["name"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            for segment in path.split('/') {
                if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'))
                    && !declared.contains(&name)
                {
                    findings.push(format!("{at}: path parameter {name} is not declared"));
                }
            }
            let Some(responses) = operation["responses"].as_object() else {
                findings.push(format!("{at}: no responses"));
                continue;
            };
            for (status, response) in responses {
                if !(status.starts_with('4') || status.starts_with('5'))
                    || response.get("$ref").is_some()
                {
                    continue;
                }
                let problem_only = response["content"]
                    .as_object()
                    .is_some_and(|c| c.len() == 1 && c.contains_key(PROBLEM_JSON));
                if !problem_only {
                    findings.push(format!(
                        "{at}: {status} is not answered with {PROBLEM_JSON}"
                    ));
                }
            }
        }
    }
    findings
}
