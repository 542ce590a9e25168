//! `churn report` end to end through the binary: the model report's numbers against
//! `churn evaluate --json` and our own recomputation, the churn report against hand-made
//! subscription and event tables whose answers are worked out below and against a recount of the
//! socialnet subscriptions, empty and one-class inputs, bad flags, and both pages opened in headless
//! Chromium (a screenshot that is not blank, every chart with a rendered size).
mod common;
use common::{TELCO, churn, json, root, write};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const MODEL: &str = "models/telco";

fn report(args: &[&str]) -> (Value, String) {
    let out_at = args.iter().position(|a| *a == "--out").expect("--out") + 1;
    let mut a = args.to_vec();
    a.push("--json");
    let r = churn(&a);
    assert!(r.ok, "report {args:?}: {}", r.stderr);
    let html = std::fs::read_to_string(args[out_at]).expect("the page was written");
    (json(&r.stdout), html)
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// A page that needs nothing from the network: only the SVG namespace is a URL.
fn assert_self_contained(html: &str) {
    let rest = html.replace("http://www.w3.org", "");
    assert!(
        !rest.contains("http://") && !rest.contains("https://"),
        "the page links out"
    );
    assert!(
        !html.contains("<script") && !html.contains("<link"),
        "the page loads something"
    );
    assert!(html.starts_with("<!DOCTYPE html>"));
}

#[test]
fn the_model_report_carries_the_evaluation_of_churn_evaluate_and_the_importance_we_recompute() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.html");
    let (r, html) = report(&[
        "report",
        "--model",
        MODEL,
        "--data",
        TELCO,
        "--out",
        out.to_str().unwrap(),
    ]);
    let e = churn(&["evaluate", "--model", MODEL, "--data", TELCO, "--json"]);
    assert!(e.ok, "{}", e.stderr);
    assert_eq!(
        r["evaluation"],
        json(&e.stdout),
        "the report's evaluation is evaluate's"
    );
    assert_eq!(r["figures_from"], "data");
    let m = &r["evaluation"];
    let (rows, positives) = (
        m["rows"].as_u64().unwrap(),
        m["positives"].as_u64().unwrap(),
    );

    // The ROC curve runs corner to corner and its area is the AUC (up to the thinning to 400
    // points); the precision-recall curve ends at recall 1 with the churn rate as precision.
    let roc = r["curves"]["roc"].as_array().unwrap();
    assert!(roc.len() <= 400 && roc.len() > 100);
    assert_eq!(roc[0], serde_json::json!([0.0, 0.0]));
    assert_eq!(roc[roc.len() - 1], serde_json::json!([1.0, 1.0]));
    let pt = |v: &Value| (v[0].as_f64().unwrap(), v[1].as_f64().unwrap());
    let area: f64 = roc
        .windows(2)
        .map(|w| {
            let ((x0, y0), (x1, y1)) = (pt(&w[0]), pt(&w[1]));
            (x1 - x0) * (y0 + y1) / 2.0
        })
        .sum();
    assert!(
        close(area, m["auc"].as_f64().unwrap(), 2e-3),
        "area {area} vs AUC {}",
        m["auc"]
    );
    let pr = r["curves"]["precision_recall"].as_array().unwrap();
    let (recall, precision) = pt(&pr[pr.len() - 1]);
    assert_eq!(recall, 1.0);
    assert!(close(precision, positives as f64 / rows as f64, 1e-12));

    // Deciles: every row and churner once; decile 1 holds the highest scores.
    let deciles = r["deciles"].as_array().unwrap();
    assert_eq!(deciles.len(), 10);
    let sum = |k: &str| deciles.iter().map(|d| d[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("rows"), sum("churned")), (rows, positives));
    for w in deciles.windows(2) {
        assert!(w[0]["min_probability"].as_f64() >= w[1]["max_probability"].as_f64());
    }
    assert!(close(
        deciles[9]["cumulative_gain"].as_f64().unwrap(),
        1.0,
        1e-12
    ));

    // Importance of tenure (numeric, no transform), recomputed from the model file and the
    // data: the mean of |weight * (x - mean) / std| with blanks imputed.
    let model = json(&std::fs::read_to_string(root().join(MODEL).join("1/model.json")).unwrap());
    let f = model["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "tenure")
        .unwrap();
    assert_eq!(f["transform"], "none");
    let (w, mean, std, impute) = (
        f["weight"].as_f64().unwrap(),
        f["mean"].as_f64().unwrap(),
        f["std"].as_f64().unwrap(),
        f["impute"].as_f64().unwrap(),
    );
    let table = common::read_csv(&root().join(TELCO));
    let ours: f64 = table
        .iter()
        .map(|row| {
            let x = row["tenure"].trim().parse::<f64>().unwrap_or(impute);
            (w * (x - mean) / std).abs()
        })
        .sum::<f64>()
        / table.len() as f64;
    let theirs = r["importance"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["feature"] == "tenure")
        .unwrap()["importance"]
        .as_f64()
        .unwrap();
    assert!(
        close(ours, theirs, 1e-9),
        "tenure importance {theirs}, ours {ours}"
    );

    // One effect per feature; the page draws the curves, tiers, importance and every effect.
    let features = model["features"].as_array().unwrap().len();
    assert_eq!(r["effects"].as_array().unwrap().len(), features);
    assert!(
        html.matches("<svg").count() >= 7 + features,
        "{} charts",
        html.matches("<svg").count()
    );
    for part in [
        "ROC curve",
        "Precision-recall curve",
        "Calibration",
        "Cumulative gains",
        "Lift by decile",
        "Risk tiers",
        "Feature importance",
        "Model card",
        model["training"]["data_sha256"].as_str().unwrap(),
    ] {
        assert!(html.contains(part), "the page lacks {part}");
    }
    assert_self_contained(&html);
}

#[test]
fn without_data_the_model_report_shows_the_stored_holdout_and_says_what_needs_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("stored.html");
    let (r, html) = report(&["report", "--model", MODEL, "--out", out.to_str().unwrap()]);
    assert_eq!(r["figures_from"], "holdout");
    assert!(r["evaluation"].is_null() && r["curves"].is_null());
    let model = json(&std::fs::read_to_string(root().join(MODEL).join("1/model.json")).unwrap());
    let cal = model["metrics"]["holdout"]["calibration"]
        .as_array()
        .unwrap();
    let deciles = r["deciles"].as_array().unwrap();
    // Decile 1 is the riskiest tenth: the last calibration bin.
    for (d, b) in deciles.iter().zip(cal.iter().rev()) {
        assert_eq!(d["rows"], b["rows"]);
        assert_eq!(d["mean_probability"], b["mean_predicted"]);
        assert_eq!(d["churn_rate"], b["observed_rate"]);
    }
    assert!(r["notes"].to_string().contains("--data"));
    assert!(html.contains("need --data") && !html.contains("ROC curve"));
    assert!(html.contains("Calibration") && html.contains("Cumulative gains"));
    assert_self_contained(&html);
}

