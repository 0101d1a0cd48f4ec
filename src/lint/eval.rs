//! The labelled set.
