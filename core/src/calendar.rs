//! Business-hours arithmetic in a function's own time zone.
//!
//! Working windows are defined in local wall-clock time per weekday and converted to UTC instants
//! one day at a time, so daylight-saving changes, weekends and holidays fall out naturally.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, SubsecRound as _, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// How far ahead [`WorkCalendar::add`] looks before giving up (a calendar with no working day at
/// all is rejected by the config loader; this only bounds pathological holiday lists).
const MAX_DAYS_SEARCHED: i64 = 3 * 366;

/// `now` in whole milliseconds, the precision the store keeps instants in. Every entry point of
/// the core takes its `now` through this, so every instant it computes (a breach, a ladder step)
/// is one the store can hold exactly: a check run at the stored instant then finds what was due
/// there, instead of finding it a fraction of a millisecond in the future, again and again.
pub fn whole_ms(now: DateTime<Utc>) -> DateTime<Utc> {
    now.trunc_subsecs(3)
}

/// The local working window of one weekday: `start < end`, or `end` midnight (written `24:00`)
/// for a window that lasts until the day ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Local time work starts.
    pub start: NaiveTime,
    /// Local time work ends (exclusive); midnight is the end of the day.
    pub end: NaiveTime,
}

impl Window {
    /// Whether the window lasts until midnight.
    pub fn to_midnight(&self) -> bool {
        self.end == NaiveTime::MIN
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let end = if self.to_midnight() { "24:00".to_string() } else { self.end.format("%H:%M").to_string() };
        write!(f, "{}-{end}", self.start.format("%H:%M"))
    }
}

/// When a function works: its time zone, its windows on each weekday (Monday first) and its
/// holidays.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkCalendar {
    /// IANA zone the windows and holidays are read in.
    pub tz: Tz,
    /// Index 0 is Monday: that day's windows in order, none overlapping (empty on a day off). A
    /// night shift is two windows: `22:00-24:00` one day and `00:00-06:00` the next.
    pub week: [Vec<Window>; 7],
    /// Local dates on which nobody works.
    pub holidays: BTreeSet<NaiveDate>,
}

impl WorkCalendar {
    /// The UTC intervals worked on local date `day`, in order.
    fn windows_on(&self, day: NaiveDate) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + '_ {
        let windows: &[Window] = match self.holidays.contains(&day) {
            true => &[],
            false => &self.week[day.weekday().num_days_from_monday() as usize],
        };
        windows.iter().filter_map(move |w| {
            let start = local_instant(self.tz, day, w.start);
            let end = match w.to_midnight() {
                true => local_instant(self.tz, day.succ_opt()?, NaiveTime::MIN),
                false => local_instant(self.tz, day, w.end),
            };
            (start < end).then_some((start, end))
        })
    }

    /// The working week in words, consecutive days with the same hours together:
    /// `Mon-Fri 09:00-12:00 and 13:00-17:00; Sat 10:00-14:00`.
    pub fn describe_week(&self) -> String {
        const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        let mut parts = Vec::new();
        let mut first = 0;
        while first < 7 {
            let mut last = first;
            while last + 1 < 7 && self.week[last + 1] == self.week[first] {
                last += 1;
            }
            if !self.week[first].is_empty() {
                let days = match last - first {
                    0 => DAYS[first].to_string(),
                    _ => format!("{}-{}", DAYS[first], DAYS[last]),
                };
                let hours: Vec<String> = self.week[first].iter().map(ToString::to_string).collect();
                parts.push(format!("{days} {}", hours.join(" and ")));
            }
            first = last + 1;
        }
        parts.join("; ")
    }

    /// The end of `date` here: the midnight after it.
    pub fn end_of(&self, date: NaiveDate) -> Option<DateTime<Utc>> {
        let midnight = date.succ_opt()?.and_hms_opt(0, 0, 0)?;
        Some(midnight.and_local_timezone(self.tz).earliest()?.with_timezone(&Utc))
    }

    /// The instant at which `amount` of working time has passed since `from`.
    pub fn add(&self, from: DateTime<Utc>, amount: Duration) -> DateTime<Utc> {
        let mut remaining = amount.max(Duration::zero());
        let mut day = from.with_timezone(&self.tz).date_naive();
        for _ in 0..MAX_DAYS_SEARCHED {
            for (start, end) in self.windows_on(day).filter(|(_, end)| *end > from) {
                let begin = start.max(from);
                let available = end - begin;
                if remaining <= available {
                    // Zero remaining at the very start of a window stays at `from` if it is
                    // inside one, otherwise moves to the next opening.
                    return begin + remaining;
                }
                remaining -= available;
            }
            day = day.succ_opt().unwrap_or(day);
        }
        from + Duration::days(MAX_DAYS_SEARCHED)
    }

    /// Working time between `from` and `to` (zero when `to <= from`).
    pub fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        if to <= from {
            return Duration::zero();
        }
        let mut total = Duration::zero();
        let mut day = from.with_timezone(&self.tz).date_naive();
        let last = to.with_timezone(&self.tz).date_naive();
        while day <= last {
            for (start, end) in self.windows_on(day) {
                let (s, e) = (start.max(from), end.min(to));
                if e > s {
                    total += e - s;
                }
            }
            match day.succ_opt() {
                Some(next) => day = next,
                None => break,
            }
        }
        total
    }

    /// Whether `at` falls inside a working window.
    pub fn is_working(&self, at: DateTime<Utc>) -> bool {
        let day = at.with_timezone(&self.tz).date_naive();
        self.windows_on(day).any(|(s, e)| s <= at && at < e)
    }
}

