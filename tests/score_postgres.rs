//! `churn score` against a real PostgreSQL (DATABASE_URL): tables and queries in, tables out,
//! all-or-nothing replacement (a failed or killed run leaves the old table), ranks and shards.
mod common;
use common::*;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The first `n` Telco rows as a CSV file.
fn telco_head(dir: &std::path::Path, n: usize) -> String {
    let text = std::fs::read_to_string(root().join(TELCO)).unwrap();
    let head: Vec<&str> = text.lines().take(n + 1).collect();
    write(dir, &format!("head{n}.csv"), &(head.join("\n") + "\n"))
}

fn ids_in(db: &mut PgSchema, table: &str) -> Vec<String> {
    db.client
        .query(
            &format!("SELECT \"customerID\" FROM {}.{table}", db.name),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn tables_in(db: &mut PgSchema) -> Vec<String> {
    let mut t: Vec<String> = db
        .client
        .query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
            &[&db.name],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    t.sort();
    t
}

/// `churn score` into `table` from a named pipe in `dir`, 100 rows a block, so that a test decides
/// when rows arrive; stderr is captured. Returns the process and the pipe's writing end.
fn score_from_fifo(
    dir: &std::path::Path,
    url: &str,
    table: &str,
) -> (std::process::Child, std::fs::File) {
    let fifo = dir.join("in.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_churn"))
        .args([
            "score",
            "--model",
            "models/telco",
            "--input",
            fifo.to_str().unwrap(),
            "--output",
            url,
            "--output-table",
            table,
            "--chunk-rows",
            "100",
        ])
        .current_dir(root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pipe = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    (child, pipe)
}

#[cfg_attr(
    churn_skip_postgres,
    ignore = "CHURN_SKIP_POSTGRES was set when the tests were built"
)]
#[test]
fn a_table_or_query_scores_exactly_like_the_csv_file() {
    let url = database_url();
    let mut db = PgSchema::new(&url);
    db.load_telco("telco");
    let dir = tempfile::tempdir().unwrap();
    let from_file = dir.path().join("file.csv");
    let from_table = dir.path().join("table.csv");
    let r = score(&["--input", TELCO, "--output", from_file.to_str().unwrap()]);
    assert!(r.ok, "{}", r.stderr);
    let table = format!("{}.telco", db.name);
    let r = score(&[
        "--input",
        &url,
        "--table",
        &table,
        "--output",
        from_table.to_str().unwrap(),
        "--json",
    ]);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(json(&r.stdout)["scored"], 7043);
    // float8 comes out of PostgreSQL in shortest round-trip form and NULL as an empty cell, so
    // every byte matches.
    let (a, b) = (
        std::fs::read_to_string(&from_file).unwrap(),
        std::fs::read_to_string(&from_table).unwrap(),
    );
    // A table has no order (PostgreSQL may scan it in parallel), so lines are compared sorted.
    let sorted = |t: &str| {
        let mut l: Vec<String> = t.lines().map(str::to_string).collect();
        l[1..].sort();
        l
    };
    let (a, b) = (sorted(&a), sorted(&b));
    assert_eq!(a.len(), 7044);
    let differ: Vec<(&String, &String)> = a.iter().zip(&b).filter(|(x, y)| x != y).collect();
    assert!(
        differ.is_empty(),
        "{} lines differ, first: {:?}",
        differ.len(),
        differ.first()
    );
    assert_eq!(a.len(), b.len());

    // A query: only its rows, in its order.
    let q = format!(
        "SELECT * FROM {table} WHERE \"Contract\" = 'Two year' ORDER BY \"customerID\" DESC"
    );
    let out = dir.path().join("query.parquet");
    let r = score(&[
        "--input",
        &url,
        "--query",
        &q,
        "--output",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(r.ok, "{}", r.stderr);
    let want = read_csv(&from_file);
    let contract: HashMap<String, String> = {
        let mut r = csv::Reader::from_path(root().join(TELCO)).unwrap();
        let h = r.headers().unwrap().clone();
        let c = h.iter().position(|x| x == "Contract").unwrap();
        r.records()
            .map(|x| {
                let x = x.unwrap();
                (x[0].to_string(), x[c].to_string())
            })
            .collect()
    };
    let mut expected: Vec<&HashMap<String, String>> = want
        .iter()
        .filter(|row| contract[&row["customerID"]] == "Two year")
        .collect();
    expected.sort_by(|a, b| b["customerID"].cmp(&a["customerID"]));
    let f = std::fs::File::open(&out).unwrap();
    let batches: Vec<_> = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect();
    use arrow_array::cast::AsArray;
    let mut got = Vec::new();
    for b in &batches {
        let ids = b.column(0).as_string::<i32>();
        let p = b
            .column(1)
            .as_primitive::<arrow_array::types::Float64Type>();
        for i in 0..b.num_rows() {
            got.push((ids.value(i).to_string(), p.value(i)));
        }
    }
    assert_eq!(got.len(), expected.len());
    for (g, w) in got.iter().zip(&expected) {
        assert_eq!(g.0, w["customerID"]);
        assert_eq!(g.1, w["churn_probability"].parse::<f64>().unwrap());
    }
}

#[cfg_attr(
    churn_skip_postgres,
    ignore = "CHURN_SKIP_POSTGRES was set when the tests were built"
)]
#[test]
fn scores_land_in_a_table_with_ranks_and_a_rerun_replaces_it() {
    let url = database_url();
    let mut db = PgSchema::new(&url);
    let dir = tempfile::tempdir().unwrap();
    let table = format!("{}.scores", db.name);
    let csv_out = dir.path().join("ranked.csv");
    let r = score(&[
        "--input",
        TELCO,
        "--output",
        csv_out.to_str().unwrap(),
        "--rank",
    ]);
    assert!(r.ok, "{}", r.stderr);
    let r = score(&[
        "--input",
        TELCO,
        "--output",
        &url,
        "--output-table",
        &table,
        "--rank",
        "--json",
    ]);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(json(&r.stdout)["scored"], 7043);

    let file = read_csv(&csv_out);
    assert_eq!(file.len(), 7043);
    let header: Vec<String> = csv::Reader::from_path(&csv_out)
        .unwrap()
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(
        header[..5],
        [
            "customerID",
            "churn_probability",
            "risk_tier",
            "rank",
            "reason_1"
        ]
    );
    // Ranks: 1 + the number of customers with a strictly higher probability.
    let mut probs: Vec<f64> = file
        .iter()
        .map(|r| r["churn_probability"].parse().unwrap())
        .collect();
    probs.sort_by(|a, b| b.total_cmp(a));
    for row in &file {
        let p: f64 = row["churn_probability"].parse().unwrap();
        let want = 1 + probs.iter().filter(|&&q| q > p).count();
        assert_eq!(row["rank"], want.to_string(), "{row:?}");
    }
    assert!(file.iter().any(|r| r["rank"] == "1"));

    let rows = db
        .client
        .query(&format!("SELECT * FROM {table}"), &[])
        .unwrap();
    assert_eq!(rows.len(), 7043);
    let cols: Vec<&str> = rows[0].columns().iter().map(|c| c.name()).collect();
    assert_eq!(
        cols,
        [
            "customerID",
            "churn_probability",
            "risk_tier",
            "rank",
            "reason_1",
            "contribution_1",
            "reason_2",
            "contribution_2",
            "reason_3",
            "contribution_3",
            "model"
        ]
    );
    let by_id: HashMap<&str, &HashMap<String, String>> =
        file.iter().map(|r| (r["customerID"].as_str(), r)).collect();
    for row in &rows {
        let id: String = row.get("customerID");
        let want = by_id[id.as_str()];
        assert_eq!(
            row.get::<_, f64>("churn_probability"),
            want["churn_probability"].parse::<f64>().unwrap()
        );
        assert_eq!(row.get::<_, String>("risk_tier"), want["risk_tier"]);
        assert_eq!(row.get::<_, i64>("rank").to_string(), want["rank"]);
        for k in 1..=3 {
            assert_eq!(
                row.get::<_, String>(format!("reason_{k}").as_str()),
                want[&format!("reason_{k}")]
            );
            assert_eq!(
                row.get::<_, f64>(format!("contribution_{k}").as_str()),
                want[&format!("contribution_{k}")].parse::<f64>().unwrap()
            );
        }
        assert_eq!(row.get::<_, String>("model"), "telco@1");
    }
    let comment: String = db
        .client
        .query_one(
            &format!("SELECT obj_description('{table}'::regclass, 'pg_class')"),
            &[],
        )
        .unwrap()
        .get(0);
    assert!(comment.contains("telco@1"), "{comment}");
    let indexes: i64 = db
        .client
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND tablename = 'scores'",
            &[&db.name],
        )
        .unwrap()
        .get(0);
    assert_eq!(indexes, 1);

    // A second run replaces the table (and its index) instead of adding to it.
    let head = telco_head(dir.path(), 25);
    let r = score(&["--input", &head, "--output", &url, "--output-table", &table]);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(ids_in(&mut db, "scores").len(), 25);
    assert_eq!(tables_in(&mut db), ["scores"]);
}

