//! XXH32, the 32-bit xxHash that the LZ4 frame format uses for its header,
//! block and content checksums. Written from the xxHash specification
//! (Cyan4973/xxHash `doc/xxhash_spec.md`); one-shot only, as LZ4 frames here
//! are always whole in memory.

const P1: u32 = 0x9E37_79B1;
const P2: u32 = 0x85EB_CA77;
const P3: u32 = 0xC2B2_AE3D;
const P4: u32 = 0x27D4_EB2F;
const P5: u32 = 0x1656_67B1;

fn lane(bytes: &[u8]) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(word)
}

fn round(acc: u32, input: u32) -> u32 {
    acc.wrapping_add(input.wrapping_mul(P2))
        .rotate_left(13)
        .wrapping_mul(P1)
}

/// The XXH32 hash of `data` with `seed`.
pub(super) fn xxh32(data: &[u8], seed: u32) -> u32 {
    let mut rest = data;
    let mut acc = if data.len() >= 16 {
        let mut v = [
            seed.wrapping_add(P1).wrapping_add(P2),
            seed.wrapping_add(P2),
            seed,
            seed.wrapping_sub(P1),
        ];
        let mut stripes = data.chunks_exact(16);
        for stripe in &mut stripes {
            for (i, acc) in v.iter_mut().enumerate() {
                *acc = round(*acc, lane(&stripe[i * 4..]));
            }
        }
        rest = stripes.remainder();
        v[0].rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18))
    } else {
        seed.wrapping_add(P5)
    };
    // The spec adds the length modulo 2^32.
    acc = acc.wrapping_add(data.len() as u32);
    let mut words = rest.chunks_exact(4);
    for word in &mut words {
        acc = acc
            .wrapping_add(lane(word).wrapping_mul(P3))
            .rotate_left(17)
            .wrapping_mul(P4);
    }
    for &byte in words.remainder() {
        acc = acc
            .wrapping_add(u32::from(byte).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    acc ^= acc >> 15;
    acc = acc.wrapping_mul(P2);
    acc ^= acc >> 13;
    acc = acc.wrapping_mul(P3);
    acc ^ (acc >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn known_vectors() {
        assert_eq!(xxh32(b"", 0), 0x02CC_5D05);
    }

    /// lz4_flex's frame encoder writes the XXH32 of the whole content as the
    /// content checksum: an independent implementation to check against, at
    /// lengths that exercise every tail path.
    #[test]
    fn matches_lz4_flex_content_checksums() {
        let data: Vec<u8> = (0..1000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for len in [0, 1, 3, 4, 5, 15, 16, 17, 31, 32, 33, 63, 64, 100, 1000] {
            let info = lz4_flex::frame::FrameInfo::new().content_checksum(true);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
            enc.write_all(&data[..len]).unwrap();
            let frame = enc.finish().unwrap();
            let stored = u32::from_le_bytes(frame[frame.len() - 4..].try_into().unwrap());
            assert_eq!(xxh32(&data[..len], 0), stored, "len {len}");
        }
    }
}
