//! `churn features` end to end through the binary: hand-made event logs whose right answers are
//! worked out by hand, bad input, Parquet and PostgreSQL inputs, and the two real logs in `data/`
//! through features, a time-split training and an out-of-time evaluation.
mod common;
use common::{churn, database_url, json, read_csv, write};
use std::collections::HashMap;
use std::path::Path;

type Row = HashMap<String, String>;

/// The hand-made log. Snapshot 2020-03-01 (UTC): the comments give what each line should do.
const EVENTS: &str = "customer_id,timestamp,event_type,value
a,2020-02-23T00:00:00Z,buy,10
a,2020-02-22T23:59:59,view,
a,2020-02-29 23:59:59,buy,5
a,2020-03-01T00:00:00,buy,1000
a,2020-02-02,view,
a,2020-02-01,view,
b,2020-03-01T01:00:00+02:00,buy,7
c,2020-03-05,buy,3
d,2020-01-10,buy,4
d,2020-01-10,buy,4
z,2020-06-30,view,
";
// a: 02-23 00:00 is the first instant of the 7-day window; 02-22 23:59:59 the last one outside
//    it; 03-01 00:00 is the snapshot itself, so it feeds the label, never the features.
// b: 01:00 at +02:00 is 23:00 UTC on 02-29: before the snapshot in UTC.
// c: only after the snapshot: no row.
// d: the same event twice: two events on one active day.
// z: makes the data reach past every horizon used here.

/// Snapshots 2020-02-01, 02-15 and 02-29.
const SERIES: [&str; 6] = [
    "--from",
    "2020-02-01",
    "--to",
    "2020-03-01",
    "--every",
    "14d",
];

fn features(dir: &Path, events: &str, extra: &[&str]) -> (Vec<Row>, common::Run) {
    let out = dir.join("f.csv");
    let mut args = vec![
        "features",
        "--events",
        events,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let r = churn(&args);
    assert!(r.ok, "features failed: {}", r.stderr);
    (read_csv(&out), r)
}

fn row<'a>(rows: &'a [Row], id: &str, snapshot: &str) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r["customer_id"] == id && r["snapshot"] == snapshot)
}

fn num(r: &Row, col: &str) -> f64 {
    r.get(col)
        .unwrap_or_else(|| panic!("no column {col}"))
        .parse()
        .unwrap_or_else(|_| panic!("{col} = {:?}", r[col]))
}

#[test]
fn windows_edges_zones_duplicates_and_the_label_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let ev = write(dir.path(), "events.csv", EVENTS);
    let (rows, run) = features(
        dir.path(),
        &ev,
        &["--snapshot", "2020-03-01", "--horizon", "30d"],
    );
    assert!(
        run.stdout.contains("snapshot 2020-03-01: 3 customers"),
        "{}",
        run.stdout
    );
    let ids: Vec<&str> = rows.iter().map(|r| r["customer_id"].as_str()).collect();
    assert_eq!(ids, ["a", "b", "d"], "c's only event is after the snapshot");

    let a = row(&rows, "a", "2020-03-01").unwrap();
    assert_eq!(num(a, "events_7d"), 2.0);
    assert_eq!(num(a, "events_28d"), 4.0);
    assert_eq!(num(a, "events_90d"), 5.0);
    assert_eq!(num(a, "events_total"), 5.0);
    assert_eq!(num(a, "value_7d"), 15.0);
    assert_eq!(
        num(a, "value_total"),
        15.0,
        "the 1000 on the snapshot day must not leak"
    );
    assert_eq!(num(a, "avg_value"), 3.0);
    assert_eq!(num(a, "days_since_last_event"), 1.0);
    assert_eq!(num(a, "tenure_days"), 29.0);
    assert_eq!(num(a, "active_days_7d"), 2.0);
    assert_eq!(num(a, "active_days_28d"), 4.0);
    // (4 in the last 28 days + 1) / (1 in the 28 before + 1).
    assert_eq!(num(a, "trend_28d"), 2.5);
    assert_eq!(num(a, "early_events_30d"), 5.0);
    assert_eq!(num(a, "early_value_30d"), 15.0);
    assert_eq!(a["churned"], "0", "a buys on the snapshot day");

    let b = row(&rows, "b", "2020-03-01").unwrap();
    assert_eq!(num(b, "events_7d"), 1.0);
    assert_eq!(num(b, "days_since_last_event"), 1.0);
    assert_eq!(b["churned"], "1");

    let d = row(&rows, "d", "2020-03-01").unwrap();
    assert_eq!(num(d, "events_total"), 2.0);
    assert_eq!(num(d, "active_days_90d"), 1.0);
    assert_eq!(num(d, "value_total"), 8.0);
    assert_eq!(num(d, "days_since_last_event"), 51.0);
    assert_eq!(num(d, "events_28d"), 0.0);
    assert_eq!(d["churned"], "1");

    // In a frame at +02:00, b's event is at 01:00 on the snapshot day: after it.
    let spec = write(dir.path(), "tz.toml", "[time]\nutc_offset = \"+02:00\"\n");
    let (rows, _) = features(
        dir.path(),
        &ev,
        &[
            "--snapshot",
            "2020-03-01",
            "--horizon",
            "30d",
            "--spec",
            &spec,
        ],
    );
    assert!(row(&rows, "b", "2020-03-01").is_none());
}

