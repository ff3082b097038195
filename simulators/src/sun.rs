//! Sunrise and sunset, by the solar position equations of NOAA's solar
//! calculator (after Meeus, *Astronomical Algorithms*): the sun's apparent
//! longitude, declination and the equation of time for a Julian century,
//! and the hour angle at which its centre is 90.833° from the zenith
//! (refraction and the solar radius). Accurate to about a minute between
//! the polar circles.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

/// Zenith angle of the sun's centre at sunrise and sunset, in degrees.
pub const ZENITH_DEG: f64 = 90.833;

/// Sunrise and sunset of one date, as UTC instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SunTimes {
    /// When the sun's upper limb appears.
    pub sunrise: DateTime<Utc>,
    /// When it disappears.
    pub sunset: DateTime<Utc>,
}

/// Julian day of the Unix epoch.
const UNIX_EPOCH_JD: f64 = 2_440_587.5;

/// The sun's declination (radians) and the equation of time (minutes) at a
/// Julian day.
fn declination_and_eot(jd: f64) -> (f64, f64) {
    let t = (jd - 2_451_545.0) / 36_525.0;
    let l0 = (280.466_46 + t * (36_000.769_83 + t * 0.000_303_2)).rem_euclid(360.0);
    let m = 357.529_11 + t * (35_999.050_29 - 0.000_153_7 * t);
    let e = 0.016_708_634 - t * (0.000_042_037 + 0.000_000_126_7 * t);
    let mr = m.to_radians();
    let center = mr.sin() * (1.914_602 - t * (0.004_817 + 0.000_014 * t))
        + (2.0 * mr).sin() * (0.019_993 - 0.000_101 * t)
        + (3.0 * mr).sin() * 0.000_289;
    let true_long = l0 + center;
    let omega = (125.04 - 1934.136 * t).to_radians();
    let apparent_long = (true_long - 0.005_69 - 0.004_78 * omega.sin()).to_radians();
    let obliquity0 =
        23.0 + (26.0 + (21.448 - t * (46.815 + t * (0.000_59 - t * 0.001_813))) / 60.0) / 60.0;
    let obliquity = (obliquity0 + 0.002_56 * omega.cos()).to_radians();
    let declination = (obliquity.sin() * apparent_long.sin()).asin();
    let y = (obliquity / 2.0).tan().powi(2);
    let l0r = l0.to_radians();
    let eot = y * (2.0 * l0r).sin() - 2.0 * e * mr.sin()
        + 4.0 * e * y * mr.sin() * (2.0 * l0r).cos()
        - 0.5 * y * y * (4.0 * l0r).sin()
        - 1.25 * e * e * (2.0 * mr).sin();
    (declination, 4.0 * eot.to_degrees())
}

/// Minutes after 00:00 UTC of `date` at which the sun rises (`rising`) or
/// sets, evaluating the sun's position at `guess` minutes; `None` when the
/// sun does not cross the horizon that day.
fn event_minutes(lat: f64, lon: f64, midnight_jd: f64, guess: f64, rising: bool) -> Option<f64> {
    let (decl, eot) = declination_and_eot(midnight_jd + guess / 1440.0);
    let phi = lat.to_radians();
    let cos_ha = ZENITH_DEG.to_radians().cos() / (phi.cos() * decl.cos()) - phi.tan() * decl.tan();
    if !(-1.0..=1.0).contains(&cos_ha) {
        return None;
    }
    let ha = cos_ha.acos().to_degrees();
    let noon = 720.0 - 4.0 * lon - eot;
    Some(if rising {
        noon - 4.0 * ha
    } else {
        noon + 4.0 * ha
    })
}