/// The UTC instant of a local wall-clock time. A time skipped by a spring-forward change maps to
/// the first instant after the gap; a repeated one (fall back) to its first occurrence.
fn local_instant(tz: Tz, day: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let naive = day.and_time(time);
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        LocalResult::None => {
            // Walk forward minute by minute out of the gap (gaps are at most a few hours).
            let mut probe = naive;
            for _ in 0..(24 * 60) {
                probe += Duration::minutes(1);
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    return t.with_timezone(&Utc);
                }
            }
            Utc.from_utc_datetime(&naive)
        }
    }
}

/// A pausable business-hours stopwatch.
///
/// `running_since` may lie in the future: a snooze pauses the clock until its end, and the clock
/// starts counting again on its own at that instant, with no event needed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clock {
    /// Working seconds counted before the current running stretch.
    pub banked_secs: i64,
    /// Start of the current running stretch; `None` while paused indefinitely.
    pub running_since: Option<DateTime<Utc>>,
}

impl Clock {
    /// A clock that starts counting at `at`.
    pub fn started(at: DateTime<Utc>) -> Clock {
        Clock { banked_secs: 0, running_since: Some(at) }
    }

    /// Working time counted up to `now`.
    pub fn elapsed(&self, cal: &WorkCalendar, now: DateTime<Utc>) -> Duration {
        let running = self.running_since.map_or(Duration::zero(), |since| cal.between(since, now));
        Duration::seconds(self.banked_secs) + running
    }

    /// The instant the clock reaches `target`, or `None` while paused indefinitely.
    pub fn reaches(&self, cal: &WorkCalendar, target: Duration) -> Option<DateTime<Utc>> {
        let since = self.running_since?;
        Some(cal.add(since, target - Duration::seconds(self.banked_secs)))
    }

    /// Stops counting at `now` until `resume_at` (`None`: until [`Clock::resume`]).
    pub fn pause(&mut self, cal: &WorkCalendar, now: DateTime<Utc>, resume_at: Option<DateTime<Utc>>) {
        self.banked_secs = self.elapsed(cal, now).num_seconds();
        self.running_since = resume_at;
    }

