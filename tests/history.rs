//! `churn score --history`: every run kept in PostgreSQL or a folder of Parquet files, each
//! customer's previous run beside today's, reruns that replace instead of duplicating, killed runs
//! that append nothing, and shards that replace only their own rows.
mod common;
use common::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const DAYS: [&str; 3] = ["2020-04-04", "2020-04-18", "2020-05-02"];

/// One run: the output rows by id, and the `--json` summary.
struct ScoreRun {
    rows: HashMap<String, HashMap<String, String>>,
    summary: serde_json::Value,
}

fn score_run(model: &Path, input: &Path, out: &Path, history: &[&str], day: &str) -> ScoreRun {
    let mut a = vec![
        "score",
        "--model",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--id",
        "customer_id",
        "--as-of",
        day,
        "--json",
    ];
    a.extend_from_slice(history);
    let r = churn(&a);
    assert!(r.ok, "score --history ({day}): {}", r.stderr);
    ScoreRun {
        rows: read_csv(out)
            .into_iter()
            .map(|r| (r["customer_id"].clone(), r))
            .collect(),
        summary: json(&r.stdout),
    }
}

fn num(s: &str) -> f64 {
    s.parse()
        .unwrap_or_else(|_| panic!("{s:?} is not a number"))
}

/// Checks every row of each run against the runs before it: the previous columns name the
/// customer's latest earlier run exactly (or are empty), and the summary counts and risers agree.
fn check_trend(runs: &[(&str, &ScoreRun)]) {
    // id -> (probability text, tier, day) of its latest run so far.
    let mut latest: HashMap<String, (String, String, String)> = HashMap::new();
    for (day, run) in runs {
        let mut with_previous = 0;
        let mut rises: Vec<(f64, String)> = Vec::new();
        for (id, r) in &run.rows {
            match latest.get(id) {
                Some((p, tier, at)) => {
                    with_previous += 1;
                    assert_eq!(&r["previous_probability"], p, "{day} {id}");
                    assert_eq!(&r["previous_tier"], tier, "{day} {id}");
                    assert_eq!(&r["previous_as_of"], at, "{day} {id}");
                    let change = num(&r["churn_probability"]) - num(p);
                    assert_eq!(num(&r["probability_change"]), change, "{day} {id}");
                    if change > 0.0 {
                        rises.push((change, id.clone()));
                    }
                }
                None => {
                    for c in [
                        "previous_probability",
                        "probability_change",
                        "previous_tier",
                        "previous_as_of",
                    ] {
                        assert_eq!(r[c], "", "{day} {id}: a new customer has no {c}");
                    }
                }
            }
        }
        let h = &run.summary["history"];
        assert_eq!(h["as_of"], *day);
        assert_eq!(h["appended"], run.rows.len());
        assert_eq!(h["with_previous"], with_previous);
        assert_eq!(h["new_customers"], run.rows.len() - with_previous);
        rises.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        rises.truncate(10);
        let listed: Vec<(f64, String)> = run.summary["largest_risers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["probability_change"].as_f64().unwrap(),
                    x["id"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(listed, rises, "{day}: the largest risers");
        for (id, r) in &run.rows {
            latest.insert(
                id.clone(),
                (
                    r["churn_probability"].clone(),
                    r["risk_tier"].clone(),
                    day.to_string(),
                ),
            );
        }
    }
}

/// The socialnet model with three later snapshots, the middle one without a few customers (so a
/// customer's previous run is not always the last run).
fn social_runs() -> (social::Social, Vec<PathBuf>) {
    let s = social::social(&[], &DAYS);
    let mut inputs: Vec<PathBuf> = DAYS.iter().map(|d| s.now[*d].clone()).collect();
    let text = std::fs::read_to_string(&inputs[1]).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i == 0 || i % 7 != 3)
        .map(|(_, l)| l)
        .collect();
    inputs[1] = PathBuf::from(write(&s.dir, "middle.csv", &(kept.join("\n") + "\n")));
    (s, inputs)
}

#[cfg_attr(
    churn_skip_postgres,
    ignore = "CHURN_SKIP_POSTGRES was set when the tests were built"
)]
#[test]
fn three_runs_in_postgres_carry_each_customers_previous_run_and_a_rerun_replaces() {
    let url = database_url();
    let mut db = PgSchema::new(&url);
    let (s, inputs) = social_runs();
    let table = format!("{}.history", db.name);
    let hist = ["--history", &url, "--history-table", &table];
    let runs: Vec<ScoreRun> = DAYS
        .iter()
        .zip(&inputs)
        .map(|(day, input)| {
            let out = s.dir.join(format!("scores_{day}.csv"));
            score_run(&s.model, input, &out, &hist, day)
        })
        .collect();
    let pairs: Vec<(&str, &ScoreRun)> = DAYS.iter().copied().zip(&runs).collect();
    check_trend(&pairs);
    // Some customers skipped the middle run: their previous run is the first.
    let (third, first) = (&runs[2].rows, &runs[0].rows);
    assert!(
        third
            .values()
            .any(|r| r["previous_as_of"] == DAYS[0] && first.contains_key(&r["customer_id"]))
    );

    // The table holds each run exactly as scored, health and action included.
    let rows = db
        .client
        .query(
            &format!(
                "SELECT as_of::text, customer_id, churn_probability, risk_tier, health_score, action, model FROM {table}"
            ),
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), runs.iter().map(|r| r.rows.len()).sum::<usize>());
    for row in &rows {
        let day: String = row.get(0);
        let run = &runs[DAYS.iter().position(|d| *d == day).unwrap()];
        let id: String = row.get(1);
        let r = &run.rows[&id];
        assert_eq!(
            row.get::<_, f64>(2),
            num(&r["churn_probability"]),
            "{day} {id}"
        );
        assert_eq!(row.get::<_, String>(3), r["risk_tier"]);
        assert_eq!(row.get::<_, f64>(4), num(&r["health_score"]));
        assert_eq!(row.get::<_, String>(5), r["action"]);
        assert_eq!(row.get::<_, String>(6), r["model"]);
    }

    // A rerun of the middle day replaces its rows: no duplicates, and the next day's previous
    // runs are what they were.
    let again = score_run(
        &s.model,
        &inputs[1],
        &s.dir.join("again.csv"),
        &hist,
        DAYS[1],
    );
    assert_eq!(again.summary["history"]["replaced"], runs[1].rows.len());
    let n: i64 = db
        .client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .unwrap()
        .get(0);
    assert_eq!(n as usize, rows.len());
    let third_again = score_run(
        &s.model,
        &inputs[2],
        &s.dir.join("third.csv"),
        &hist,
        DAYS[2],
    );
    for (id, r) in &third_again.rows {
        assert_eq!(r, &runs[2].rows[id]);
    }
    // The summary counts customers per action, as the rows say.
    let mut actions: HashMap<String, u64> = HashMap::new();
    for r in runs[2].rows.values() {
        *actions.entry(r["action"].clone()).or_default() += 1;
    }
    for (a, n) in runs[2].summary["actions"].as_object().unwrap() {
        assert_eq!(
            actions.get(a).copied().unwrap_or(0),
            n.as_u64().unwrap(),
            "{a}"
        );
    }
    drop(db);
}

