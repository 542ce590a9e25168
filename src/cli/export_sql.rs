use crate::batch::sql::{SqlOptions, postgres};
use crate::error::{Error, Result};
use crate::model::ChurnModel;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ExportSqlArgs {
    /// A model.json, or a model folder (its highest version).
    #[arg(long)]
    model: PathBuf,
    /// SQL dialect.
    #[arg(long, default_value = "postgres", value_parser = ["postgres"])]
    dialect: String,
    /// Name of the view to create (default: churn_scores_<model name>).
    #[arg(long)]
    name: Option<String>,
    /// The table to score: one row per customer with the model's feature columns.
    #[arg(long, default_value = "customers")]
    table: String,
    /// Id column copied to the output (default: the model's training id column).
    #[arg(long)]
    id: Option<String>,
    /// How many reasons per customer.
    #[arg(long, default_value_t = 3)]
    top_k: usize,
}

pub fn run(a: ExportSqlArgs) -> Result<()> {
    let model = ChurnModel::load(&a.model)?;
    let name = a.name.unwrap_or_else(|| {
        let clean: String = model
            .file()
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!("churn_scores_{clean}")
    });
    if a.dialect != "postgres" {
        return Err(Error::Usage(format!(
            "--dialect {}: only postgres is supported",
            a.dialect
        )));
    }
    let opts = SqlOptions {
        table: a.table,
        view: name,
        id: a.id.or_else(|| model.file().training.id_column.clone()),
        top_k: a.top_k,
    };
    print!("{}", postgres(&model, &opts)?);
    Ok(())
}
