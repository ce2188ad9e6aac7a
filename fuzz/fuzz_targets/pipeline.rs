//! Fuzz target: parse -> relabel -> aggregate -> render with the series cache, for each bundled
//! configuration (the first input byte picks one).
#![no_main]

use testkit::checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_pipeline(data));
