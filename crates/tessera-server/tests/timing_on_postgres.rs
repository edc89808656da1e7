//! The tests of `tests/timing.rs` once more, each server on a PostgreSQL
//! database of its own (the harness reads this binary's name). Without
//! `TESSERA_TEST_POSTGRES_URL` it says so and runs nothing.

#[path = "timing.rs"]
mod suite;
