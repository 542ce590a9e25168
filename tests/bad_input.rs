//! Bad training data: each case fails with an error naming the file, line and column, exit code 1,
//! and no panic.
mod common;
use common::*;

fn train(data: &str, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let mut args = vec![
        "train",
        "--data",
        data,
        "--label",
        "churned",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let r = churn(&args);
    assert!(
        !out.join("1").exists() || r.ok,
        "a failed run must not leave a model behind"
    );
    r
}

fn expect_error(r: &Run, parts: &[&str]) {
    assert!(!r.ok, "expected failure, got: {}", r.stdout);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    for p in parts {
        assert!(r.stderr.contains(p), "expected '{p}' in: {}", r.stderr);
    }
}

/// A small valid table, with the given extra line(s) appended.
fn table(extra: &str) -> String {
    let mut s = String::from("id,logins,plan,churned\n");
    for i in 0..40 {
        s.push_str(&format!(
            "c{i},{},{},{}\n",
            i % 7,
            if i % 3 == 0 { "pro" } else { "basic" },
            i % 4 == 0
        ));
    }
    s.push_str(extra);
    s
}

#[test]
fn a_valid_small_table_trains() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "ok.csv", &table(""));
    let r = train(&f, &["--id", "id", "--folds", "3"]);
    assert!(r.ok, "{}", r.stderr);
}

#[test]
fn missing_label_column() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "t.csv", &table("").replace("churned", "status"));
    expect_error(
        &train(&f, &[]),
        &[
            "t.csv",
            "column 'churned'",
            "no such column",
            "id, logins, plan, status",
        ],
    );
}

#[test]
fn label_with_a_third_class() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "t.csv", &table("c99,1,pro,maybe\n"));
    expect_error(
        &train(&f, &["--id", "id"]),
        &[
            "t.csv: line 42: column 'churned'",
            "\"maybe\" is a third class",
        ],
    );
}

#[test]
fn label_with_one_class_only() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "t.csv",
        "id,logins,churned\na,1,no\nb,2,no\nc,3,no\n",
    );
    expect_error(
        &train(&f, &["--id", "id"]),
        &["column 'churned'", "one class only (\"no\")"],
    );
}

#[test]
fn blank_label_cell() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "t.csv", &table("c99,1,pro,\n"));
    expect_error(
        &train(&f, &["--id", "id"]),
        &["line 42", "column 'churned'", "label is missing"],
    );
}

#[test]
fn positive_value_not_in_label() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "t.csv", &table(""));
    expect_error(
        &train(&f, &["--id", "id", "--positive", "Yes"]),
        &[
            "--positive \"Yes\" is not a label value",
            "\"true\", \"false\"",
        ],
    );
}

#[test]
fn empty_file_and_header_only() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "empty.csv", "");
    expect_error(&train(&f, &[]), &["empty.csv", "empty file"]);
    let f = write(dir.path(), "header.csv", "id,logins,churned\n");
    expect_error(&train(&f, &[]), &["header.csv", "no data rows"]);
    expect_error(
        &train("/nonexistent/x.csv", &[]),
        &["/nonexistent/x.csv", "no such file"],
    );
}

#[test]
fn ragged_row() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "t.csv", &table("c99,1,pro,true,extra\n"));
    expect_error(
        &train(&f, &["--id", "id"]),
        &["t.csv: line 42", "ragged row: 5 fields, expected 4"],
    );
}

#[test]
fn column_that_is_all_missing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = String::from("id,logins,notes,churned\n");
    for i in 0..30 {
        s.push_str(&format!("c{i},{},,{}\n", i % 5, i % 3 == 0));
    }
    let f = write(dir.path(), "t.csv", &s);
    expect_error(
        &train(&f, &["--id", "id"]),
        &["column 'notes'", "every cell is missing", "--drop notes"],
    );
}

#[test]
fn identifier_left_in_the_features() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = String::from("id,logins,churned\n");
    for i in 0..1200 {
        s.push_str(&format!("cust-{i},{},{}\n", i % 5, i % 3 == 0));
    }
    let f = write(dir.path(), "t.csv", &s);
    expect_error(
        &train(&f, &[]),
        &["column 'id'", "too many distinct text values", "--id id"],
    );
}

