//! The ftx protocol (specification to be completed).

pub mod error;
pub mod frame;
pub mod limits;
pub mod message;
pub mod path;
pub mod session;