/// Sunrise and sunset at a place (degrees, east positive) on a date (the
/// UTC day; for longitudes within ±90° that is the local day). `None` in
/// polar day or night.
pub fn sun_times(lat: f64, lon: f64, date: NaiveDate) -> Option<SunTimes> {
    let midnight = date.and_hms_opt(0, 0, 0)?.and_utc();
    let midnight_jd = UNIX_EPOCH_JD + midnight.timestamp() as f64 / 86_400.0;
    let solve = |rising: bool| {
        // Two refinements: the sun's position at the event, not at noon.
        let first = event_minutes(lat, lon, midnight_jd, 720.0, rising)?;
        let second = event_minutes(lat, lon, midnight_jd, first, rising)?;
        event_minutes(lat, lon, midnight_jd, second, rising)
    };
    let at = |minutes: f64| midnight + TimeDelta::milliseconds((minutes * 60_000.0).round() as i64);
    Some(SunTimes {
        sunrise: at(solve(true)?),
        sunset: at(solve(false)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("RFC 3339")
    }

    fn within(got: DateTime<Utc>, want: DateTime<Utc>, minutes: i64) {
        let off = (got - want).num_seconds().abs();
        assert!(off <= minutes * 60, "{got} is {off} s from {want}");
    }

    /// An independent formula: the "sunrise equation" with the solar mean
    /// anomaly, equation of the centre and ecliptic longitude of the
    /// astronomical almanac's low-precision series (days since J2000, no
    /// Julian-century polynomials), as `(sunrise, sunset)`.
    fn almanac(lat: f64, lon: f64, day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
        let noon = day.and_hms_opt(12, 0, 0).expect("noon").and_utc();
        let n = (noon.timestamp() as f64 / 86_400.0 + UNIX_EPOCH_JD - 2_451_545.0).round();
        let mean_noon = n - lon / 360.0;
        let m = (357.5291 + 0.985_600_28 * mean_noon)
            .rem_euclid(360.0)
            .to_radians();
        let c = 1.9148 * m.sin() + 0.02 * (2.0 * m).sin() + 0.0003 * (3.0 * m).sin();
        let lambda = (m.to_degrees() + c + 180.0 + 102.9372)
            .rem_euclid(360.0)
            .to_radians();
        let transit = mean_noon + 0.0053 * m.sin() - 0.0069 * (2.0 * lambda).sin();
        let decl = (lambda.sin() * 23.4397_f64.to_radians().sin()).asin();
        let phi = lat.to_radians();
        let cos_w =
            ((-0.833_f64).to_radians().sin() - phi.sin() * decl.sin()) / (phi.cos() * decl.cos());
        let w = cos_w.acos().to_degrees() / 360.0;
        let instant = |j2000_days: f64| {
            let unix = (j2000_days + 2_451_545.0 - UNIX_EPOCH_JD) * 86_400.0;
            DateTime::from_timestamp(unix.round() as i64, 0).expect("in range")
        };
        (instant(transit - w), instant(transit + w))
    }

    #[test]
    fn rabat_at_the_june_solstice() {
        // Rabat, 2026-06-21: sunset at about 20:42 local time (UTC+1), 19:42
        // UTC; held here to 19:43 UTC ± 2 min and to the independent formula
        // above. The check against a published table is Casablanca's, below.
        let sun = sun_times(34.0209, -6.8416, date(2026, 6, 21)).expect("not polar");
        within(sun.sunset, utc("2026-06-21T19:43:00Z"), 2);
        let (rise, set) = almanac(34.0209, -6.8416, date(2026, 6, 21));
        within(sun.sunrise, rise, 2);
        within(sun.sunset, set, 2);
    }

    #[test]
    fn casablanca_against_a_published_table() {
        // whattime.city/casablanca/sun, times on the 1st of the month in
        // local time (UTC+1): July 06:24 and 20:45, December 08:16 and 18:23.
        let (lat, lon) = (33.5731, -7.5898);
        let july = sun_times(lat, lon, date(2026, 7, 1)).expect("not polar");
        within(july.sunrise, utc("2026-07-01T05:24:00Z"), 2);
        within(july.sunset, utc("2026-07-01T19:45:00Z"), 2);
        let december = sun_times(lat, lon, date(2026, 12, 1)).expect("not polar");
        within(december.sunrise, utc("2026-12-01T07:16:00Z"), 2);
        within(december.sunset, utc("2026-12-01T17:23:00Z"), 2);
    }

    #[test]
    fn both_formulas_agree_all_year_across_the_kingdom() {
        let places = [
            (34.0209, -6.8416),
            (35.1688, -5.2636),
            (32.236, -7.954),
            (34.92, -2.32),
        ];
        for (lat, lon) in places {
            for day in date(2026, 1, 1).iter_days().step_by(7).take(53) {
                let sun = sun_times(lat, lon, day).expect("not polar");
                let (rise, set) = almanac(lat, lon, day);
                within(sun.sunrise, rise, 2);
                within(sun.sunset, set, 2);
                assert!(sun.sunrise < sun.sunset);
            }
        }
    }

    #[test]
    fn polar_night_has_no_sunrise() {
        assert_eq!(sun_times(80.0, 0.0, date(2026, 12, 21)), None);
        assert_eq!(sun_times(80.0, 0.0, date(2026, 6, 21)), None);
    }
}
