//! The Rust half of validation: every rule the schema and its CEL rules
//! enforce, checked again in code, each violation reported with its field path.
//!
//! The operator runs this before it acts on an object, because the API server
//! is not the only way an object gets stored (an older CRD version, validation
//! ratcheting, a restore from backup). A violation becomes a `Ready=False`
//! condition with reason `InvalidSpec`, never a crash or a hot retry loop.

use std::collections::HashMap;
use std::fmt;
use std::sync::{LazyLock, Mutex};

use regex::Regex;

/// One broken rule: where (`spec.seatMap.sections[2].rows`, the path syntax the
/// API server uses in its errors) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every violation found in one object; `Display` prints one per line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct InvalidSpec(pub Vec<Violation>);

impl fmt::Display for InvalidSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, violation) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{violation}")?;
        }
        Ok(())
    }
}

/// Implemented by both resource specs.
pub trait Validate {
    /// Checks every rule and returns all violations, not just the first, so a
    /// person fixes a manifest in one round trip.
    fn validate(&self) -> Result<(), InvalidSpec>;
}

/// Collects violations while a spec is walked.
#[derive(Debug, Default)]
pub struct Violations(Vec<Violation>);

impl Violations {
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Violation {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Records `message` at `path` unless `ok` holds.
    pub fn require(&mut self, ok: bool, path: &str, message: &str) {
        if !ok {
            self.push(path, message);
        }
    }

    // The messages below are worded as the Kubernetes 1.33 API server words
    // the same schema check (kube-openapi's validators and apimachinery's
    // field errors), minus the `Invalid value: <value>: <path> in body` prefix
    // that repeats the path. That way what the operator puts in `Ready=False`
    // is contained in what `kubectl apply` printed for the same object, and a
    // person searching for one finds the other. tests/apiserver.rs holds the
    // wording to the real API server.

    /// Checks an inclusive numeric range (`minimum`/`maximum` in the schema).
    pub fn check_range<T>(&mut self, value: T, min: T, max: T, path: &str)
    where
        T: PartialOrd + fmt::Display + Copy,
    {
        if value < min {
            self.push(path, format!("should be greater than or equal to {min}"));
        } else if value > max {
            self.push(path, format!("should be less than or equal to {max}"));
        }
    }

    /// Checks a string length (`minLength`/`maxLength`). Like the API server
    /// it counts characters (runes), although its message says bytes.
    pub fn check_len(&mut self, value: &str, min: usize, max: usize, path: &str) {
        let len = value.chars().count();
        if len < min {
            self.push(path, format!("should be at least {min} chars long"));
        } else if len > max {
            self.push(path, format!("Too long: may not be more than {max} bytes"));
        }
    }

    /// Checks the number of items in a list (`minItems`/`maxItems`).
    pub fn check_items(&mut self, len: usize, min: usize, max: usize, path: &str) {
        if len < min {
            self.push(path, format!("should have at least {min} items"));
        } else if len > max {
            self.push(
                path,
                format!("Too many: {len}: must have at most {max} items"),
            );
        }
    }

    pub fn finish(mut self) -> Result<(), InvalidSpec> {
        if self.0.is_empty() {
            Ok(())
        } else {
            self.0.sort();
            self.0.dedup();
            Err(InvalidSpec(self.0))
        }
    }
}

/// Patterns are compiled once; validation runs on every reconcile.
static PATTERNS: LazyLock<Mutex<HashMap<&'static str, Regex>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Checks `value` against one of this crate's schema patterns.
pub fn check_pattern(value: &str, pattern: &'static str, path: &str, out: &mut Violations) {
    if !matches_pattern(value, pattern) {
        out.push(path, format!("should match '{pattern}'"));
    }
}

/// True when `value` matches `pattern` (one of this crate's constants).
pub fn matches_pattern(value: &str, pattern: &'static str) -> bool {
    let mut cache = PATTERNS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let regex = cache.entry(pattern).or_insert_with(|| {
        // The patterns are constants of this crate and covered by tests.
        #[allow(clippy::expect_used)]
        Regex::new(pattern).expect("crate pattern compiles")
    });
    regex.is_match(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_violation_sorted_and_prints_one_per_line() {
        let mut out = Violations::default();
        out.check_range(0, 1, 10, "spec.b");
        out.check_len("", 1, 5, "spec.a");
        out.check_items(3, 0, 2, "spec.c");
        let err = out.finish().expect_err("three violations");
        assert_eq!(
            err.to_string(),
            "spec.a: should be at least 1 chars long\n\
             spec.b: should be greater than or equal to 1\n\
             spec.c: Too many: 3: must have at most 2 items"
        );
    }

    #[test]
    fn empty_collection_is_valid() {
        assert!(Violations::default().finish().is_ok());
    }

    #[test]
    fn pattern_check_reports_the_pattern() {
        let mut out = Violations::default();
        check_pattern(
            "Bad_Name",
            crate::common::DNS_LABEL_PATTERN,
            "spec.x",
            &mut out,
        );
        check_pattern(
            "good-name",
            crate::common::DNS_LABEL_PATTERN,
            "spec.y",
            &mut out,
        );
        let err = out.finish().expect_err("one violation");
        assert_eq!(err.0.len(), 1);
        assert_eq!(err.0[0].path, "spec.x");
    }
}
