//! Normalization, event-time windows, commune rollups and line-protocol encoding.