#[test]
fn order_does_not_matter_and_later_events_only_move_the_label() {
    let dir = tempfile::tempdir().unwrap();
    let args = SERIES;
    let ev = write(dir.path(), "events.csv", EVENTS);
    let (sorted, _) = features(dir.path(), &ev, &args);
    let snaps: std::collections::BTreeSet<&str> =
        sorted.iter().map(|r| r["snapshot"].as_str()).collect();
    assert_eq!(
        snaps.into_iter().collect::<Vec<_>>(),
        ["2020-02-01", "2020-02-15", "2020-02-29"]
    );

    let mut lines: Vec<&str> = EVENTS.lines().collect();
    lines[1..].reverse();
    let shuffled = write(dir.path(), "reversed.csv", &(lines.join("\n") + "\n"));
    let (reversed, _) = features(dir.path(), &shuffled, &args);
    assert_eq!(sorted, reversed);

    // Big events after the last snapshot: every feature stays, d's label turns.
    let later = format!("{EVENTS}d,2020-03-02,buy,99999\na,2020-04-01,buy,99999\n");
    let leak = write(dir.path(), "later.csv", &later);
    let (with_later, _) = features(dir.path(), &leak, &args);
    assert_eq!(sorted.len(), with_later.len());
    for (x, y) in sorted.iter().zip(&with_later) {
        for (k, v) in x {
            if k != "churned" {
                assert_eq!(v, &y[k], "{k} of {} at {}", x["customer_id"], x["snapshot"]);
            }
        }
    }
    let d = |rows: &[Row]| row(rows, "d", "2020-02-29").unwrap()["churned"].clone();
    assert_eq!((d(&sorted), d(&with_later)), ("1".into(), "0".into()));
}

#[test]
fn event_types_activity_labels_and_spec_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let log = format!("{EVENTS}e,2020-02-20,buy,1\ne,2020-03-10,view,\nf,2020-02-25,view,\n");
    let ev = write(dir.path(), "events.csv", &log);
    let spec = write(
        dir.path(),
        "spec.toml",
        r#"
[label]
activity = ["buy"]
[metrics]
windows = ["28d"]
trend = []
event_types = ["buy", { value = "view", name = "looks" }]
log = ["buy_total"]
[[metrics.ratio]]
name = "looks_per_buy"
numerator = "looks_total"
denominator = "buy_total"
"#,
    );
    let args = [
        "--snapshot",
        "2020-03-01",
        "--horizon",
        "30d",
        "--spec",
        &spec,
    ];
    let (rows, run) = features(dir.path(), &ev, &args);
    let a = row(&rows, "a", "2020-03-01").unwrap();
    assert_eq!(num(a, "buy_total"), 2.0);
    assert_eq!(num(a, "looks_total"), 3.0);
    assert_eq!(num(a, "buy_28d"), 2.0);
    assert_eq!(num(a, "looks_28d"), 2.0);
    assert_eq!(num(a, "buy_value_total"), 15.0);
    assert_eq!(num(a, "looks_per_buy"), 1.5);
    assert!((num(a, "log_buy_total") - 3f64.ln()).abs() < 1e-12);
    assert!(!a.contains_key("events_7d"), "only the spec's windows");
    // Only purchases count as staying: e's view after the snapshot does not.
    assert_eq!(row(&rows, "e", "2020-03-01").unwrap()["churned"], "1");
    // d bought and never looked: 0. f looked and never bought: missing, not infinite.
    assert_eq!(row(&rows, "d", "2020-03-01").unwrap()["looks_per_buy"], "0");
    assert_eq!(row(&rows, "f", "2020-03-01").unwrap()["looks_per_buy"], "");
    assert!(run.stdout.contains("buy_total"));

    let (rows, _) = features(
        dir.path(),
        &ev,
        &["--snapshot", "2020-03-01", "--horizon", "30d"],
    );
    assert_eq!(row(&rows, "e", "2020-03-01").unwrap()["churned"], "0");

    // Scoring today's customers: no label column, and no need for data after the snapshot.
    let (rows, _) = features(
        dir.path(),
        &ev,
        &["--snapshot", "2020-07-01", "--label", "none"],
    );
    assert!(!rows[0].contains_key("churned"));
    assert_eq!(rows.len(), 7);
}

