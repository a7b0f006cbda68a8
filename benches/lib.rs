//! Bench helpers (data generators) shared by the criterion benches under `benches/benches/`.
