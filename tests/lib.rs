//! Cross-crate integration tests for genae live in `integration/` (one test binary, run by
//! `cargo test -p genae-tests`). This library is empty.