#[test]
fn a_user_column_gives_distinct_users_and_per_user_rates() {
    let dir = tempfile::tempdir().unwrap();
    // Snapshot 2020-03-01, windows 7d (from 02-23) and 28d (from 02-02).
    let log = "customer_id,timestamp,event_type,user_id
a,2020-02-25,buy,ann
a,2020-02-26,view,ann
a,2020-02-27,view,bob
a,2020-02-10,view,cy
a,2020-01-05,buy,dee
a,2020-02-28,view,
b,2020-02-24,buy,ann
b,2020-02-24,buy,ann
c,2020-02-05,view,
z,2020-06-30,view,zed
";
    // a: 7d has ann, bob (the blank-user view counts as an event, not as a user): 2 users, 4
    //    events, 1 buy; 28d adds cy: 3 users, 5 events; before the snapshot 4 users (dee too).
    // b: ann again is b's own user: 1 user, 2 events. c: events but no user: rates missing.
    let ev = write(dir.path(), "events.csv", log);
    let spec = write(
        dir.path(),
        "spec.toml",
        "[metrics]\nwindows = [\"7d\", \"28d\"]\ntrend = []\nevent_types = [\"buy\"]\n",
    );
    let (rows, run) = features(
        dir.path(),
        &ev,
        &[
            "--snapshot",
            "2020-03-01",
            "--horizon",
            "30d",
            "--spec",
            &spec,
        ],
    );
    let a = row(&rows, "a", "2020-03-01").unwrap();
    assert_eq!(num(a, "users_total"), 4.0);
    assert_eq!(num(a, "users_7d"), 2.0);
    assert_eq!(num(a, "users_28d"), 3.0);
    assert_eq!(num(a, "events_per_user_7d"), 2.0);
    assert_eq!(num(a, "events_per_user_28d"), 5.0 / 3.0);
    assert_eq!(num(a, "buy_per_user_7d"), 0.5);
    let b = row(&rows, "b", "2020-03-01").unwrap();
    assert_eq!(
        (num(b, "users_7d"), num(b, "events_per_user_7d")),
        (1.0, 2.0)
    );
    let c = row(&rows, "c", "2020-03-01").unwrap();
    assert_eq!((num(c, "users_28d"), num(c, "events_28d")), (0.0, 1.0));
    assert_eq!(
        c["events_per_user_28d"], "",
        "no users: missing, not infinite"
    );
    assert!(run.stdout.contains("users_7d"), "{}", run.stdout);

    // The spec can turn them off, and a log without the column has none.
    let off = write(
        dir.path(),
        "off.toml",
        "[metrics]\nwindows = [\"7d\"]\nper_user = false\n",
    );
    let (rows, _) = features(
        dir.path(),
        &ev,
        &[
            "--snapshot",
            "2020-03-01",
            "--horizon",
            "30d",
            "--spec",
            &off,
        ],
    );
    assert!(
        rows[0].keys().all(|k| !k.contains("user")),
        "{:?}",
        rows[0].keys()
    );
    let (rows, _) = features(
        dir.path(),
        &write(dir.path(), "plain.csv", EVENTS),
        &["--snapshot", "2020-03-01", "--horizon", "30d"],
    );
    assert!(rows[0].keys().all(|k| !k.contains("user")));
}

