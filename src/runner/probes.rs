//! The runner's live reports: requests in flight, answers, sessions opened and
//! closed. Guards send the closing event on drop, so a request abandoned by a
//! timeout or a cancelled task is never left "in flight" forever.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use crate::outcome::{ProbeEvent, Record};

#[derive(Clone)]
pub struct Probes {
    tx: UnboundedSender<Record>,
    ids: Arc<AtomicU64>,
}

impl Probes {
    pub fn new(tx: UnboundedSender<Record>) -> Probes {
        Probes {
            tx,
            ids: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Sends a record; a closed channel means the agent is stopping.
    pub fn send(&self, record: Record) {
        let _ = self.tx.send(record);
    }

    fn event(&self, event: ProbeEvent) {
        self.send(Record::Probe(event));
    }

    /// Reports a request sent now; it counts as in flight until the guard drops.
    pub fn sent(&self, target: &str, freeze_after: Duration) -> InflightGuard {
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        self.event(ProbeEvent::Sent {
            target: target.to_string(),
            id,
            at: Instant::now(),
            freeze_after,
        });
        InflightGuard {
            probes: self.clone(),
            target: target.to_string(),
            id,
        }
    }

    /// Reports that `target` answered (response headers arrived) just now.
    /// Reports an idempotent request sent again on a new connection.
    pub fn resent(&self, target: &str) {
        self.event(ProbeEvent::Resent {
            target: target.to_string(),
        });
    }

    pub fn answered(&self, target: &str) {
        self.event(ProbeEvent::Answered {
            target: target.to_string(),
            at: Instant::now(),
        });
    }

    /// Reports a session logged in; it counts as live until the guard drops.
    pub fn session_opened(&self, target: &str) -> SessionGuard {
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        self.event(ProbeEvent::SessionOpened {
            target: target.to_string(),
            id,
            at: Instant::now(),
        });
        SessionGuard {
            probes: self.clone(),
            target: target.to_string(),
            id,
        }
    }
}

pub struct InflightGuard {
    probes: Probes,
    target: String,
    id: u64,
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.probes.event(ProbeEvent::Ended {
            target: std::mem::take(&mut self.target),
            id: self.id,
        });
    }
}

pub struct SessionGuard {
    probes: Probes,
    target: String,
    id: u64,
}

impl SessionGuard {
    /// Reports whether the session is known to be alive now.
    pub fn known(&self, alive: bool) {
        self.probes
            .event(ProbeEvent::SessionKnown { id: self.id, alive });
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.probes.event(ProbeEvent::SessionClosed {
            target: std::mem::take(&mut self.target),
            id: self.id,
        });
    }
}
