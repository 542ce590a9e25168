//! Batch scoring. For now: SQL export, so that a database scores a table in place with the same
//! numbers as `churn explain` and the server. (Streaming file and PostgreSQL scoring, `churn score`,
//! is the next part of this module.)
pub mod sql;
