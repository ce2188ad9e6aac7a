//! Fuzz target: the relabel configuration loader (YAML, validation, regex compilation) and the
//! loaded programs applied to a fixed exposition.
#![no_main]

use testkit::checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_relabel_config(data));
