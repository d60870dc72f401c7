//! The `auks -D` table (spec §8.2), formatted as the C `_print_creds`.

use auks::proto::CredRecord;

/// Replace control characters in peer-provided text.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// `%FT%T%z` in local time, as C `strftime`; `None` if out of range.
fn local_time(t: i64) -> Option<String> {
    use chrono::TimeZone;
    chrono::Local
        .timestamp_opt(t, 0)
        .single()
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%z").to_string())
}

/// The dump table (§8.2), formatted as C `_print_creds`.
pub fn dump_table(creds: &[CredRecord]) -> String {
    let mut s = format!(
        "{:<10} {:<34} {:<24} {:<24} {:<24}\n",
        "UID", "PRINCIPAL", "START_TIME", "END_TIME", "RENEW_UNTIL"
    );
    for c in creds {
        // C skips a row whose times localtime() cannot convert.
        let (Some(start), Some(end), Some(renew)) = (
            local_time(c.starttime),
            local_time(c.endtime),
            local_time(c.renew_till),
        ) else {
            continue;
        };
        s.push_str(&format!(
            "{:<10} {:<34} {start} {end} {renew}\n",
            c.uid,
            printable(&c.principal)
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    #[test]
    fn dump_table_format() {
        let rec = CredRecord {
            principal: "alice@TEST.REALM".into(),
            uid: 3001,
            starttime: 1_700_000_000,
            endtime: 1_700_036_000,
            renew_till: 1_700_604_800,
            addressless: true,
            crossrealm: false,
            data: Zeroizing::new(vec![1, 2, 3]),
            status: 0,
        };
        let t = dump_table(&[rec]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            format!(
                "{:<10} {:<34} {:<24} {:<24} {:<24}",
                "UID", "PRINCIPAL", "START_TIME", "END_TIME", "RENEW_UNTIL"
            )
        );
        let row = lines[1];
        assert!(
            row.starts_with("3001       alice@TEST.REALM                   "),
            "{row:?}"
        );
        let times: Vec<&str> = row[46..].split(' ').collect();
        assert_eq!(times.len(), 3, "{row:?}");
        for t in times {
            // e.g. 2023-11-14T22:13:20+0000
            assert_eq!(t.len(), 24, "{t:?}");
            assert_eq!(&t[10..11], "T");
            assert!(
                t[19..].starts_with('+') || t[19..].starts_with('-'),
                "{t:?}"
            );
        }
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn control_chars_in_principal_are_neutralised() {
        assert_eq!(printable("a\x1b[2Jb\n"), "a?[2Jb?");
    }
}
