//! Numbers as people read them.

/// `1234567` → `"1,234,567"` (negative numbers keep their sign).
pub fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A count of tenths written with one decimal: `153` → `"15.3"`, `1000` → `"100.0"`.
///
/// The figures the pages show with a decimal are computed and written in integers: formatting
/// a float would bring the float formatter (some 15 KB) into the browser build.
pub fn tenths(tenths: i64) -> String {
    let sign = if tenths < 0 { "-" } else { "" };
    let n = tenths.unsigned_abs();
    format!("{sign}{}.{}", n / 10, n % 10)
}

/// `part / whole` in tenths of a percent, rounded half up (`1, 3` → 333, i.e. 33.3 %);
/// 0 when `whole` is not positive.
pub fn percent_tenths(part: i64, whole: i64) -> i64 {
    if whole <= 0 {
        return 0;
    }
    let (part, whole) = (i128::from(part.max(0)), i128::from(whole));
    ((part * 1000 + whole / 2) / whole).min(i128::from(i64::MAX)) as i64
}

#[cfg(test)]
mod tests {
    use super::{grouped, percent_tenths, tenths};

    #[test]
    fn tenths_and_shares_in_integers() {
        assert_eq!(tenths(153), "15.3");
        assert_eq!(tenths(1000), "100.0");
        assert_eq!(tenths(5), "0.5");
        assert_eq!(tenths(-15), "-1.5");
        assert_eq!(percent_tenths(1, 3), 333);
        assert_eq!(percent_tenths(2, 3), 667);
        assert_eq!(percent_tenths(1, 2000), 1); // 0.05 % rounds up
        assert_eq!(percent_tenths(5, 5), 1000);
        assert_eq!(percent_tenths(1, 0), 0);
        assert_eq!(percent_tenths(i64::MAX, 1), i64::MAX);
    }

    #[test]
    fn thousands_are_grouped() {
        for (n, want) in [
            (0, "0"),
            (999, "999"),
            (1_000, "1,000"),
            (100_000, "100,000"),
            (1_234_567, "1,234,567"),
            (-1_000, "-1,000"),
            (i64::MIN, "-9,223,372,036,854,775,808"),
        ] {
            assert_eq!(grouped(n), want);
        }
    }
}