/// A first, good run: `<schema>.scores` holding the first 20 Telco rows. Returns the table's
/// name and its ids.
fn seed_scores(db: &mut PgSchema, dir: &Path, url: &str) -> (String, HashSet<String>) {
    let table = format!("{}.scores", db.name);
    let head = telco_head(dir, 20);
    let r = score(&["--input", &head, "--output", url, "--output-table", &table]);
    assert!(r.ok, "{}", r.stderr);
    let before: HashSet<String> = ids_in(db, "scores").into_iter().collect();
    (table, before)
}

#[cfg_attr(
    churn_skip_postgres,
    ignore = "CHURN_SKIP_POSTGRES was set when the tests were built"
)]
#[test]
fn a_failed_or_killed_run_leaves_the_previous_table_as_it_was() {
    let url = database_url();
    let mut db = PgSchema::new(&url);
    let dir = tempfile::tempdir().unwrap();
    let (table, before) = seed_scores(&mut db, dir.path(), &url);
    assert_eq!(before.len(), 20);

    // Failed: a rejected row cannot be written (its folder does not exist), halfway through.
    let text = std::fs::read_to_string(root().join(TELCO)).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[3000] = lines[3000].replacen(",Yes,", ",Yes,extra,", 1);
    let bad = write(dir.path(), "bad.csv", &(lines.join("\n") + "\n"));
    let r = score(&[
        "--input",
        &bad,
        "--output",
        &url,
        "--output-table",
        &table,
        "--rejects",
        dir.path().join("no/such/dir/rej.csv").to_str().unwrap(),
        "--chunk-rows",
        "500",
    ]);
    assert!(!r.ok, "the run should fail");
    assert!(r.stderr.contains("rej.csv"), "{}", r.stderr);
    let after: HashSet<String> = ids_in(&mut db, "scores").into_iter().collect();
    assert_eq!(after, before);
    assert_eq!(tables_in(&mut db), ["scores"]);

    // Killed: rows stream through a pipe; once the copy into the staging table is under way the
    // process is killed.
    let (mut child, mut pipe) = score_from_fifo(dir.path(), &url, &table);
    {
        use std::io::Write;
        let some: Vec<&str> = text.lines().take(3001).collect();
        pipe.write_all((some.join("\n") + "\n").as_bytes()).unwrap();
        pipe.flush().unwrap();
    }
    let mut watcher = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let copying = || -> bool {
        let n: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY %churn_stage% FROM STDIN%'",
                &[],
            )
            .unwrap()
            .get(0);
        n > 0
    };
    let mut copying = copying;
    let t0 = std::time::Instant::now();
    while !copying() {
        assert!(
            t0.elapsed().as_secs() < 30,
            "the copy into the staging table never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(pipe);
    // The server notices the dropped connection and rolls the transaction back.
    let t0 = std::time::Instant::now();
    while copying() {
        assert!(t0.elapsed().as_secs() < 30, "the killed copy never ended");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let after: HashSet<String> = ids_in(&mut db, "scores").into_iter().collect();
    assert_eq!(after, before);
    assert_eq!(tables_in(&mut db), ["scores"]);
}

#[cfg_attr(
    churn_skip_postgres,
    ignore = "CHURN_SKIP_POSTGRES was set when the tests were built"
)]
#[test]
fn shards_of_a_table_cover_every_customer_once_and_bad_rows_are_named() {
    let url = database_url();
    let mut db = PgSchema::new(&url);
    db.load_telco("telco");
    let table = format!("{}.telco", db.name);
    let mut seen: Vec<String> = Vec::new();
    for i in 0..4 {
        let out = format!("{}.shard_{i}", db.name);
        let shard = format!("{i}/4");
        let r = score(&[
            "--input",
            &url,
            "--table",
            &table,
            "--output",
            &url,
            "--output-table",
            &out,
            "--shard",
            &shard,
            "--json",
        ]);
        assert!(r.ok, "{}", r.stderr);
        let s = json(&r.stdout);
        assert_eq!(s["rows_read"], 7043);
        let ids = ids_in(&mut db, &format!("shard_{i}"));
        assert_eq!(s["scored"], ids.len());
        assert!(ids.len() > 1000, "shard {i} holds {}", ids.len());
        seen.extend(ids);
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(seen.len(), 7043);
    assert_eq!(unique.len(), 7043);

    // A bad value in a query's result is rejected with its row number and id.
    db.client
        .batch_execute(&format!(
            "CREATE TABLE {s}.bad AS SELECT * FROM {s}.telco ORDER BY \"customerID\" LIMIT 50;
             ALTER TABLE {s}.bad ALTER COLUMN tenure TYPE text;
             UPDATE {s}.bad SET tenure = 'ten' WHERE \"customerID\" = (SELECT \"customerID\" FROM {s}.bad ORDER BY \"customerID\" OFFSET 6 LIMIT 1);",
            s = db.name
        ))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.csv");
    let rejects = dir.path().join("rej.csv");
    let q = format!("SELECT * FROM {}.bad ORDER BY \"customerID\"", db.name);
    let r = score(&[
        "--input",
        &url,
        "--query",
        &q,
        "--output",
        out.to_str().unwrap(),
        "--rejects",
        rejects.to_str().unwrap(),
        "--json",
    ]);
    assert!(r.ok, "{}", r.stderr);
    let s = json(&r.stdout);
    assert_eq!(
        (s["scored"].as_u64(), s["rejected"].as_u64()),
        (Some(49), Some(1))
    );
    let rej = read_csv(&rejects);
    assert_eq!(rej[0]["row"], "7");
    assert_eq!(rej[0]["columns"], "tenure");
    assert!(rej[0]["reason"].contains("\"ten\""), "{rej:?}");
    let id: String = db
        .client
        .query_one(
            &format!(
                "SELECT \"customerID\" FROM {}.bad WHERE tenure = 'ten'",
                db.name
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(rej[0]["id"], id);
}

#[cfg_attr(
    churn_skip_postgres,
    ignore = "CHURN_SKIP_POSTGRES was set when the tests were built"
)]
#[test]
fn postgres_mistakes_are_named_and_passwords_never_shown() {
    let url = database_url();
    let db = PgSchema::new(&url);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.csv");
    let o = out.to_str().unwrap();
    let r = score(&["--input", &url, "--output", o]);
    assert!(
        !r.ok && r.stderr.contains("--table NAME or --query SQL"),
        "{}",
        r.stderr
    );
    let r = score(&["--input", TELCO, "--output", &url]);
    assert!(!r.ok && r.stderr.contains("--output-table"), "{}", r.stderr);
    let missing = format!("{}.nope", db.name);
    let r = score(&["--input", &url, "--table", &missing, "--output", o]);
    assert!(!r.ok && r.stderr.contains("does not exist"), "{}", r.stderr);
    let r = score(&["--input", &url, "--query", "SELECT 1 AS x", "--output", o]);
    assert!(!r.ok && r.stderr.contains("no such column"), "{}", r.stderr);
    // A password in the URL never reaches a message.
    let with_password = url.replacen("://postgres@", "://postgres:hunter2@", 1);
    let r = score(&[
        "--input",
        &with_password,
        "--table",
        &missing,
        "--output",
        o,
    ]);
    assert!(!r.ok, "{}", r.stderr);
    assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
    assert!(!out.exists());
}

/// Terminates the backends whose query matches `like`, once one is running; returns how many.
fn terminate_when_running(url: &str, like: &str) -> i64 {
    let mut admin = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let t0 = std::time::Instant::now();
    loop {
        let n: i64 = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()",
                &[&like],
            )
            .unwrap()
            .get(0);
        if n > 0 {
            return n;
        }
        assert!(t0.elapsed().as_secs() < 30, "no backend ran {like}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[cfg_attr(
    churn_skip_postgres,
    ignore = "CHURN_SKIP_POSTGRES was set when the tests were built"
)]
#[test]
fn a_connection_killed_by_the_server_fails_the_run_clearly_and_leaves_no_table() {
    let url = database_url();
    let mut db = PgSchema::new(&url);
    let dir = tempfile::tempdir().unwrap();
    let (table, before) = seed_scores(&mut db, dir.path(), &url);

    // Output side: rows stream in through a pipe; PostgreSQL ends the writing connection while it
    // copies into the staging table.
    let text = std::fs::read_to_string(root().join(TELCO)).unwrap();
    let (child, mut pipe) = score_from_fifo(dir.path(), &url, &table);
    let lines: Vec<&str> = text.lines().collect();
    {
        use std::io::Write;
        pipe.write_all((lines[..3001].join("\n") + "\n").as_bytes())
            .unwrap();
        pipe.flush().unwrap();
        // Only this test's backend: other tests copy into staging tables of their own schemas.
        let own_copy = format!("COPY %{}%churn_stage% FROM STDIN%", db.name);
        assert_eq!(terminate_when_running(&url, &own_copy), 1);
        // The rest of the input; the scorer may already have stopped reading.
        let _ = pipe.write_all((lines[3001..].join("\n") + "\n").as_bytes());
    }
    drop(pipe);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the run should fail: {stderr}");
    assert!(
        stderr.contains("127.0.0.1:5432/test") || stderr.contains("postgres"),
        "the message names the database: {stderr}"
    );
    assert!(
        stderr.contains("terminat") || stderr.contains("connection"),
        "the message says the connection was lost: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    eprintln!("{stderr}");
    let after: HashSet<String> = ids_in(&mut db, "scores").into_iter().collect();
    assert_eq!(after, before, "the previous table is untouched");
    assert_eq!(tables_in(&mut db), ["scores"], "no staging table is left");

    // Input side: the query's rows come slowly; PostgreSQL ends the reading connection mid-copy.
    db.load_telco("telco");
    let csv_out = dir.path().join("scores.csv");
    let query = format!(
        "SELECT t.* FROM {}.telco t, generate_series(1, 10) g WHERE pg_sleep(0.0002) IS NOT NULL",
        db.name
    );
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_churn"))
        .args([
            "score",
            "--model",
            "models/telco",
            "--input",
            &url,
            "--query",
            &query,
            "--id",
            "customerID",
            "--output",
            csv_out.to_str().unwrap(),
        ])
        .current_dir(root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let own_query = format!("COPY (%{}.telco%pg_sleep%", db.name);
    assert_eq!(terminate_when_running(&url, &own_query), 1);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the run should fail: {stderr}");
    assert!(
        stderr.contains("terminat") || stderr.contains("connection"),
        "the message says the connection was lost: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!csv_out.exists(), "no partial output file");
    eprintln!("{stderr}");
}
