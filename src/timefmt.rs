//! Human-readable times for log lines and error reasons: one UTC format
//! (`2024-01-02T03:04:05Z`) shared by the renewers, aukspriv and auksd, so
//! that the lines of every program can be compared and sorted together.

/// `t` (seconds since the epoch) as `YYYY-MM-DDTHH:MM:SSZ`; `-` for 0 (a
/// time that is not set, e.g. the `renew_till` of a ticket that is not
/// renewable); the bare number when it is out of the calendar's range.
pub fn fmt_time(t: i64) -> String {
    if t == 0 {
        return "-".into();
    }
    use chrono::{Datelike, Timelike};
    // Written field by field: a strftime pattern is parsed again at every
    // call, and auksd writes such times in the log line of each request.
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| {
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                d.year(),
                d.month(),
                d.day(),
                d.hour(),
                d.minute(),
                d.second()
            )
        })
        .unwrap_or_else(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::fmt_time;

    #[test]
    fn formats() {
        assert_eq!(fmt_time(0), "-");
        assert_eq!(fmt_time(86400), "1970-01-02T00:00:00Z");
        assert_eq!(fmt_time(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(fmt_time(-1), "1969-12-31T23:59:59Z");
        assert_eq!(fmt_time(i64::MAX), i64::MAX.to_string());
    }
}
