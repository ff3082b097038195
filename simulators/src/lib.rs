//! Simulated device fleets.
