//! Time in the ledger is an `i64` count of nanoseconds since the Unix epoch (UTC), which covers
//! the years 1678 to 2262 exactly and compares as an integer.

/// Nanoseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnixNanos(pub i64);

const NANOS_PER_SEC: i64 = 1_000_000_000;

impl UnixNanos {
    /// From a protobuf-style (seconds, nanos) pair. `None` when `nanos` is outside
    /// `0..1_000_000_000` or the instant does not fit in an `i64` of nanoseconds.
    #[must_use]
    pub fn from_parts(seconds: i64, nanos: i32) -> Option<Self> {
        if !(0..1_000_000_000).contains(&nanos) {
            return None;
        }
        seconds
            .checked_mul(NANOS_PER_SEC)?
            .checked_add(i64::from(nanos))
            .map(Self)
    }

    /// Back to a (seconds, nanos) pair with `0 <= nanos < 1e9`.
    #[must_use]
    pub fn to_parts(self) -> (i64, i32) {
        let secs = self.0.div_euclid(NANOS_PER_SEC);
        // rem_euclid of a positive divisor is in 0..1e9, which fits an i32.
        let nanos = i32::try_from(self.0.rem_euclid(NANOS_PER_SEC)).unwrap_or(0);
        (secs, nanos)
    }

    /// Adds whole seconds, saturating at the ends of the range.
    #[must_use]
    pub fn saturating_add_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs.saturating_mul(NANOS_PER_SEC)))
    }

    /// The current wall-clock time.
    #[must_use]
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }

    /// Start of the UTC hour containing this instant.
    #[must_use]
    pub fn hour_start(self) -> Self {
        const HOUR: i64 = 3_600 * NANOS_PER_SEC;
        Self(self.0 - self.0.rem_euclid(HOUR))
    }

    /// RFC 3339 in UTC (for messages people read), or the raw nanoseconds when out of range.
    #[must_use]
    pub fn to_rfc3339(self) -> String {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0))
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| format!("{} ns since 1970", self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_rfc3339_in_utc() {
        assert_eq!(UnixNanos(0).to_rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(
            UnixNanos(1_765_324_800_000_000_000).to_rfc3339(),
            "2025-12-10T00:00:00Z"
        );
    }

    #[test]
    fn parts_round_trip() {
        for (s, n) in [(0, 0), (1, 5), (-1, 999_999_999), (1_765_497_600, 123)] {
            let t = UnixNanos::from_parts(s, n).expect("in range");
            assert_eq!(t.to_parts(), (s, n));
        }
    }

    #[test]
    fn refuses_bad_nanos_and_overflow() {
        assert_eq!(UnixNanos::from_parts(0, -1), None);
        assert_eq!(UnixNanos::from_parts(0, 1_000_000_000), None);
        assert_eq!(UnixNanos::from_parts(i64::MAX / 1_000_000_000 + 1, 0), None);
        assert_eq!(UnixNanos::from_parts(i64::MIN, 0), None);
    }

    #[test]
    fn hour_start_floors_in_utc() {
        let t = UnixNanos::from_parts(7_200 + 59 * 60 + 59, 999).expect("in range");
        assert_eq!(t.hour_start(), UnixNanos(7_200 * NANOS_PER_SEC));
        let before_epoch = UnixNanos(-1);
        assert_eq!(before_epoch.hour_start(), UnixNanos(-3_600 * NANOS_PER_SEC));
    }
}
