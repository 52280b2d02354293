//! Amounts as Stripe takes them. URR keeps money in ISO 4217 minor units
//! (`amountMinor`: cents, won, yen); Stripe's `amount` is "the smallest
//! currency unit", which is the same number except where Stripe says
//! otherwise (<https://docs.stripe.com/currencies#special-cases>):
//!
//! * zero-decimal currencies (KRW, JPY, …) have no minor unit at either:
//!   ₩55,000 is `55000` on both sides;
//! * ISK is zero-decimal in ISO but Stripe keeps two decimals for backwards
//!   compatibility: ISO `500` is Stripe `50000`, and amounts must be whole krónur;
//! * three-decimal currencies (BHD, JOD, KWD, OMR, TND) must be divisible by
//!   10 at Stripe (the last digit is always 0).

/// Why an amount cannot be sent to Stripe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("currency {0:?} is not a three-letter ISO 4217 code")]
    BadCurrency(String),
    #[error("{currency} amounts at Stripe must be a multiple of 10 minor units, got {amount}")]
    NotRepresentable { currency: String, amount: i64 },
    #[error("amount {0} is out of range")]
    OutOfRange(i64),
}

/// Stripe's lowercase currency code.
pub fn stripe_currency(iso: &str) -> Result<String, AmountError> {
    if iso.len() == 3 && iso.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(iso.to_ascii_lowercase())
    } else {
        Err(AmountError::BadCurrency(iso.to_owned()))
    }
}

const THREE_DECIMAL: [&str; 5] = ["BHD", "JOD", "KWD", "OMR", "TND"];
/// Zero-decimal in ISO 4217, two decimals at Stripe.
const ISO_ZERO_STRIPE_TWO: [&str; 1] = ["ISK"];

/// The `amount` Stripe takes for `amount_minor` ISO minor units of `iso`.
pub fn to_stripe(amount_minor: i64, iso: &str) -> Result<i64, AmountError> {
    let iso = iso.to_ascii_uppercase();
    if amount_minor < 0 {
        return Err(AmountError::OutOfRange(amount_minor));
    }
    if ISO_ZERO_STRIPE_TWO.contains(&iso.as_str()) {
        return amount_minor
            .checked_mul(100)
            .ok_or(AmountError::OutOfRange(amount_minor));
    }
    if THREE_DECIMAL.contains(&iso.as_str()) && amount_minor % 10 != 0 {
        return Err(AmountError::NotRepresentable {
            currency: iso,
            amount: amount_minor,
        });
    }
    Ok(amount_minor)
}

/// ISO minor units of a Stripe `amount` in `iso` (what a webhook reports).
pub fn from_stripe(amount: i64, iso: &str) -> i64 {
    if ISO_ZERO_STRIPE_TWO.contains(&iso.to_ascii_uppercase().as_str()) {
        amount / 100
    } else {
        amount
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn krw_jpy_and_usd_convert_as_stripe_documents() {
        // ₩55,000: no minor unit on either side.
        assert_eq!(to_stripe(55_000, "KRW"), Ok(55_000));
        // ¥1,200: likewise.
        assert_eq!(to_stripe(1_200, "JPY"), Ok(1_200));
        // $12.34 is 1234 cents on both sides.
        assert_eq!(to_stripe(1_234, "USD"), Ok(1_234));
        assert_eq!(stripe_currency("KRW").as_deref(), Ok("krw"));
        for (amount, currency) in [(55_000, "KRW"), (1_200, "JPY"), (1_234, "USD")] {
            let sent = to_stripe(amount, currency).expect("representable");
            assert_eq!(from_stripe(sent, currency), amount, "{currency} round trip");
        }
    }

    #[test]
    fn the_special_cases_are_converted_or_refused() {
        assert_eq!(to_stripe(500, "ISK"), Ok(50_000));
        assert_eq!(from_stripe(50_000, "ISK"), 500);
        assert_eq!(to_stripe(12_340, "KWD"), Ok(12_340));
        assert!(matches!(
            to_stripe(12_345, "KWD"),
            Err(AmountError::NotRepresentable { .. })
        ));
        assert!(matches!(
            to_stripe(-1, "USD"),
            Err(AmountError::OutOfRange(-1))
        ));
        assert!(matches!(
            to_stripe(i64::MAX, "ISK"),
            Err(AmountError::OutOfRange(_))
        ));
        assert!(stripe_currency("KR").is_err());
        assert!(stripe_currency("K1W").is_err());
    }
}
