//! Which slot a key belongs to, computed as the server does, so that ops recorded without a
//! `slot` field (or imported from other tools) can still be placed. Two schemes exist: Redis
//! Cluster's 16384 slots (CRC16, non-empty `{tag}`) and Codis/PikiwiDB's 1024 (CRC32, any `{tag}`,
//! the empty one included). The workloads crate routes with these same functions, and the
//! real-server tests compare them with `CLUSTER KEYSLOT` and `SLOTSHASHKEY`.

/// The number of hash slots in a Redis Cluster.
pub const SLOT_COUNT: u16 = 16384;

/// The key's hash slot: CRC16/XMODEM of the key (or of its non-empty `{hash tag}`) mod 16384.
pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key, false)) % SLOT_COUNT
}

/// The part of the key that is hashed: the text between the first `{` and the first `}` after
/// it; when there is none, or it is empty and `empty_counts` is false (Redis Cluster's rule),
/// the whole key.
fn hash_tag(key: &[u8], empty_counts: bool) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else {
        return key;
    };
    let rest = &key[open + 1..];
    match rest.iter().position(|&b| b == b'}') {
        Some(close) if close > 0 || empty_counts => &rest[..close],
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

/// The number of slots of a Codis-style deployment (PikiwiDB's `default-slot-num`).
pub const CODIS_SLOT_COUNT: u16 = 1024;

/// The key's Codis/PikiwiDB slot: CRC32 (zlib's) of the key, or of the text between its first `{`
/// and the first `}` after it, even when that text is empty (so `{}x` is slot 0), mod 1024.
pub fn codis_slot(key: &[u8]) -> u16 {
    (crc32(hash_tag(key, true)) % u32::from(CODIS_SLOT_COUNT)) as u16
}

/// CRC-32 (IEEE 802.3, reflected, as zlib's `crc32`): polynomial 0xEDB88320.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc: u32 = !0;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A slot scheme: how many slots there are and which one a key hashes to, so that routing,
/// placement checks and reports work the same for Redis Cluster and Codis-style deployments.
pub trait SlotFunction: Send + Sync {
    /// The number of slots.
    fn slot_count(&self) -> u16;
    /// The key's slot, in `0..slot_count()`.
    fn slot(&self, key: &[u8]) -> u16;
    /// The name written in history headers and reports.
    fn name(&self) -> &'static str;
}

/// Redis Cluster's scheme: CRC16 mod 16384, non-empty hash tags.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClusterSlots;

impl SlotFunction for ClusterSlots {
    fn slot_count(&self) -> u16 {
        SLOT_COUNT
    }
    fn slot(&self, key: &[u8]) -> u16 {
        key_slot(key)
    }
    fn name(&self) -> &'static str {
        "crc16-16384"
    }
}

/// Codis's and PikiwiDB's scheme: CRC32 mod 1024, any hash tag.
#[derive(Debug, Clone, Copy, Default)]
pub struct CodisSlots;

impl SlotFunction for CodisSlots {
    fn slot_count(&self) -> u16 {
        CODIS_SLOT_COUNT
    }
    fn slot(&self, key: &[u8]) -> u16 {
        codis_slot(key)
    }
    fn name(&self) -> &'static str {
        "crc32-1024"
    }
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

    #[test]
    fn codis_slots() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        // An empty tag hashes the empty string: slot 0, unlike Redis Cluster.
        assert_eq!(codis_slot(b"{}anything"), 0);
        assert_eq!(codis_slot(b"x{abc}y"), codis_slot(b"abc"));
        // An unclosed tag hashes the whole key.
        assert_eq!(codis_slot(b"{abc"), (crc32(b"{abc") % 1024) as u16);
        assert_eq!(codis_slot(b"123456789"), (0xCBF4_3926u32 % 1024) as u16);
        // Case matters: the server hashes the key as given.
        assert_ne!(codis_slot(b"Foo"), codis_slot(b"foo"));
        let schemes: [&dyn SlotFunction; 2] = [&ClusterSlots, &CodisSlots];
        for scheme in schemes {
            for key in ["a", "{t}b", "Mixed:Case"] {
                assert!(scheme.slot(key.as_bytes()) < scheme.slot_count());
            }
        }
    }
}
