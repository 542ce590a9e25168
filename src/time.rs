//! Dates, timestamps and durations as `churn features` reads them.
//!
//! Times are seconds in the spec's local frame (UTC plus its `utc_offset`): a timestamp with a zone
//! is moved to that frame, one without a zone is taken as already in it, and a snapshot date starts
//! at local midnight. Days are whole days since 1970-01-01 in the same frame.
//!
//! The parser is written out by hand because it runs once per event: ISO 8601 dates
//! (`2020-03-01`, `20200301`) and date-times (`2020-03-01T10:15`, `2020-03-01 10:15:30.25`,
//! optionally followed by `Z`, `+02:00`, `+0200` or `+02`).

pub const SECONDS_PER_DAY: i64 = 86_400;

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `YYYY-MM-DD` of a day number.
pub fn format_day(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The first day of the month `day` falls in.
pub fn month_start(day: i64) -> i64 {
    let (y, m, _) = civil_from_days(day);
    days_from_civil(y, m, 1)
}

/// The first day of the month `n` months after the month `day` falls in (`n` may be negative).
pub fn add_months(day: i64, n: i64) -> i64 {
    let (y, m, _) = civil_from_days(day);
    let k = y * 12 + i64::from(m) - 1 + n;
    days_from_civil(k.div_euclid(12), (k.rem_euclid(12) + 1) as u32, 1)
}

/// `YYYY-MM` of the month `day` falls in.
pub fn format_month(day: i64) -> String {
    let (y, m, _) = civil_from_days(day);
    format!("{y:04}-{m:02}")
}

/// The day a local time falls on.
#[inline]
pub fn day_of(t: i64) -> i64 {
    t.div_euclid(SECONDS_PER_DAY)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

#[inline]
fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u32::from(d);
    }
    Some(v)
}

/// The day of a date at the start of `b`, and how many bytes it took.
#[inline]
fn parse_date_prefix(b: &[u8]) -> Option<(i64, usize)> {
    let (y, m, d, used) = if b.len() >= 10 && b[4] == b'-' && b[7] == b'-' {
        (digits(&b[..4])?, digits(&b[5..7])?, digits(&b[8..10])?, 10)
    } else if b.len() >= 8 && b[..8].iter().all(u8::is_ascii_digit) {
        (digits(&b[..4])?, digits(&b[4..6])?, digits(&b[6..8])?, 8)
    } else {
        return None;
    };
    let y = i64::from(y);
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some((days_from_civil(y, m, d), used))
}

/// A UTC offset such as `Z`, `+02:00`, `-0530` or `+02`, in seconds east of UTC.
pub fn parse_offset(b: &[u8]) -> Option<i64> {
    match b {
        b"Z" | b"z" | b"UTC" | b"utc" => return Some(0),
        _ => {}
    }
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let rest = &b[1..];
    let (h, m) = match rest.len() {
        2 => (digits(rest)?, 0),
        4 => (digits(&rest[..2])?, digits(&rest[2..])?),
        5 if rest[2] == b':' => (digits(&rest[..2])?, digits(&rest[3..])?),
        _ => return None,
    };
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * i64::from(h * 3600 + m * 60))
}

/// A date or date-time as local seconds; `offset` is the local frame's offset from UTC, used
/// when the text carries a zone. None if it is not one of the accepted forms.
#[inline]
pub fn parse_timestamp(text: &str, offset: i64) -> Option<i64> {
    let b = text.trim().as_bytes();
    let (day, mut at) = parse_date_prefix(b)?;
    let mut secs = day * SECONDS_PER_DAY;
    if at == b.len() {
        return Some(secs);
    }
    if b[at] != b'T' && b[at] != b' ' && b[at] != b't' {
        return None;
    }
    at += 1;
    // HH:MM[:SS[.fraction]]
    if b.len() < at + 5 || b[at + 2] != b':' {
        return None;
    }
    let h = digits(&b[at..at + 2])?;
    let mi = digits(&b[at + 3..at + 5])?;
    at += 5;
    let mut s = 0;
    if at < b.len() && b[at] == b':' {
        s = digits(b.get(at + 1..at + 3)?)?;
        at += 3;
        if at < b.len() && (b[at] == b'.' || b[at] == b',') {
            at += 1;
            let frac = b[at..].iter().take_while(|c| c.is_ascii_digit()).count();
            if frac == 0 {
                return None;
            }
            at += frac;
        }
    }
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    secs += i64::from(h * 3600 + mi * 60 + s.min(59));
    if at == b.len() {
        return Some(secs);
    }
    let zone = &b[at..];
    let zone = zone.strip_prefix(b" ").unwrap_or(zone);
    let east = parse_offset(zone)?;
    Some(secs - east + offset)
}

