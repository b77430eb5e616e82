//! tower-siem (under construction)
pub mod event;
pub mod identify;
pub mod pipeline;
pub mod signature;
pub mod sink;
pub mod engine { mod verdict; pub use verdict::{Action, Verdict}; }
pub use engine::{Action, Verdict};
pub use event::{Event, EventName, Subject};
