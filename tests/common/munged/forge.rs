//! A credential encoder for tests: lays out munge's format 3 from a [`Spec`] whose every byte can
//! be wrong, and signs it with a real key, so that munged and the decoder can be shown the same
//! malformed-but-authentic credential.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockCipher, BlockEncryptMut, KeyInit, KeyIvInit};
use hmac::{Hmac, Mac};
use sha1::{Digest, Sha1};
use std::io::Write;

/// Every field of a credential, as bytes to be written, right or wrong.
#[derive(Clone, Debug)]
pub struct Spec {
    pub version: u8,
    pub cipher: u8,
    pub mac: u8,
    pub zip: u8,
    pub realm: Vec<u8>,
    /// The origin address bytes; `addr_len` is their count unless `addr_len` is set.
    pub addr: Vec<u8>,
    pub addr_len: Option<u8>,
    pub encode_time: u32,
    pub ttl: u32,
    pub uid: u32,
    pub gid: u32,
    pub restrict_uid: u32,
    pub restrict_gid: u32,
    pub payload: Vec<u8>,
    /// The payload length field; the payload's length unless set.
    pub payload_len: Option<u32>,
    /// Bytes after the payload.
    pub trailing: Vec<u8>,
    pub zip_magic: u32,
    /// The stated decompressed length; the real one unless set.
    pub zip_len: Option<u32>,
    /// Break the PKCS#7 padding (the MAC stays right).
    pub bad_padding: bool,
}

impl Spec {
    /// munged's defaults (aes128, sha256, no compression), encoded at `encode_time` by root,
    /// from 127.0.0.1, unrestricted, ttl 300.
    pub fn new(encode_time: u32) -> Spec {
        Spec {
            version: 3,
            cipher: 4,
            mac: 5,
            zip: 0,
            realm: Vec::new(),
            addr: vec![127, 0, 0, 1],
            addr_len: None,
            encode_time,
            ttl: 300,
            uid: 0,
            gid: 0,
            restrict_uid: u32::MAX,
            restrict_gid: u32::MAX,
            payload: Vec::new(),
            payload_len: None,
            trailing: Vec::new(),
            zip_magic: 0xCACA_CACA,
            zip_len: None,
            bad_padding: false,
        }
    }

    /// A copy with `edit` applied.
    pub fn with(&self, edit: impl FnOnce(&mut Spec)) -> Spec {
        let mut spec = self.clone();
        edit(&mut spec);
        spec
    }

    /// The armored credential, signed with the key file bytes `key`.
    pub fn forge(&self, key: &[u8]) -> String {
        format!("MUNGE:{}:", STANDARD.encode(self.forge_bytes(key)))
    }

    /// The unarmored credential bytes.
    pub fn forge_bytes(&self, key: &[u8]) -> Vec<u8> {
        let dek_subkey = Sha1::new().chain_update(key).chain_update(b"1").finalize();
        let mac_subkey = Sha1::new().chain_update(key).chain_update(b"2").finalize();

        let mut inner = vec![0x5A; 8];
        let addr_len = self
            .addr_len
            .unwrap_or_else(|| u8::try_from(self.addr.len()).unwrap());
        inner.push(addr_len);
        inner.extend(&self.addr);
        let payload_len = self
            .payload_len
            .unwrap_or_else(|| u32::try_from(self.payload.len()).unwrap());
        for field in [
            self.encode_time,
            self.ttl,
            self.uid,
            self.gid,
            self.restrict_uid,
            self.restrict_gid,
            payload_len,
        ] {
            inner.extend(field.to_be_bytes());
        }
        inner.extend(&self.payload);
        inner.extend(&self.trailing);

        let z = match self.zip {
            0 => inner,
            zip => {
                let mut z = self.zip_magic.to_be_bytes().to_vec();
                let stated = self
                    .zip_len
                    .unwrap_or_else(|| u32::try_from(inner.len()).unwrap());
                z.extend(stated.to_be_bytes());
                z.extend(compress(zip, &inner));
                z
            }
        };

        let block_len = match self.cipher {
            2 | 3 => 8,
            4 | 5 => 16,
            _ => 0,
        };
        let mut outer = vec![
            self.version,
            self.cipher,
            self.mac,
            self.zip,
            u8::try_from(self.realm.len()).unwrap(),
        ];
        outer.extend(&self.realm);
        let iv: Vec<u8> = (0..block_len).map(|i| 0xA0 + i).collect();
        outer.extend(&iv);

        let mac = hmac(self.mac, &mac_subkey, &[&outer, &z]);
        let dek = hmac(self.mac, &dek_subkey, &[&mac]);
        let body = match self.cipher {
            2 => encrypt::<blowfish::Blowfish>(&dek[..16], &iv, &z, self.bad_padding),
            3 => encrypt::<cast5::Cast5>(&dek[..16], &iv, &z, self.bad_padding),
            4 => encrypt::<aes::Aes128>(&dek[..16], &iv, &z, self.bad_padding),
            5 => encrypt::<aes::Aes256>(&dek[..32], &iv, &z, self.bad_padding),
            _ => z,
        };
        let mut bytes = outer;
        bytes.extend(mac);
        bytes.extend(body);
        bytes
    }
}

/// bzip2 for 2, zlib otherwise (so an invalid zip byte still gets a body).
fn compress(zip: u8, data: &[u8]) -> Vec<u8> {
    if zip == 2 {
        let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    } else {
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }
}

/// HMAC with the digest munge numbers `mac` (SHA-256 for an invalid number).
fn hmac(mac: u8, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn with<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut mac = <M as KeyInit>::new_from_slice(key).unwrap();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }
    match mac {
        2 => with::<Hmac<md5::Md5>>(key, parts),
        3 => with::<Hmac<sha1::Sha1>>(key, parts),
        4 => with::<Hmac<ripemd::Ripemd160>>(key, parts),
        6 => with::<Hmac<sha2::Sha512>>(key, parts),
        _ => with::<Hmac<sha2::Sha256>>(key, parts),
    }
}

fn encrypt<C>(key: &[u8], iv: &[u8], plaintext: &[u8], bad_padding: bool) -> Vec<u8>
where
    C: BlockCipher + BlockEncryptMut + KeyInit,
{
    let encryptor = cbc::Encryptor::<C>::new_from_slices(key, iv).unwrap();
    if bad_padding {
        let block = C::block_size();
        let mut padded = plaintext.to_vec();
        let pad = block - plaintext.len() % block;
        padded.extend(std::iter::repeat_n(0u8, pad - 1));
        padded.push(u8::try_from(pad).unwrap().wrapping_add(block as u8));
        encryptor.encrypt_padded_vec_mut::<cbc::cipher::block_padding::NoPadding>(&padded)
    } else {
        encryptor.encrypt_padded_vec_mut::<Pkcs7>(plaintext)
    }
}
