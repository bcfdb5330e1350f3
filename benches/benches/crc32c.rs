//! CRC-32C over 1 MiB: the `crc32c` crate (which klamm uses for v2 batch
//! CRCs; it picks the SSE 4.2 `crc32` instruction at run time on x86-64)
//! against a plain table-driven software CRC-32C, to show the hardware path
//! is the one taken.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Reflected CRC-32C (Castagnoli) polynomial.
const POLY: u32 = 0x82F6_3B78;

const fn make_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static TABLE: [u32; 256] = make_table();

/// Byte-at-a-time table CRC-32C.
fn crc32c_table(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// Bit-at-a-time CRC-32C (the textbook definition).
fn crc32c_bitwise(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn bench_crc(c: &mut Criterion) {
    let data: Vec<u8> = (0..1usize << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    // Standard check value, then agreement on the bench data.
    assert_eq!(crc32c_table(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c_bitwise(b"123456789"), 0xE306_9283);
    let hw = crc32c::crc32c(&data);
    assert_eq!(hw, crc32c_table(&data));
    assert_eq!(hw, crc32c_bitwise(&data));
    #[cfg(target_arch = "x86_64")]
    eprintln!(
        "x86-64 sse4.2 detected: {}",
        std::is_x86_feature_detected!("sse4.2")
    );

    let mut g = c.benchmark_group("crc32c/1MiB");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("crc32c_crate", |b| {
        b.iter(|| crc32c::crc32c(black_box(&data)))
    });
    g.bench_function("software_table", |b| {
        b.iter(|| crc32c_table(black_box(&data)))
    });
    g.bench_function("software_bitwise", |b| {
        b.iter(|| crc32c_bitwise(black_box(&data)))
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_crc
}
criterion_main!(benches);
