//! Batch scoring: `churn score` streams files through the model on every core; `churn export-sql`
//! writes the model as SQL so a database scores a table in place with the same numbers.
pub mod input;
pub mod score;
pub mod sql;
