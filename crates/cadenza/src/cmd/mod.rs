//! One module per subcommand.

pub mod client;
pub mod demo;
pub mod embed;
pub mod models;
pub mod rebuild;
pub mod replay;
pub mod up;