#[test]
fn a_spec_naming_no_event_types_takes_the_frequent_ones_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    // 13 events: buy 8, view 4, and one "Log In", under a 10% share.
    let log = format!("{EVENTS}e,2020-02-20,buy,1\ne,2020-02-21,Log In,\n");
    let ev = write(dir.path(), "events.csv", &log);
    let spec = |extra: &str| {
        let text = format!("[metrics]\nwindows = [\"28d\"]\nmin_type_share = 0.1\n{extra}");
        write(dir.path(), "spec.toml", &text)
    };
    let snap = ["--snapshot", "2020-03-01", "--horizon", "30d"];
    let auto = spec("");
    let mut args = snap.to_vec();
    args.extend(["--spec", &auto, "--json"]);
    let (rows, run) = features(dir.path(), &ev, &args);
    let a = row(&rows, "a", "2020-03-01").unwrap();
    // The same counts as when the spec names the types (event_types_activity_labels_...).
    assert_eq!(num(a, "buy_total"), 2.0);
    assert_eq!(num(a, "view_total"), 3.0);
    assert_eq!(num(a, "buy_28d"), 2.0);
    assert_eq!(num(a, "view_28d"), 2.0);
    assert_eq!(num(a, "buy_value_total"), 15.0);
    assert!(
        !a.contains_key("log_in_total"),
        "a rare type has no columns"
    );
    let summary = json(&run.stdout);
    let types = summary["event_types"].as_array().unwrap();
    let names: Vec<(&str, u64, bool)> = types
        .iter()
        .map(|t| {
            (
                t["value"].as_str().unwrap(),
                t["events"].as_u64().unwrap(),
                t["left_out"].is_null(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [("buy", 8, true), ("view", 4, true), ("Log In", 1, false)]
    );
    assert!(
        types[2]["left_out"]
            .as_str()
            .unwrap()
            .contains("min_type_share"),
        "{types:?}"
    );

    // The text summary says which types it took and which it left out, and why.
    let mut args = snap.to_vec();
    args.extend(["--spec", &auto]);
    let (_, run) = features(dir.path(), &ev, &args);
    assert!(
        run.stdout.contains("event types from the log")
            && run.stdout.contains("left out: Log In (1 events)"),
        "{}",
        run.stdout
    );

    // Left out by name, with every type kept otherwise: the rare one gets its columns.
    let skipping = write(
        dir.path(),
        "skip.toml",
        "[metrics]\nwindows = [\"28d\"]\nskip_types = [\"view\"]\nmin_type_share = 0.0\n",
    );
    let mut args = snap.to_vec();
    args.extend(["--spec", &skipping]);
    let (rows, _) = features(dir.path(), &ev, &args);
    let e = row(&rows, "e", "2020-03-01").unwrap();
    assert_eq!(num(e, "log_in_total"), 1.0);
    assert_eq!(num(e, "buy_total"), 1.0);
    assert!(!e.contains_key("view_total"));

    // Turned off: totals only.
    let off = write(
        dir.path(),
        "off.toml",
        "[metrics]\nwindows = [\"28d\"]\nauto_types = false\n",
    );
    let mut args = snap.to_vec();
    args.extend(["--spec", &off]);
    let (rows, run) = features(dir.path(), &ev, &args);
    assert!(!rows[0].contains_key("buy_total"));
    assert!(!run.stdout.contains("event types from the log"));

    // Parquet input counts the types the same way.
    let pq = dir.path().join("events.parquet");
    write_parquet_events(&pq);
    let mut args = snap.to_vec();
    args.extend(["--spec", &auto]);
    let (from_parquet, _) = features(dir.path(), pq.to_str().unwrap(), &args);
    let a = row(&from_parquet, "a", "2020-03-01").unwrap();
    assert_eq!(num(a, "view_total"), 3.0);

    // A share outside [0, 1] is refused naming the key.
    let bad = write(dir.path(), "bad.toml", "[metrics]\nmin_type_share = 5\n");
    let out = dir.path().join("bad.csv");
    let r = churn(&[
        "features",
        "--events",
        &ev,
        "--spec",
        &bad,
        "--snapshot",
        "2020-03-01",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        !r.ok && r.stderr.contains("metrics.min_type_share"),
        "{}",
        r.stderr
    );
}

#[test]
fn subscriptions_give_the_population_the_facts_and_the_label() {
    let dir = tempfile::tempdir().unwrap();
    let ev = write(
        dir.path(),
        "events.csv",
        "customer_id,timestamp,event_type\ns1,2020-02-10,login\ns1,2020-03-20,login\nx,2020-02-01,login\n",
    );
    let subs = write(
        dir.path(),
        "subs.csv",
        "customer_id,plan,start_date,end_date,mrr,discount
s1,basic,2020-01-01,2020-02-01,10,0
s1,basic,2020-02-01,2020-03-01,10,0
s1,pro,2020-03-01,2020-04-01,30,0.1
s2,basic,2020-01-15,2020-02-20,10,0
s3,basic,2020-02-01,,20,0.5
s4,basic,2020-03-10,2020-04-10,10,0
",
    );
    let (rows, run) = features(
        dir.path(),
        &ev,
        &[
            "--subscriptions",
            &subs,
            "--snapshot",
            "2020-02-15",
            "--horizon",
            "21d",
        ],
    );
    assert!(run.stdout.contains("churned within 21d"), "{}", run.stdout);
    let ids: Vec<&str> = rows.iter().map(|r| r["customer_id"].as_str()).collect();
    assert_eq!(ids, ["s1", "s2", "s3"], "subscribers on the day only");
    let s1 = row(&rows, "s1", "2020-02-15").unwrap();
    assert_eq!(s1["plan"], "basic", "the upgrade on 03-01 must not leak");
    assert_eq!(num(s1, "mrr"), 10.0);
    assert!((num(s1, "months_subscribed") - 45.0 / (365.2425 / 12.0)).abs() < 1e-9);
    assert_eq!(num(s1, "days_since_last_event"), 5.0);
    assert_eq!(num(s1, "tenure_days"), 45.0);
    assert_eq!(s1["churned"], "0", "renewed through 04-01");
    let s2 = row(&rows, "s2", "2020-02-15").unwrap();
    assert_eq!(s2["churned"], "1", "ends 02-20 without renewal");
    assert_eq!(num(s2, "events_total"), 0.0);
    assert_eq!(num(s2, "days_since_last_event"), 31.0, "since signup");
    let s3 = row(&rows, "s3", "2020-02-15").unwrap();
    assert_eq!(s3["churned"], "0", "still running");
    assert_eq!((num(s3, "mrr"), num(s3, "discount")), (20.0, 0.5));
}

#[test]
fn bad_input_is_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.csv");
    let o = out.to_str().unwrap();
    // Runs `churn features` on a log holding `text` and expects a failure whose message holds
    // every needle.
    let fails = |text: &str, extra: &[&str], needles: &[&str]| {
        let events = write(dir.path(), "events.csv", text);
        let mut args = vec!["features", "--events", &events, "--out", o];
        args.extend_from_slice(extra);
        let r = churn(&args);
        assert!(!r.ok, "expected a failure for {extra:?}");
        for n in needles {
            assert!(r.stderr.contains(n), "'{n}' not in: {}", r.stderr);
        }
    };
    let snap = ["--snapshot", "2020-03-01", "--horizon", "30d"];
    let head = "customer_id,timestamp,event_type,value\n";
    fails(
        &format!("{head}a,2020-02-01,buy,1\na,2020-02-30,buy,1\n"),
        &snap,
        &["line 3", "'timestamp'", "\"2020-02-30\" is not a date"],
    );
    fails(
        &format!("{head}a,2020-02-01,buy,ten\n"),
        &snap,
        &["line 2", "'value'", "not a number"],
    );
    fails(
        "customer_id,timestamp\na,2020-02-01\nb\n",
        &snap,
        &["line 3", "ragged"],
    );
    fails(
        "customer_id,timestamp\n,2020-02-01\n",
        &snap,
        &["line 2", "missing customer id"],
    );
    fails(
        "user,when\na,2020-02-01\n",
        &snap,
        &["'customer_id'", "user, when"],
    );
    // A label whose horizon runs past the data would call everybody churned.
    let short = "customer_id,timestamp\na,2020-02-01\na,2020-03-10\n";
    fails(
        short,
        &snap,
        &["needs data until 2020-03-30", "--label none"],
    );
    let typo = write(dir.path(), "typo.toml", "[metrics]\nwindow = [\"7d\"]\n");
    fails(
        short,
        &["--snapshot", "2020-03-01", "--spec", &typo],
        &["typo.toml", "window"],
    );
    let ratio = write(
        dir.path(),
        "ratio.toml",
        "[[metrics.ratio]]\nname = \"r\"\nnumerator = \"nope\"\ndenominator = \"events_total\"\n",
    );
    let label_none = [
        "--snapshot",
        "2020-03-01",
        "--label",
        "none",
        "--spec",
        &ratio,
    ];
    fails(short, &label_none, &["no numeric metric 'nope'"]);
    fails(
        short,
        &["--snapshot", "2020-02-31"],
        &["--snapshot 2020-02-31"],
    );
    fails(
        short,
        &["--snapshot", "2020-03-01", "--label", "subscription-end"],
        &["needs --subscriptions"],
    );
    assert!(!out.exists(), "no table from a failed run");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("features"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

/// The hand log as Parquet with a typed UTC timestamp column.
fn write_parquet_events(path: &Path) {
    use arrow_array::{
        ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    };
    use std::sync::Arc;
    let mut ids = Vec::new();
    let mut stamps = Vec::new();
    let mut types = Vec::new();
    let mut values = Vec::new();
    for line in EVENTS.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        ids.push(f[0].to_string());
        let t = churn::time::parse_timestamp(f[1], 0).unwrap();
        stamps.push(t * 1_000_000);
        types.push(f[2].to_string());
        values.push(f[3].parse::<f64>().ok());
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(ids)),
        Arc::new(TimestampMicrosecondArray::from(stamps).with_timezone("UTC")),
        Arc::new(StringArray::from(types)),
        Arc::new(Float64Array::from(values)),
    ];
    let batch = RecordBatch::try_from_iter(
        ["customer_id", "timestamp", "event_type", "value"]
            .into_iter()
            .zip(columns),
    )
    .unwrap();
    let f = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn parquet_in_and_out_match_csv() {
    let dir = tempfile::tempdir().unwrap();
    let args = SERIES;
    let ev = write(dir.path(), "events.csv", EVENTS);
    let (from_csv, _) = features(dir.path(), &ev, &args);
    let pq = dir.path().join("events.parquet");
    write_parquet_events(&pq);
    let (from_parquet, _) = features(dir.path(), pq.to_str().unwrap(), &args);
    assert_eq!(from_csv, from_parquet);

    // A Parquet feature table trains like the CSV one.
    let out = dir.path().join("f.parquet");
    let mut a = vec!["features", "--events", &ev, "--out", out.to_str().unwrap()];
    a.extend_from_slice(&args);
    let r = churn(&a);
    assert!(r.ok, "{}", r.stderr);
    let f = std::fs::File::open(&out).unwrap();
    let rdr = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap();
    let rows: usize = rdr.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, from_csv.len());
}

#[cfg_attr(
    churn_skip_postgres,
    ignore = "CHURN_SKIP_POSTGRES was set when the tests were built"
)]
#[test]
fn postgres_events_match_the_file() {
    let url = database_url();
    let dir = tempfile::tempdir().unwrap();
    let args = SERIES;
    let ev = write(dir.path(), "events.csv", EVENTS);
    let (from_csv, _) = features(dir.path(), &ev, &args);
    let mut pg = common::PgSchema::new(&url);
    let table = format!("{}.events", pg.name);
    pg.client
        .batch_execute(&format!(
            "SET TIME ZONE 'Europe/Paris';
             CREATE TABLE {table} (customer_id text, \"timestamp\" timestamptz, event_type text, value float8)"
        ))
        .unwrap();
    for line in EVENTS.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        // Naive times in the log are UTC.
        let t = churn::time::parse_timestamp(f[1], 0).unwrap();
        let v: Option<f64> = f[3].parse().ok();
        pg.client
            .execute(
                &format!("INSERT INTO {table} VALUES ($1, to_timestamp($2), $3, $4)"),
                &[&f[0], &(t as f64), &f[2], &v],
            )
            .unwrap();
    }
    let (from_pg, _) = features(
        dir.path(),
        &format!("{url}?options=-c%20TimeZone%3DAsia/Tokyo"),
        &[&args[..], &["--events-table", &table]].concat(),
    );
    assert_eq!(from_csv, from_pg);
    let q = format!("SELECT * FROM {table} WHERE customer_id <> 'd'");
    let (some, _) = features(
        dir.path(),
        &url,
        &[&args[..], &["--events-query", &q]].concat(),
    );
    assert!(some.iter().all(|r| r["customer_id"] != "d") && !some.is_empty());
}

