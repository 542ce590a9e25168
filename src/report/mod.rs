//! The reports: self-contained HTML pages (inline SVG charts and CSS, nothing fetched) with the
//! same numbers as JSON. [`model`] is the model report (the model card and, on labelled data, its
//! curves, deciles, tiers, importance and effects); [`churn`] is the churn report (logo and MRR
//! churn per month, cohorts, segments, behavioural cohorts and early life) over an event log.
//!
//! Arrows: `report` uses `model` (the evaluation, the terms), `io` and `time`, and, departing from
//! the sibling rule of DESIGN.md, `features`: the churn report is computed from the feature table
//! in memory ([`crate::features::frame`]) so that "active", the activity metrics and the cell
//! rule of the event log are the ones `churn features` and training use, not a second reading of
//! them. `features` never imports `report`.
pub mod charts;
pub mod churn;
pub mod model;
pub mod page;
