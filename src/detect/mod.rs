//! Detection: pure functions and state machines that turn records and the
//! current time into verdicts — freeze episodes, which side a browser step
//! froze on, session-age bands and survival, the agent's own stalls and the
//! records they spoil. No I/O here, so every rule is tested with a paused
//! clock.

pub mod freeze;
pub mod kept;
pub mod login_page;
pub mod page;
pub mod sessions;
pub mod stall;
pub mod survival;

pub use freeze::{FreezeChange, FreezeDetector};
pub use sessions::AgeBands;
pub use stall::{Stall, StallSet};
pub use survival::SurvivalStep;
