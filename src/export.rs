//! `switchboard export-replay`: one day of a real run, read from the store's contacts and
//! audit log, written as a replay CSV for `switchboard simulate` (format:
//! `config/scenarios/README.md`): arrival (seconds from that day's midnight, UTC), channel,
//! queue, urgency, required skills, handling time where the log shows both the acceptance
//! and the end of handling (wrap-up or close), and patience where the customer left.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde_json::Value;
use switchboard_store::Store;

use crate::config::Config;

/// Write one day of the store's traffic as a replay file for `switchboard simulate`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The daemon's configuration file (it says where the store is).
    #[arg(long, short, default_value = "config/switchboard.toml")]
    pub config: PathBuf,
    /// The day to export, `YYYY-MM-DD` (UTC), or `today` or `yesterday`.
    #[arg(long)]
    pub day: String,
    /// The CSV file to write.
    #[arg(long)]
    pub out: PathBuf,
}

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Milliseconds since the epoch of a `YYYY-MM-DD` midnight, UTC.
fn midnight(day: &str) -> anyhow::Result<i64> {
    let today = || {
        let now = crate::router::now().as_millis() as i64;
        now - now % DAY_MS
    };
    match day {
        "today" => return Ok(today()),
        "yesterday" => return Ok(today() - DAY_MS),
        _ => {}
    }
    let parts: Vec<&str> = day.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        anyhow::bail!("--day {day:?}: expected YYYY-MM-DD");
    };
    let (y, m, d): (i64, i64, i64) = (
        y.parse().context("--day: year")?,
        m.parse().context("--day: month")?,
        d.parse().context("--day: day")?,
    );
    anyhow::ensure!(
        (1..=12).contains(&m) && (1..=31).contains(&d),
        "--day {day:?}: not a date"
    );
    // Days from the civil date (Howard Hinnant's algorithm), proleptic Gregorian.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Ok((era * 146_097 + doe - 719_468) * DAY_MS)
}

/// Runs the export; returns how many contacts were written.
pub async fn run(args: &ExportArgs) -> anyhow::Result<usize> {
    let loaded = Config::load(&args.config)?;
    let store = crate::daemon::open_store(&loaded).await?;
    let from = midnight(&args.day)?;
    let written = export(store.as_ref(), from, &args.out).await;
    store.close().await;
    written
}

/// Writes the contacts that arrived in the day starting at `from` to `out`.
pub async fn export(store: &dyn Store, from: i64, out: &Path) -> anyhow::Result<usize> {
    let contacts = store.contacts_arrived(from, from + DAY_MS).await?;
    let mut w = csv::Writer::from_path(out).with_context(|| format!("{}", out.display()))?;
    w.write_record([
        "arrived_at",
        "channel",
        "queue",
        "urgency",
        "skills",
        "handling",
        "patience",
    ])?;
    let secs = |ms: i64| format!("{}.{:03}", ms / 1000, ms % 1000);
    for c in &contacts {
        let mut urgency = String::new();
        let mut skills = String::new();
        let mut accepted: Option<i64> = None;
        let mut handled: Option<i64> = None;
        let mut patience: Option<i64> = None;
        for a in store.audit(c.seq).await? {
            let detail: HashMap<String, Value> =
                serde_json::from_str(&a.detail).unwrap_or_default();
            match a.kind.as_str() {
                "arrived" => {
                    urgency = detail
                        .get("urgency")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned();
                    skills = detail
                        .get("skills")
                        .and_then(Value::as_array)
                        .map(|s| {
                            s.iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join(";")
                        })
                        .unwrap_or_default();
                }
                "assigned" => {
                    accepted.get_or_insert(a.at);
                }
                "wrap_up_started" | "closed" => {
                    if let Some(at) = accepted
                        && handled.is_none()
                    {
                        handled = Some(a.at - at);
                    }
                }
                "abandoned" => {
                    patience = detail.get("waited").and_then(|w| {
                        Some(
                            w.get("secs")?.as_i64()? * 1000 + w.get("nanos")?.as_i64()? / 1_000_000,
                        )
                    });
                }
                _ => {}
            }
        }
        if c.channel == "email" {
            patience = None;
        }
        w.write_record([
            secs(c.arrived_at - from),
            c.channel.clone(),
            c.queue.clone(),
            urgency,
            skills,
            handled.map(secs).unwrap_or_default(),
            patience.map(secs).unwrap_or_default(),
        ])?;
    }
    w.flush()?;
    Ok(contacts.len())
}

#[cfg(test)]
mod tests {
    #[test]
    fn midnights_are_utc_days() {
        assert_eq!(super::midnight("1970-01-01").unwrap(), 0);
        assert_eq!(super::midnight("2026-11-24").unwrap(), 1_795_478_400_000);
        assert_eq!(super::midnight("2000-03-01").unwrap(), 951_868_800_000);
        assert!(super::midnight("2026-13-01").is_err());
        assert!(super::midnight("last week").is_err());
        let today = super::midnight("today").unwrap();
        assert_eq!(today % super::DAY_MS, 0);
        assert_eq!(super::midnight("yesterday").unwrap(), today - super::DAY_MS);
    }
}
