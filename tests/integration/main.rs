//! The one integration test binary: real HTTP over loopback sockets between
//! the agent and the simulator, both started in-process on port 0.

mod foundation;
mod freezes;
mod harness;
mod logouts;
