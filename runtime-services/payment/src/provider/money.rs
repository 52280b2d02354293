//! Amounts between URR's ISO 4217 minor units (`amountMinor`: cents, won,
//! yen) and providers that take major units (Toss's `amount` is "the
//! amount in won", and a decimal with cents for its USD payments:
//! <https://docs.tosspayments.com/reference#결제-승인>). Stripe's smallest-unit
//! amounts and their special cases are in [`super::stripe::amount`].
//!
//! The conversion is exact, in integers and decimal text, never through a
//! float: `1234` USD cents is `12.34`, `55000` KRW is `55000`.

/// Why an amount cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("currency {0:?} is not a three-letter ISO 4217 code")]
    BadCurrency(String),
    #[error("amount {0} is out of range")]
    OutOfRange(i64),
    #[error("{text:?} is not an amount in {currency}")]
    Unreadable { text: String, currency: String },
}

/// ISO 4217 currencies without a minor unit (KRW, JPY, …).
const ZERO_DECIMAL: [&str; 16] = [
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF",
];
/// ISO 4217 currencies with three decimals.
const THREE_DECIMAL: [&str; 7] = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];

/// The number of decimals of `iso`'s minor unit.
pub fn exponent(iso: &str) -> Result<u32, MoneyError> {
    if iso.len() != 3 || !iso.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(MoneyError::BadCurrency(iso.to_owned()));
    }
    Ok(if ZERO_DECIMAL.contains(&iso) {
        0
    } else if THREE_DECIMAL.contains(&iso) {
        3
    } else {
        2
    })
}

/// `amount_minor` of `iso` in major units, as decimal text: `12.34`, `55000`.
pub fn to_major(amount_minor: i64, iso: &str) -> Result<String, MoneyError> {
    let exponent = exponent(iso)?;
    if amount_minor < 0 {
        return Err(MoneyError::OutOfRange(amount_minor));
    }
    if exponent == 0 {
        return Ok(amount_minor.to_string());
    }
    let unit = 10i64.pow(exponent);
    Ok(format!(
        "{}.{:0width$}",
        amount_minor / unit,
        amount_minor % unit,
        width = exponent as usize
    ))
}

/// Minor units of a major-unit amount `text` of `iso` (what a provider
/// answers): `12.34` USD is `1234`, `55000` KRW is `55000`; more decimals
/// than the currency has, a sign or garbage are refused.
pub fn from_major(text: &str, iso: &str) -> Result<i64, MoneyError> {
    let exponent = exponent(iso)? as usize;
    let unreadable = || MoneyError::Unreadable {
        text: text.to_owned(),
        currency: iso.to_owned(),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) if digits(fraction) => (whole, fraction),
        Some(_) => return Err(unreadable()),
        None => (text, ""),
    };
    // A JSON number written as `55000.0` is still whole won.
    let fraction = fraction.trim_end_matches('0');
    if !digits(whole) || fraction.len() > exponent {
        return Err(unreadable());
    }
    let padded = format!("{whole}{fraction:0<exponent$}");
    padded.parse::<i64>().map_err(|_| unreadable())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn krw_jpy_and_usd_convert_exactly_both_ways() {
        assert_eq!(to_major(55_000, "KRW").as_deref(), Ok("55000"));
        assert_eq!(to_major(1_200, "JPY").as_deref(), Ok("1200"));
        assert_eq!(to_major(1_234, "USD").as_deref(), Ok("12.34"));
        assert_eq!(to_major(5, "USD").as_deref(), Ok("0.05"));
        assert_eq!(to_major(1_000, "KWD").as_deref(), Ok("1.000"));
        assert_eq!(from_major("55000", "KRW"), Ok(55_000));
        assert_eq!(from_major("55000.0", "KRW"), Ok(55_000));
        assert_eq!(from_major("1200", "JPY"), Ok(1_200));
        assert_eq!(from_major("12.34", "USD"), Ok(1_234));
        assert_eq!(from_major("12.3", "USD"), Ok(1_230));
        assert_eq!(from_major("12", "USD"), Ok(1_200));
        for (amount, currency) in [(55_000, "KRW"), (1_200, "JPY"), (1_234, "USD"), (7, "USD")] {
            let major = to_major(amount, currency).expect("convertible");
            assert_eq!(from_major(&major, currency), Ok(amount), "{currency}");
        }
    }

    #[test]
    fn what_is_not_an_amount_is_refused() {
        // Half a won does not exist.
        assert!(matches!(
            from_major("55000.5", "KRW"),
            Err(MoneyError::Unreadable { .. })
        ));
        assert!(from_major("12.345", "USD").is_err());
        for garbage in [
            "",
            "-1",
            "1e3",
            "12.",
            ".5",
            "1,000",
            "abc",
            "99999999999999999999",
        ] {
            assert!(from_major(garbage, "USD").is_err(), "{garbage:?}");
        }
        assert_eq!(to_major(-1, "KRW"), Err(MoneyError::OutOfRange(-1)));
        assert!(matches!(exponent("krw"), Err(MoneyError::BadCurrency(_))));
        assert!(exponent("KR").is_err());
    }
}
