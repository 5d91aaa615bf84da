//! Money: integer nano-dollars (1e-9 USD) everywhere, so sums are exact. Prices are written
//! as decimal USD per million tokens (the way vendors publish them) and parsed exactly.

/// Nano-dollars in one US dollar.
pub const NANOS_PER_USD: i64 = 1_000_000_000;

/// Formats nano-dollars as a dollar amount with at least two and at most nine decimals,
/// without losing digits: `1_500` → `"$0.0000015"`, `2_000_000_000` → `"$2.00"`.
pub fn format_usd(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let abs = nanos.unsigned_abs();
    let whole = abs / NANOS_PER_USD as u64;
    let frac = format!("{:09}", abs % NANOS_PER_USD as u64);
    let trimmed = frac.trim_end_matches('0');
    let frac = if trimmed.len() < 2 {
        &frac[..2]
    } else {
        trimmed
    };
    format!("{sign}${whole}.{frac}")
}

/// The same amount as a plain decimal string without the sign (`"0.0000015"`), for JSON.
pub fn decimal_usd(nanos: i64) -> String {
    format_usd(nanos).replacen('$', "", 1)
}

/// Converts a cost reported as a float in USD (LiteLLM's `usage.cost`) to nano-dollars,
/// rounding to the nearest; `None` for negative, infinite or absurd values.
pub fn usd_f64_to_nanos(usd: f64) -> Option<i64> {
    if !usd.is_finite() || !(0.0..=1e9).contains(&usd) {
        return None;
    }
    Some((usd * NANOS_PER_USD as f64).round() as i64)
}

/// Parses a non-negative decimal USD amount exactly into nano-dollars per unit
/// (`"2.50"` → 2_500_000_000); at most nine decimals.
pub fn parse_usd(text: &str) -> Option<i64> {
    let text = text.trim();
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if !whole.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 9
    {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac: i64 = format!("{frac:0<9}").parse().ok()?;
    whole.checked_mul(NANOS_PER_USD)?.checked_add(frac)
}

/// A model's price in nano-dollars per million tokens, input and output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelPrice {
    pub input_per_million: i64,
    pub output_per_million: i64,
}

impl ModelPrice {
    /// The cost of one completion, rounded half up to a whole nano-dollar.
    pub fn cost_nanos(&self, prompt_tokens: i64, completion_tokens: i64) -> i64 {
        let total = i128::from(prompt_tokens) * i128::from(self.input_per_million)
            + i128::from(completion_tokens) * i128::from(self.output_per_million);
        ((total + 500_000) / 1_000_000).clamp(0, i128::from(i64::MAX)) as i64
    }
}

/// Parses a price table: `model=input:output` pairs (USD per million tokens) separated by
/// commas, e.g. `gpt-4o=2.50:10,gpt-4o-mini=0.15:0.60`.
pub fn parse_price_table(text: &str) -> Result<Vec<(String, ModelPrice)>, String> {
    let mut table = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || {
            format!(
                "{entry:?} is not model=input:output (USD per million tokens, e.g. gpt-4o=2.50:10)"
            )
        };
        let (model, prices) = entry.split_once('=').ok_or_else(bad)?;
        let (input, output) = prices.split_once(':').ok_or_else(bad)?;
        let model = model.trim();
        if model.is_empty() {
            return Err(bad());
        }
        table.push((
            model.to_string(),
            ModelPrice {
                input_per_million: parse_usd(input).ok_or_else(bad)?,
                output_per_million: parse_usd(output).ok_or_else(bad)?,
            },
        ));
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_without_losing_digits() {
        for (nanos, text) in [
            (0, "$0.00"),
            (1, "$0.000000001"),
            (1_500, "$0.0000015"),
            (50_000, "$0.00005"),
            (10_000_000, "$0.01"),
            (2_000_000_000, "$2.00"),
            (2_500_000_000, "$2.50"),
            (12_345_678_901, "$12.345678901"),
            (-1_500, "-$0.0000015"),
        ] {
            assert_eq!(format_usd(nanos), text, "{nanos}");
        }
        assert_eq!(decimal_usd(1_500), "0.0000015");
    }

    #[test]
    fn parses_decimal_dollars_exactly() {
        for (text, nanos) in [
            ("0", Some(0)),
            ("2.50", Some(2_500_000_000)),
            ("0.15", Some(150_000_000)),
            (".5", Some(500_000_000)),
            ("10", Some(10_000_000_000)),
            ("0.000000001", Some(1)),
            ("0.0000000001", None),
            ("-1", None),
            ("1e3", None),
            ("", None),
            (".", None),
            ("abc", None),
        ] {
            assert_eq!(parse_usd(text), nanos, "{text:?}");
        }
    }

    #[test]
    fn converts_reported_float_costs() {
        // What LiteLLM reports for 10 + 20 tokens at $1/$2 per million.
        assert_eq!(usd_f64_to_nanos(4.9999999999999996e-05), Some(50_000));
        assert_eq!(usd_f64_to_nanos(0.000029), Some(29_000));
        assert_eq!(usd_f64_to_nanos(0.0), Some(0));
        assert_eq!(usd_f64_to_nanos(-0.1), None);
        assert_eq!(usd_f64_to_nanos(f64::NAN), None);
    }

    #[test]
    fn prices_completions_with_half_up_rounding() {
        let mini = ModelPrice {
            input_per_million: 150_000_000,  // $0.15 per million
            output_per_million: 600_000_000, // $0.60 per million
        };
        assert_eq!(mini.cost_nanos(0, 0), 0);
        assert_eq!(mini.cost_nanos(1, 0), 150);
        assert_eq!(mini.cost_nanos(1_000_000, 1_000_000), 750_000_000);
        let odd = ModelPrice {
            input_per_million: 1,
            output_per_million: 0,
        };
        assert_eq!(odd.cost_nanos(499_999, 0), 0);
        assert_eq!(odd.cost_nanos(500_000, 0), 1);
    }

    #[test]
    fn parses_price_tables_and_names_bad_entries() {
        let table = parse_price_table(" gpt-4o=2.50:10 , claude-mock=3:15,").unwrap();
        assert_eq!(table.len(), 2);
        assert_eq!(table[0].0, "gpt-4o");
        assert_eq!(table[0].1.output_per_million, 10_000_000_000);
        assert_eq!(parse_price_table("").unwrap(), vec![]);
        for bad in ["gpt-4o", "gpt-4o=1", "=1:2", "m=1:x", "m=-1:2"] {
            let err = parse_price_table(bad).unwrap_err();
            assert!(err.contains("model=input:output"), "{bad}: {err}");
        }
    }
}