/// A date (`YYYY-MM-DD` or `YYYYMMDD`) as a day number.
pub fn parse_day(text: &str) -> Option<i64> {
    let b = text.trim().as_bytes();
    match parse_date_prefix(b)? {
        (day, used) if used == b.len() => Some(day),
        _ => None,
    }
}

/// A duration in whole days: `90d`, `4w`, or a plain number of days.
pub fn parse_days(text: &str) -> Option<u32> {
    let t = text.trim();
    let (num, mul) = if let Some(n) = t.strip_suffix('d') {
        (n, 1)
    } else if let Some(n) = t.strip_suffix('w') {
        (n, 7)
    } else {
        (t, 1)
    };
    let n: u32 = num.trim().parse().ok()?;
    n.checked_mul(mul)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trips() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for day in [-800_000, -1, 0, 59, 60, 11_016, 18_321, 20_000, 3_000_000] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day, "{y}-{m}-{d}");
        }
        assert_eq!(format_day(days_from_civil(2020, 2, 29)), "2020-02-29");
    }

    #[test]
    fn dates_in_both_iso_forms() {
        let d = days_from_civil(1997, 1, 12);
        assert_eq!(parse_day("1997-01-12"), Some(d));
        assert_eq!(parse_day("19970112"), Some(d));
        assert_eq!(parse_timestamp("19970112", 0), Some(d * SECONDS_PER_DAY));
        for bad in [
            "1997-02-29",
            "2021-13-01",
            "2021-00-10",
            "97-01-12",
            "1997/01/12",
            "",
            "x",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
            assert_eq!(parse_timestamp(bad, 0), None, "{bad}");
        }
        assert_eq!(parse_day("2020-02-29"), Some(days_from_civil(2020, 2, 29)));
    }

    #[test]
    fn date_times_with_and_without_zones() {
        let day = days_from_civil(2020, 3, 1) * SECONDS_PER_DAY;
        assert_eq!(parse_timestamp("2020-03-01 10:15", 0), Some(day + 36_900));
        assert_eq!(
            parse_timestamp("2020-03-01T10:15:30", 0),
            Some(day + 36_930)
        );
        assert_eq!(
            parse_timestamp("2020-03-01T10:15:30.123456", 0),
            Some(day + 36_930)
        );
        assert_eq!(
            parse_timestamp("2020-03-01T10:15:30Z", 0),
            Some(day + 36_930)
        );
        // 01:00 at +02:00 is 23:00 UTC the day before.
        assert_eq!(
            parse_timestamp("2020-03-01T01:00:00+02:00", 0),
            Some(day - 3600)
        );
        assert_eq!(
            parse_timestamp("2020-03-01T01:00:00+0200", 0),
            Some(day - 3600)
        );
        assert_eq!(
            parse_timestamp("2020-03-01 01:00:00 +02", 0),
            Some(day - 3600)
        );
        // The same instant in a frame at +02:00 is 01:00 local.
        assert_eq!(
            parse_timestamp("2020-03-01T01:00:00+02:00", 7200),
            Some(day + 3600)
        );
        // Naive times are already local.
        assert_eq!(parse_timestamp("2020-03-01 01:00", 7200), Some(day + 3600));
        for bad in [
            "2020-03-01T25:00",
            "2020-03-01T10",
            "2020-03-01X10:00",
            "2020-03-01T10:00+2:00",
            "2020-03-01T10:00:00.",
        ] {
            assert_eq!(parse_timestamp(bad, 0), None, "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_days("90d"), Some(90));
        assert_eq!(parse_days("4w"), Some(28));
        assert_eq!(parse_days("7"), Some(7));
        assert_eq!(parse_days("d"), None);
        assert_eq!(parse_days("3m"), None);
        assert_eq!(parse_offset(b"-05:30"), Some(-19_800));
        assert_eq!(parse_offset(b"+24:00"), None);
    }

    #[test]
    fn months_step_over_year_ends_and_leap_days() {
        let d = |t: &str| parse_day(t).unwrap();
        assert_eq!(month_start(d("2020-02-29")), d("2020-02-01"));
        assert_eq!(add_months(d("2020-11-17"), 1), d("2020-12-01"));
        assert_eq!(add_months(d("2020-12-31"), 1), d("2021-01-01"));
        assert_eq!(add_months(d("2020-01-31"), -1), d("2019-12-01"));
        assert_eq!(add_months(d("2020-03-01"), 25), d("2022-04-01"));
        assert_eq!(format_month(d("2020-03-09")), "2020-03");
    }
}
