//! Ferrite converter.