/// Features for training (a series) and for a later period, a time-split training, and the
/// later period scored by `churn evaluate`: the holdout and out-of-time AUCs.
fn backtest(
    dir: &Path,
    input: &[&str],
    train_snaps: &[&str],
    later: &[&str],
    purge: &str,
) -> (f64, f64) {
    let train_csv = dir.join("train.csv");
    let later_csv = dir.join("later.csv");
    for (out, snaps) in [(&train_csv, train_snaps), (&later_csv, later)] {
        let mut a = vec!["features", "--out", out.to_str().unwrap()];
        a.extend_from_slice(input);
        a.extend_from_slice(snaps);
        let r = churn(&a);
        assert!(r.ok, "features: {}", r.stderr);
    }
    let model = dir.join("model");
    let r = churn(&[
        "train",
        "--data",
        train_csv.to_str().unwrap(),
        "--label",
        "churned",
        "--positive",
        "1",
        "--id",
        "customer_id",
        "--split-by",
        "snapshot",
        "--purge",
        purge,
        "--out",
        model.to_str().unwrap(),
        "--json",
    ]);
    assert!(r.ok, "train: {}", r.stderr);
    let t = json(&r.stdout);
    assert_eq!(t["report"]["time_split"]["column"], "snapshot");
    assert!(t["report"]["time_split"]["purged_rows"].as_u64().unwrap() > 0);
    let holdout_auc = t["metrics"]["holdout"]["auc"].as_f64().unwrap();
    let r = churn(&[
        "evaluate",
        "--model",
        model.to_str().unwrap(),
        "--data",
        later_csv.to_str().unwrap(),
        "--json",
    ]);
    assert!(r.ok, "evaluate: {}", r.stderr);
    let later_auc = json(&r.stdout)["auc"].as_f64().unwrap();
    (holdout_auc, later_auc)
}