#[test]
fn unparsable_numbers_in_a_declared_numeric_column_are_imputed_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "t.csv",
        &table("c98,n/a,pro,true\nc99,oops,basic,false\n"),
    );
    // Inferred: 'oops' makes logins categorical; declared numeric, it is imputed and counted.
    let r = train(&f, &["--id", "id", "--numeric", "logins", "--folds", "0"]);
    assert!(r.ok, "{}", r.stderr);
    assert!(r.stdout.contains("imputed cells: logins 2"), "{}", r.stdout);
}

#[test]
fn options_naming_unknown_columns_or_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "t.csv", &table(""));
    expect_error(
        &train(&f, &["--id", "customer"]),
        &["column 'customer'", "no such column"],
    );
    expect_error(
        &train(&f, &["--id", "id", "--transform", "plan=log1p"]),
        &["column 'plan'", "needs a numeric column"],
    );
    expect_error(
        &train(&f, &["--id", "id", "--transform", "logins=sqrt"]),
        &["unknown transform"],
    );
    expect_error(
        &train(&f, &["--id", "id", "--holdout", "1.5"]),
        &["--holdout 1.5"],
    );
    expect_error(&train(&f, &["--id", "id", "--folds", "1"]), &["--folds"]);
    expect_error(&train(&f, &["--id", "id", "--l2=-1"]), &["--l2 -1"]);
    let neg = write(dir.path(), "neg.csv", &table("c99,-3,pro,true\n"));
    expect_error(
        &train(&neg, &["--id", "id", "--transform", "logins=log1p"]),
        &[
            "neg.csv: line 42: column 'logins'",
            "-3 is outside the domain of log1p",
        ],
    );
}

#[test]
fn corrupt_or_foreign_model_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = write(dir.path(), "model.json", "{\"format\": 1, \"name\": ");
    let r = churn(&["inspect", "--model", &garbage]);
    expect_error(&r, &["model", "not a valid model file"]);
    let good = std::fs::read_to_string(root().join("models/telco/1/model.json")).unwrap();
    let future = write(
        dir.path(),
        "future.json",
        &good.replacen("\"format\": 1", "\"format\": 99", 1),
    );
    expect_error(
        &churn(&["inspect", "--model", &future]),
        &["format 99 is not supported"],
    );
    let nan = write(
        dir.path(),
        "bad.json",
        &good.replacen("\"intercept\": ", "\"intercept\": 1e999, \"x\": ", 1),
    );
    expect_error(&churn(&["inspect", "--model", &nan]), &["model"]);
    expect_error(
        &churn(&["inspect", "--model", "/nonexistent/model"]),
        &["no such file or folder"],
    );
}

#[test]
fn evaluate_on_data_without_the_models_columns() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "t.csv", &table(""));
    expect_error(
        &churn(&["evaluate", "--model", "models/telco", "--data", &f]),
        &["t.csv", "no such label column"],
    );
    let f = write(dir.path(), "u.csv", "tenure,Churn\n1,Yes\n2,No\n");
    expect_error(
        &churn(&["evaluate", "--model", "models/telco", "--data", &f]),
        &["u.csv", "column 'gender'", "needs this feature column"],
    );
}

#[test]
fn crlf_files_name_the_right_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = table("c99,1,pro,maybe\n").replace('\n', "\r\n");
    let f = write(dir.path(), "crlf.csv", &text);
    expect_error(
        &train(&f, &["--id", "id"]),
        &[
            "crlf.csv: line 42: column 'churned'",
            "\"maybe\" is a third class",
        ],
    );
    let text = table("c99,1,pro,true,extra\n").replace('\n', "\r\n");
    let f = write(dir.path(), "ragged.csv", &text);
    expect_error(
        &train(&f, &["--id", "id"]),
        &["ragged.csv: line 42", "ragged row"],
    );
}

#[test]
fn a_closed_stdout_pipe_ends_a_command_quietly() {
    // `churn inspect ... | head -0`: the reader is gone before the first write.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_churn"))
        .args(["inspect", "--model", "models/telco"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    use std::os::unix::process::ExitStatusExt;
    assert!(
        out.status.success() || out.status.signal() == Some(13),
        "{:?}",
        out.status
    );
}
