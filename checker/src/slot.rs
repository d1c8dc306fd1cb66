//! Which of the 16384 hash slots a key belongs to, computed as the server does, so that ops
//! recorded without a `slot` field (or imported from other tools) can still be placed. The
//! workloads crate routes with this same function (`workloads::key_slot` re-exports it), and its
//! real-cluster tests compare it with the servers' `CLUSTER KEYSLOT`.

/// The number of hash slots in a Redis Cluster.
pub const SLOT_COUNT: u16 = 16384;

/// The key's hash slot: CRC16/XMODEM of the key (or of its non-empty `{hash tag}`) mod 16384.
pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) % SLOT_COUNT
}

/// The part of the key that is hashed: the text between the first `{` and the first `}` after
/// it when that text is not empty, else the whole key.
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

/// CRC16/XMODEM: polynomial 0x1021, initial value 0, no reflection.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
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
    fn known_slots() {
        // key            slot   (Redis Cluster specification and `CLUSTER KEYSLOT`)
        let table: &[(&str, u16)] = &[
            ("foo", 12182),
            ("bar", 5061),
            ("hello", 866),
            ("123456789", 0x31C3),
            ("", 0),
            ("{foo}", 12182),
            ("{foo}bar", 12182),
            ("x{foo}y{bar}", 12182),
            ("{user1000}.following", 3443),
            ("{user1000}.followers", 3443),
        ];
        for &(key, slot) in table {
            assert_eq!(key_slot(key.as_bytes()), slot, "key {key:?}");
        }
        assert_eq!(crc16(b"123456789"), 0x31C3);
        // An empty or unclosed tag hashes the whole key.
        for key in ["{}", "{", "}foo{", "{}foo"] {
            assert_eq!(key_slot(key.as_bytes()), crc16(key.as_bytes()) % 16384);
        }
    }
}