#[test]
fn cdnow_purchases_backtest() {
    let dir = tempfile::tempdir().unwrap();
    let input = [
        "--events",
        "data/cdnow/cdnow_master.csv",
        "--spec",
        "examples/features/cdnow.toml",
        "--horizon",
        "90d",
    ];
    let (holdout, later) = backtest(
        dir.path(),
        &input,
        &[
            "--from",
            "1997-04-01",
            "--to",
            "1997-12-01",
            "--every",
            "30d",
        ],
        &["--snapshot", "1998-03-01"],
        "90d",
    );
    // Recency and frequency predict a repeat purchase well on this log.
    assert!(holdout > 0.78, "holdout AUC {holdout}");
    assert!(later > 0.78, "out-of-time AUC {later}");
}

#[test]
fn socialnet_subscriptions_backtest() {
    let dir = tempfile::tempdir().unwrap();
    let input = [
        "--events",
        "data/socialnet/event.csv.gz",
        "--subscriptions",
        "data/socialnet/subscription.csv",
        "--spec",
        "examples/features/socialnet.toml",
        "--horizon",
        "28d",
    ];
    let (holdout, later) = backtest(
        dir.path(),
        &input,
        &[
            "--from",
            "2020-02-01",
            "--to",
            "2020-03-28",
            "--every",
            "7d",
        ],
        &[
            "--from",
            "2020-04-04",
            "--to",
            "2020-05-02",
            "--every",
            "7d",
        ],
        "28d",
    );
    // Few churners (47 training rows after the purge, 7 held out, 17 later): the bar is
    // "clearly better than chance".
    assert!(holdout > 0.65, "holdout AUC {holdout}");
    assert!(later > 0.65, "out-of-time AUC {later}");
    // The subscriptions stop at 2020-06-01 (the events go on to 06-30): renewals after that
    // are unknown, so a label that needs them is refused.
    let out = dir.path().join("censored.csv");
    let mut a = vec![
        "features",
        "--out",
        out.to_str().unwrap(),
        "--snapshot",
        "2020-05-09",
    ];
    a.extend_from_slice(&input);
    let r = churn(&a);
    assert!(
        !r.ok
            && r.stderr
                .contains("latest subscription start is on 2020-06-01"),
        "{}",
        r.stderr
    );
}
