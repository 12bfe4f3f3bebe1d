//! Decompresses a verified credential body: `be32 magic | be32 length | stream`. The stated
//! length is capped at the largest possible body, and output stops there, so no zip bomb is read.

use std::io::Read;

use zeroize::Zeroizing;

use super::algorithms::Zip;
use super::error::MungeError;
use super::inner::MAX_INNER_LEN;
use super::reader::Reader;

/// First four bytes of a compressed body (`ZIP_MAGIC` in munged's `zip.c`).
const ZIP_MAGIC: u32 = 0xCACA_CACA;

/// The body with compression undone; `Zip::None` returns it unchanged.
///
/// munged (`dec_decompress`) answers a bad header with an internal error and accepts a stream
/// shorter than stated; here a bad header is `BadCred`, a length over the cap `BadLength`, and a
/// stream that is corrupt or of another length than stated `CredInvalid`, as munged answers a
/// stream that fails to decompress.
pub(super) fn decompress(
    zip: Zip,
    body: Zeroizing<Vec<u8>>,
) -> Result<Zeroizing<Vec<u8>>, MungeError> {
    match zip {
        Zip::None => Ok(body),
        Zip::Bzlib => {
            let (len, stream) = split_header(&body)?;
            read_exactly(bzip2::read::BzDecoder::new(stream), len)
        }
        Zip::Zlib => {
            let (len, stream) = split_header(&body)?;
            read_exactly(flate2::read::ZlibDecoder::new(stream), len)
        }
    }
}

/// The stated decompressed length, checked against the cap, and the compressed stream.
fn split_header(body: &[u8]) -> Result<(usize, &[u8]), MungeError> {
    let mut reader = Reader::new(body);
    if reader.u32("Truncated compression header")? != ZIP_MAGIC {
        return Err(MungeError::BadCred("Invalid compression header"));
    }
    let stated_len = reader.u32("Truncated compression header")?;
    let stated_len = usize::try_from(stated_len).unwrap_or(usize::MAX);
    if stated_len > MAX_INNER_LEN {
        return Err(MungeError::BadLength(
            "decompressed body over the largest credential",
        ));
    }
    Ok((stated_len, reader.rest()))
}

/// Reads at most one byte more than `len`, so a longer stream is detected without inflating it.
fn read_exactly(decoder: impl Read, len: usize) -> Result<Zeroizing<Vec<u8>>, MungeError> {
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    decoder
        .take(len as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| MungeError::CredInvalid)?;
    if out.len() != len {
        return Err(MungeError::CredInvalid);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{decompress, ZIP_MAGIC};
    use crate::munge::inner::MAX_INNER_LEN;
    use crate::munge::{MungeError, Zip};
    use std::io::Write;
    use zeroize::Zeroizing;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn bzip2(data: &[u8]) -> Vec<u8> {
        let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn framed(stated_len: u32, stream: &[u8]) -> Zeroizing<Vec<u8>> {
        let mut body = ZIP_MAGIC.to_be_bytes().to_vec();
        body.extend(stated_len.to_be_bytes());
        body.extend(stream);
        Zeroizing::new(body)
    }

    fn len32(data: &[u8]) -> u32 {
        u32::try_from(data.len()).unwrap()
    }

    #[test]
    fn both_compressions_round_trip() {
        let data = b"munge munge munge munge munge munge munge".repeat(50);
        for (zip, stream) in [(Zip::Zlib, zlib(&data)), (Zip::Bzlib, bzip2(&data))] {
            let out = decompress(zip, framed(len32(&data), &stream)).unwrap();
            assert_eq!(out.as_slice(), data.as_slice(), "{zip}");
        }
        let plain = Zeroizing::new(b"as is".to_vec());
        assert_eq!(decompress(Zip::None, plain).unwrap().as_slice(), b"as is");
    }

    #[test]
    fn stated_length_must_match_the_stream() {
        let data = vec![b'a'; 1000];
        for (zip, stream) in [(Zip::Zlib, zlib(&data)), (Zip::Bzlib, bzip2(&data))] {
            for stated in [0, 999, 1001, 4096] {
                assert_eq!(
                    decompress(zip, framed(stated, &stream)),
                    Err(MungeError::CredInvalid),
                    "{zip} stated {stated}"
                );
            }
        }
    }

    #[test]
    fn a_bomb_is_refused_without_inflating_it() {
        let bomb = vec![0u8; 2 * MAX_INNER_LEN];
        for (zip, stream) in [(Zip::Zlib, zlib(&bomb)), (Zip::Bzlib, bzip2(&bomb))] {
            assert!(stream.len() < 64 * 1024, "{zip} bomb is small");
            let error = decompress(zip, framed(len32(&bomb), &stream)).unwrap_err();
            assert_eq!(error.code(), 3, "{zip}: stated length over the cap");
            let max = u32::try_from(MAX_INNER_LEN).unwrap();
            assert_eq!(
                decompress(zip, framed(max, &stream)),
                Err(MungeError::CredInvalid),
                "{zip}: a lie about the length stops one byte past it"
            );
        }
    }

    #[test]
    fn bad_header_and_corrupt_stream_are_refused() {
        let data = b"some inner bytes".to_vec();
        let mut wrong_magic = framed(len32(&data), &zlib(&data));
        wrong_magic[0] ^= 1;
        assert_eq!(
            decompress(Zip::Zlib, wrong_magic),
            Err(MungeError::BadCred("Invalid compression header"))
        );
        for short in 0..8 {
            let body = Zeroizing::new(framed(4, b"")[..short].to_vec());
            assert_eq!(decompress(Zip::Bzlib, body).unwrap_err().code(), 8);
        }
        for (zip, stream) in [(Zip::Zlib, zlib(&data)), (Zip::Bzlib, bzip2(&data))] {
            let mut corrupt = stream.clone();
            let last = corrupt.len() - 1;
            corrupt[last] ^= 0xFF;
            assert_eq!(
                decompress(zip, framed(len32(&data), &corrupt)),
                Err(MungeError::CredInvalid),
                "{zip} corrupt trailer"
            );
            assert_eq!(
                decompress(zip, framed(len32(&data), &stream[..stream.len() / 2])),
                Err(MungeError::CredInvalid),
                "{zip} truncated"
            );
            assert_eq!(
                decompress(zip, framed(len32(&data), b"not a stream at all")),
                Err(MungeError::CredInvalid),
                "{zip} garbage"
            );
        }
    }
}
