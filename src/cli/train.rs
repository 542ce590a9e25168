use super::{fmt_metric, print_json, split_list};
use crate::error::{Error, Result};
use crate::io::{ReadOptions, read_table, sha256_file};
use crate::model::save_new_version;
use crate::model::train::SolverKind;
use crate::model::train::{KindChoice, TrainOptions, train};
use crate::schema::Transform;
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training table: CSV, or Parquet (.parquet).
    #[arg(long)]
    data: PathBuf,
    /// Label column: whether the customer churned.
    #[arg(long)]
    label: String,
    /// Label value meaning "churned" (guessed for 1/0, Yes/No, true/false).
    #[arg(long)]
    positive: Option<String>,
    /// Customer id column: kept out of the features.
    #[arg(long)]
    id: Option<String>,
    /// Columns to leave out (comma-separated or repeated).
    #[arg(long, value_name = "COLS")]
    drop: Vec<String>,
    /// Columns to treat as categorical even if they look numeric.
    #[arg(long, value_name = "COLS")]
    categorical: Vec<String>,
    /// Columns to treat as numeric: cells that are not numbers become missing (imputed, counted).
    #[arg(long, value_name = "COLS")]
    numeric: Vec<String>,
    /// Transforms of numeric columns, e.g. TotalCharges=log1p,MonthlyCharges=asinh.
    #[arg(long, value_name = "COL=log1p|asinh,...")]
    transform: Vec<String>,
    /// L2 penalty α in Σ log-loss + α/2·‖w‖² (scikit-learn's C = 1/α). Chosen by
    /// cross-validation when not given.
    #[arg(long)]
    l2: Option<f64>,
    /// Share of rows held out (stratified) to measure the model and place the tier cuts.
    #[arg(long, default_value_t = 0.2)]
    holdout: f64,
    /// Hold out the latest period instead of a random share: the rows with the latest values of
    /// this column (e.g. snapshot), whole values back until --holdout of the rows. The column is
    /// not a feature. A backtest: the model is measured on a later period than it learned from.
    #[arg(long, value_name = "COL")]
    split_by: Option<String>,
    /// With --split-by on dates: leave out training rows dated less than this before the first
    /// held-out date, e.g. the label horizon (90d), so no training label looks into the held-out
    /// period.
    #[arg(long, value_name = "DAYS", requires = "split_by")]
    purge: Option<String>,
    /// Cross-validation folds on the training part (0 = none).
    #[arg(long, default_value_t = 5)]
    folds: u32,
    /// Seed of the holdout split and the folds.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Model name (default: the name of the --out folder).
    #[arg(long)]
    name: Option<String>,
    /// Model folder: the model is written to OUT/<next version>/model.json.
    #[arg(long)]
    out: PathBuf,
    /// Solver: fast (fused multi-threaded L-BFGS) or linfa (linfa-logistic's own fit, the reference).
    #[arg(long, default_value = "fast", value_parser = ["fast", "linfa"])]
    solver: String,
    /// Share of customers in HIGH and in MEDIUM on the holdout, e.g. 0.1,0.2.
    #[arg(long, default_value = "0.1,0.2", value_name = "HIGH,MEDIUM")]
    tier_shares: String,
    /// CSV field delimiter (default: found from the header line: comma, semicolon, tab or pipe).
    #[arg(long, value_parser = super::delimiter)]
    delimiter: Option<u8>,
    /// Model kind: linear, additive (binned shapes and pair tables), or auto (fit both, keep the
    /// lower cross-validated log loss).
    #[arg(long, default_value = "auto", value_parser = ["auto", "linear", "additive"])]
    kind: String,
    /// Additive: most pairwise interaction terms, chosen from the data (0 = none).
    #[arg(long, default_value_t = 10)]
    interactions: u32,
    /// Additive: smoothing λ of neighbouring bins (chosen by cross-validation when not given).
    #[arg(long)]
    smoothing: Option<f64>,
    /// Additive: most bins per numeric feature (fewer where the data has fewer values or rows).
    #[arg(long, default_value_t = 64)]
    max_bins: u32,
    /// Usage measures for the health score (comma-separated numeric features), or "none". Default:
    /// for a table from `churn features` (one with a snapshot column), its activity metrics
    /// (event counts, active days, per-type counts and values); otherwise no health.
    #[arg(long)]
    usage: Option<String>,
    /// Weights of usage measures, e.g. active_days_28d=2,events_7d=0.5 (the others weigh 1).
    #[arg(long)]
    usage_weights: Option<String>,
    /// Health band cut-offs RED,GREEN: RED below the first, YELLOW below the second, GREEN from it.
    #[arg(long, default_value = "40,70")]
    health_bands: String,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: TrainArgs) -> Result<()> {
    let name = match a.name.clone() {
        Some(n) => n,
        None => a
            .out
            .file_name()
            .and_then(|s| s.to_str())
            .map(str::to_string)
            .ok_or_else(|| Error::Usage("--out has no folder name: pass --name".into()))?,
    };
    let mut opts = TrainOptions::new(&a.data, &a.label, &name);
    opts.positive = a.positive.clone();
    opts.id = a.id.clone();
    opts.drop = split_list(&a.drop);
    opts.categorical = split_list(&a.categorical);
    opts.numeric = split_list(&a.numeric);
    opts.transforms = split_list(&a.transform)
        .iter()
        .map(|t| {
            let (col, tr) = t.split_once('=').ok_or_else(|| {
                Error::Usage(format!("--transform {t}: expected COL=log1p or COL=asinh"))
            })?;
            let tr = Transform::parse(tr).ok_or_else(|| {
                Error::Usage(format!(
                    "--transform {t}: unknown transform (none, log1p, asinh)"
                ))
            })?;
            Ok((col.trim().to_string(), tr))
        })
        .collect::<Result<_>>()?;
    opts.l2 = a.l2;
    opts.holdout = a.holdout;
    opts.split_by = a.split_by.clone();
    opts.purge_days = a
        .purge
        .as_deref()
        .map(|p| {
            crate::time::parse_days(p).ok_or_else(|| {
                Error::Usage(format!(
                    "--purge {p}: expected days such as 90d or weeks such as 4w"
                ))
            })
        })
        .transpose()?;
    opts.folds = a.folds;
    opts.seed = a.seed;
    opts.solver = if a.solver == "linfa" {
        SolverKind::Linfa
    } else {
        SolverKind::Fast
    };
    opts.tier_shares = parse_shares(&a.tier_shares)?;
    opts.kind = KindChoice::parse(&a.kind).expect("clap checks the value");
    opts.interactions = a.interactions;
    opts.max_bins = a.max_bins;
    if let Some(s) = a.smoothing
        && !(s.is_finite() && s >= 0.0)
    {
        return Err(Error::Usage(format!(
            "--smoothing {s} must be a finite number >= 0"
        )));
    }
    opts.smoothing = a.smoothing;
    opts.usage = a.usage.as_ref().map(|u| {
        if u.trim() == "none" {
            Vec::new()
        } else {
            split_list(std::slice::from_ref(u))
        }
    });
    opts.usage_weights = match &a.usage_weights {
        Some(w) => split_list(std::slice::from_ref(w))
            .iter()
            .map(|kv| {
                let bad = || {
                    Error::Usage(format!(
                        "--usage-weights {kv}: expected MEASURE=WEIGHT with a positive weight"
                    ))
                };
                let (k, v) = kv.split_once('=').ok_or_else(bad)?;
                let v: f64 = v.trim().parse().map_err(|_| bad())?;
                if !(v.is_finite() && v > 0.0) {
                    return Err(bad());
                }
                Ok((k.trim().to_string(), v))
            })
            .collect::<Result<_>>()?,
        None => Vec::new(),
    };
    opts.health_bands = {
        let bad = || {
            Error::Usage(format!(
                "--health-bands {}: expected RED,GREEN cut-offs with 0 <= RED <= GREEN <= 100, e.g. 40,70",
                a.health_bands
            ))
        };
        let (r, g) = a.health_bands.split_once(',').ok_or_else(bad)?;
        let (r, g): (f64, f64) = (
            r.trim().parse().map_err(|_| bad())?,
            g.trim().parse().map_err(|_| bad())?,
        );
        if !(0.0..=100.0).contains(&r) || !(r..=100.0).contains(&g) {
            return Err(bad());
        }
        [r, g]
    };
    if a.max_bins < 2 {
        return Err(Error::Usage(format!(
            "--max-bins {} must be at least 2",
            a.max_bins
        )));
    }

    let t = Instant::now();
    let read_opts = ReadOptions {
        skip: opts.skipped_columns(),
        delimiter: a.delimiter,
        ..Default::default()
    };
    // Hash the file while parsing it.
    let (table, sha) = std::thread::scope(|s| {
        let h = s.spawn(|| sha256_file(&a.data));
        let table = read_table(&a.data, &read_opts);
        (table, h.join().expect("hash thread"))
    });
    let (table, sha) = (table?, sha?);
    let read_seconds = t.elapsed().as_secs_f64();
    let outcome = train(&table, &sha, &opts)?;
    let mut model = outcome.model;
    let path = save_new_version(&a.out, &mut model)?;
    let r = &outcome.report;

    if a.json {
        print_json(&serde_json::json!({
            "model_path": path,
            "model": format!("{}@{}", model.name, model.version),
            "read_seconds": read_seconds,
            "report": r,
            "kind": model.kind.name(),
            "kind_chosen_by": r.kind_chosen_by,
            "kinds_tried": r.kinds_tried,
            "l2": model.training.l2,
            "l2_chosen_by": model.training.l2_chosen_by,
            "solver": model.training.solver,
            "tiers": model.tiers,
            "health": r.health,
            "metrics": model.metrics,
        }));
        return Ok(());
    }
    let t = &model.training;
    println!(
        "read {}: {} rows, {} columns (sha256 {}) in {:.2} s",
        a.data.display(),
        r.rows,
        table.header.len(),
        &sha[..12],
        read_seconds
    );
    println!(
        "label {}: positive \"{}\" in {:.1}% of rows",
        t.label,
        t.positive,
        100.0 * t.positive_share
    );
    println!(
        "features: {} numeric, {} categorical -> {} design columns",
        r.numeric_features, r.categorical_features, r.design_columns
    );
    if !r.imputed_cells.is_empty() {
        let list: Vec<String> = r
            .imputed_cells
            .iter()
            .map(|c| format!("{} {}", c.feature, c.cells))
            .collect();
        println!("imputed cells: {}", list.join(", "));
    }
    if !r.constant_features.is_empty() {
        println!("constant (no effect): {}", r.constant_features.join(", "));
    }
    for k in &r.kinds_tried {
        println!(
            "{:<9} cross-validated log loss {:.5}, AUC {:.4}",
            k.kind.name(),
            k.cv_log_loss,
            k.cv_auc
        );
    }
    println!("kind {} chosen by {}", model.kind.name(), r.kind_chosen_by);
    if let Some(ad) = &r.additive {
        println!(
            "additive: smoothing {} chosen by {}; pairs: {}",
            ad.smoothing,
            ad.smoothing_chosen_by,
            if ad.pairs.is_empty() {
                "none".to_string()
            } else {
                ad.pairs
                    .iter()
                    .map(|p| format!("{} x {}", p[0], p[1]))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        for note in &ad.notes {
            println!("  note: {note}");
        }
    }
    if model.kind == crate::model::file::ModelKind::Linear {
        println!("l2 {} chosen by {}", t.l2, t.l2_chosen_by);
    }
    if let Some(cv) = &model.metrics.cross_validation {
        println!(
            "cross-validation ({} folds): AUC {} ± {:.4}, log loss {} ± {:.4}",
            cv.folds,
            fmt_metric(cv.auc_mean),
            cv.auc_std,
            fmt_metric(cv.log_loss_mean),
            cv.log_loss_std
        );
    }
    if let Some(h) = &model.metrics.holdout {
        if let Some(ts) = &r.time_split {
            if let Some(p) = ts.purge_days {
                println!(
                    "purged {} training rows dated less than {p} days before {}",
                    ts.purged_rows, ts.holdout_from
                );
            }
            println!(
                "backtest: trained on the {} rows with {} before {}, held out the {} rows from {} on",
                r.train_rows, ts.column, ts.holdout_from, r.holdout_rows, ts.holdout_from
            );
        }
        println!(
            "holdout ({} rows): AUC {}  PR-AUC {}  log loss {}  Brier {}  top-decile lift {:.2}",
            h.rows,
            fmt_metric(h.auc),
            fmt_metric(h.pr_auc),
            fmt_metric(h.log_loss),
            fmt_metric(h.brier),
            h.top_decile_lift
        );
    }
    println!(
        "tiers: HIGH p >= {:.4} ({:.0}% of {}), MEDIUM p >= {:.4} (next {:.0}%)",
        model.tiers.high,
        100.0 * model.tiers.high_share,
        if r.holdout_rows > 0 {
            "holdout"
        } else {
            "training rows"
        },
        model.tiers.medium,
        100.0 * model.tiers.medium_share
    );
    if r.health.measures.is_empty() {
        println!("health: no usage measures ({})", r.health.chosen_by);
    } else {
        let list: Vec<String> = r
            .health
            .measures
            .iter()
            .map(|(m, d, auc, _)| {
                format!(
                    "{m} ({} is healthier, AUC {auc:.3})",
                    if *d > 0 { "more" } else { "less" }
                )
            })
            .collect();
        println!(
            "health: {} usage measures ({}): {}",
            list.len(),
            r.health.chosen_by,
            list.join(", ")
        );
    }
    let iters = t
        .solver
        .iterations
        .map(|i| format!(", {i} iterations"))
        .unwrap_or_default();
    println!(
        "solver {}{iters}; final fit {:.3} s, training {:.2} s",
        t.solver.name, r.seconds.final_fit, r.seconds.total
    );
    println!("wrote {}", path.display());
    Ok(())
}

fn parse_shares(s: &str) -> Result<(f64, f64)> {
    let bad = || {
        Error::Usage(format!(
            "--tier-shares {s}: expected HIGH,MEDIUM such as 0.1,0.2"
        ))
    };
    let (h, m) = s.split_once(',').ok_or_else(bad)?;
    Ok((
        h.trim().parse().map_err(|_| bad())?,
        m.trim().parse().map_err(|_| bad())?,
    ))
}
