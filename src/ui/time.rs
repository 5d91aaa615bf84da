//! Times on the pages, in the server's configured timezone (`TOKENMETER_TIMEZONE`): the server
//! writes the zone's name into the page head, the browser reads it back, and both format
//! through `domain::time`.

use crate::domain::time::format_in;
use chrono::{DateTime, Utc};
use leptos::prelude::*;

/// The IANA name of the zone times are shown in.
#[derive(Clone, Debug)]
pub struct DisplayZone(pub String);

/// The zone's name, for the page head and the context.
#[cfg(feature = "ssr")]
pub fn zone_name() -> String {
    use_context::<crate::server::state::AppState>()
        .map(|state| state.config.timezone.name().to_string())
        .unwrap_or_else(|| "UTC".into())
}

/// The zone's name, as the server wrote it into the page head.
#[cfg(not(feature = "ssr"))]
pub fn zone_name() -> String {
    document()
        .query_selector("meta[name=tm-timezone]")
        .ok()
        .flatten()
        .and_then(|meta| meta.get_attribute("content"))
        .unwrap_or_else(|| "UTC".into())
}

/// `2026-11-28 14:05 +01:00` in the zone of [`DisplayZone`] (UTC without one).
pub fn format_time(t: &DateTime<Utc>) -> String {
    match use_context::<DisplayZone>() {
        Some(DisplayZone(zone)) if zone != "UTC" => format_in_zone(t, &zone),
        _ => format_in(t, &Utc),
    }
}

#[cfg(feature = "ssr")]
fn format_in_zone(t: &DateTime<Utc>, zone: &str) -> String {
    match zone.parse::<chrono_tz::Tz>() {
        Ok(tz) => format_in(t, &tz),
        Err(_) => format_in(t, &Utc),
    }
}

/// The browser's `Intl` knows the zones: it gives the wall clock, the offset follows from it.
#[cfg(all(feature = "hydrate", not(feature = "ssr")))]
fn format_in_zone(t: &DateTime<Utc>, zone: &str) -> String {
    browser::wall_clock(t, zone)
        .map(|(local, offset)| crate::domain::time::format_wall(local, offset))
        .unwrap_or_else(|| format_in(t, &Utc))
}

#[cfg(not(any(feature = "ssr", feature = "hydrate")))]
fn format_in_zone(t: &DateTime<Utc>, _zone: &str) -> String {
    format_in(t, &Utc)
}

#[cfg(all(feature = "hydrate", not(feature = "ssr")))]
mod browser {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, Timelike, Utc};
    use js_sys::{Array, Date, Function, Intl, Object, Reflect};
    use std::cell::RefCell;
    use wasm_bindgen::{JsCast, JsValue};

    thread_local! {
        /// One formatter per zone (making one costs far more than using it).
        static FORMATTER: RefCell<Option<(String, Intl::DateTimeFormat)>> = const { RefCell::new(None) };
    }

    /// `Intl.DateTimeFormat("en-US", {timeZone, numeric parts, 24 h})`, or `None` for a zone
    /// the browser does not know (its `RangeError` caught).
    fn formatter(zone: &str) -> Option<Intl::DateTimeFormat> {
        let options = Object::new();
        for (key, value) in [
            ("timeZone", zone),
            ("hourCycle", "h23"),
            ("year", "numeric"),
            ("month", "2-digit"),
            ("day", "2-digit"),
            ("hour", "2-digit"),
            ("minute", "2-digit"),
        ] {
            Reflect::set(&options, &key.into(), &value.into()).ok()?;
        }
        let intl = Reflect::get(&js_sys::global(), &"Intl".into()).ok()?;
        let constructor: Function = Reflect::get(&intl, &"DateTimeFormat".into())
            .ok()?
            .dyn_into()
            .ok()?;
        let args = Array::of2(&"en-US".into(), &options);
        Reflect::construct(&constructor, &args)
            .ok()
            .map(|f| f.unchecked_into())
    }

    /// The wall clock of `zone` at `t` (to the minute) and the zone's offset then, in seconds.
    pub fn wall_clock(t: &DateTime<Utc>, zone: &str) -> Option<(NaiveDateTime, i32)> {
        let parts = FORMATTER.with(|cell| {
            let mut cell = cell.borrow_mut();
            if cell.as_ref().is_none_or(|(z, _)| z != zone) {
                *cell = Some((zone.to_string(), formatter(zone)?));
            }
            let (_, f) = cell.as_ref()?;
            Some(f.format_to_parts(&Date::new(&JsValue::from_f64(t.timestamp_millis() as f64))))
        })?;
        let field = |name: &str| -> Option<u32> {
            parts.iter().find_map(|part| {
                let kind = Reflect::get(&part, &"type".into()).ok()?.as_string()?;
                (kind == name)
                    .then(|| {
                        Reflect::get(&part, &"value".into())
                            .ok()?
                            .as_string()?
                            .parse()
                            .ok()
                    })
                    .flatten()
            })
        };
        let local = NaiveDate::from_ymd_opt(field("year")? as i32, field("month")?, field("day")?)?
            .and_hms_opt(field("hour")?, field("minute")?, 0)?;
        let utc_minute = t.naive_utc().with_second(0)?.with_nanosecond(0)?;
        Some((local, (local - utc_minute).num_seconds() as i32))
    }
}
