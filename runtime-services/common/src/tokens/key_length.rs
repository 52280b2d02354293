//! The shortest HMAC key a service starts with.
//!
//! HS256 and HMAC-SHA256 accept keys of any length, so a key such as
//! `dev` signed tokens happily; a short key can be brute-forced offline from
//! one token, and then anyone mints entry tokens or edge passes. RFC 7518
//! (3.2) asks for a key at least as long as the hash: 32 bytes.

/// Bytes a signing key needs at least.
pub const MIN_KEY_BYTES: usize = 32;

/// A key under [`MIN_KEY_BYTES`]; names the variable, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{variable} is {length} bytes long; a signing key needs at least {MIN_KEY_BYTES} bytes (e.g. `openssl rand -base64 48`)"
)]
pub struct KeyTooShort {
    pub variable: &'static str,
    pub length: usize,
}

/// `value`'s bytes if it is long enough to be the key in `variable`.
pub fn require_min_length<'a>(
    variable: &'static str,
    value: &'a str,
) -> Result<&'a [u8], KeyTooShort> {
    if value.len() < MIN_KEY_BYTES {
        return Err(KeyTooShort {
            variable,
            length: value.len(),
        });
    }
    Ok(value.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_under_32_bytes_are_refused_naming_the_variable_only() {
        let error = require_min_length("URR_X_KEY", "0123456789abcdef0123456789abcde")
            .expect_err("31 bytes");
        let message = error.to_string();
        assert!(message.contains("URR_X_KEY"), "{message}");
        assert!(!message.contains("0123456789abcdef"), "{message}");
        assert_eq!(
            require_min_length("URR_X_KEY", "0123456789abcdef0123456789abcdef"),
            Ok(&b"0123456789abcdef0123456789abcdef"[..])
        );
    }
}
