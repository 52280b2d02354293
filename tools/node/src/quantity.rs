//! Kubernetes resource quantities (`500m`, `2`, `24Gi`, `1e3`), parsed
//! exactly: the downward API divides them and rounds up, and floating point
//! would turn `1Gi / 1Mi` into 1023.9999.

/// Nano-units per unit: the finest precision Kubernetes keeps.
const NANO: i128 = 1_000_000_000;

/// A non-negative quantity, held in nano-units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity {
    nanos: i128,
}

/// Why a quantity string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("quantity {0:?} is not a number with an optional suffix")]
    Syntax(String),
    #[error("quantity {0:?} has an unknown suffix")]
    Suffix(String),
    #[error("quantity {0:?} is negative")]
    Negative(String),
    #[error("quantity {0:?} is too large")]
    TooLarge(String),
}

impl Quantity {
    /// A whole number of units (cores, bytes).
    pub fn units(units: u64) -> Self {
        Self {
            nanos: i128::from(units) * NANO,
        }
    }

    /// Parses the Kubernetes quantity syntax: a decimal number, then a
    /// binary (`Ki`..`Ei`), decimal (`n`, `u`, `m`, `k`, `M`..`E`) or
    /// exponent (`e3`, `E-2`) suffix. Values finer than a nano-unit round up,
    /// as the API server rounds them.
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        let syntax = || QuantityError::Syntax(text.to_owned());
        let too_large = || QuantityError::TooLarge(text.to_owned());
        let (negative, body) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let number_end = body
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(body.len());
        let (number, suffix) = body.split_at(number_end);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return Err(syntax());
        }
        // The mantissa as an integer, with `scale` digits after the point.
        let mut mantissa: i128 = 0;
        for digit in whole.bytes().chain(fraction.bytes()) {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(i128::from(digit - b'0')))
                .ok_or_else(too_large)?;
        }
        let scale = u32::try_from(fraction.len()).map_err(|_| too_large())?;
        let (multiplier, exponent) = suffix_factor(suffix).ok_or_else(|| {
            if suffix.starts_with(['e', 'E']) {
                syntax()
            } else {
                QuantityError::Suffix(text.to_owned())
            }
        })?;
        if negative && mantissa != 0 {
            return Err(QuantityError::Negative(text.to_owned()));
        }
        // value = mantissa × multiplier × 10^exponent / 10^scale, in nanos.
        let mut numerator = mantissa
            .checked_mul(multiplier)
            .and_then(|n| n.checked_mul(NANO))
            .ok_or_else(too_large)?;
        let mut denominator: i128 = pow10(scale).ok_or_else(too_large)?;
        let magnitude = exponent.unsigned_abs();
        let power = pow10(magnitude).ok_or_else(too_large)?;
        if exponent >= 0 {
            numerator = numerator.checked_mul(power).ok_or_else(too_large)?;
        } else {
            denominator = denominator.checked_mul(power).ok_or_else(too_large)?;
        }
        Ok(Self {
            nanos: ceil_div(numerator, denominator),
        })
    }

    /// The value in milli-units, rounded up (Kubernetes' `MilliValue`).
    pub fn milli_value(self) -> i128 {
        ceil_div(self.nanos, NANO / 1000)
    }

    /// The value in units, rounded up (Kubernetes' `Value`).
    pub fn value(self) -> i128 {
        ceil_div(self.nanos, NANO)
    }
}

/// Multiplier and power of ten of a suffix.
fn suffix_factor(suffix: &str) -> Option<(i128, i32)> {
    let binary = |power: u32| Some((1_i128 << power, 0));
    match suffix {
        "" => Some((1, 0)),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        "n" => Some((1, -9)),
        "u" => Some((1, -6)),
        "m" => Some((1, -3)),
        "k" => Some((1, 3)),
        "M" => Some((1, 6)),
        "G" => Some((1, 9)),
        "T" => Some((1, 12)),
        "P" => Some((1, 15)),
        "E" => Some((1, 18)),
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            exponent.parse::<i32>().ok().map(|e| (1, e))
        }
    }
}

fn pow10(exponent: u32) -> Option<i128> {
    10_i128.checked_pow(exponent)
}

/// Ceiling division of non-negative numbers.
pub fn ceil_div(numerator: i128, denominator: i128) -> i128 {
    let quotient = numerator / denominator;
    if numerator % denominator == 0 {
        quotient
    } else {
        quotient + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> Quantity {
        Quantity::parse(text).expect("valid quantity")
    }

    #[test]
    fn parses_the_suffixes_exactly() {
        assert_eq!(q("2").milli_value(), 2000);
        assert_eq!(q("500m").milli_value(), 500);
        assert_eq!(q("0.5").milli_value(), 500);
        assert_eq!(q(".25").milli_value(), 250);
        assert_eq!(q("24Gi").value(), 24 * (1 << 30));
        assert_eq!(q("1Mi").value(), 1 << 20);
        assert_eq!(q("1k").value(), 1000);
        assert_eq!(q("1M").value(), 1_000_000);
        assert_eq!(q("1e3").value(), 1000);
        assert_eq!(q("1E3").value(), 1000);
        assert_eq!(q("5E").value(), 5_000_000_000_000_000_000);
        assert_eq!(q("1500e-3").value(), 2, "1.5 rounds up");
        assert_eq!(q("1n").milli_value(), 1, "sub-milli rounds up");
        assert_eq!(q("0").value(), 0);
    }

    #[test]
    fn refuses_what_kubernetes_refuses() {
        assert!(matches!(
            Quantity::parse("1Xi"),
            Err(QuantityError::Suffix(_))
        ));
        assert!(matches!(
            Quantity::parse("abc"),
            Err(QuantityError::Syntax(_))
        ));
        assert!(matches!(Quantity::parse(""), Err(QuantityError::Syntax(_))));
        assert!(matches!(
            Quantity::parse("1.2.3"),
            Err(QuantityError::Syntax(_))
        ));
        assert!(matches!(
            Quantity::parse("1e"),
            Err(QuantityError::Syntax(_))
        ));
        assert!(matches!(
            Quantity::parse("-1"),
            Err(QuantityError::Negative(_))
        ));
    }
}
