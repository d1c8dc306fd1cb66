//! Hash slots: which of the 16384 slots a key belongs to, exactly as the server computes it.

/// The number of hash slots in a Redis Cluster.
pub const SLOT_COUNT: usize = 16384;

/// The key's hash slot: CRC16/XMODEM of the key (or of its hash tag) modulo 16384.
///
/// A hash tag is the text between the first `{` and the first `}` after it; when that text is
/// empty (`{}`) or there is no closing brace, the whole key is hashed.
pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) % SLOT_COUNT as u16
}

/// The part of the key that is hashed: the non-empty hash tag if there is one, else the key.
fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else {
        return key;
    };
    let rest = &key[open + 1..];
    match rest.iter().position(|&b| b == b'}') {
        Some(close) if close > 0 => &rest[..close],
        _ => key,
    }
}

/// CRC16/XMODEM (polynomial 0x1021, initial value 0, no reflection), the variant Redis uses.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_check_value() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(crc16(b""), 0);
    }

    #[test]
    fn known_slots() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        let table: &[(&[u8], u16)] = &[
            (b"foo", 12182),
            (b"bar", 5061),
            (b"hello", 866),
            (b"123456789", 0x31C3), // the CRC16 check value, already below 16384
            (b"", 0),
            (b"{foo}", 12182),
            (b"{foo}bar", 12182),
            (b"x{foo}y{bar}", 12182),
            (b"{}", key_slot_whole(b"{}")),
            (b"{", key_slot_whole(b"{")),
            (b"}foo{", key_slot_whole(b"}foo{")),
        ];
        for &(key, slot) in table {
            assert_eq!(
                key_slot(key),
                slot,
                "key {:?}",
                String::from_utf8_lossy(key)
            );
        }
    }

    fn key_slot_whole(key: &[u8]) -> u16 {
        crc16(key) % 16384
    }

    #[test]
    fn hash_tags() {
        assert_eq!(
            key_slot(b"{user1000}.following"),
            key_slot(b"{user1000}.followers")
        );
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        // An empty tag means the whole key is hashed, not the later `{bar}`.
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot_whole(b"foo{}{bar}"));
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
        // Only the first `{` counts, and the first `}` after it.
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
        // No closing brace: whole key.
        assert_eq!(key_slot(b"foo{bar"), key_slot_whole(b"foo{bar"));
    }

    #[test]
    fn slots_are_in_range() {
        for i in 0..10_000u32 {
            let key = format!("k{i}");
            assert!((key_slot(key.as_bytes()) as usize) < SLOT_COUNT);
        }
    }
}
