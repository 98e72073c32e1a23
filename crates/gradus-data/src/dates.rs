//! Dates and times in text cells: ISO 8601 (`2024-03-15`,
//! `2024-03-15T08:30:00Z`, `2024-03-15 08:30`) and the common
//! day/month/year forms (`15/03/2024`, `15.03.2024`, `15-03-2024`, with an
//! optional time), or month/day/year where a column shows it (a second
//! field above 12, a first never). A time-zone suffix is accepted and
//! ignored: times are read as written.

use serde::{Deserialize, Serialize};

/// How a column writes its dates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateOrder {
    Iso,
    DayFirst,
    MonthFirst,
}

/// A parsed date and time of day.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DateTime {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    /// Seconds since midnight.
    pub seconds: u32,
}

impl DateTime {
    /// Days since 1970-01-01 (Howard Hinnant's days_from_civil), with the
    /// time of day as a fraction.
    pub fn days_since_epoch(&self) -> f64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        (era * 146_097 + doe - 719_468) as f64 + f64::from(self.seconds) / 86_400.0
    }

    /// 0 = Monday … 6 = Sunday.
    pub fn weekday(&self) -> u32 {
        // 1970-01-01 was a Thursday (3).
        ((self.days_since_epoch().floor() as i64 + 3).rem_euclid(7)) as u32
    }
}

impl DateOrder {
    /// The order every one of `values` parses in, if there is one.
    pub fn of(values: &[&str]) -> Option<DateOrder> {
        if values.is_empty() {
            return None;
        }
        if values.iter().all(|v| parse(v, DateOrder::Iso).is_some()) {
            return Some(DateOrder::Iso);
        }
        let fields: Vec<(u32, u32)> =
            values.iter().map(|v| split_dmy(v).map(|(a, b, _, _)| (a, b))).collect::<Option<_>>()?;
        let order = if fields.iter().all(|&(a, _)| a <= 12) && fields.iter().any(|&(_, b)| b > 12) {
            DateOrder::MonthFirst
        } else {
            DateOrder::DayFirst
        };
        values.iter().all(|v| parse(v, order).is_some()).then_some(order)
    }

    pub fn describe(self) -> &'static str {
        match self {
            DateOrder::Iso => "ISO 8601",
            DateOrder::DayFirst => "day/month/year",
            DateOrder::MonthFirst => "month/day/year",
        }
    }
}

/// `text` as a date in `order`, if it is one (a real calendar date).
pub fn parse(text: &str, order: DateOrder) -> Option<DateTime> {
    let (year, month, day, rest) = match order {
        DateOrder::Iso => {
            let b = text.as_bytes();
            if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
                return None;
            }
            (digits(&text[0..4])? as i32, digits(&text[5..7])?, digits(&text[8..10])?, &text[10..])
        }
        DateOrder::DayFirst | DateOrder::MonthFirst => {
            let (a, b, year, rest) = split_dmy(text)?;
            let (day, month) = if order == DateOrder::DayFirst { (a, b) } else { (b, a) };
            (year as i32, month, day, rest)
        }
    };
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(DateTime { year, month, day, seconds: time_of_day(rest)? })
}

/// `a/b/yyyy` (or with `.` or `-`) and what follows it.
fn split_dmy(text: &str) -> Option<(u32, u32, u32, &str)> {
    let sep = text.chars().find(|c| matches!(c, '/' | '.' | '-'))?;
    let mut parts = text.splitn(3, sep);
    let (a, b, tail) = (parts.next()?, parts.next()?, parts.next()?);
    if a.is_empty() || a.len() > 2 || b.is_empty() || b.len() > 2 || tail.len() < 4 {
        return None;
    }
    Some((digits(a)?, digits(b)?, digits(&tail[..4])?, &tail[4..]))
}

/// Seconds since midnight from what follows a date: nothing, or `T`/space
/// then `HH:MM[:SS[.fff]]` and an optional zone (`Z`, `+01:00`).
fn time_of_day(rest: &str) -> Option<u32> {
    if rest.is_empty() {
        return Some(0);
    }
    let rest = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' '))?.trim_start();
    let end = rest.find(['Z', '+', '-']).unwrap_or(rest.len());
    let zone = &rest[end..];
    if !(zone.is_empty() || zone == "Z" || (zone.len() == 6 && zone.as_bytes()[3] == b':')) {
        return None;
    }
    let mut fields = rest[..end].split(':');
    let hour = digits(fields.next()?)?;
    let minute = digits(fields.next()?)?;
    let second = match fields.next() {
        Some(s) => digits(s.split('.').next()?)?,
        None => 0,
    };
    (fields.next().is_none() && hour < 24 && minute < 60 && second < 61).then_some(hour * 3600 + minute * 60 + second)
}

fn digits(s: &str) -> Option<u32> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_forms_parse_to_the_same_day() {
        let want = DateTime { year: 2024, month: 3, day: 15, seconds: 0 };
        assert_eq!(parse("2024-03-15", DateOrder::Iso), Some(want));
        assert_eq!(parse("15/03/2024", DateOrder::DayFirst), Some(want));
        assert_eq!(parse("15.03.2024", DateOrder::DayFirst), Some(want));
        assert_eq!(parse("03/15/2024", DateOrder::MonthFirst), Some(want));
        let t = parse("2024-03-15T08:30:15Z", DateOrder::Iso).unwrap();
        assert_eq!(t.seconds, 8 * 3600 + 30 * 60 + 15);
        assert_eq!(parse("2024-03-15 08:30+01:00", DateOrder::Iso).unwrap().seconds, 8 * 3600 + 30 * 60);
        for bad in ["2024-02-30", "2024-13-01", "2024-03-15T25:00", "15/03/24", "blue"] {
            assert_eq!(parse(bad, DateOrder::Iso).or(parse(bad, DateOrder::DayFirst)), None, "{bad}");
        }
    }

    #[test]
    fn days_and_weekdays_match_the_calendar() {
        // 2024-03-15 is day 19797 since 1970-01-01 (Python: (date(2024,3,15)-date(1970,1,1)).days), a Friday.
        let d = parse("2024-03-15T12:00", DateOrder::Iso).unwrap();
        assert_eq!(d.days_since_epoch(), 19797.5);
        assert_eq!(d.weekday(), 4);
        assert_eq!(parse("1969-12-31", DateOrder::Iso).unwrap().days_since_epoch(), -1.0);
        assert_eq!(parse("2000-02-29", DateOrder::Iso).unwrap().days_since_epoch(), 11016.0);
    }

    #[test]
    fn a_column_shows_its_order() {
        assert_eq!(DateOrder::of(&["01/02/2024", "13/02/2024"]), Some(DateOrder::DayFirst));
        assert_eq!(DateOrder::of(&["01/02/2024", "02/13/2024"]), Some(DateOrder::MonthFirst));
        assert_eq!(DateOrder::of(&["01/02/2024", "02/03/2024"]), Some(DateOrder::DayFirst));
        assert_eq!(DateOrder::of(&["2024-01-02", "x"]), None);
    }
}
