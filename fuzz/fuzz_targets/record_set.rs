#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    klamm::protocol::fuzz::run("record_set", data);
});
