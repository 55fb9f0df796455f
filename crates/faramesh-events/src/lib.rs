//! The live event stream.
