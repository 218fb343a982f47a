//! The `ferrite` command-line tool's library half: the subcommands and the
//! `.npy` I/O they share, also used by the end-to-end tests in `tests/`.

pub mod commands;
pub mod detect;
pub mod npy;
