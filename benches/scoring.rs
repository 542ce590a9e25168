//! Scoring kernel: rows per second through `ChurnModel::score_row` (the front door), probability
//! only and with the top-3 reasons, for the bundled (linear) Telco model and for an additive model
//! trained here on the same data (`--kind additive --seed 1`: binned shapes and 10 pairs), and a
//! linear model with usage health on its four numeric features beside the same model without
//! health. Rows are the real Telco rows, parsed once.
use churn::io::{ReadOptions, read_table};
use churn::model::train::{KindChoice, TrainOptions, train};
use churn::model::{ChurnModel, RowScratch};
use churn::schema::{FeatureKind, Value};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn telco_rows(model: &ChurnModel) -> Vec<Vec<String>> {
    let mut rdr = csv::Reader::from_path("data/telco_customer_churn.csv").unwrap();
    let header: Vec<String> = rdr.headers().unwrap().iter().map(str::to_string).collect();
    let cols: Vec<usize> = model
        .schema()
        .features()
        .iter()
        .map(|f| header.iter().position(|h| *h == f.name).unwrap())
        .collect();
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            cols.iter().map(|&c| r[c].to_string()).collect()
        })
        .collect()
}

/// An additive model of the Telco data, trained as `churn train --kind additive --seed 1` would.
fn telco_additive() -> ChurnModel {
    let path = std::path::Path::new("data/telco_customer_churn.csv");
    let mut opts = TrainOptions::new(path, "Churn", "telco-additive");
    opts.positive = Some("Yes".into());
    opts.drop = vec!["customerID".into()];
    opts.kind = KindChoice::Additive;
    opts.seed = 1;
    let read = ReadOptions {
        skip: opts.skipped_columns(),
        ..Default::default()
    };
    let table = read_table(path, &read).unwrap();
    let outcome = train(&table, "bench", &opts).unwrap();
    ChurnModel::from_file(outcome.model).unwrap()
}

/// The linear Telco model trained with usage health on its four numeric features, and the same
/// model without health: the pair measures what health adds to a row.
fn telco_with_and_without_health() -> (ChurnModel, ChurnModel) {
    let path = std::path::Path::new("data/telco_customer_churn.csv");
    let mut opts = TrainOptions::new(path, "Churn", "telco-health");
    opts.positive = Some("Yes".into());
    opts.drop = vec!["customerID".into()];
    opts.kind = KindChoice::Linear;
    opts.usage = Some(
        ["tenure", "MonthlyCharges", "TotalCharges", "SeniorCitizen"]
            .map(String::from)
            .to_vec(),
    );
    let read = ReadOptions {
        skip: opts.skipped_columns(),
        ..Default::default()
    };
    let table = read_table(path, &read).unwrap();
    let file = train(&table, "bench", &opts).unwrap().model;
    let mut without = file.clone();
    without.health = None;
    without.format = 2;
    (
        ChurnModel::from_file(file).unwrap(),
        ChurnModel::from_file(without).unwrap(),
    )
}

fn bench_model(c: &mut Criterion, group: &str, model: &ChurnModel) {
    let text = telco_rows(model);
    let rows: Vec<Vec<Value<'_>>> = text
        .iter()
        .map(|r| {
            r.iter()
                .zip(model.schema().features())
                .map(|(cell, f)| match f.kind {
                    FeatureKind::Numeric(_) => {
                        cell.trim().parse().map_or(Value::Missing, Value::Number)
                    }
                    FeatureKind::Categorical(_) => Value::Text(cell),
                })
                .collect()
        })
        .collect();
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(rows.len() as u64));
    g.bench_function("probability", |b| {
        let mut s = RowScratch::default();
        b.iter(|| {
            let mut acc = 0.0;
            for r in &rows {
                acc += model
                    .score_row(black_box(r), false, &mut s)
                    .unwrap()
                    .probability;
            }
            acc
        })
    });
    g.bench_function("probability_and_top3_reasons", |b| {
        let mut s = RowScratch::default();
        let mut top = Vec::with_capacity(4);
        b.iter(|| {
            let mut acc = 0.0;
            for r in &rows {
                let score = model.score_row(black_box(r), false, &mut s).unwrap();
                s.reasons_into(3, &mut top);
                acc += score.probability + s.contributions[top[0]];
            }
            acc
        })
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    let linear = ChurnModel::load("models/telco".as_ref()).unwrap();
    bench_model(c, "score_telco", &linear);
    let additive = telco_additive();
    bench_model(c, "score_telco_additive", &additive);
    let (with, without) = telco_with_and_without_health();
    bench_model(c, "score_telco_usage_health", &with);
    bench_model(c, "score_telco_same_without_health", &without);
}

criterion_group!(benches, bench);
criterion_main!(benches);