#[test]
fn empty_and_one_class_data_give_a_page_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join(TELCO)).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let empty = write(dir.path(), "empty.csv", &format!("{header}\n"));
    let stayers: Vec<&str> = lines
        .filter(|l| l.trim_end().ends_with(",No"))
        .take(300)
        .collect();
    let one = write(
        dir.path(),
        "one.csv",
        &format!("{header}\n{}\n", stayers.join("\n")),
    );

    let out = dir.path().join("empty.html");
    let (r, html) = report(&[
        "report",
        "--model",
        MODEL,
        "--data",
        &empty,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r["figures_from"], "holdout");
    assert!(
        r["notes"][0].as_str().unwrap().contains("has no data rows"),
        "{}",
        r["notes"]
    );
    assert!(html.contains("has no data rows"));

    let out = dir.path().join("one.html");
    let (r, html) = report(&[
        "report",
        "--model",
        MODEL,
        "--data",
        &one,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r["evaluation"]["rows"], 300);
    assert_eq!(r["evaluation"]["positives"], 0);
    assert!(r["evaluation"]["auc"].is_null(), "no AUC on one class");
    assert_eq!(r["curves"]["roc"], serde_json::json!([]));
    assert!(html.contains("holds no churned customers (300 rows)"));
    assert!(!html.contains("ROC curve"));
}

/// Subscriptions with known answers, months 2021-01 and 2021-02:
/// - a: pro, 100 until 02-15, then 150: stays; +50 expansion in February.
/// - b: basic, 50, ends 02-10: churns in February (50 churned MRR).
/// - c: basic, 80, started 2020-12, ends 01-20: churns in January (80).
/// - d: pro, 200 in January, 120 from 02-01: stays; 80 contraction in January.
/// - e: basic, 30 from 01-15: new in January.
/// - f: pro, 10 from 03-01: new in February (active on 03-01); its start makes the file reach
///   the period's end.
const SUBS: &str = "customer_id,plan,start_date,end_date,mrr
a,pro,2021-01-01,2021-02-15,100
a,pro,2021-02-15,,150
b,basic,2021-01-01,2021-02-10,50
c,basic,2020-12-01,2021-01-20,80
d,pro,2021-01-01,2021-02-01,200
d,pro,2021-02-01,,120
e,basic,2021-01-15,,30
f,pro,2021-03-01,,10
";

const SUB_EVENTS: &str = "customer_id,timestamp,event_type
a,2021-01-02,login
a,2021-01-05,login
a,2021-02-03,report
b,2021-01-02,login
c,2020-12-02,login
d,2021-01-03,login
d,2021-02-20,report
e,2021-01-16,login
e,2021-01-17,login
f,2021-03-01,login
";

#[test]
fn the_churn_report_has_the_known_answers_of_a_hand_made_subscription_table() {
    let dir = tempfile::tempdir().unwrap();
    let subs = write(dir.path(), "subs.csv", SUBS);
    let events = write(dir.path(), "events.csv", SUB_EVENTS);
    let out = dir.path().join("churn.html");
    let (r, html) = report(&[
        "report",
        "--events",
        &events,
        "--subscriptions",
        &subs,
        "--from",
        "2021-01-01",
        "--to",
        "2021-03-01",
        "--out",
        out.to_str().unwrap(),
    ]);
    let months = r["months"].as_array().unwrap();
    assert_eq!(months.len(), 2);
    let (jan, feb) = (&months[0], &months[1]);
    let get = |m: &Value, k: &str| m[k].as_u64().unwrap();
    assert_eq!(
        (
            get(jan, "active_at_start"),
            get(jan, "churned"),
            get(jan, "new"),
            get(jan, "active_at_end")
        ),
        (4, 1, 1, 4)
    );
    assert_eq!(
        (
            get(feb, "active_at_start"),
            get(feb, "churned"),
            get(feb, "new"),
            get(feb, "active_at_end")
        ),
        (4, 1, 1, 4)
    );
    assert_eq!(jan["churn_rate"], 0.25);
    assert!(close(
        jan["annual_churn_rate"].as_f64().unwrap(),
        1.0 - 0.75f64.powi(12),
        1e-15
    ));
    let mrr = |m: &Value, k: &str| m["mrr"][k].as_f64().unwrap();
    // January: start 100 + 50 + 80 + 200 = 430; c churns 80; d contracts 80; e is new with 30.
    assert_eq!(
        (
            mrr(jan, "start"),
            mrr(jan, "churned"),
            mrr(jan, "contraction"),
            mrr(jan, "expansion"),
            mrr(jan, "new")
        ),
        (430.0, 80.0, 80.0, 0.0, 30.0)
    );
    assert!(close(mrr(jan, "gross_churn"), 160.0 / 430.0, 1e-15));
    assert!(close(mrr(jan, "net_churn"), 160.0 / 430.0, 1e-15));
    // February: start 100 + 50 + 120 + 30 = 300; b churns 50; a expands 50: net zero.
    assert_eq!(
        (
            mrr(feb, "start"),
            mrr(feb, "churned"),
            mrr(feb, "contraction"),
            mrr(feb, "expansion"),
            mrr(feb, "end")
        ),
        (300.0, 50.0, 0.0, 50.0, 310.0)
    );
    assert!(close(mrr(feb, "gross_churn"), 50.0 / 300.0, 1e-15));
    assert_eq!(mrr(feb, "net_churn"), 0.0);
    let o = &r["overall"];
    assert_eq!(
        (o["customer_months"].as_u64(), o["churned"].as_u64()),
        (Some(8), Some(2))
    );
    assert_eq!(o["monthly_churn_rate"], 0.25);
    assert!(close(
        o["gross_mrr_churn"].as_f64().unwrap(),
        210.0 / 730.0,
        1e-15
    ));
    assert!(close(
        o["net_mrr_churn"].as_f64().unwrap(),
        160.0 / 730.0,
        1e-15
    ));

    // Plans: basic has b, c in January and b, e in February (2 of 4 churn); pro never churns.
    let seg: HashMap<String, (u64, u64, f64)> = r["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["plan"].as_str().unwrap().to_string(),
                (
                    get(s, "customer_months"),
                    get(s, "churned"),
                    s["churn_rate"].as_f64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(seg["basic"], (4, 2, 0.5));
    assert_eq!(seg["pro"], (4, 0, 0.0));

    // Cohorts by the month first seen: c in 2020-12 (active 01-01, gone 02-01); a, b, d, e in
    // 2021-01 (all active 02-01, a, d, e on 03-01).
    let cohorts: BTreeMap<String, (u64, Vec<Value>)> = r["cohorts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["month"].as_str().unwrap().to_string(),
                (
                    get(c, "customers"),
                    c["retained"].as_array().unwrap().clone(),
                ),
            )
        })
        .collect();
    assert_eq!(
        cohorts["2020-12"],
        (1, vec![1.0.into(), 0.0.into(), 0.0.into()])
    );
    assert_eq!(cohorts["2021-01"], (4, vec![1.0.into(), 0.75.into()]));
    assert_eq!(cohorts.len(), 2, "{cohorts:?}");

    assert!(
        html.contains("Gross MRR churn of a month")
            && html.contains("one of their subscriptions covers it")
    );
    assert!(html.matches("<svg").count() >= 4);
    assert_self_contained(&html);

    // A period past what the subscriptions cover is refused, naming the latest start.
    let r = churn(&[
        "report",
        "--events",
        &events,
        "--subscriptions",
        &subs,
        "--from",
        "2021-01-01",
        "--to",
        "2021-04-01",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!r.ok);
    assert!(
        r.stderr.contains("--to 2021-04-01")
            && r.stderr
                .contains("latest subscription start is on 2021-03-01"),
        "{}",
        r.stderr
    );
}

#[test]
fn with_events_only_a_customer_is_active_while_their_latest_event_is_recent() {
    // a: active throughout. b: last seen 01-05: active on 02-01 (27 days), not on 03-01.
    // c: last seen 02-25: active on 03-01 (4 days), not on 04-01 (35 days).
    let dir = tempfile::tempdir().unwrap();
    let events = write(
        dir.path(),
        "events.csv",
        "customer_id,timestamp\na,2021-01-10\na,2021-02-10\na,2021-03-10\na,2021-03-31\nb,2021-01-05\nc,2021-01-20\nc,2021-02-25\n",
    );
    let out = dir.path().join("churn.html");
    let (r, html) = report(&[
        "report",
        "--events",
        &events,
        "--from",
        "2021-02-01",
        "--to",
        "2021-04-01",
        "--out",
        out.to_str().unwrap(),
    ]);
    let rates: Vec<(u64, u64)> = r["months"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["active_at_start"].as_u64().unwrap(),
                m["churned"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(rates, vec![(3, 1), (2, 1)]);
    assert!(
        r["months"][0].get("mrr").is_none(),
        "no MRR without subscriptions"
    );
    assert!(html.contains("at most 30 days before it"));
    assert!(html.contains("MRR churn needs subscriptions"));

    // The default period is the log's whole months: 02-01 to 04-01 here (the log starts 01-05).
    let (d, _) = report(&[
        "report",
        "--events",
        &events,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        (d["from"].as_str(), d["to"].as_str()),
        (Some("2021-02-01"), Some("2021-04-01"))
    );

    // A spec's own activity window is used and stated.
    let spec = write(
        dir.path(),
        "spec.toml",
        "[population]\nactive_within = \"60d\"\n",
    );
    let (s, html) = report(&[
        "report",
        "--events",
        &events,
        "--spec",
        &spec,
        "--from",
        "2021-02-01",
        "--to",
        "2021-04-01",
        "--out",
        out.to_str().unwrap(),
    ]);
    // b (55 days on 03-01) stays active with 60 days; gone on 04-01 (86 days), with c (35) not.
    let rates: Vec<u64> = s["months"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["churned"].as_u64().unwrap())
        .collect();
    assert_eq!(rates, vec![0, 1]);
    assert!(html.contains("at most 60 days before it"));
}

#[test]
fn the_churn_report_on_socialnet_matches_our_recount_of_the_subscriptions() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "spec.toml", common::social::SPEC);
    let out = dir.path().join("churn.html");
    let (r, html) = report(&[
        "report",
        "--events",
        "data/socialnet/event.csv.gz",
        "--subscriptions",
        "data/socialnet/subscription.csv",
        "--spec",
        &spec,
        "--from",
        "2020-02-01",
        "--to",
        "2020-06-01",
        "--out",
        out.to_str().unwrap(),
    ]);
    // Our recount: on day d an account is active when a subscription has start <= d < end; its
    // MRR is the sum over them.
    let subs = common::read_csv(&root().join("data/socialnet/subscription.csv"));
    let mrr_on = |day: &str| -> HashMap<String, f64> {
        let mut m = HashMap::new();
        for s in &subs {
            let (start, end) = (s["start_date"].as_str(), s["end_date"].as_str());
            if start <= day && (end.is_empty() || end > day) {
                *m.entry(s["account_id"].clone()).or_default() += s["mrr"].parse::<f64>().unwrap();
            }
        }
        m
    };
    let days = [
        "2020-02-01",
        "2020-03-01",
        "2020-04-01",
        "2020-05-01",
        "2020-06-01",
    ];
    let months = r["months"].as_array().unwrap();
    assert_eq!(months.len(), 4);
    for (k, m) in months.iter().enumerate() {
        let (a, b) = (mrr_on(days[k]), mrr_on(days[k + 1]));
        let gone: HashSet<&String> = a.keys().filter(|c| !b.contains_key(*c)).collect();
        assert_eq!(
            m["active_at_start"].as_u64().unwrap() as usize,
            a.len(),
            "{}",
            days[k]
        );
        assert_eq!(
            m["churned"].as_u64().unwrap() as usize,
            gone.len(),
            "{}",
            days[k]
        );
        let rate = gone.len() as f64 / a.len() as f64;
        assert!(
            close(m["churn_rate"].as_f64().unwrap(), rate, 1e-15),
            "{}",
            days[k]
        );
        let start: f64 = a.values().sum();
        let lost: f64 = a
            .iter()
            .map(|(c, x)| x - b.get(c).copied().unwrap_or(0.0).min(*x))
            .sum();
        assert!(
            close(
                m["mrr"]["gross_churn"].as_f64().unwrap(),
                lost / start,
                1e-12
            ),
            "{}",
            days[k]
        );
    }
    // Behavioural cohorts: every numeric metric, each group's observations adding up.
    let at_risk: u64 = months
        .iter()
        .map(|m| m["active_at_start"].as_u64().unwrap())
        .sum();
    for m in r["behaviour"].as_array().unwrap() {
        let n: u64 = m["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["observations"].as_u64().unwrap())
            .sum::<u64>()
            + m["missing"]["observations"].as_u64().unwrap_or(0);
        assert_eq!(n, at_risk, "{}", m["metric"]);
    }
    let early = &r["early_life"];
    assert_eq!(early["metric"], "early_events_30d");
    assert!(early["customers"].as_u64().unwrap() > 50);
    assert!(
        html.contains("Cohort retention")
            && html.contains("Behavioural cohorts")
            && html.contains("Early life")
    );
    assert_self_contained(&html);
}

#[test]
fn bad_flags_and_empty_logs_get_clear_answers() {
    let dir = tempfile::tempdir().unwrap();
    let events = write(dir.path(), "events.csv", SUB_EVENTS);
    let out = dir.path().join("x.html");
    let o = out.to_str().unwrap();
    let r = churn(&[
        "report",
        "--events",
        &events,
        "--from",
        "2021-01-03",
        "--to",
        "2021-03-01",
        "--out",
        o,
    ]);
    assert!(
        !r.ok
            && r.stderr
                .contains("--from 2021-01-03: expected the first day of a month, e.g. 2021-01-01"),
        "{}",
        r.stderr
    );
    let r = churn(&[
        "report",
        "--events",
        &events,
        "--from",
        "2021-03-01",
        "--to",
        "2021-03-01",
        "--out",
        o,
    ]);
    assert!(
        !r.ok && r.stderr.contains("at least one whole month"),
        "{}",
        r.stderr
    );
    let r = churn(&["report", "--out", o]);
    assert!(!r.ok && r.stderr.contains("--model"), "{}", r.stderr);
    let r = churn(&["report", "--model", MODEL, "--events", &events, "--out", o]);
    assert!(
        !r.ok && r.stderr.contains("cannot be used with"),
        "{}",
        r.stderr
    );
    let no_time = write(
        dir.path(),
        "no_time.csv",
        "customer_id,when\na,2021-01-01\n",
    );
    let r = churn(&["report", "--events", &no_time, "--out", o]);
    assert!(
        !r.ok && r.stderr.contains("timestamp") && r.stderr.contains("customer_id, when"),
        "{}",
        r.stderr
    );
    let bad_time = write(
        dir.path(),
        "bad_time.csv",
        "customer_id,timestamp\na,2021-01-01\nb,yesterday\n",
    );
    let r = churn(&[
        "report",
        "--events",
        &bad_time,
        "--from",
        "2021-01-01",
        "--to",
        "2021-02-01",
        "--out",
        o,
    ]);
    assert!(
        !r.ok && r.stderr.contains("line 3") && r.stderr.contains("timestamp"),
        "{}",
        r.stderr
    );
    assert!(!out.exists(), "no page after a refusal");

    // An empty log is a page that says so.
    let empty = write(dir.path(), "empty.csv", "customer_id,timestamp\n");
    let (r, html) = report(&["report", "--events", &empty, "--out", o]);
    assert!(r["notes"][0].as_str().unwrap().contains("holds no events"));
    assert!(html.contains("holds no events: there is nothing to report"));
    let (r, _) = report(&[
        "report",
        "--events",
        &empty,
        "--from",
        "2021-01-01",
        "--to",
        "2021-02-01",
        "--out",
        o,
    ]);
    assert!(
        r["notes"][0].as_str().unwrap().contains("no customers"),
        "{}",
        r["notes"]
    );
}

/// Headless Chromium, or a failure that says how to get it.
fn chromium() -> PathBuf {
    let found = std::env::var_os("CHURN_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            ["chromium", "chromium-browser", "google-chrome"]
                .iter()
                .find_map(|name| {
                    let out = Command::new("sh")
                        .arg("-c")
                        .arg(format!("command -v {name}"))
                        .output()
                        .ok()?;
                    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
                    (!path.is_empty()).then(|| PathBuf::from(path))
                })
        });
    found.unwrap_or_else(|| {
        panic!(
            "this test opens the reports in headless Chromium and found none: install it \
             (apt-get install chromium), point CHURN_CHROMIUM at it, or build the tests with \
             CHURN_SKIP_BROWSER=1 to mark them ignored"
        )
    })
}

fn headless(browser: &Path, profile: &Path, args: &[String]) -> std::process::Output {
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("run chromium")
}

/// Opens `page` in Chromium: a screenshot that is not blank, and the rendered size of each chart.
fn open_in_browser(page: &Path, work: &Path) {
    let browser = chromium();
    let html = std::fs::read_to_string(page).unwrap();
    let charts = html.matches("<svg").count();
    assert!(charts >= 3, "{} has {charts} charts", page.display());

    let png = work.join("shot.png");
    let out = headless(
        &browser,
        &work.join("profile"),
        &[
            "--window-size=1280,2400".into(),
            format!("--screenshot={}", png.display()),
            format!("file://{}", page.display()),
        ],
    );
    assert!(
        png.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let lum: Vec<u8> = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| {
            if channels >= 3 {
                ((u32::from(p[0]) * 3 + u32::from(p[1]) * 6 + u32::from(p[2])) / 10) as u8
            } else {
                p[0]
            }
        })
        .collect();
    let (lo, hi) = (*lum.iter().min().unwrap(), *lum.iter().max().unwrap());
    let mut hist = [0usize; 256];
    for &l in &lum {
        hist[l as usize] += 1;
    }
    let inked = lum.len() - hist.iter().max().unwrap();
    assert!(
        hi - lo > 100 && inked > 20_000,
        "{} renders nearly blank: luminance {lo}-{hi}, {inked} inked pixels",
        page.display()
    );

    // Every chart's laid-out size, read back from the DOM after a script measures them.
    let probe = work.join("probe.html");
    let script = "<script>document.body.setAttribute('data-sizes', JSON.stringify([...document.querySelectorAll('svg')].map(s => { const r = s.getBoundingClientRect(); return [Math.round(r.width), Math.round(r.height)]; })));</script>";
    std::fs::write(&probe, html.replace("</body>", &format!("{script}</body>"))).unwrap();
    let out = headless(
        &browser,
        &work.join("profile"),
        &[
            "--window-size=1280,2400".into(),
            "--dump-dom".into(),
            format!("file://{}", probe.display()),
        ],
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    let sizes = dom
        .split("data-sizes=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| {
            panic!(
                "no sizes in the DOM: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .replace("&quot;", "\"");
    let sizes: Vec<[f64; 2]> = serde_json::from_str(&sizes).unwrap();
    assert_eq!(sizes.len(), charts, "every chart is in the laid-out page");
    for (k, [w, h]) in sizes.iter().enumerate() {
        assert!(
            *w >= 300.0 && *h >= 150.0,
            "chart {k} of {} renders {w}x{h}",
            page.display()
        );
    }
}

#[cfg_attr(churn_skip_browser, ignore = "CHURN_SKIP_BROWSER=1 at build time")]
#[test]
fn both_reports_render_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let model_page = dir.path().join("model.html");
    let (_, _) = report(&[
        "report",
        "--model",
        MODEL,
        "--data",
        TELCO,
        "--out",
        model_page.to_str().unwrap(),
    ]);
    std::fs::create_dir_all(dir.path().join("m")).unwrap();
    open_in_browser(&model_page, &dir.path().join("m"));

    let spec = write(dir.path(), "spec.toml", common::social::SPEC);
    let churn_page = dir.path().join("churn.html");
    let (_, _) = report(&[
        "report",
        "--events",
        "data/socialnet/event.csv.gz",
        "--subscriptions",
        "data/socialnet/subscription.csv",
        "--spec",
        &spec,
        "--out",
        churn_page.to_str().unwrap(),
    ]);
    std::fs::create_dir_all(dir.path().join("c")).unwrap();
    open_in_browser(&churn_page, &dir.path().join("c"));
}
