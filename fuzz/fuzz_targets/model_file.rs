//! Any bytes as a model file: parsing and validation either refuse them or give a model whose
//! scores are finite probabilities and whose contributions add up to its logit.
#![no_main]
use churn::model::file::ModelFile;
use churn::{ChurnModel, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = serde_json::from_slice::<ModelFile>(data) else {
        return;
    };
    let Ok(model) = ChurnModel::from_file(file) else {
        return;
    };
    let row = vec![Value::Missing; model.schema().len()];
    if let Ok(e) = model.explain(&row, false) {
        assert!(e.probability.is_finite() && (0.0..=1.0).contains(&e.probability));
        let sum: f64 =
            e.baseline_logit + e.contributions.iter().map(|c| c.contribution).sum::<f64>();
        assert!(
            (sum - e.logit).abs() <= 1e-6 * (1.0 + e.logit.abs()),
            "{sum} vs {}",
            e.logit
        );
    }
});
