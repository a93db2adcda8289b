//! PostgreSQL's binary `COPY` format, written: how ledger rows reach the table. `COPY FROM
//! STDIN (FORMAT binary)` costs the server the least per row of any way in: no statement to
//! plan, no arrays to take apart (an `INSERT ... SELECT FROM UNNEST` of fifteen arrays builds and
//! reads a tuplestore of the whole batch first), integers as they are stored. The constraints
//! and indexes are the same as for an `INSERT`: a duplicate key still fails the statement, and
//! the transaction with it. (Format: <https://www.postgresql.org/docs/15/sql-copy.html>, "Binary
//! Format".)

/// The signature, flags (no OIDs) and header extension length (none) every binary file opens with.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// The rows of one binary `COPY`, encoded as they are added.
#[derive(Debug)]
#[must_use]
pub struct BinaryRows {
    buf: Vec<u8>,
    /// Fields of every row (the statement's column list).
    fields: i16,
    /// Fields written of the row under way, checked when the next starts and at the end.
    written: i16,
    rows: usize,
}

impl BinaryRows {
    /// Rows of `fields` columns, with room for about `rows` of them.
    pub fn new(fields: i16, rows: usize) -> Self {
        let mut buf = Vec::with_capacity(HEADER.len() + rows * 160 + 2);
        buf.extend_from_slice(HEADER);
        Self {
            buf,
            fields,
            written: fields,
            rows: 0,
        }
    }

    /// Starts a row: its fields follow, in the statement's column order.
    pub fn row(&mut self) {
        debug_assert_eq!(self.written, self.fields, "a row with too few fields");
        self.buf.extend_from_slice(&self.fields.to_be_bytes());
        self.written = 0;
        self.rows += 1;
    }

    fn field(&mut self, bytes: &[u8]) -> crate::Result<()> {
        let len = i32::try_from(bytes.len()).map_err(|_| {
            crate::StorageError::Database(
                format!(
                    "a field of {} bytes does not fit PostgreSQL's COPY format",
                    bytes.len()
                )
                .into(),
            )
        })?;
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(bytes);
        self.written += 1;
        Ok(())
    }

    /// A `bigint` field.
    ///
    /// # Errors
    /// Never for a fixed-size field (the signature is the text field's).
    pub fn int8(&mut self, v: i64) -> crate::Result<()> {
        self.field(&v.to_be_bytes())
    }

    /// A `smallint` field.
    ///
    /// # Errors
    /// Never for a fixed-size field (the signature is the text field's).
    pub fn int2(&mut self, v: i16) -> crate::Result<()> {
        self.field(&v.to_be_bytes())
    }

    /// A `text` field (UTF-8, as the database's encoding is).
    ///
    /// # Errors
    /// When it is longer than the format's 2 GiB.
    pub fn text(&mut self, v: &str) -> crate::Result<()> {
        self.field(v.as_bytes())
    }

    /// Rows added so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was added.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The whole file, trailer included.
    #[must_use]
    pub fn finish(mut self) -> Vec<u8> {
        debug_assert_eq!(self.written, self.fields, "a row with too few fields");
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_the_header_the_rows_and_the_trailer() {
        let mut rows = BinaryRows::new(3, 1);
        rows.row();
        rows.int8(-2).expect("int8");
        rows.int2(258).expect("int2");
        rows.text("é").expect("text");
        assert_eq!(rows.len(), 1);
        let mut want = b"PGCOPY\n\xff\r\n\0".to_vec();
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        want.extend_from_slice(&[0, 3]);
        want.extend_from_slice(&[0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
        want.extend_from_slice(&[0, 0, 0, 2, 1, 2]);
        want.extend_from_slice(&[0, 0, 0, 2, 0xc3, 0xa9]);
        want.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(rows.finish(), want);
    }

    #[test]
    fn an_empty_text_is_a_field_of_length_zero_not_null() {
        let mut rows = BinaryRows::new(1, 1);
        rows.row();
        rows.text("").expect("text");
        let file = rows.finish();
        assert_eq!(&file[HEADER.len()..], &[0, 1, 0, 0, 0, 0, 0xff, 0xff]);
    }
}