    /// Starts counting again at `now` if paused.
    pub fn resume(&mut self, now: DateTime<Utc>) {
        match self.running_since {
            Some(since) if since <= now => {}
            _ => self.running_since = Some(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("test time").with_timezone(&Utc)
    }

    fn nine_to_five(tz: Tz, holidays: &[&str]) -> WorkCalendar {
        let w = Window {
            start: NaiveTime::from_hms_opt(9, 0, 0).expect("time"),
            end: NaiveTime::from_hms_opt(17, 0, 0).expect("time"),
        };
        WorkCalendar {
            tz,
            week: [vec![w], vec![w], vec![w], vec![w], vec![w], vec![], vec![]],
            holidays: holidays.iter().map(|d| d.parse().expect("date")).collect(),
        }
    }

    /// (from, business hours to add, expected instant), all in RFC 3339.
    fn check_add(cal: &WorkCalendar, cases: &[(&str, i64, &str)]) {
        for (from, hours, expected) in cases {
            let got = cal.add(t(from), Duration::hours(*hours));
            assert_eq!(got, t(expected), "add({from}, {hours}h)");
            assert_eq!(cal.between(t(from), got), Duration::hours(*hours), "between is the inverse of add from {from}");
        }
    }

    #[test]
    fn adding_business_hours_skips_nights_and_weekends() {
        let cal = nine_to_five(chrono_tz::America::New_York, &[]);
        check_add(
            &cal,
            &[
                // Friday 15:00 EST + 4h = Monday 11:00 EST.
                ("2026-11-20T15:00:00-05:00", 4, "2026-11-23T11:00:00-05:00"),
                // Saturday counts from Monday's opening.
                ("2026-11-21T12:00:00-05:00", 1, "2026-11-23T10:00:00-05:00"),
                // Before opening on a Tuesday.
                ("2026-11-24T06:00:00-05:00", 8, "2026-11-24T17:00:00-05:00"),
                // Exactly a day's work ends at closing, not at the next opening.
                ("2026-11-24T09:00:00-05:00", 8, "2026-11-24T17:00:00-05:00"),
            ],
        );
    }

    #[test]
    fn holidays_are_skipped() {
        let cal = nine_to_five(chrono_tz::America::New_York, &["2026-11-26", "2026-11-27"]);
        // Wednesday 16:00 + 2h: one hour Wednesday, Thursday/Friday holidays, one hour Monday.
        check_add(&cal, &[("2026-11-25T16:00:00-05:00", 2, "2026-11-30T10:00:00-05:00")]);
    }

    #[test]
    fn spring_forward_keeps_local_opening_hours() {
        // US DST starts Sunday 2027-03-14; Friday 16:00 EST + 2h = Monday 10:00 EDT (14:00 UTC).
        let cal = nine_to_five(chrono_tz::America::New_York, &[]);
        check_add(&cal, &[("2027-03-12T16:00:00-05:00", 2, "2027-03-15T10:00:00-04:00")]);
    }

    #[test]
    fn fall_back_day_with_working_hours_across_the_change() {
        // A 24/7 calendar ("00:00-24:00") in Europe/Berlin: the day of 2026-10-25 has 25 hours.
        let all_day = Window { start: NaiveTime::MIN, end: NaiveTime::MIN };
        let cal = WorkCalendar {
            tz: chrono_tz::Europe::Berlin,
            week: std::array::from_fn(|_| vec![all_day]),
            holidays: BTreeSet::new(),
        };
        let from = t("2026-10-25T00:00:00+02:00");
        let to = t("2026-10-26T00:00:00+01:00");
        assert_eq!(cal.between(from, to), Duration::hours(25));
        // Round the clock: no gap at midnight, whatever the day.
        check_add(&cal, &[("2026-11-20T23:30:00+01:00", 1, "2026-11-21T00:30:00+01:00")]);
        assert!(cal.is_working(t("2026-11-21T00:00:00+01:00")) && cal.is_working(t("2026-11-20T23:59:59+01:00")));
        // A window to midnight ends there: work resumes at the next day's opening.
        let evening = Window { start: NaiveTime::from_hms_opt(18, 0, 0).expect("time"), end: NaiveTime::MIN };
        let cal = WorkCalendar {
            tz: chrono_tz::Europe::Berlin,
            week: std::array::from_fn(|_| vec![evening]),
            holidays: BTreeSet::new(),
        };
        check_add(&cal, &[("2026-11-20T23:00:00+01:00", 2, "2026-11-21T19:00:00+01:00")]);
        assert_eq!(evening.to_string(), "18:00-24:00");
        assert_eq!(cal.describe_week(), "Mon-Sun 18:00-24:00");
        let mut week = nine_to_five(chrono_tz::UTC, &[]);
        week.week[5] = vec![evening];
        week.week[0] = vec![];
        assert_eq!(week.describe_week(), "Tue-Fri 09:00-17:00; Sat 18:00-24:00");
    }

    proptest::proptest! {
        /// Whatever the windows, zone and start (the two weeks cross both the European and the
        /// American end of summer time), `between` undoes `add`, and work ends inside a window.
        #[test]
        fn add_and_between_agree_for_any_working_week(
            cuts in proptest::collection::vec(proptest::collection::vec(0u32..=1440, 0..6), 7),
            zone in 0usize..3,
            from_minutes in 0i64..(60 * 24 * 14),
            minutes in 0i64..(60 * 80),
        ) {
            let at = |m: u32| match m {
                1440 => NaiveTime::MIN,
                m => NaiveTime::from_num_seconds_from_midnight_opt(m * 60, 0).expect("minute of the day"),
            };
            let week: [Vec<Window>; 7] = std::array::from_fn(|day| {
                let mut marks = cuts[day].clone();
                marks.sort_unstable();
                marks.dedup();
                marks.chunks_exact(2).map(|pair| Window { start: at(pair[0]), end: at(pair[1]) }).collect()
            });
            // `add` searches three years ahead: ask for no more work than two years of the week hold.
            use chrono::Timelike as _;
            let length = |w: &Window| {
                let end = if w.to_midnight() { 24 * 60 } else { i64::from(w.end.num_seconds_from_midnight() / 60) };
                end - i64::from(w.start.num_seconds_from_midnight() / 60)
            };
            let weekly: i64 = week.iter().flatten().map(length).sum();
            proptest::prop_assume!(weekly > 0 && weekly * 104 >= minutes);
            let tz = [chrono_tz::UTC, chrono_tz::Europe::Berlin, chrono_tz::America::New_York][zone];
            let cal = WorkCalendar { tz, week, holidays: BTreeSet::new() };
            let from = t("2026-10-20T00:00:00Z") + Duration::minutes(from_minutes);
            let amount = Duration::minutes(minutes);
            let done = cal.add(from, amount);
            proptest::prop_assert_eq!(cal.between(from, done), amount);
            if minutes > 0 {
                proptest::prop_assert!(cal.is_working(done - Duration::seconds(1)));
            }
        }
    }

    #[test]
    fn a_day_may_have_several_windows_a_lunch_break_or_a_night_shift() {
        let hm = |h, m| NaiveTime::from_hms_opt(h, m, 0).expect("time");
        let w = |a: (u32, u32), b: (u32, u32)| Window { start: hm(a.0, a.1), end: hm(b.0, b.1) };
        // Mon-Fri 09:00-12:00 and 13:00-17:00: the lunch hour does not count.
        let split = vec![w((9, 0), (12, 0)), w((13, 0), (17, 0))];
        let mut cal = WorkCalendar {
            tz: chrono_tz::UTC,
            week: std::array::from_fn(|i| if i < 5 { split.clone() } else { vec![] }),
            holidays: BTreeSet::new(),
        };
        check_add(
            &cal,
            &[
                ("2026-11-23T11:00:00Z", 2, "2026-11-23T14:00:00Z"),
                ("2026-11-23T12:30:00Z", 1, "2026-11-23T14:00:00Z"),
                ("2026-11-27T16:00:00Z", 4, "2026-11-30T12:00:00Z"),
            ],
        );
        assert!(!cal.is_working(t("2026-11-23T12:30:00Z")) && cal.is_working(t("2026-11-23T13:00:00Z")));
        assert_eq!(cal.describe_week(), "Mon-Fri 09:00-12:00 and 13:00-17:00");
        // A night shift from Monday 22:00 to Tuesday 06:00 runs on through midnight.
        cal.week = std::array::from_fn(|_| vec![]);
        cal.week[0] = vec![w((22, 0), (0, 0))];
        cal.week[1] = vec![w((0, 0), (6, 0))];
        check_add(&cal, &[("2026-11-23T21:00:00Z", 5, "2026-11-24T03:00:00Z")]);
        assert_eq!(cal.describe_week(), "Mon 22:00-24:00; Tue 00:00-06:00");
    }

    #[test]
    fn a_window_starting_inside_a_dst_gap_opens_after_the_gap() {
        // Europe/Berlin skips 02:00-03:00 on 2027-03-28 (a Sunday); work 02:30-04:00 that day.
        let w = Window {
            start: NaiveTime::from_hms_opt(2, 30, 0).expect("time"),
            end: NaiveTime::from_hms_opt(4, 0, 0).expect("time"),
        };
        let cal = WorkCalendar {
            tz: chrono_tz::Europe::Berlin,
            week: [vec![], vec![], vec![], vec![], vec![], vec![], vec![w]],
            holidays: BTreeSet::new(),
        };
        let sat = t("2027-03-27T12:00:00+01:00");
        assert_eq!(cal.add(sat, Duration::zero() + Duration::minutes(30)), t("2027-03-28T03:30:00+02:00"));
    }

    #[test]
    fn a_snoozed_clock_resumes_on_its_own_at_the_snooze_end() {
        let cal = nine_to_five(chrono_tz::UTC, &[]);
        let mut clock = Clock::started(t("2026-11-23T09:00:00Z"));
        // One hour worked, then snoozed until 14:00.
        clock.pause(&cal, t("2026-11-23T10:00:00Z"), Some(t("2026-11-23T14:00:00Z")));
        assert_eq!(clock.elapsed(&cal, t("2026-11-23T13:00:00Z")), Duration::hours(1));
        assert_eq!(clock.elapsed(&cal, t("2026-11-23T15:00:00Z")), Duration::hours(2));
        assert_eq!(clock.reaches(&cal, Duration::hours(4)), Some(t("2026-11-23T17:00:00Z")));
    }

    #[test]
    fn a_clock_paused_indefinitely_never_reaches_a_target_until_resumed() {
        let cal = nine_to_five(chrono_tz::UTC, &[]);
        let mut clock = Clock::started(t("2026-11-23T09:00:00Z"));
        clock.pause(&cal, t("2026-11-23T11:00:00Z"), None);
        assert_eq!(clock.reaches(&cal, Duration::hours(4)), None);
        assert_eq!(clock.elapsed(&cal, t("2026-11-30T11:00:00Z")), Duration::hours(2));
        clock.resume(t("2026-11-24T09:00:00Z"));
        assert_eq!(clock.reaches(&cal, Duration::hours(4)), Some(t("2026-11-24T11:00:00Z")));
    }
}
