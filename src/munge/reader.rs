//! A cursor over a credential's bytes whose every read is bounds-checked, so a short or lying
//! length field becomes a `BadCred` naming the field instead of a panic or an over-read.

use super::error::MungeError;

/// Reads big-endian fields from the front of a byte slice.
pub(super) struct Reader<'a> {
    whole: &'a [u8],
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader {
            whole: bytes,
            rest: bytes,
        }
    }

    /// The next `len` bytes, or `BadCred(truncated)` when fewer remain.
    pub(super) fn bytes(
        &mut self,
        len: usize,
        truncated: &'static str,
    ) -> Result<&'a [u8], MungeError> {
        let (field, rest) = self
            .rest
            .split_at_checked(len)
            .ok_or(MungeError::BadCred(truncated))?;
        self.rest = rest;
        Ok(field)
    }

    pub(super) fn u8(&mut self, truncated: &'static str) -> Result<u8, MungeError> {
        let [byte] = self.array(truncated)?;
        Ok(byte)
    }

    pub(super) fn u32(&mut self, truncated: &'static str) -> Result<u32, MungeError> {
        self.array(truncated).map(u32::from_be_bytes)
    }

    pub(super) fn array<const N: usize>(
        &mut self,
        truncated: &'static str,
    ) -> Result<[u8; N], MungeError> {
        let (field, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(MungeError::BadCred(truncated))?;
        self.rest = rest;
        Ok(*field)
    }

    /// Everything not yet read.
    pub(super) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// Everything read so far (`rest` is always a tail of `whole`, so the split always succeeds).
    pub(super) fn consumed(&self) -> &'a [u8] {
        let consumed_len = self.whole.len() - self.rest.len();
        self.whole
            .split_at_checked(consumed_len)
            .map_or(&[], |(consumed, _)| consumed)
    }
}

#[cfg(test)]
mod tests {
    use super::Reader;
    use crate::munge::MungeError;

    #[test]
    fn reads_big_endian_fields_in_order() {
        let mut reader = Reader::new(&[7, 0, 0, 1, 2, 9, 9, 5]);
        assert_eq!(reader.u8("a"), Ok(7));
        assert_eq!(reader.u32("b"), Ok(258));
        assert_eq!(reader.bytes(2, "c"), Ok(&[9, 9][..]));
        assert_eq!(reader.consumed(), [7, 0, 0, 1, 2, 9, 9]);
        assert_eq!(reader.rest(), [5]);
    }

    #[test]
    fn short_reads_name_the_field_and_consume_nothing() {
        let mut reader = Reader::new(&[1, 2, 3]);
        assert_eq!(
            reader.u32("Truncated UID"),
            Err(MungeError::BadCred("Truncated UID"))
        );
        assert_eq!(
            reader.bytes(4, "Truncated MAC"),
            Err(MungeError::BadCred("Truncated MAC"))
        );
        assert_eq!(reader.bytes(usize::MAX, "x"), Err(MungeError::BadCred("x")));
        assert!(reader.consumed().is_empty());
        assert_eq!(reader.array::<3>("y"), Ok([1, 2, 3]));
        assert_eq!(
            reader.u8("Truncated salt"),
            Err(MungeError::BadCred("Truncated salt"))
        );
    }
}
