//! SQL text utilities: the engines' dialects, splitting migration scripts and classifying
//! statements.

pub mod dialect;
pub mod split;
