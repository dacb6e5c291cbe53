//! The truth log: every fault the sim injected or drew at random, with real
//! timestamps, so tests can compare what the agent detected with what really
//! happened. Bounded: the oldest events are dropped past `CAPACITY`.

use std::collections::VecDeque;

use serde::Serialize;

use super::profile::SystemId;

const CAPACITY: usize = 10_000;

/// Whether an event came through the control API or from the profile's fault
/// model (random draws, idle timeouts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Injected,
    Random,
}

#[derive(Clone, Debug, Serialize)]
pub struct SessionAge {
    pub user: String,
    pub age_sim_seconds: f64,
    pub age_real_seconds: f64,
}

/// One event as stored. `ends_at` may lie in the future (a freeze whose length
/// is known up front); the JSON shows `ended_at: null` until it has passed.
#[derive(Clone, Debug)]
pub struct TruthEvent {
    pub id: u64,
    pub kind: &'static str,
    pub source: Source,
    pub system: SystemId,
    pub started_at: f64,
    pub ends_at: Option<f64>,
    pub sessions: Option<Vec<SessionAge>>,
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl TruthEvent {
    pub fn new(kind: &'static str, source: Source, system: SystemId, started_at: f64) -> Self {
        TruthEvent {
            id: 0,
            kind,
            source,
            system,
            started_at,
            ends_at: None,
            sessions: None,
            extra: serde_json::Map::new(),
        }
    }

    /// An event with no duration (a setting changed, a session ended).
    pub fn instant(mut self) -> Self {
        self.ends_at = Some(self.started_at);
        self
    }

    pub fn ends(mut self, at: f64) -> Self {
        self.ends_at = Some(at);
        self
    }

    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(key.to_string(), value.into());
        self
    }

    pub fn sessions(mut self, sessions: Vec<SessionAge>) -> Self {
        self.sessions = Some(sessions);
        self
    }

    fn to_json(&self, now: f64) -> serde_json::Value {
        let ended = self.ends_at.filter(|&e| e <= now);
        let mut m = serde_json::Map::new();
        m.insert("id".into(), self.id.into());
        m.insert("kind".into(), self.kind.into());
        m.insert(
            "source".into(),
            serde_json::to_value(self.source).unwrap_or_default(),
        );
        m.insert("system".into(), self.system.as_str().into());
        m.insert("started_at".into(), self.started_at.into());
        m.insert("ended_at".into(), ended.into());
        m.insert(
            "duration_seconds".into(),
            ended.map(|e| e - self.started_at).into(),
        );
        if let Some(s) = &self.sessions {
            m.insert(
                "sessions".into(),
                serde_json::to_value(s).unwrap_or_default(),
            );
        }
        for (k, v) in &self.extra {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        serde_json::Value::Object(m)
    }
}

#[derive(Debug, Default)]
pub struct TruthLog {
    events: VecDeque<TruthEvent>,
    next_id: u64,
}

impl TruthLog {
    /// Appends and returns the event's id (ids start at 1 and only grow).
    pub fn push(&mut self, mut event: TruthEvent) -> u64 {
        self.next_id += 1;
        event.id = self.next_id;
        if self.events.len() >= CAPACITY {
            self.events.pop_front();
        }
        self.events.push_back(event);
        self.next_id
    }

    /// The event with this id, if it is still held.
    pub fn get_mut(&mut self, id: u64) -> Option<&mut TruthEvent> {
        let first = self.events.front()?.id;
        let idx = usize::try_from(id.checked_sub(first)?).ok()?;
        self.events.get_mut(idx).filter(|e| e.id == id)
    }

    /// Events with an id above `since` (0: all held), as of `now`.
    pub fn to_json(&self, now: f64, since: u64) -> serde_json::Value {
        let events: Vec<_> = self
            .events
            .iter()
            .filter(|e| e.id > since)
            .map(|e| e.to_json(now))
            .collect();
        serde_json::json!({ "events": events })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_addressable() {
        let mut log = TruthLog::default();
        for i in 0..(CAPACITY + 5) {
            log.push(TruthEvent::new(
                "freeze",
                Source::Random,
                SystemId::Ics,
                i as f64,
            ));
        }
        assert_eq!(log.events.len(), CAPACITY);
        assert!(log.get_mut(1).is_none());
        let last = (CAPACITY + 5) as u64;
        assert_eq!(log.get_mut(last).map(|e| e.id), Some(last));
    }

    #[test]
    fn open_until_end_passes() {
        let mut log = TruthLog::default();
        log.push(TruthEvent::new("freeze", Source::Injected, SystemId::Ics, 10.0).ends(15.0));
        let j = log.to_json(12.0, 0);
        assert!(j["events"][0]["ended_at"].is_null());
        let j = log.to_json(16.0, 0);
        assert_eq!(j["events"][0]["duration_seconds"], 5.0);
    }
}
