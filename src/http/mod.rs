//! What every slice's HTTP code shares: extractors and how their failures are answered.

pub mod extract;
