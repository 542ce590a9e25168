use super::print_json;
use crate::error::{Error, Result};
use crate::model::ChurnModel;
use crate::model::drift::{DriftBand, drift_of_table};
use crate::model::evaluate::read_columns;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct DriftArgs {
    /// A model.json, or a model folder (its highest version).
    #[arg(long)]
    model: PathBuf,
    /// The customers to compare with the training customers: CSV or Parquet with the model's
    /// feature columns (a label is not needed).
    #[arg(long)]
    data: PathBuf,
    /// Exit with status 3 when any feature or the score drifts this far: moderate or major.
    #[arg(long, value_parser = ["moderate", "major"])]
    fail_on: Option<String>,
    /// CSV field delimiter (default: found from the header line: comma, semicolon, tab or pipe).
    #[arg(long, value_parser = super::delimiter)]
    delimiter: Option<u8>,
    /// Print the drift as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: DriftArgs) -> Result<()> {
    let model = ChurnModel::load(&a.model)?;
    let Some(refs) = &model.file().drift else {
        return Err(Error::Usage(format!(
            "{} has no drift references: it was trained before churn kept them; retrain it to measure drift",
            model.id()
        )));
    };
    let table = read_columns(&model, &a.data, None, a.delimiter)?;
    let r = drift_of_table(&model, refs, &table)?;
    if a.json {
        print_json(&r);
    } else {
        println!(
            "{} on {}: {} rows against {} training rows",
            model.id(),
            a.data.display(),
            r.rows,
            r.reference_rows
        );
        println!(
            "  {:<28} {:>8} {:<9} {:>9} {:>9} {:>8}",
            "feature", "PSI", "band", "missing", "(train)", "unseen"
        );
        for f in &r.features {
            println!(
                "  {:<28} {:>8.4} {:<9} {:>8.1}% {:>8.1}% {:>8}",
                f.feature,
                f.psi,
                f.band.as_str(),
                100.0 * f.missing_share,
                100.0 * f.reference_missing_share,
                f.unseen_share
                    .map_or("-".to_string(), |u| format!("{:.1}%", 100.0 * u))
            );
        }
        println!(
            "  {:<28} {:>8.4} {}",
            "(score)",
            r.score.psi,
            r.score.band.as_str()
        );
        println!("{}", r.definition);
        if r.rejected_rows > 0 {
            println!(
                "rejected rows (not scored, left out of every figure above): {}",
                r.rejected_rows
            );
            for x in &r.rejected {
                println!("  line {} column '{}': {}", x.line, x.column, x.reason);
            }
        }
    }
    if let Some(level) = a.fail_on.as_deref().and_then(DriftBand::parse)
        && r.worst() >= level
    {
        let mut drifted: Vec<String> = r
            .features
            .iter()
            .filter(|f| f.band >= level)
            .map(|f| format!("{} (PSI {:.3})", f.feature, f.psi))
            .collect();
        if r.score.band >= level {
            drifted.push(format!("the score (PSI {:.3})", r.score.psi));
        }
        return Err(Error::DriftFound {
            band: r.worst().as_str().to_string(),
            features: drifted,
        });
    }
    Ok(())
}
