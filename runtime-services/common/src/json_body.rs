//! Request bodies: a JSON object, read into the route's type.
//!
//! serde's derived `Deserialize` of a struct also takes a JSON array, read
//! field by field in order (`[null, null]` is a join with neither field,
//! `[["a:1:1"]]` a hold of that seat): a body the OpenAPI documents do not
//! allow, and no client means. schemathesis found the queue's join taking
//! one (issue 17). Every route's body goes through [`object`], which
//! refuses anything but an object before the type sees it.

use serde::de::{DeserializeOwned, Error as _};

/// `body` as a `T`, if it is one JSON object.
pub fn object<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    let value: serde_json::Value = serde_json::from_slice(body)?;
    if !value.is_object() {
        return Err(serde_json::Error::custom("the body must be a JSON object"));
    }
    T::deserialize(value)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[serde(default)]
        seats: Option<Vec<String>>,
        #[serde(default)]
        quantity: Option<u32>,
    }

    #[test]
    fn an_object_is_read() {
        assert_eq!(
            object::<Body>(br#"{"seats": ["a:1:1"]}"#).expect("body"),
            Body {
                seats: Some(vec!["a:1:1".into()]),
                quantity: None
            }
        );
    }

    #[test]
    fn an_array_serde_would_read_as_the_struct_is_refused() {
        // The plain derive takes it, which is the bug this module exists for.
        assert!(serde_json::from_slice::<Body>(br#"[["a:1:1"], 2]"#).is_ok());
        for body in [
            &br#"[["a:1:1"], 2]"#[..],
            b"[null, null]",
            b"null",
            b"3",
            b"\"x\"",
        ] {
            let error = object::<Body>(body).expect_err("not an object");
            assert!(error.to_string().contains("JSON object"), "{error}");
        }
    }

    #[test]
    fn the_types_own_refusals_stay() {
        assert!(object::<Body>(br#"{"seats": [], "extra": 1}"#).is_err());
        assert!(object::<Body>(br#"{"quantity": -1}"#).is_err());
        assert!(object::<Body>(b"{nope").is_err());
    }
}
