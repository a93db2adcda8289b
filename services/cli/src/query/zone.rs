//! Time zones for display: `UTC`, a fixed offset or an IANA name, and a timestamp shown in one
//! with its offset and the zone's name.

/// A time zone for display, with the label it is shown with.
#[derive(Debug, Clone)]
pub struct Zone {
    tz: jiff::tz::TimeZone,
    label: String,
}

impl Zone {
    /// `UTC` (or `Z`), a fixed offset (`+07:00`, `-0530`), or an IANA name (`Asia/Jakarta`).
    ///
    /// # Errors
    /// A sentence saying what is accepted.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("utc") || text == "Z" {
            return Ok(Self::utc());
        }
        if let Some(offset) = fixed_offset(text) {
            let offset = jiff::tz::Offset::from_seconds(offset)
                .map_err(|e| format!("time zone {text:?}: {e}"))?;
            return Ok(Self {
                tz: jiff::tz::TimeZone::fixed(offset),
                label: text.to_owned(),
            });
        }
        let tz = jiff::tz::TimeZone::get(text).map_err(|e| {
            format!(
                "time zone {text:?} is not UTC, an offset such as +07:00, or a known IANA name \
                 such as Asia/Jakarta ({e})"
            )
        })?;
        Ok(Self {
            tz,
            label: text.to_owned(),
        })
    }

    /// UTC.
    #[must_use]
    pub fn utc() -> Self {
        Self {
            tz: jiff::tz::TimeZone::UTC,
            label: "UTC".to_owned(),
        }
    }

    /// The zone's name as given (`UTC`, `+07:00`, `Asia/Jakarta`).
    #[must_use]
    pub fn label(&self) -> &str {
        &self.label
    }

    /// A time in this zone, with its offset and the zone's name: `2026-12-12 17:00:00 +07:00
    /// Asia/Jakarta`, `2026-12-12 10:00:00 UTC`.
    #[must_use]
    pub fn show(&self, ts: Option<&saleboard_proto::Timestamp>) -> String {
        let Some(at) = ts.and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok()) else {
            return String::new();
        };
        let zoned = at.to_zoned_datetime(self.tz.clone());
        if self.label == "UTC" {
            format!("{} UTC", zoned.strftime("%Y-%m-%d %H:%M:%S"))
        } else {
            format!("{} {}", zoned.strftime("%Y-%m-%d %H:%M:%S %:z"), self.label)
        }
    }
}

/// Seconds east of UTC of `+07:00`, `-05:30`, `+0700` or `+07`.
fn fixed_offset(text: &str) -> Option<i32> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    (hours <= 23 && minutes <= 59).then_some(sign * (hours * 3600 + minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_are_utc_offsets_or_iana_names() {
        let at = saleboard_proto::Timestamp {
            seconds: 1_765_533_600, // 2025-12-12T10:00:00Z
            nanos: 0,
        };
        let show = |zone: &str| Zone::parse(zone).expect(zone).show(Some(&at));
        assert_eq!(show("UTC"), "2025-12-12 10:00:00 UTC");
        assert_eq!(show("Z"), "2025-12-12 10:00:00 UTC");
        assert_eq!(show("+07:00"), "2025-12-12 17:00:00 +07:00 +07:00");
        assert_eq!(show("-0530"), "2025-12-12 04:30:00 -05:30 -0530");
        assert_eq!(show("+09"), "2025-12-12 19:00:00 +09:00 +09");
        assert_eq!(
            show("Asia/Jakarta"),
            "2025-12-12 17:00:00 +07:00 Asia/Jakarta"
        );
        for bad in ["Mars/Olympus", "+25:00", "+07:60", "7", "", "+7"] {
            assert!(Zone::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Zone::utc().show(None), "");
    }
}
