//! Event ids: UUID version 7 drawn cheaply, and their hyphenated text written without `fmt`.
//!
//! Every request the layer sees gets an event, so its id is drawn on the request's thread.
//! `uuid::Uuid::now_v7` reads the clock again and goes through a process-wide context and a
//! ChaCha generator: about 600 instructions. Here the time is the event's own (already read)
//! and the 74 random bits come from a per-thread wyrand generator seeded once from the
//! operating system, about 30 instructions.
//!
//! What an id must give: uniqueness, since the PostgreSQL sink inserts with `ON CONFLICT (id)
//! DO NOTHING` and the NATS sink de-duplicates on `Nats-Msg-Id`. Two ids collide only when
//! they share the millisecond and all 74 random bits. Ids are not secrets and nothing reads
//! their order within a millisecond.

use std::cell::Cell;

thread_local! {
    /// The generator's state; seeded from the OS on a thread's first id.
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    // `new_v4` takes its bits from the OS generator (through `rand`'s thread generator).
    let bits = uuid::Uuid::new_v4().as_u128();
    (bits as u64) ^ ((bits >> 64) as u64)
}

/// wyrand (Wang Yi's generator, public domain): a 64-bit state, one multiply per output.
fn next(state: &Cell<u64>) -> u64 {
    let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
    state.set(s);
    let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
    ((t >> 64) as u64) ^ (t as u64)
}

/// A UUID version 7 for an event at `unix_ms`: the millisecond in the top 48 bits (a time
/// before 1970 counts as 0), then version, 12 random bits, variant and 62 random bits.
pub(crate) fn new_v7(unix_ms: i64) -> uuid::Uuid {
    let (hi, lo) = STATE.with(|s| (next(s), next(s)));
    let ms = u64::try_from(unix_ms).unwrap_or(0) & 0xFFFF_FFFF_FFFF;
    let hi = (ms << 16) | 0x7000 | (hi & 0x0FFF);
    let lo = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    uuid::Uuid::from_u64_pair(hi, lo)
}

/// Two lower-case hex digits for each byte value.
static HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 0xF]];
        i += 1;
    }
    t
};

/// Where each byte's two digits go in the hyphenated text.
const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/// The id as `uuid`'s lower-case hyphenated text (`8-4-4-4-12` hex digits).
#[inline]
pub(crate) fn hyphenated(id: &uuid::Uuid) -> [u8; 36] {
    let b = id.as_bytes();
    let mut out = [b'-'; 36];
    // Constant positions: the loop unrolls into table loads and stores.
    for (&byte, &at) in b.iter().zip(&AT) {
        let [hi, lo] = HEX_PAIRS[usize::from(byte)];
        out[at] = hi;
        out[at + 1] = lo;
    }
    out
}

/// [`hyphenated`] as text.
pub(crate) fn hyphenated_str<'a>(id: &uuid::Uuid, buf: &'a mut [u8; 36]) -> &'a str {
    *buf = hyphenated(id);
    // Hex digits and hyphens only.
    std::str::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_are_version_7_with_the_event_millisecond_and_rfc_variant() {
        for ms in [0, 1, 1_700_000_000_123, 0xFFFF_FFFF_FFFF] {
            let id = new_v7(ms);
            assert_eq!(id.get_version_num(), 7);
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
            let (secs, nanos) = id.get_timestamp().expect("v7 has a timestamp").to_unix();
            assert_eq!(secs * 1000 + u64::from(nanos) / 1_000_000, ms as u64);
        }
        // Before the epoch: clamped, not wrapped into the far future.
        assert_eq!(new_v7(-5).get_timestamp().unwrap().to_unix(), (0, 0));
    }

    #[test]
    fn ids_in_one_millisecond_do_not_repeat_across_threads() {
        let ids: Vec<Vec<uuid::Uuid>> = (0..4)
            .map(|_| std::thread::spawn(|| (0..50_000).map(|_| new_v7(42)).collect()))
            .map(|t| t.join().unwrap())
            .collect();
        let all: HashSet<_> = ids.iter().flatten().collect();
        assert_eq!(all.len(), 200_000);
        // Each thread seeded on its own: no two threads start the same stream.
        let firsts: HashSet<_> = ids.iter().map(|v| v[0]).collect();
        assert_eq!(firsts.len(), 4);
    }

    #[test]
    fn hyphenated_text_is_uuids_own() {
        let mut buf = [0; 36];
        for id in [
            uuid::Uuid::nil(),
            uuid::Uuid::max(),
            uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210),
            new_v7(1_700_000_000_000),
        ] {
            assert_eq!(hyphenated_str(&id, &mut buf), id.hyphenated().to_string());
        }
    }
}
