//! Subscriptions: who is a subscriber on a snapshot day, what they pay, how long they have been
//! subscribed, and (for the label) when their run of renewals ends.
use super::rows::{self, ArrowColumn, Cell};
use crate::error::{Error, Result};
use crate::io::blocks::{Block, BlockSource};
use crate::time::day_of;
use rustc_hash::FxHashMap;
use std::path::PathBuf;

/// Average days in a month, for `months_subscribed`.
const DAYS_PER_MONTH: f64 = 365.2425 / 12.0;

#[derive(Debug, Clone)]
struct Subscription {
    /// First day covered.
    start: i64,
    /// First day no longer covered; None while it runs.
    end: Option<i64>,
    plan: Option<String>,
    mrr: f64,
    discount: f64,
}

/// Which optional columns the file has.
#[derive(Debug, Clone, Copy, Default)]
pub struct SubscriptionFields {
    pub plan: bool,
    pub mrr: bool,
    pub discount: bool,
}

/// Every customer's subscriptions, sorted by start.
pub struct Subscriptions {
    by_customer: FxHashMap<String, Vec<Subscription>>,
    pub fields: SubscriptionFields,
    /// The latest start day: how far the file is known to reach.
    pub latest_start: i64,
    grace: i64,
}

/// A subscriber on one snapshot day.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriberState<'a> {
    /// Sum over the subscriptions running that day.
    pub mrr: f64,
    /// Of the latest-started running subscription.
    pub plan: Option<&'a str>,
    pub discount: f64,
    /// Days covered before the snapshot, in months.
    pub months: f64,
    /// The first day after the run of subscriptions and renewals (within the grace) that covers
    /// the snapshot; None if it never ends.
    pub run_end: Option<i64>,
}

impl Subscriptions {
    /// Reads the subscriptions file; `cols` is the spec's column names.
    pub fn read(
        mut source: Box<dyn BlockSource>,
        name: PathBuf,
        cols: &super::spec::SubscriptionColumns,
        offset: i64,
        grace: u32,
    ) -> Result<Subscriptions> {
        let header = source.header().to_vec();
        let has = |c: &str| header.iter().any(|h| h == c);
        let fields = SubscriptionFields {
            plan: has(&cols.plan),
            mrr: has(&cols.mrr),
            discount: has(&cols.discount),
        };
        let mut columns = vec![
            cols.customer_id.clone(),
            cols.start_date.clone(),
            cols.end_date.clone(),
        ];
        let mut at = |on: bool, c: &str| {
            on.then(|| {
                columns.push(c.to_string());
                columns.len() - 1
            })
        };
        let plan_at = at(fields.plan, &cols.plan);
        let mrr_at = at(fields.mrr, &cols.mrr);
        let discount_at = at(fields.discount, &cols.discount);
        source.select(&columns)?;
        let mut subs = Subscriptions {
            by_customer: FxHashMap::default(),
            fields,
            latest_start: i64::MIN,
            grace: i64::from(grace),
        };
        let mut add = |cells: &[Cell<'_>]| -> std::result::Result<(), rows::CellError> {
            let id = rows::text(cells[0]).ok_or((0, "missing customer id".to_string()))?;
            let start = rows::time(cells[1], offset)
                .map_err(|m| (1, m))?
                .ok_or((1, "missing start date".to_string()))?;
            let (start, end) = (
                day_of(start),
                rows::time(cells[2], offset)
                    .map_err(|m| (2, m))?
                    .map(day_of),
            );
            if let Some(e) = end
                && e < start
            {
                return Err((
                    2,
                    format!(
                        "ends before it starts ({} < {})",
                        crate::time::format_day(e),
                        crate::time::format_day(start)
                    ),
                ));
            }
            let num = |k: Option<usize>| -> std::result::Result<f64, rows::CellError> {
                match k {
                    Some(k) => rows::number(cells[k]).map_err(|m| (k, m)),
                    None => Ok(f64::NAN),
                }
            };
            let sub = Subscription {
                start,
                end,
                plan: plan_at.and_then(|k| rows::text(cells[k]).map(|t| t.into_owned())),
                mrr: num(mrr_at)?,
                discount: num(discount_at)?,
            };
            subs.latest_start = subs.latest_start.max(start);
            subs.by_customer
                .entry(id.into_owned())
                .or_default()
                .push(sub);
            Ok(())
        };
        let numbering = source.numbering();
        let mut next = source.first_number();
        while let Some(block) = source.next_block(64 * 1024)? {
            let bad = |at: u64, k: Option<usize>, message: String| Error::Data {
                path: name.clone(),
                line: Some(at),
                column: k.map(|k| columns[k].clone()),
                message,
            };
            match &block {
                Block::Csv { bytes, layout } => {
                    let (lines, rows) = rows::each_csv_record(bytes, layout, &mut add)
                        .map_err(|(l, k, m)| bad(next + l, k, m))?;
                    next += match numbering {
                        crate::io::blocks::Numbering::Line => lines,
                        crate::io::blocks::Numbering::Row => rows,
                    };
                }
                Block::Arrow {
                    columns: arrays,
                    rows,
                } => {
                    let views: Vec<ArrowColumn<'_>> = arrays.iter().map(ArrowColumn::new).collect();
                    let mut cells = [Cell::Null; rows::MAX_CELLS];
                    for i in 0..*rows {
                        for (k, v) in views.iter().enumerate() {
                            cells[k] = v.get(i);
                        }
                        add(&cells[..views.len()])
                            .map_err(|(k, m)| bad(next + i as u64, Some(k), m))?;
                    }
                    next += *rows as u64;
                }
            }
        }
        for list in subs.by_customer.values_mut() {
            list.sort_by_key(|s| (s.start, s.end.unwrap_or(i64::MAX)));
        }
        Ok(subs)
    }

