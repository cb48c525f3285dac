//! The libtrust key id, the only `kid` registry:2 2.8.2 looks a signing key up by: base32
//! (RFC 4648, upper case, no padding) of the first 240 bits of SHA-256 of the DER
//! SubjectPublicKeyInfo, in 12 groups of 4 characters joined by ':'. An RFC 7638 thumbprint
//! is refused by the registry (docs/registry-facts.md, "Token auth").

use sha2::{Digest, Sha256};

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

pub fn libtrust_kid(spki_der: &[u8]) -> String {
    let digest = Sha256::digest(spki_der);
    // 30 bytes are 240 bits, exactly 48 base32 characters: no padding ever arises.
    let b32 = base32(&digest[..30]);
    let groups: Vec<&str> = (0..12).map(|i| &b32[i * 4..i * 4 + 4]).collect();
    groups.join(":")
}

/// RFC 4648 base32 for input whose bit length is a multiple of 5 bytes' worth (here 30 bytes).
fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_the_rfc_4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(input.as_bytes()), want, "{input}");
        }
    }

    /// The SPKI of a fixed P-256 key and its kid, computed independently with
    /// `openssl pkey -pubout -outform DER | sha256sum` and Python's `base64.b32encode`.
    const SPKI_HEX: &str = concat!(
        "3059301306072a8648ce3d020106082a8648ce3d030107034200042511775355da4778a0995cf2f89112db20e0",
        "fcc713b92dd2f566b38a26698764575c1f43654744ef9ccea66f4758f565806450b51ac7dc4f0d768fd6b8ac6631"
    );
    const KID: &str = "6QBR:TEU6:LULT:2YBW:6CNQ:UDT6:HQSD:ZLGA:OUBV:P2LP:UXAQ:H3KC";

    #[test]
    fn the_kid_matches_an_independent_computation() {
        let spki = hex::decode(SPKI_HEX).unwrap();
        assert_eq!(libtrust_kid(&spki), KID);
    }

    #[test]
    fn the_kid_has_twelve_groups_of_four() {
        let kid = libtrust_kid(b"anything");
        let groups: Vec<&str> = kid.split(':').collect();
        assert_eq!(groups.len(), 12);
        assert!(
            groups
                .iter()
                .all(|g| g.len() == 4 && g.bytes().all(|c| ALPHABET.contains(&c)))
        );
    }
}
