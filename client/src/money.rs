//! Money and quantities as people type and read them: yuan with two decimals (`85.42`),
//! thousands separators in reports (`1,059,856,815.00`), always exact (integers of fen and
//! tonnes, never floats).

/// Yuan as typed by people (`85`, `85.4`, `85.42`) to fen, exactly.
pub fn parse_yuan(text: &str) -> Result<i64, String> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let bad = || format!("{text:?} is not an amount in yuan (e.g. 85.42)");
    if whole.is_empty()
        || frac.len() > 2
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac: i64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(bad)
}

/// Fen as yuan with two decimals.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        fen.unsigned_abs() / 100,
        fen.unsigned_abs() % 100
    )
}

/// 1234567 -> "1,234,567".
pub fn grouped(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Fen as yuan with thousands separators: 470750060 -> "4,707,500.60".
pub fn money(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        grouped(fen.unsigned_abs() / 100),
        fen.unsigned_abs() % 100
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_parse_and_print_exactly() {
        assert_eq!(parse_yuan("85.42"), Ok(8_542));
        assert_eq!(parse_yuan("85.4"), Ok(8_540));
        assert_eq!(parse_yuan("85"), Ok(8_500));
        assert_eq!(parse_yuan("0.07"), Ok(7));
        for bad in [
            "",
            ".5",
            "85.423",
            "-1",
            "1e3",
            "8 5",
            "99999999999999999999",
        ] {
            assert!(parse_yuan(bad).is_err(), "{bad}");
        }
        assert_eq!(yuan(8_542), "85.42");
        assert_eq!(yuan(-7), "-0.07");
    }

    #[test]
    fn reports_group_thousands() {
        assert_eq!(grouped(8_907_876_948), "8,907,876,948");
        assert_eq!(grouped(999), "999");
        assert_eq!(money(105_985_681_500), "1,059,856,815.00");
        assert_eq!(money(-470_750_060), "-4,707,500.60");
    }
}
