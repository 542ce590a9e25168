//! Usage health and the next action, end to end on the socialnet log: `churn features` (event
//! types from the log) -> `churn train` (the activity metrics as usage measures) -> every door:
//! `churn score` (CSV and Parquet), `churn explain`, churn.v1 Score and V2 ModelInfer over
//! loopback, and `export-sql` run in PostgreSQL. Health must follow each measure's direction,
//! bands and actions the documented table, and the same customer get the same health everywhere.
mod common;
mod grpc;
use common::*;
use grpc::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

struct Fixture {
    _social: social::Social,
    dir: PathBuf,
    model: PathBuf,
    /// Today's customers (features at 2020-05-02, no label).
    now: PathBuf,
}

fn fixture(extra_train: &[&str]) -> Fixture {
    let s = social::social(extra_train, &["2020-05-02"]);
    Fixture {
        dir: s.dir.clone(),
        model: s.model.clone(),
        now: s.now["2020-05-02"].clone(),
        _social: s,
    }
}

fn model_json(path: &Path) -> serde_json::Value {
    json(&std::fs::read_to_string(path).unwrap())
}

/// A feature row of `now.csv` as the JSON `churn explain` takes (id and snapshot left out).
fn row_json(r: &HashMap<String, String>) -> serde_json::Map<String, serde_json::Value> {
    r.iter()
        .filter(|(k, _)| *k != "customer_id" && *k != "snapshot")
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| {
            let value = match v.parse::<f64>() {
                Ok(x) => serde_json::json!(x),
                Err(_) => serde_json::json!(v),
            };
            (k.clone(), value)
        })
        .collect()
}

fn explain(model: &Path, row: &serde_json::Map<String, serde_json::Value>) -> serde_json::Value {
    let features = serde_json::Value::Object(row.clone()).to_string();
    let r = churn(&[
        "explain",
        "--model",
        model.to_str().unwrap(),
        "--features",
        &features,
        "--json",
    ]);
    assert!(r.ok, "explain: {}", r.stderr);
    json(&r.stdout)
}

fn band_of(score: f64) -> &'static str {
    if score < 40.0 {
        "RED"
    } else if score < 70.0 {
        "YELLOW"
    } else {
        "GREEN"
    }
}

fn action_of(tier: &str, band: &str) -> &'static str {
    match (tier != "LOW", band == "RED") {
        (true, true) => "RESCUE",
        (true, false) => "RENEW",
        (false, true) => "ONBOARD",
        (false, false) => "GROW",
    }
}

