//! Batch scoring: `churn score` streams files or PostgreSQL through the model on every core;
//! `churn export-sql` writes the model as SQL so a database scores a table in place with the same
//! numbers.
pub mod csv_records;
pub mod input;
pub(crate) mod output;
pub mod postgres;
pub mod score;
pub mod sql;
