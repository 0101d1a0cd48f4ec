//! Hashing helpers shared across the crate: hex text of digests, SHA-256 and CRC-32.
//!
//! Each migration format pins its own checksum algorithm next to the code that writes its
//! tracking table (sqlx: raw SHA-384, Prisma and drizzle: SHA-256 hex, Flyway: CRC-32 of
//! lines), because the algorithm is whatever the tool stores and must match it byte for byte.
//! This module holds only the building blocks they, the backup store and the schema
//! fingerprints have in common.

/// Lowercase hex of `bytes`, two digits per byte: the form every tool dbdeploy reads writes
/// digests in, and the one dbdeploy writes its own in.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Lowercase hex SHA-256 of `bytes` (64 characters).
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

/// CRC-32 (IEEE 802.3, the `crc32.ChecksumIEEE` of Go and `CRC_32_ISO_HDLC` of the `crc`
/// crate), which tools hash database names with to derive their advisory-lock ids.
#[must_use]
pub fn crc32_ieee(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_two_lowercase_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn sha256_hex_is_the_standard_digest() {
        // printf 'abc' | sha256sum
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn crc32_is_the_ieee_polynomial() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32_ieee(b"123456789"), 0xCBF4_3926);
        // python3 -c 'import zlib; print(zlib.crc32(b"dbdeploy"))'
        assert_eq!(crc32_ieee(b"dbdeploy"), 240_367_037);
        assert_eq!(crc32_ieee(b""), 0);
    }
}