    /// Customer ids with their earliest start day.
    pub fn customers(&self) -> impl Iterator<Item = (&str, i64)> {
        self.by_customer
            .iter()
            .map(|(id, list)| (id.as_str(), list[0].start))
    }

    pub fn len(&self) -> usize {
        self.by_customer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_customer.is_empty()
    }

    /// The customer's state on `day`, if a subscription covers it. Only subscriptions started
    /// by then feed `mrr`, `plan`, `discount` and `months`; `run_end` looks ahead (it is the
    /// label's).
    pub fn on(&self, id: &str, day: i64) -> Option<SubscriberState<'_>> {
        let list = self.by_customer.get(id)?;
        let covers = |s: &Subscription| s.start <= day && s.end.is_none_or(|e| day < e);
        let current: Vec<&Subscription> = list.iter().filter(|s| covers(s)).collect();
        let latest = *current.last()?;
        // Days covered before `day`: the union of the intervals cut at `day`.
        let mut covered = 0i64;
        let mut reach = i64::MIN;
        for s in list.iter().take_while(|s| s.start < day) {
            let end = s.end.unwrap_or(i64::MAX).min(day);
            let from = s.start.max(reach);
            if end > from {
                covered += end - from;
            }
            reach = reach.max(end);
        }
        // The run holding `day`: subscriptions chained while each starts within the grace of
        // the run's end so far.
        let mut run: Option<(i64, Option<i64>)> = None;
        for s in list {
            run = match run {
                Some((a, e)) if e.is_none_or(|e| s.start <= e + self.grace) => {
                    Some((a, e.zip(s.end).map(|(e, x)| e.max(x))))
                }
                Some((a, e)) if a <= day && e.is_none_or(|e| day < e) => break,
                _ => Some((s.start, s.end)),
            };
        }
        let run_end = run.and_then(|(_, e)| e);
        Some(SubscriberState {
            mrr: current.iter().map(|s| s.mrr).sum(),
            plan: latest.plan.as_deref(),
            discount: latest.discount,
            months: covered as f64 / DAYS_PER_MONTH,
            run_end,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(list: &[(i64, Option<i64>)], grace: i64) -> Subscriptions {
        let mut by_customer = FxHashMap::default();
        by_customer.insert(
            "c".to_string(),
            list.iter()
                .map(|&(start, end)| Subscription {
                    start,
                    end,
                    plan: Some(format!("p{start}")),
                    mrr: 10.0,
                    discount: 0.0,
                })
                .collect(),
        );
        Subscriptions {
            by_customer,
            fields: SubscriptionFields::default(),
            latest_start: 0,
            grace,
        }
    }

    #[test]
    fn runs_of_renewals_and_coverage() {
        // Monthly renewals 0-30-60-90, a gap, then 120-150 and an open one from 200.
        let s = subs(
            &[
                (0, Some(30)),
                (30, Some(60)),
                (60, Some(90)),
                (120, Some(150)),
                (200, None),
            ],
            1,
        );
        let at = s.on("c", 45).unwrap();
        assert_eq!(at.run_end, Some(90));
        assert_eq!(at.plan, Some("p30"));
        assert!((at.months - 45.0 / DAYS_PER_MONTH).abs() < 1e-12);
        assert_eq!(s.on("c", 95), None);
        assert_eq!(s.on("c", 130).unwrap().run_end, Some(150));
        // Coverage before 130: 90 days, then 10 days of the second run.
        assert!((s.on("c", 130).unwrap().months - 100.0 / DAYS_PER_MONTH).abs() < 1e-12);
        assert_eq!(s.on("c", 250).unwrap().run_end, None);
        assert_eq!(s.on("x", 10), None);
        // A renewal one day late is still a renewal with a grace of one day, not with none.
        let late = subs(&[(0, Some(30)), (31, Some(60))], 1);
        assert_eq!(late.on("c", 10).unwrap().run_end, Some(60));
        let strict = subs(&[(0, Some(30)), (31, Some(60))], 0);
        assert_eq!(strict.on("c", 10).unwrap().run_end, Some(30));
    }
}
