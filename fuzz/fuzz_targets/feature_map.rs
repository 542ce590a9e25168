//! Arbitrary named values against the bundled model, the way a churn.v1 request's feature map
//! arrives: every input is either refused with violations naming fields, or scored with a finite
//! probability whose contributions add up to its logit. Never a panic.
#![no_main]
mod shared;
use churn::Value;
use libfuzzer_sys::fuzz_target;

/// `name=value` entries split by newlines; a value that parses as a number is one, `-` is missing.
fn entries(text: &str) -> Vec<(&str, Value<'_>)> {
    text.split('\n')
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = match v {
                "-" => Value::Missing,
                v => v
                    .parse::<f64>()
                    .map(Value::Number)
                    .unwrap_or(Value::Text(v)),
            };
            (k, v)
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let m = shared::telco_model();
    for strict in [false, true] {
        let (row, unknown) = m.schema().row_from_named(entries(text));
        match m.explain(&row, strict) {
            Ok(e) => {
                assert!(e.probability.is_finite());
                let sum: f64 =
                    e.baseline_logit + e.contributions.iter().map(|c| c.contribution).sum::<f64>();
                assert!((sum - e.logit).abs() <= 1e-9 * (1.0 + e.logit.abs()));
            }
            Err(v) => assert!(!v.is_empty() && v.iter().all(|f| !f.field.is_empty())),
        }
        assert!(
            unknown
                .iter()
                .all(|f| m.schema().index_of(f).is_none())
        );
    }
});