#[test]
fn a_parquet_folder_keeps_one_file_per_run_and_serves_the_previous_runs() {
    let (s, inputs) = social_runs();
    let folder = s.dir.join("history");
    let hist = ["--history", folder.to_str().unwrap()];
    let runs: Vec<ScoreRun> = DAYS
        .iter()
        .zip(&inputs)
        .map(|(day, input)| {
            let out = s.dir.join(format!("scores_{day}.csv"));
            score_run(&s.model, input, &out, &hist, day)
        })
        .collect();
    let pairs: Vec<(&str, &ScoreRun)> = DAYS.iter().copied().zip(&runs).collect();
    check_trend(&pairs);
    let want: Vec<String> = DAYS.iter().map(|d| format!("{d}.parquet")).collect();
    assert_eq!(file_names(&folder), want);

    // Each file holds its run as scored.
    let (ids, p, as_of) = read_history_file(&folder.join(&want[1]));
    assert_eq!(ids.len(), runs[1].rows.len());
    for ((id, p), day) in ids.iter().zip(&p).zip(&as_of) {
        assert_eq!(*p, num(&runs[1].rows[id]["churn_probability"]), "{id}");
        assert_eq!(day, DAYS[1]);
    }

    // A rerun replaces its day's file; the output may be Parquet, with the same previous columns.
    let out = s.dir.join("again.parquet");
    let r = churn(&[
        "score",
        "--model",
        s.model.to_str().unwrap(),
        "--input",
        inputs[2].to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--id",
        "customer_id",
        "--history",
        folder.to_str().unwrap(),
        "--as-of",
        DAYS[2],
        "--json",
    ]);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(json(&r.stdout)["history"]["replaced"], runs[2].rows.len());
    assert_eq!(file_names(&folder), want);
    let cols = parquet_cells(&out);
    assert_eq!(cols["customer_id"].len(), runs[2].rows.len());
    for (i, id) in cols["customer_id"].iter().enumerate() {
        let id = id.clone().unwrap();
        let want = &runs[2].rows[&id];
        for c in [
            "previous_probability",
            "probability_change",
            "previous_tier",
            "previous_as_of",
        ] {
            let got = cols[c][i].clone().unwrap_or_default();
            if c.ends_with("probability") || c.ends_with("change") {
                assert_eq!(
                    got.parse::<f64>().ok(),
                    want[c].parse::<f64>().ok(),
                    "{id} {c}"
                );
            } else {
                assert_eq!(got, want[c], "{id} {c}");
            }
        }
    }
}

