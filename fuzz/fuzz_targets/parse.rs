//! Fuzz target: the exposition parser (chunking must not matter; what parses renders and parses
//! back to the same series).
#![no_main]

use testkit::checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_parse(data));
