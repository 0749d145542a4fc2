//! Proleptic Gregorian calendar arithmetic (Howard Hinnant's algorithms), shared by every place
//! that reads or writes a UTC date: SigV4's `X-Amz-Date`, IAM's `aws:CurrentTime`.

/// Days since 1970-01-01 of a civil date.
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The civil date `(year, month, day)` of a day number since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

/// Epoch milliseconds of an ISO 8601 date-time as AWS clients write them: `2026-12-07T07:00:00Z`,
/// with optional fractional seconds and a `Z` or `±hh:mm` offset; a date alone means midnight
/// UTC. `None` for anything else.
pub fn parse_iso8601_millis(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, time) = match text.split_once(['T', 't', ' ']) {
        Some((date, time)) => (date, Some(time)),
        None => (text, None),
    };
    let mut parts = date.splitn(3, '-');
    let year: i64 = parse_digits(parts.next()?, 4)?;
    let month: i64 = parse_digits(parts.next()?, 2)?;
    let day: i64 = parse_digits(parts.next()?, 2)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut millis = days_from_civil(year, month, day) * 86_400_000;
    let Some(time) = time else { return Some(millis) };
    let (clock, offset_minutes) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else if let Some(at) = time.rfind(['+', '-']) {
        let (clock, offset) = time.split_at(at);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (hours, minutes) = offset[1..].split_once(':').unwrap_or((&offset[1..], "00"));
        (clock, sign * (parse_digits(hours, 2)? * 60 + parse_digits(minutes, 2)?))
    } else {
        (time, 0)
    };
    let (whole, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut fields = whole.splitn(3, ':');
    let hour: i64 = parse_digits(fields.next()?, 2)?;
    let minute: i64 = parse_digits(fields.next()?, 2)?;
    let second: i64 = fields.next().map(|s| parse_digits(s, 2)).unwrap_or(Some(0))?;
    if hour > 23 || minute > 59 || second > 60 || !fraction.bytes().all(|b| b.is_ascii_digit()) || fraction.len() > 9 {
        return None;
    }
    let fraction_millis = format!("{fraction:0<3}")[..3].parse::<i64>().ok()?;
    millis += ((hour * 60 + minute - offset_minutes) * 60 + second) * 1000 + fraction_millis;
    Some(millis)
}

fn parse_digits(text: &str, len: usize) -> Option<i64> {
    (text.len() == len && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().ok()).flatten()
}

/// `2026-12-07T07:00:00Z` (with `.123` when the milliseconds are not zero), as AWS's XML answers
/// write timestamps.
pub fn format_iso8601_millis(millis: i64) -> String {
    let (days, in_day) = (millis.div_euclid(86_400_000), millis.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second, ms) = (in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1000 % 60, in_day % 1000);
    if ms == 0 {
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{ms:03}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_as_clients_write_it() {
        let at = days_from_civil(2026, 12, 7) * 86_400_000 + 7 * 3_600_000;
        assert_eq!(parse_iso8601_millis("2026-12-07T07:00:00Z"), Some(at));
        assert_eq!(parse_iso8601_millis("2026-12-07T07:00:00.250000Z"), Some(at + 250));
        assert_eq!(parse_iso8601_millis("2026-12-07T08:00:00+01:00"), Some(at));
        assert_eq!(parse_iso8601_millis("2026-12-07T07:00:00"), Some(at));
        assert_eq!(parse_iso8601_millis("2026-12-07"), Some(at - 7 * 3_600_000));
        for bad in ["", "yesterday", "2026-13-01T00:00:00Z", "2026-12-07T25:00:00Z", "2026-12-07T07:00:00.x"] {
            assert_eq!(parse_iso8601_millis(bad), None, "{bad}");
        }
        assert_eq!(format_iso8601_millis(at), "2026-12-07T07:00:00Z");
        assert_eq!(format_iso8601_millis(at + 5), "2026-12-07T07:00:00.005Z");
    }

    #[test]
    fn round_trips_and_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(20_793), (2026, 12, 6));
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