/// A Parquet file's text and float columns as text cells (None for null).
fn parquet_cells(path: &Path) -> HashMap<String, Vec<Option<String>>> {
    use arrow_array::{Array, Float64Array, StringArray};
    let f = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap();
    let mut cols: HashMap<String, Vec<Option<String>>> = HashMap::new();
    for b in reader {
        let b = b.unwrap();
        for (field, c) in b.schema().fields().iter().zip(b.columns()) {
            let cells = cols.entry(field.name().clone()).or_default();
            for i in 0..c.len() {
                let any = c.as_any();
                cells.push(if c.is_null(i) {
                    None
                } else if let Some(s) = any.downcast_ref::<StringArray>() {
                    Some(s.value(i).to_string())
                } else if let Some(x) = any.downcast_ref::<Float64Array>() {
                    Some(x.value(i).to_string())
                } else {
                    Some(String::new())
                });
            }
        }
    }
    cols
}

/// The names in a folder, sorted.
fn file_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// A history file's ids, probabilities and as-of dates.
fn read_history_file(path: &Path) -> (Vec<String>, Vec<f64>, Vec<String>) {
    use arrow_array::{Array, Date32Array, Float64Array, StringArray};
    let f = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap();
    let (mut ids, mut p, mut days) = (Vec::new(), Vec::new(), Vec::new());
    for b in reader {
        let b = b.unwrap();
        let c = |n: &str| b.column(b.schema().index_of(n).unwrap()).clone();
        let id = c("customer_id");
        let id = id.as_any().downcast_ref::<StringArray>().unwrap();
        let pr = c("churn_probability");
        let pr = pr.as_any().downcast_ref::<Float64Array>().unwrap();
        let d = c("as_of");
        let d = d.as_any().downcast_ref::<Date32Array>().unwrap();
        for i in 0..b.num_rows() {
            ids.push(id.value(i).to_string());
            p.push(pr.value(i));
            days.push(churn::batch::history::date_of_epoch_days(d.value(i)).to_string());
            assert!(!d.is_null(i));
        }
    }
    (ids, p, days)
}

