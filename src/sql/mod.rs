//! SQL text utilities: splitting migration scripts and classifying statements.

pub mod split;
