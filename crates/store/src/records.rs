//! Rows written and read by the store. JSON columns are passed as strings: the store never
//! looks inside them.

/// A name given a small number (skills, teams, agents), stable across restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRow {
    /// `skill`, `team` or `agent`.
    pub kind: String,
    pub name: String,
    pub id: i64,
}

/// A contact's row: inserted on arrival, updated on every change, kept when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRow {
    /// The engine's contact id.
    pub seq: i64,
    /// The public id.
    pub id: String,
    pub conversation: String,
    pub customer: String,
    pub channel: String,
    pub queue: String,
    pub summary: String,
    /// JSON object.
    pub attributes: String,
    /// waiting, offered, assigned, wrap_up, closed, abandoned.
    pub state: String,
    /// Holder while open; last owner once ended.
    pub agent: Option<i64>,
    pub arrived_at: i64,
    /// The engine's snapshot of the contact while it is open (JSON); `None` once ended.
    pub snapshot: Option<String>,
    pub ended_at: Option<i64>,
    pub end_reason: Option<String>,
    pub updated_at: i64,
}

/// What became of one consumed message: the deduplication record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    pub id: String,
    pub contact_seq: Option<i64>,
    /// `contact` (created one), `follow_up` (joined an open one), `dead_lettered`.
    pub outcome: String,
    pub reason: Option<String>,
    pub received_at: i64,
    pub processed_at: i64,
}

/// An agent's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRow {
    pub id: i64,
    pub name: String,
    /// The engine's snapshot of the agent (JSON).
    pub snapshot: String,
    pub updated_at: i64,
}

/// The previous owner of a customer's last conversation, for sticky routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRow {
    pub customer: String,
    pub agent: i64,
    pub closed_at: i64,
}

/// One entry of the append-only audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Assigned by the store; ignored on write.
    pub seq: i64,
    pub at: i64,
    pub contact_seq: Option<i64>,
    pub agent: Option<i64>,
    /// The decision or event: `offered`, `assigned`, `closed`, `follow_up`, ...
    pub kind: String,
    /// JSON with the details and the reason.
    pub detail: String,
}

/// Everything one router step writes, in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub names: Vec<NameRow>,
    pub messages: Vec<MessageRow>,
    pub contacts: Vec<ContactRow>,
    pub agents: Vec<AgentRow>,
    pub owners: Vec<OwnerRow>,
    pub audit: Vec<AuditRow>,
    /// Key-value settings (the next offer id, the next contact number).
    pub meta: Vec<(String, String)>,
    /// Agent API settings by agent name (JSON).
    pub agent_settings: Vec<(String, String)>,
}

impl Batch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
            && self.messages.is_empty()
            && self.contacts.is_empty()
            && self.agents.is_empty()
            && self.owners.is_empty()
            && self.audit.is_empty()
            && self.meta.is_empty()
            && self.agent_settings.is_empty()
    }
}

/// What the router restores from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub names: Vec<NameRow>,
    pub agents: Vec<AgentRow>,
    /// Open contacts (those with a snapshot), by seq.
    pub contacts: Vec<ContactRow>,
    pub owners: Vec<OwnerRow>,
    pub meta: Vec<(String, String)>,
    /// Agent API settings by agent name (JSON).
    pub agent_settings: Vec<(String, String)>,
    /// The highest contact seq ever used (open or ended).
    pub max_seq: i64,
}

impl State {
    /// A meta value.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.meta
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A contact as the API shows it.
pub type ContactRecord = ContactRow;

/// Counters that must reconcile: every processed message is a contact, a follow-up or
/// dead-lettered; every contact is in exactly one state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// (state, number of contacts).
    pub contacts: Vec<(String, i64)>,
    /// (outcome, number of messages).
    pub messages: Vec<(String, i64)>,
}

impl Counts {
    /// Contacts in `state`.
    pub fn contacts_in(&self, state: &str) -> i64 {
        self.contacts
            .iter()
            .find(|(s, _)| s == state)
            .map_or(0, |(_, n)| *n)
    }

    /// Messages with `outcome`.
    pub fn messages_with(&self, outcome: &str) -> i64 {
        self.messages
            .iter()
            .find(|(s, _)| s == outcome)
            .map_or(0, |(_, n)| *n)
    }
}