/// `churn score` on the Telco model reading a FIFO, with `args`; the pipe is open for writing.
fn score_from_fifo(dir: &Path, args: &[&str]) -> (std::process::Child, std::fs::File) {
    let fifo = dir.join("in.csv");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let mut a = vec![
        "score",
        "--model",
        "models/telco",
        "--input",
        fifo.to_str().unwrap(),
        "--id",
        "customerID",
        "--chunk-rows",
        "100",
    ];
    a.extend_from_slice(args);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_churn"))
        .args(&a)
        .current_dir(root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pipe = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    (child, pipe)
}

/// Feeds the first 3,000 Telco rows into the pipe, waits for `started`, and kills the run.
fn kill_midway(
    mut child: std::process::Child,
    mut pipe: std::fs::File,
    mut started: impl FnMut() -> bool,
) {
    use std::io::Write;
    let text = std::fs::read_to_string(root().join(TELCO)).unwrap();
    let some: Vec<&str> = text.lines().take(3001).collect();
    pipe.write_all((some.join("\n") + "\n").as_bytes()).unwrap();
    pipe.flush().unwrap();
    let t0 = std::time::Instant::now();
    while !started() {
        assert!(t0.elapsed().as_secs() < 30, "the run never got under way");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(pipe);
}

/// (count, sum of probabilities, count of health scores) of the table's run on `day`.
fn run_in_table(db: &mut PgSchema, table: &str, day: &str) -> (i64, f64, i64) {
    let r = db
        .client
        .query_one(
            &format!(
                "SELECT count(*), coalesce(sum(churn_probability), 0), count(health_score) FROM {table} WHERE as_of = $1::text::date"
            ),
            &[&day],
        )
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

/// Whether a statement matching `like` runs on the server (from another connection).
fn running(like: &str) -> impl FnMut() -> bool {
    let like = like.to_string();
    let mut watcher = postgres::Client::connect(&database_url(), postgres::NoTls).unwrap();
    move || {
        let n: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()",
                &[&like],
            )
            .unwrap()
            .get(0);
        n > 0
    }
}

#[cfg_attr(
    churn_skip_postgres,
    ignore = "CHURN_SKIP_POSTGRES was set when the tests were built"
)]
#[test]
fn a_killed_run_appends_nothing_and_keeps_the_run_it_was_replacing() {
    let url = database_url();
    let mut db = PgSchema::new(&url);
    let dir = tempfile::tempdir().unwrap();
    let table = format!("{}.history", db.name);
    let scores = format!("{}.scores", db.name);
    let out = dir.path().join("scores.csv");
    let out = out.to_str().unwrap();
    let day = "2026-11-30";
    // A full run: a model without usage health keeps its health columns empty.
    let r = score(&[
        "--input",
        TELCO,
        "--output",
        out,
        "--id",
        "customerID",
        "--history",
        &url,
        "--history-table",
        &table,
        "--as-of",
        day,
    ]);
    assert!(r.ok, "{}", r.stderr);
    let before = run_in_table(&mut db, &table, day);
    assert_eq!((before.0, before.2), (7043, 0));

    // A rerun of the same day, killed once its history rows are streaming in.
    let (child, pipe) = score_from_fifo(
        dir.path(),
        &[
            "--output",
            out,
            "--history",
            &url,
            "--history-table",
            &table,
            "--as-of",
            day,
        ],
    );
    let mut copying = running("COPY %history% FROM STDIN%");
    kill_midway(child, pipe, &mut copying);
    let t0 = std::time::Instant::now();
    while copying() {
        assert!(t0.elapsed().as_secs() < 30, "the killed copy never ended");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(run_in_table(&mut db, &table, day), before);

    // Scores to a table of the same database: the scores and the history commit together.
    let r = score(&[
        "--input",
        TELCO,
        "--output",
        &url,
        "--output-table",
        &scores,
        "--id",
        "customerID",
        "--history",
        &url,
        "--history-table",
        &table,
        "--as-of",
        "2026-12-01",
        "--json",
    ]);
    assert!(r.ok, "{}", r.stderr);
    let s = json(&r.stdout);
    assert_eq!(s["history"]["appended"], 7043);
    assert_eq!(s["history"]["with_previous"], 7043);
    let together = db
        .client
        .query_one(
            &format!(
                "SELECT count(*), count(*) FILTER (WHERE h.churn_probability = s.churn_probability AND h.risk_tier = s.risk_tier)
                 FROM {table} h JOIN {scores} s ON s.\"customerID\" = h.customer_id WHERE h.as_of = DATE '2026-12-01'"
            ),
            &[],
        )
        .unwrap();
    assert_eq!(
        (together.get::<_, i64>(0), together.get::<_, i64>(1)),
        (7043, 7043)
    );
    let day2 = run_in_table(&mut db, &table, "2026-12-01");
    let (child, pipe) = score_from_fifo(
        dir.path(),
        &[
            "--output",
            &url,
            "--output-table",
            &scores,
            "--history",
            &url,
            "--history-table",
            &table,
            "--as-of",
            "2026-12-01",
        ],
    );
    let mut staging = running("COPY %churn_stage% FROM STDIN%");
    kill_midway(child, pipe, &mut staging);
    let t0 = std::time::Instant::now();
    while staging() {
        assert!(t0.elapsed().as_secs() < 30, "the killed copy never ended");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(run_in_table(&mut db, &table, "2026-12-01"), day2);
    assert_eq!(run_in_table(&mut db, &table, day), before);
    let n: i64 = db
        .client
        .query_one(&format!("SELECT count(*) FROM {scores}"), &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 7043);
}

#[test]
fn a_killed_run_leaves_no_parquet_run_and_the_next_run_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("history");
    let out = dir.path().join("scores.csv");
    let (out, f) = (out.to_str().unwrap(), folder.to_str().unwrap());
    let full_run = || {
        let r = score(&[
            "--input",
            TELCO,
            "--output",
            out,
            "--id",
            "customerID",
            "--history",
            f,
            "--as-of",
            "2026-11-30",
        ]);
        assert!(r.ok, "{}", r.stderr);
    };
    full_run();
    let run = folder.join("2026-11-30.parquet");
    let first = read_history_file(&run);
    assert_eq!(first.0.len(), 7043);
    let names = || file_names(&folder);
    for day in ["2026-11-30", "2026-12-01"] {
        let (child, pipe) = score_from_fifo(
            dir.path(),
            &["--output", out, "--history", f, "--as-of", day],
        );
        let tmp = format!(".{day}.parquet.tmp-{}", child.id());
        kill_midway(child, pipe, || folder.join(&tmp).exists());
        let mut want = vec!["2026-11-30.parquet".to_string(), tmp];
        want.sort();
        assert_eq!(names(), want, "the killed run left only its temporary file");
        assert!(
            read_history_file(&run) == first,
            "the run's file is as it was"
        );
        full_run();
        assert_eq!(
            names(),
            ["2026-11-30.parquet"],
            "the next run removes the leftover"
        );
    }
}

#[cfg_attr(
    churn_skip_postgres,
    ignore = "CHURN_SKIP_POSTGRES was set when the tests were built"
)]
#[test]
fn shards_share_one_history_table_and_a_rerun_shard_replaces_only_its_rows() {
    let url = database_url();
    let mut db = PgSchema::new(&url);
    let dir = tempfile::tempdir().unwrap();
    let table = format!("{}.history", db.name);
    let shard_run = |i: usize| {
        let out = dir.path().join(format!("s{i}.csv"));
        let shard = format!("{i}/3");
        let r = score(&[
            "--input",
            TELCO,
            "--output",
            out.to_str().unwrap(),
            "--id",
            "customerID",
            "--shard",
            &shard,
            "--history",
            &url,
            "--history-table",
            &table,
            "--as-of",
            "2026-12-01",
            "--json",
        ]);
        assert!(r.ok, "{}", r.stderr);
        json(&r.stdout)
    };
    // The three shards at once, as an Indexed Job runs them: the first run creates the table.
    let sums: Vec<serde_json::Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3).map(|i| s.spawn(move || shard_run(i))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let appended: u64 = sums
        .iter()
        .map(|s| s["history"]["appended"].as_u64().unwrap())
        .sum();
    assert_eq!(appended, 7043);
    let count = |db: &mut PgSchema| -> (i64, i64) {
        let r = db
            .client
            .query_one(
                &format!("SELECT count(*), count(DISTINCT customer_id) FROM {table}"),
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(count(&mut db), (7043, 7043));
    let stamp = |db: &mut PgSchema| -> Vec<(String, String)> {
        db.client
            .query(
                &format!("SELECT customer_id, scored_at::text FROM {table} ORDER BY 1"),
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    };
    let before = stamp(&mut db);
    let again = shard_run(1);
    assert_eq!(again["history"]["replaced"], sums[1]["history"]["appended"]);
    assert_eq!(count(&mut db), (7043, 7043));
    let after = stamp(&mut db);
    let shard1: std::collections::HashSet<String> = read_csv(&dir.path().join("s1.csv"))
        .into_iter()
        .map(|r| r["customerID"].clone())
        .collect();
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b.0, a.0);
        if shard1.contains(&a.0) {
            assert_ne!(b.1, a.1, "{}: shard 1's rows are rewritten", a.0);
        } else {
            assert_eq!(b.1, a.1, "{}: other shards' rows are left alone", a.0);
        }
    }
}

#[test]
fn history_flags_and_destinations_are_checked_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.csv");
    let out = out.to_str().unwrap();
    let folder = dir.path().join("h");
    let f = folder.to_str().unwrap();
    let fails = |args: &[&str], says: &[&str]| {
        let mut a = vec!["--input", TELCO, "--output", out];
        a.extend_from_slice(args);
        let r = score(&a);
        assert!(!r.ok, "{args:?} should fail");
        for s in says {
            assert!(r.stderr.contains(s), "{args:?}: {s:?} in {}", r.stderr);
        }
        assert!(!Path::new(out).exists(), "{args:?} wrote its output");
    };
    fails(
        &[
            "--id",
            "customerID",
            "--history",
            f,
            "--as-of",
            "2026-13-01",
        ],
        &["--as-of 2026-13-01", "YYYY-MM-DD"],
    );
    fails(
        &["--history", f, "--history-table", "t"],
        &["--history-table", "PostgreSQL"],
    );
    fails(
        &["--history", "postgres://postgres@127.0.0.1:5432/test"],
        &["--history-table"],
    );
    fails(&["--as-of", "2026-12-01"], &["--history"]);
    // Without an id column there is no customer to follow.
    let no_id = write(
        dir.path(),
        "no_id.csv",
        "tenure,MonthlyCharges\n1,20\n30,80\n",
    );
    let r = score(&["--input", &no_id, "--output", out, "--history", f]);
    assert!(!r.ok && r.stderr.contains("--id"), "{}", r.stderr);
    // A folder that is a file.
    let file = write(dir.path(), "file", "x");
    fails(&["--id", "customerID", "--history", &file], &[&file]);
    assert!(!folder.exists());
}

