//! `RETENTION_SCHEDULE`'s value: `daily@HH:MM` (UTC). A plain setting type, parsed with the
//! other settings (`config`); what a scheduled run does is `retention::schedule`.

use chrono::{DateTime, NaiveTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Time of day, UTC.
    pub at: NaiveTime,
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let bad =
            || format!("{text:?} is not a schedule: write daily@HH:MM (UTC), e.g. daily@03:00");
        let time = text.strip_prefix("daily@").ok_or_else(bad)?;
        if time.len() != 5 {
            return Err(bad());
        }
        let at = NaiveTime::parse_from_str(time, "%H:%M").map_err(|_| bad())?;
        Ok(Schedule { at })
    }

    /// The first run strictly after `now`.
    pub fn next_after(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let today = now.date_naive().and_time(self.at).and_utc();
        if today > now {
            today
        } else {
            today + chrono::Duration::days(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_at_a_time() {
        let s = Schedule::parse("daily@03:00").unwrap();
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(
            s.next_after(t("2026-01-01T02:00:00Z")),
            t("2026-01-01T03:00:00Z")
        );
        assert_eq!(
            s.next_after(t("2026-01-01T03:00:00Z")),
            t("2026-01-02T03:00:00Z")
        );
        for bad in [
            "",
            "daily",
            "daily@3:00",
            "daily@24:00",
            "weekly@03:00",
            "daily@03:00 ",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }
}
