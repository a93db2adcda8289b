//! Figures as people read them: money in the reporting currency's own style
//! (`Rp 31.234.567.890`, minor units only when not zero), times in the event's time zone.

use saleboard_domain::Currency;

/// How a currency is written: its symbol, the thousands separator and the decimal mark.
fn style(code: &str) -> (&'static str, char, char) {
    match code {
        "IDR" => ("Rp ", '.', ','),
        "EUR" => ("€", '.', ','),
        "USD" => ("US$", ',', '.'),
        "SGD" => ("S$", ',', '.'),
        "MYR" => ("RM ", ',', '.'),
        "JPY" => ("¥", ',', '.'),
        "CNY" => ("CN¥", ',', '.'),
        "GBP" => ("£", ',', '.'),
        _ => ("", ',', '.'),
    }
}

/// Groups the digits of `digits` by three with `sep`.
fn group(digits: &str, sep: char) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

/// `minor` (a decimal integer of minor units, as a report carries it) of `currency` as people
/// read it: `Rp 31.234.567.890`, `Rp 1.500,50`, `US$1,234.50`, `-Rp 5.000`, `KRW 1,000` for a
/// currency without a symbol here. Minor units only when not zero. Text that is not an integer
/// is given back as it is (a report never holds one).
#[must_use]
pub fn money(minor: &str, currency: &str) -> String {
    let Ok(value) = minor.parse::<i128>() else {
        return minor.to_owned();
    };
    let exponent = Currency::parse(currency).map_or(0, |c| c.exponent());
    let (symbol, sep, mark) = style(currency);
    let digits = value.unsigned_abs().to_string();
    let exponent = usize::from(exponent);
    let (major, fraction) = if exponent == 0 {
        (digits.as_str(), "")
    } else if digits.len() > exponent {
        digits.split_at(digits.len() - exponent)
    } else {
        ("0", "")
    };
    let padded;
    let fraction = if exponent > 0 && digits.len() <= exponent {
        padded = format!("{digits:0>exponent$}");
        padded.as_str()
    } else {
        fraction
    };
    let mut out = String::new();
    if value < 0 {
        out.push('-');
    }
    if symbol.is_empty() {
        out.push_str(currency);
        out.push(' ');
    } else {
        out.push_str(symbol);
    }
    out.push_str(&group(major, sep));
    if fraction.chars().any(|c| c != '0') {
        out.push(mark);
        out.push_str(fraction);
    }
    out
}

/// A count with thousands separators in the currency's style.
#[must_use]
pub fn count(n: u64, currency: &str) -> String {
    group(&n.to_string(), style(currency).1)
}

/// A percentage (`"21.40"`) in the currency's style (`21,40%` for IDR).
#[must_use]
pub fn percent(text: &str, currency: &str) -> String {
    let mark = style(currency).2;
    format!("{}%", text.replace('.', &mark.to_string()))
}

/// The time zone database built into the binary (never the machine's): the same software
/// version writes the same local times wherever a report is made or checked.
fn zones() -> &'static jiff::tz::TimeZoneDatabase {
    static ZONES: std::sync::OnceLock<jiff::tz::TimeZoneDatabase> = std::sync::OnceLock::new();
    ZONES.get_or_init(jiff::tz::TimeZoneDatabase::bundled)
}

/// `seconds` since the epoch in `zone` (an IANA name; UTC when empty or unknown), written
/// with `pattern` (strftime).
fn zoned(seconds: i64, zone: &str, pattern: &str) -> String {
    let tz = if zone.is_empty() {
        jiff::tz::TimeZone::UTC
    } else {
        zones().get(zone).unwrap_or(jiff::tz::TimeZone::UTC)
    };
    match jiff::Timestamp::from_second(seconds) {
        Ok(t) => t.to_zoned_datetime(tz).strftime(pattern).to_string(),
        Err(_) => seconds.to_string(),
    }
}

/// A time (seconds since the epoch, as a protobuf timestamp carries it) in `zone` (an IANA
/// name; UTC when empty or unknown): `12 Dec 2026 21:04 WIB`.
#[must_use]
pub fn time(seconds: i64, zone: &str) -> String {
    zoned(seconds, zone, "%-d %b %Y %H:%M %Z")
}

/// A time in `zone`, short, for a chart's axis: `12 Dec 07:00`.
#[must_use]
pub fn short_time(seconds: i64, zone: &str) -> String {
    zoned(seconds, zone, "%-d %b %H:%M")
}

/// As [`time`] with seconds.
#[must_use]
pub fn time_seconds(seconds: i64, zone: &str) -> String {
    zoned(seconds, zone, "%-d %b %Y %H:%M:%S %Z")
}

/// A time as RFC 3339 in UTC (the data files' form).
#[must_use]
pub fn rfc3339(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds).map_or_else(|_| seconds.to_string(), |t| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_come_from_the_built_in_time_zone_database() {
        let db = format!("{:?}", zones());
        assert!(db.to_lowercase().contains("bundled"), "{db}");
        assert!(zones().get("Asia/Jakarta").is_ok());
    }

    #[test]
    fn rupiah_is_grouped_with_dots_and_sen_shown_only_when_not_zero() {
        // IDR has two minor digits in ISO 4217: 3,123,456,789,000 minor units = Rp 31.234.567.890.
        assert_eq!(money("3123456789000", "IDR"), "Rp 31.234.567.890");
        assert_eq!(money("150050", "IDR"), "Rp 1.500,50");
        assert_eq!(money("-500000", "IDR"), "-Rp 5.000");
        assert_eq!(money("0", "IDR"), "Rp 0");
        assert_eq!(money("5", "IDR"), "Rp 0,05");
        assert_eq!(money("100", "IDR"), "Rp 1");
    }

    #[test]
    fn other_currencies_keep_their_own_style() {
        assert_eq!(money("123450", "USD"), "US$1,234.50");
        assert_eq!(money("123400", "USD"), "US$1,234");
        assert_eq!(money("1000", "JPY"), "¥1,000");
        assert_eq!(money("1000", "KRW"), "KRW 1,000");
        assert_eq!(money("123456789", "EUR"), "€1.234.567,89");
        assert_eq!(money("not a number", "IDR"), "not a number");
        // Past i64: reports carry exact decimals of any size.
        assert_eq!(
            money("100000000000000000000000", "IDR"),
            "Rp 1.000.000.000.000.000.000.000"
        );
    }

    #[test]
    fn counts_and_percentages_follow_the_currency() {
        assert_eq!(count(1_234_567, "IDR"), "1.234.567");
        assert_eq!(count(999, "USD"), "999");
        assert_eq!(percent("21.40", "IDR"), "21,40%");
        assert_eq!(percent("-3.05", "USD"), "-3.05%");
    }

    #[test]
    fn times_are_in_the_events_zone() {
        // 2026-12-12T00:00:00Z is 07:00 in Jakarta (WIB, UTC+7).
        let s = 1_797_033_600;
        assert_eq!(time(s, "Asia/Jakarta"), "12 Dec 2026 07:00 WIB");
        assert_eq!(time(s, ""), "12 Dec 2026 00:00 UTC");
        assert_eq!(time(s, "Not/AZone"), "12 Dec 2026 00:00 UTC");
        assert_eq!(
            time_seconds(s + 5, "Asia/Jakarta"),
            "12 Dec 2026 07:00:05 WIB"
        );
        assert_eq!(rfc3339(s), "2026-12-12T00:00:00Z");
        assert_eq!(short_time(s, "Asia/Jakarta"), "12 Dec 07:00");
    }
}