#[cfg_attr(
    churn_skip_postgres,
    ignore = "CHURN_SKIP_POSTGRES was set when the tests were built"
)]
#[test]
fn a_table_that_is_not_a_history_is_refused_by_name() {
    let url = database_url();
    let mut db = PgSchema::new(&url);
    let table = format!("{}.not_history", db.name);
    db.client
        .batch_execute(&format!(
            "CREATE TABLE {table} (customer_id text, score int)"
        ))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.csv");
    let r = score(&[
        "--input",
        TELCO,
        "--output",
        out.to_str().unwrap(),
        "--id",
        "customerID",
        "--history",
        &url,
        "--history-table",
        &table,
    ]);
    assert!(!r.ok);
    assert!(r.stderr.contains("not_history"), "{}", r.stderr);
    assert!(!out.exists());
}

#[test]
fn cdnow_purchases_through_features_train_and_two_runs_with_history() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let feats = |out: &Path, extra: &[&str]| {
        let mut a = vec![
            "features",
            "--events",
            "data/cdnow/cdnow_master.csv",
            "--spec",
            "examples/features/cdnow.toml",
            "--out",
            out.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        let r = churn(&a);
        assert!(r.ok, "features: {}", r.stderr);
    };
    let train = d.join("train.csv");
    feats(
        &train,
        &[
            "--from",
            "1997-06-01",
            "--to",
            "1997-10-01",
            "--every",
            "60d",
            "--horizon",
            "90d",
        ],
    );
    let model = d.join("cdnow");
    let r = churn(&[
        "train",
        "--data",
        train.to_str().unwrap(),
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
        model.to_str().unwrap(),
    ]);
    assert!(r.ok, "train: {}", r.stderr);
    let model = model.join("1/model.json");
    let folder = d.join("history");
    let days = ["1998-01-01", "1998-03-01"];
    let runs: Vec<ScoreRun> = days
        .iter()
        .map(|day| {
            let input = d.join(format!("now_{day}.csv"));
            feats(&input, &["--snapshot", day, "--label", "none"]);
            score_run(
                &model,
                &input,
                &d.join(format!("scores_{day}.csv")),
                &["--history", folder.to_str().unwrap()],
                day,
            )
        })
        .collect();
    let pairs: Vec<(&str, &ScoreRun)> = days.iter().copied().zip(&runs).collect();
    check_trend(&pairs);
    // Every CDNOW customer bought in 1997, so all are in both runs: none is new the second time.
    assert_eq!(runs[1].rows.len(), 23570);
    assert_eq!(runs[1].summary["history"]["new_customers"], 0);
    // The purchase counts are the usage: every row has a health, a band and an action.
    let mut per_action: HashMap<&str, u64> = HashMap::new();
    for r in runs[1].rows.values() {
        let h = num(&r["health_score"]);
        assert!((0.0..=100.0).contains(&h), "{h}");
        *per_action.entry(r["action"].as_str()).or_default() += 1;
    }
    for (a, n) in runs[1].summary["actions"].as_object().unwrap() {
        assert_eq!(
            per_action.get(a.as_str()).copied().unwrap_or(0),
            n.as_u64().unwrap()
        );
    }
}
