//! Decimal numbers shown and typed on the page (sizes, percentages, durations), done in
//! integer arithmetic. `format!("{:.1}", x)` and `str::parse::<f64>` would link the standard
//! library's exact float printing and parsing (about 20 KB of wasm) for these few numbers.

/// `value` rounded to `decimals` places (half away from zero) and written with exactly that
/// many digits after the point: `fixed(4.56789, 2)` is `"4.57"`, `fixed(2.0, 0)` is `"2"`.
/// A negative value gets a leading `-`; not-a-number is `"0"` and an infinite or huge value
/// saturates at `u64::MAX` units of the last place. `decimals` above 9 counts as 9.
pub fn fixed(value: f64, decimals: u32) -> String {
    let decimals = decimals.min(9);
    let scale = 10u64.pow(decimals);
    // `as` saturates and maps NaN to 0.
    let units = (value.abs() * scale as f64).round() as u64;
    let sign = if value < 0.0 && units != 0 { "-" } else { "" };
    let whole = units / scale;
    if decimals == 0 {
        return format!("{sign}{whole}");
    }
    let fraction = units % scale;
    format!(
        "{sign}{whole}.{fraction:0width$}",
        width = decimals as usize
    )
}

/// The decimal number `text` (digits with at most one `.`; no sign, exponent or spaces inside)
/// times `unit`, rounded half up to a whole number: `scaled("1.5", 1000)` is `Some(1500)`.
/// `None` for anything else, for more than 18 digits after the point, and when the result
/// does not fit in a `u64`. Leading and trailing whitespace is ignored.
pub fn scaled(text: &str, unit: u64) -> Option<u64> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty())
        || !digits(whole)
        || !digits(fraction)
        || fraction.len() > 18
    {
        return None;
    }
    let number = |part: &str| -> Option<u128> {
        part.bytes().try_fold(0u128, |sum, byte| {
            sum.checked_mul(10)?.checked_add(u128::from(byte - b'0'))
        })
    };
    let whole = number(whole)?.checked_mul(u128::from(unit))?;
    let denominator = 10u128.pow(fraction.len() as u32);
    let fraction = number(fraction)? * u128::from(unit);
    let rounded = whole.checked_add((fraction + denominator / 2) / denominator)?;
    u64::try_from(rounded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_rounds_and_pads() {
        assert_eq!(fixed(4.56789, 2), "4.57");
        assert_eq!(fixed(2.0, 0), "2");
        assert_eq!(fixed(2.5, 0), "3");
        assert_eq!(fixed(0.05, 1), "0.1");
        assert_eq!(fixed(1.0 / 1024.0, 1), "0.0");
        assert_eq!(fixed(25.0, 1), "25.0");
        assert_eq!(fixed(7.004, 2), "7.00");
        assert_eq!(fixed(-1.25, 1), "-1.3");
        assert_eq!(fixed(-0.01, 1), "0.0");
        assert_eq!(fixed(f64::NAN, 2), "0.00");
        assert_eq!(fixed(0.123, 12), "0.123000000");
    }

    #[test]
    fn fixed_agrees_with_the_standard_library_where_no_tie_is_involved() {
        for value in [0.0, 0.3, 1.26, 99.94, 1023.96, 12345.678, 0.004] {
            for decimals in 0..4 {
                assert_eq!(
                    fixed(value, decimals),
                    format!("{value:.prec$}", prec = decimals as usize),
                    "{value} to {decimals} places"
                );
            }
        }
    }

    #[test]
    fn scaled_reads_decimal_text() {
        assert_eq!(scaled("1.5", 1000), Some(1500));
        assert_eq!(scaled(" 7 ", 86_400_000), Some(604_800_000));
        assert_eq!(scaled("0.25", 86_400_000), Some(21_600_000));
        assert_eq!(scaled(".5", 10), Some(5));
        assert_eq!(scaled("3.", 10), Some(30));
        assert_eq!(scaled("0.0000001", 86_400_000), Some(9));
        assert_eq!(scaled("0.00000001", 86_400_000), Some(1));
        assert_eq!(scaled("0.000000001", 86_400_000), Some(0));
    }

    #[test]
    fn scaled_refuses_what_is_not_a_plain_decimal() {
        for text in [
            "", ".", "-1", "+1", "1e3", "1.2.3", "one", "1 2", "inf", "NaN", "0x10",
        ] {
            assert_eq!(scaled(text, 1000), None, "{text:?}");
        }
        assert_eq!(scaled("18446744073709551616", 1), None);
        assert_eq!(scaled("18446744073709551615", 1), Some(u64::MAX));
        assert_eq!(scaled("1000000000000000000000", 86_400_000), None);
        assert_eq!(scaled("0.1234567890123456789", 1), None);
    }
}
