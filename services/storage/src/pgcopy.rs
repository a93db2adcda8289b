//! Rows in PostgreSQL's binary `COPY` format, for the group commit's ledger write.
//!
//! `COPY ... FROM STDIN (FORMAT binary)` costs the server less than an `INSERT ... SELECT FROM
//! UNNEST` of the same rows: no array to take apart, no executor above the insert, and the
//! rows go to the heap in multi-row batches (one WAL record per page, not per row). The
//! format (<https://www.postgresql.org/docs/current/sql-copy.html>, "Binary Format"): a
//! signature, flags and a header extension length; then per row the number of fields and each
//! field as a length and its bytes in the type's binary form (big-endian integers, text as
//! its UTF-8 bytes); then a trailer of -1.

use crate::{Result, StorageError};

/// The start of every binary COPY stream.
const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// A binary COPY stream being written.
#[derive(Debug)]
pub(crate) struct BinaryCopy {
    buf: Vec<u8>,
}

impl BinaryCopy {
    /// A stream with its header, sized for about `bytes`.
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(bytes + SIGNATURE.len() + 10);
        buf.extend_from_slice(SIGNATURE);
        // Flags (no OIDs), then the header extension's length (none).
        buf.extend_from_slice(&0_i32.to_be_bytes());
        buf.extend_from_slice(&0_i32.to_be_bytes());
        Self { buf }
    }

    /// Starts a row of `fields` fields.
    pub(crate) fn row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }

    /// A `bigint` field.
    pub(crate) fn int8(&mut self, value: i64) {
        self.buf.extend_from_slice(&8_i32.to_be_bytes());
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    /// A `smallint` field.
    pub(crate) fn int2(&mut self, value: i16) {
        self.buf.extend_from_slice(&2_i32.to_be_bytes());
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    /// A `text` field of `column`.
    ///
    /// # Errors
    /// When it is longer than a field can be (2 GiB; validation bounds every text far below).
    pub(crate) fn text(&mut self, column: &'static str, value: &str) -> Result<()> {
        let len = i32::try_from(value.len()).map_err(|_| {
            StorageError::corrupt(
                "ledger",
                format!("{column} of {} bytes is too long", value.len()),
            )
        })?;
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(value.as_bytes());
        Ok(())
    }

    /// The stream with its trailer.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1_i16).to_be_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_header_rows_and_trailer_byte_for_byte() {
        let mut copy = BinaryCopy::with_capacity(0);
        copy.row(3);
        copy.int8(-2);
        copy.int2(258);
        copy.text("site_id", "é").expect("a short text");
        let bytes = copy.finish();
        let mut want = b"PGCOPY\n\xff\r\n\0".to_vec();
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        want.extend_from_slice(&[0, 3]);
        want.extend_from_slice(&[0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
        want.extend_from_slice(&[0, 0, 0, 2, 1, 2]);
        want.extend_from_slice(&[0, 0, 0, 2, 0xc3, 0xa9]);
        want.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(bytes, want);
    }

    #[test]
    fn an_empty_text_is_a_zero_length_field_not_null() {
        let mut copy = BinaryCopy::with_capacity(0);
        copy.row(1);
        copy.text("refund_of", "").expect("a short text");
        let bytes = copy.finish();
        assert_eq!(&bytes[19..25], &[0, 1, 0, 0, 0, 0]);
        assert_eq!(bytes.len(), 27);
    }
}
