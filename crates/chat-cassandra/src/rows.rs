//! Reading typed columns out of rows, with errors that name the table and column.

use cdrs_tokio::types::IntoRustByName;
use cdrs_tokio::types::rows::Row;

use crate::error::CassandraError;

/// The non-null value of `column`.
///
/// # Errors
/// [`CassandraError::BadRow`] when the column is missing, null or of another type.
pub fn get<T>(row: &Row, column: &str, table: &'static str) -> Result<T, CassandraError>
where
    Row: IntoRustByName<T>,
{
    row.get_r_by_name(column)
        .map_err(|error| CassandraError::BadRow {
            table,
            reason: format!("{column}: {error}"),
        })
}

/// The value of `column`, or `None` when it is null.
///
/// # Errors
/// [`CassandraError::BadRow`] when the column is missing or of another type.
pub fn get_opt<T>(row: &Row, column: &str, table: &'static str) -> Result<Option<T>, CassandraError>
where
    Row: IntoRustByName<T>,
{
    row.get_by_name(column)
        .map_err(|error| CassandraError::BadRow {
            table,
            reason: format!("{column}: {error}"),
        })
}
