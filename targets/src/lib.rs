//! Board support (thin for now).
