//! The one integration test binary: real HTTP over loopback sockets between
//! the agent and the simulator, both started in-process on port 0.

mod alerts;
mod board_words;
mod browser;
mod central_report;
mod central_store;
mod config_rules;
mod deploy;
mod docs;
mod fleet_report;
mod foundation;
mod freezes;
mod harness;
mod history;
mod hostile;
mod journal;
mod layers;
mod lifecycle;
mod logouts;
mod machine_rules;
mod multisite;
mod own_inputs;
mod phases;
mod prometheus;
mod remote_write;
mod report;
mod report_inputs;
mod report_pdf;
mod report_scale;
mod sessions;
mod stalls;
mod status_page;
mod time_lost;