#[test]
fn health_follows_the_directions_and_the_bands_and_actions_follow_the_table() {
    let f = fixture(&[]);
    let m = model_json(&f.model);
    assert_eq!(m["format"], 3);
    let measures = m["health"]["measures"].as_array().unwrap();
    let names: Vec<&str> = measures
        .iter()
        .map(|x| x["feature"].as_str().unwrap())
        .collect();
    // The activity metrics, per-type counts from the log included; not recency or tenure.
    for want in ["events_7d", "active_days_28d", "type_6_28d"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    for not in ["days_since_last_event", "tenure_days", "trend_14d", "mrr"] {
        assert!(!names.contains(&not), "{not} in {names:?}");
    }
    // The log's user column gives distinct users, an activity metric like the counts.
    assert!(names.contains(&"users_28d"), "{names:?}");
    let r = churn(&["inspect", "--model", f.model.to_str().unwrap()]);
    assert!(
        r.stdout
            .contains(&format!("health: {} usage measures", measures.len())),
        "{}",
        r.stdout
    );
    // More activity goes with staying on this log: most measures point up, and each measure's
    // learned strength is at least a coin's.
    let up = measures.iter().filter(|x| x["direction"] == 1).count();
    assert!(up * 2 > measures.len(), "{up} of {}", measures.len());
    for x in measures {
        assert!(x["staying_auc"].as_f64().unwrap() >= 0.5);
    }

    // Score today's customers; bands and actions follow the table from each row's own numbers.
    let out = f.dir.join("scored.csv");
    let r = churn(&[
        "score",
        "--model",
        f.model.to_str().unwrap(),
        "--input",
        f.now.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(r.ok, "score: {}", r.stderr);
    let scored = read_csv(&out);
    let mut actions: HashMap<String, usize> = HashMap::new();
    for s in &scored {
        let h: f64 = s["health_score"].parse().unwrap();
        assert!((0.0..=100.0).contains(&h), "{h}");
        assert_eq!(s["health_band"], band_of(h), "{s:?}");
        assert_eq!(s["action"], action_of(&s["risk_tier"], &s["health_band"]));
        *actions.entry(s["action"].clone()).or_default() += 1;
    }
    // The summary counts them, and on this base every action occurs.
    for (a, n) in &actions {
        assert!(r.stdout.contains(&format!("{a} {n}")), "{}", r.stdout);
    }
    assert_eq!(actions.len(), 4, "{actions:?}");

    // --rank-by health: 1 = the lowest health, ties sharing a rank (PostgreSQL tables: below).
    let healths: Vec<f64> = scored
        .iter()
        .map(|s| s["health_score"].parse().unwrap())
        .collect();
    let expected_rank = |h: f64| 1 + healths.iter().filter(|&&o| o < h).count() as u64;
    let ranked = f.dir.join("ranked.csv");
    let r = churn(&[
        "score",
        "--model",
        f.model.to_str().unwrap(),
        "--input",
        f.now.to_str().unwrap(),
        "--output",
        ranked.to_str().unwrap(),
        "--rank-by",
        "health",
    ]);
    assert!(r.ok, "score --rank-by health: {}", r.stderr);
    for s in read_csv(&ranked) {
        let h: f64 = s["health_score"].parse().unwrap();
        assert_eq!(s["rank"].parse::<u64>().unwrap(), expected_rank(h), "{s:?}");
    }
    // Monotone: raising one measure never lowers health when more is healthier, and never
    // raises it when less is.
    let rows = read_csv(&f.now);
    let base = row_json(&rows[3]);
    let h0 = explain(&f.model, &base)["health_score"].as_f64().unwrap();
    for x in measures.iter().take(8) {
        let name = x["feature"].as_str().unwrap();
        let mut up = base.clone();
        let v = up[name].as_f64().unwrap();
        up.insert(name.into(), serde_json::json!(v * 3.0 + 50.0));
        let h1 = explain(&f.model, &up)["health_score"].as_f64().unwrap();
        if x["direction"] == 1 {
            assert!(h1 >= h0, "{name}: {h0} -> {h1}");
        } else {
            assert!(h1 <= h0, "{name}: {h0} -> {h1}");
        }
    }
    // The customer with every measure at zero is RED: no usage is not healthy usage.
    let mut idle = base.clone();
    for x in measures {
        if x["direction"] == 1 {
            idle.insert(x["feature"].as_str().unwrap().into(), serde_json::json!(0));
        }
    }
    let e = explain(&f.model, &idle);
    assert_eq!(e["health_band"], "RED", "{e}");
    let reasons = e["health_reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 3);
    let p: Vec<f64> = reasons
        .iter()
        .map(|r| r["percentile"].as_f64().unwrap())
        .collect();
    assert!(p.windows(2).all(|w| w[0] <= w[1]), "lowest first: {p:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_customer_gets_the_same_health_and_action_through_every_door() {
    let f = fixture(&[
        "--usage-weights",
        "active_days_28d=3",
        "--health-bands",
        "35,65",
    ]);
    let m = model_json(&f.model);
    assert_eq!(m["health"]["bands"], serde_json::json!([35.0, 65.0]));
    let rows = read_csv(&f.now);
    let csv_out = f.dir.join("scored.csv");
    let pq_out = f.dir.join("scored.parquet");
    for out in [&csv_out, &pq_out] {
        let r = churn(&[
            "score",
            "--model",
            f.model.to_str().unwrap(),
            "--input",
            f.now.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ]);
        assert!(r.ok, "score: {}", r.stderr);
    }
    let by_id: HashMap<String, HashMap<String, String>> = read_csv(&csv_out)
        .into_iter()
        .map(|r| (r["customer_id"].clone(), r))
        .collect();
    assert_eq!(by_id.len(), rows.len());

    // Parquet: the same three columns, the same values.
    {
        let file = std::fs::File::open(&pq_out).unwrap();
        let rdr = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        let mut n = 0;
        for b in rdr {
            let b = b.unwrap();
            let col = |name: &str| b.column(b.schema().index_of(name).unwrap()).clone();
            use arrow_array::cast::AsArray;
            let ids = col("customer_id");
            let hs = col("health_score");
            let bands = col("health_band");
            let acts = col("action");
            for i in 0..b.num_rows() {
                let id = ids.as_string::<i32>().value(i);
                let c = &by_id[id];
                let h = hs
                    .as_primitive::<arrow_array::types::Float64Type>()
                    .value(i);
                assert_eq!(h, c["health_score"].parse::<f64>().unwrap(), "{id}");
                assert_eq!(bands.as_string::<i32>().value(i), c["health_band"]);
                assert_eq!(acts.as_string::<i32>().value(i), c["action"]);
                n += 1;
            }
        }
        assert_eq!(n, rows.len());
    }

    // explain, churn.v1 Score and V2 ModelInfer for 25 customers.
    let repo = tempfile::tempdir().unwrap();
    install(repo.path(), "social", 1, &f.model);
    let srv = Server::start(repo.path(), &[]);
    let mut c = srv.client().await;
    let mut v2 = srv.v2_client().await;
    let model = churn::ChurnModel::load(&f.model).unwrap();
    for r in rows.iter().take(25) {
        let id = &r["customer_id"];
        let want = &by_id[id];
        let want_h: f64 = want["health_score"].parse().unwrap();
        let row = row_json(r);
        let e = explain(&f.model, &row);
        assert_eq!(e["health_score"].as_f64().unwrap(), want_h, "explain {id}");
        assert_eq!(e["health_band"], want["health_band"].as_str());
        assert_eq!(e["action"], want["action"].as_str());

        let features = row
            .iter()
            .map(|(k, v)| {
                let fv = match v {
                    serde_json::Value::Number(x) => num(x.as_f64().unwrap()),
                    other => text(other.as_str().unwrap()),
                };
                (k.clone(), fv)
            })
            .collect();
        let resp = c
            .score(churn::proto::ScoreRequest {
                customer_id: id.clone(),
                features,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.health_score, Some(want_h), "churn.v1 {id}");
        let band = churn::proto::HealthBand::try_from(resp.health_band).unwrap();
        assert_eq!(
            band.as_str_name(),
            format!("HEALTH_BAND_{}", want["health_band"])
        );
        let action = churn::proto::Action::try_from(resp.action).unwrap();
        assert_eq!(action.as_str_name(), format!("ACTION_{}", want["action"]));
        assert_eq!(resp.health_reasons.len(), 3);

        // V2: one typed tensor per feature.
        use churn::inference::model_infer_request::InferInputTensor;
        use churn::inference::{InferTensorContents, ModelInferRequest};
        let mut req = ModelInferRequest {
            model_name: "social".into(),
            ..Default::default()
        };
        for def in model.schema().features() {
            let mut contents = InferTensorContents::default();
            let dt = match (&def.kind, row.get(&def.name)) {
                (churn::schema::FeatureKind::Numeric(_), v) => {
                    contents
                        .fp64_contents
                        .push(v.and_then(|v| v.as_f64()).unwrap_or(f64::NAN));
                    "FP64"
                }
                (churn::schema::FeatureKind::Categorical(_), v) => {
                    let s = v.and_then(|v| v.as_str()).unwrap_or("").to_string();
                    contents.bytes_contents.push(s.into_bytes().into());
                    "BYTES"
                }
            };
            req.inputs.push(InferInputTensor {
                name: def.name.clone(),
                datatype: dt.into(),
                shape: vec![1],
                contents: Some(contents),
                ..Default::default()
            });
        }
        let out = v2.model_infer(req).await.unwrap().into_inner();
        let get = |name: &str| {
            out.outputs
                .iter()
                .find(|o| o.name == name)
                .unwrap_or_else(|| panic!("no V2 output {name}"))
                .contents
                .clone()
                .unwrap()
        };
        assert_eq!(get("health_score").fp64_contents, vec![want_h], "V2 {id}");
        assert_eq!(
            get("health_band").bytes_contents[0].as_ref(),
            want["health_band"].as_bytes()
        );
        assert_eq!(
            get("action").bytes_contents[0].as_ref(),
            want["action"].as_bytes()
        );
    }
}

#[cfg_attr(
    churn_skip_postgres,
    ignore = "CHURN_SKIP_POSTGRES was set when the tests were built"
)]
#[test]
fn export_sql_gives_postgres_the_same_health_band_and_action() {
    let f = fixture(&[]);
    let mut pg = PgSchema::new(&database_url());
    let rows = read_csv(&f.now);
    let header: Vec<String> = {
        let mut r = csv::Reader::from_path(&f.now).unwrap();
        r.headers().unwrap().iter().map(str::to_string).collect()
    };
    let table = format!("{}.now", pg.name);
    let cols: Vec<String> = header
        .iter()
        .map(|h| {
            let ty = if h == "customer_id" || h == "snapshot" || h == "plan" {
                "text"
            } else {
                "float8"
            };
            format!("\"{h}\" {ty}")
        })
        .collect();
    pg.client
        .batch_execute(&format!("CREATE TABLE {table} ({})", cols.join(", ")))
        .unwrap();
    let copy = format!("COPY {table} FROM STDIN (FORMAT csv, HEADER true)");
    let mut w = pg.client.copy_in(&copy).unwrap();
    std::io::Write::write_all(&mut w, &std::fs::read(&f.now).unwrap()).unwrap();
    w.finish().unwrap();
    let view = format!("{}.scores", pg.name);
    let r = churn(&[
        "export-sql",
        "--model",
        f.model.to_str().unwrap(),
        "--table",
        &table,
        "--name",
        &view,
        "--id",
        "customer_id",
    ]);
    assert!(r.ok, "export-sql: {}", r.stderr);
    pg.client.batch_execute(&r.stdout).unwrap();
    let out = f.dir.join("scored.csv");
    let s = churn(&[
        "score",
        "--model",
        f.model.to_str().unwrap(),
        "--input",
        f.now.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(s.ok, "score: {}", s.stderr);
    let by_id: HashMap<String, HashMap<String, String>> = read_csv(&out)
        .into_iter()
        .map(|r| (r["customer_id"].clone(), r))
        .collect();
    // --rank-by health into a PostgreSQL table: 1 = the lowest health, as in files.
    let url = database_url();
    let healths: Vec<f64> = by_id
        .values()
        .map(|s| s["health_score"].parse().unwrap())
        .collect();
    let expected_rank = |h: f64| 1 + healths.iter().filter(|&&o| o < h).count() as u64;
    let table = format!("{}.ranked", pg.name);
    let r = churn(&[
        "score",
        "--model",
        f.model.to_str().unwrap(),
        "--input",
        f.now.to_str().unwrap(),
        "--output",
        &url,
        "--output-table",
        &table,
        "--rank-by",
        "health",
    ]);
    assert!(r.ok, "score into PostgreSQL --rank-by health: {}", r.stderr);
    let got = pg
        .client
        .query(&format!("SELECT health_score, rank FROM {table}"), &[])
        .unwrap();
    assert_eq!(got.len(), healths.len());
    for row in got {
        let (h, rank): (f64, i64) = (row.get(0), row.get(1));
        assert_eq!(rank as u64, expected_rank(h), "{h}");
    }

    let got = pg
        .client
        .query(
            &format!("SELECT customer_id, health_score, health_band, action FROM {view}"),
            &[],
        )
        .unwrap();
    assert_eq!(got.len(), rows.len());
    for row in got {
        let id: String = row.get(0);
        let want = &by_id[&id];
        let h: f64 = row.get(1);
        let want_h: f64 = want["health_score"].parse().unwrap();
        assert!((h - want_h).abs() <= 1e-9, "{id}: {h} vs {want_h}");
        assert_eq!(row.get::<_, String>(2), want["health_band"], "{id}");
        assert_eq!(row.get::<_, String>(3), want["action"], "{id}");
    }
}

#[test]
fn without_usage_measures_there_are_no_health_fields_and_bad_health_is_refused() {
    // The bundled Telco model (format 2) has no health: no columns, and explain says so.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.csv");
    let r = churn(&[
        "score",
        "--model",
        "models/telco",
        "--input",
        TELCO,
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(r.ok, "{}", r.stderr);
    let first = &read_csv(&out)[0];
    assert!(!first.contains_key("health_score") && !first.contains_key("action"));
    let row = &telco_rows(1)[0].1;
    let features = serde_json::Value::Object(row.clone()).to_string();
    let e = churn(&[
        "explain",
        "--model",
        "models/telco",
        "--features",
        &features,
    ]);
    assert!(e.stdout.contains("health: none"), "{}", e.stdout);
    let r = churn(&[
        "score",
        "--model",
        "models/telco",
        "--input",
        TELCO,
        "--output",
        out.to_str().unwrap(),
        "--rank-by",
        "health",
    ]);
    assert!(
        !r.ok
            && r.stderr
                .contains("--rank-by health: telco@1 has no usage health"),
        "{}",
        r.stderr
    );
    let e = churn(&[
        "explain",
        "--model",
        "models/telco",
        "--features",
        &features,
        "--json",
    ]);
    assert!(json(&e.stdout).get("health_score").is_none());

    let r = churn(&["inspect", "--model", "models/telco"]);
    assert!(r.stdout.contains("health: none"), "{}", r.stdout);

    // A Telco table is not a churn features table: no health unless --usage names measures.
    let m = dir.path().join("m");
    let r = churn(&[
        "train",
        "--data",
        TELCO,
        "--label",
        "Churn",
        "--id",
        "customerID",
        "--kind",
        "linear",
        "--usage",
        "tenure,MonthlyCharges",
        "--out",
        m.to_str().unwrap(),
    ]);
    assert!(r.ok, "{}", r.stderr);
    assert!(
        r.stdout.contains("health: 2 usage measures (--usage)"),
        "{}",
        r.stdout
    );
    let file = m.join("1/model.json");
    let mut mj = model_json(&file);
    assert_eq!(
        mj["health"]["measures"][0]["direction"], 1,
        "longer tenure, more staying"
    );

    // Mistakes name what is wrong.
    for (args, want) in [
        (vec!["--usage", "Contract"], "must be numeric"),
        (vec!["--usage", "nope"], "nope"),
        (vec!["--health-bands", "80,20"], "--health-bands 80,20"),
        (
            vec!["--usage", "tenure", "--usage-weights", "MonthlyCharges=2"],
            "--usage-weights names 'MonthlyCharges'",
        ),
    ] {
        let mut a = vec![
            "train",
            "--data",
            TELCO,
            "--label",
            "Churn",
            "--id",
            "customerID",
            "--kind",
            "linear",
            "--folds",
            "0",
            "--out",
            m.to_str().unwrap(),
        ];
        a.extend(args.iter());
        let r = churn(&a);
        assert!(!r.ok && r.stderr.contains(want), "{args:?}: {}", r.stderr);
    }

    // A broken health table is refused at load, naming the measure.
    mj["health"]["measures"][1]["percentiles"][5] = serde_json::json!(1e9);
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, mj.to_string()).unwrap();
    let e = churn(&[
        "explain",
        "--model",
        broken.to_str().unwrap(),
        "--features",
        &features,
    ]);
    assert!(
        !e.ok && e.stderr.contains("usage measure 'MonthlyCharges'"),
        "{}",
        e.stderr
    );
    // And health in a file that says format 2 is refused too.
    mj = model_json(&file);
    mj["format"] = serde_json::json!(2);
    std::fs::write(&broken, mj.to_string()).unwrap();
    let e = churn(&[
        "explain",
        "--model",
        broken.to_str().unwrap(),
        "--features",
        &features,
    ]);
    assert!(!e.ok && e.stderr.contains("format 3"), "{}", e.stderr);
}

#[test]
fn a_default_measure_with_one_value_for_everyone_is_left_out() {
    let f = fixture(&["--usage", "none"]);
    // The training table with a column every customer shares, named like an activity metric.
    let text = std::fs::read_to_string(f.dir.join("train.csv")).unwrap();
    let mut lines = text.lines();
    let mut out = format!("{},seats_total\n", lines.next().unwrap());
    for l in lines {
        out += &format!("{l},3\n");
    }
    let data = write(&f.dir, "seats.csv", &out);
    let train = |extra: &[&str], to: &str| -> Vec<String> {
        let dir = f.dir.join(to);
        let mut a = vec![
            "train",
            "--data",
            &data,
            "--label",
            "churned",
            "--positive",
            "1",
            "--id",
            "customer_id",
            "--split-by",
            "snapshot",
            "--kind",
            "linear",
            "--seed",
            "1",
            "--out",
        ];
        let d = dir.to_str().unwrap().to_string();
        a.push(&d);
        a.extend_from_slice(extra);
        let r = churn(&a);
        assert!(r.ok, "train: {}", r.stderr);
        model_json(&dir.join("1/model.json"))["health"]["measures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["feature"].as_str().unwrap().to_string())
            .collect()
    };
    let by_default = train(&[], "default");
    assert!(
        by_default.contains(&"events_7d".to_string()),
        "{by_default:?}"
    );
    assert!(
        !by_default.contains(&"seats_total".to_string()),
        "{by_default:?}"
    );
    // Named with --usage, it is the user's choice and stays.
    let named = train(&["--usage", "seats_total,events_7d"], "named");
    assert_eq!(named, ["seats_total", "events_7d"]);
}
