//! What the fuzz targets share: the bundled model, loaded once.
use churn::ChurnModel;
use std::sync::OnceLock;

pub fn telco_model() -> &'static ChurnModel {
    static M: OnceLock<ChurnModel> = OnceLock::new();
    M.get_or_init(|| {
        let file =
            serde_json::from_slice(include_bytes!("../../../models/telco/1/model.json")).unwrap();
        ChurnModel::from_file(file).unwrap()
    })
}
