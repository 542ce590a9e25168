//! Batch scoring: `churn score` streams files or PostgreSQL through the model on every core;
//! `churn export-sql` writes the model as SQL so a database scores a table in place with the same
//! numbers.
pub mod history;
pub mod output;
pub mod score;
pub mod sql;

pub use crate::io::Shard;
pub use crate::io::blocks::Source;
pub use output::Sink;
