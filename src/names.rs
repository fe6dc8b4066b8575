//! Names of skills, teams and agents, numbered for the engine. The numbering is persisted
//! in the store, so a snapshot's bitsets and ids mean the same thing after a restart.

use switchboard_core::{AgentId, SkillId, SkillSet, TeamId, TeamSet};
use switchboard_store::NameRow;

use crate::config::Names;

/// The three numberings, and the rows not yet persisted.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub skills: Names,
    pub teams: Names,
    pub agents: Names,
    pending: Vec<NameRow>,
}

/// A name that cannot be numbered: the engine's limit is reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {name:?} would be one more than the {limit} supported")]
pub struct Full {
    pub kind: &'static str,
    pub name: String,
    pub limit: usize,
}

impl Registry {
    /// The numbering read back from the store.
    pub fn from_rows(rows: &[NameRow]) -> Registry {
        let mut r = Registry::default();
        for row in rows {
            let names = match row.kind.as_str() {
                "skill" => &mut r.skills,
                "team" => &mut r.teams,
                "agent" => &mut r.agents,
                _ => continue,
            };
            names.insert_at(&row.name, row.id as usize);
        }
        r
    }

    /// Rows for names numbered since the last call, to persist with the next batch.
    pub fn take_pending(&mut self) -> Vec<NameRow> {
        std::mem::take(&mut self.pending)
    }

    fn number(&mut self, kind: &'static str, name: &str, limit: usize) -> Result<usize, Full> {
        let names = match kind {
            "skill" => &mut self.skills,
            "team" => &mut self.teams,
            _ => &mut self.agents,
        };
        let known = names.get(name);
        let id = names.intern(name, limit).ok_or_else(|| Full {
            kind,
            name: name.to_owned(),
            limit,
        })?;
        if known.is_none() {
            self.pending.push(NameRow {
                kind: kind.to_owned(),
                name: name.to_owned(),
                id: id as i64,
            });
        }
        Ok(id)
    }

    /// The number of a skill, numbering it if new.
    pub fn skill(&mut self, name: &str) -> Result<SkillId, Full> {
        self.number("skill", name, SkillId::LIMIT)
            .map(|i| SkillId(i as u8))
    }

    /// A set of skills by name.
    pub fn skill_set<'a>(
        &mut self,
        names: impl IntoIterator<Item = &'a String>,
    ) -> Result<SkillSet, Full> {
        let mut ids = Vec::new();
        for n in names {
            ids.push(self.skill(n)?);
        }
        Ok(SkillSet::of(ids))
    }

    /// A set of teams by name.
    pub fn team_set<'a>(
        &mut self,
        names: impl IntoIterator<Item = &'a String>,
    ) -> Result<TeamSet, Full> {
        let mut ids = Vec::new();
        for n in names {
            ids.push(TeamId(self.number("team", n, TeamId::LIMIT)? as u8));
        }
        Ok(TeamSet::of(ids))
    }

    /// The number of an agent, numbering it if new.
    pub fn agent(&mut self, name: &str) -> Result<AgentId, Full> {
        self.number("agent", name, u32::MAX as usize)
            .map(|i| AgentId(i as u32))
    }

    /// The name of an agent number.
    pub fn agent_name(&self, id: AgentId) -> Option<&str> {
        self.agents.name(id.0 as usize)
    }

    /// Skill names of a set, in number order.
    pub fn skill_names(&self, set: SkillSet) -> Vec<String> {
        set.iter()
            .filter_map(|s| self.skills.name(s.0 as usize).map(str::to_owned))
            .collect()
    }

    /// Team names of a set, in number order.
    pub fn team_names(&self, set: TeamSet) -> Vec<String> {
        (0..TeamId::LIMIT as u8)
            .filter(|t| set.contains(TeamId(*t)))
            .filter_map(|t| self.teams.name(t as usize).map(str::to_owned))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_stable_and_only_new_names_are_pending() {
        let mut r = Registry::from_rows(&[NameRow {
            kind: "skill".into(),
            name: "billing".into(),
            id: 3,
        }]);
        assert_eq!(r.skill("billing").unwrap(), SkillId(3));
        assert!(r.take_pending().is_empty());
        let german = r.skill("german").unwrap();
        assert_ne!(german, SkillId(3));
        assert_eq!(r.take_pending().len(), 1);
        assert_eq!(r.skill_names(SkillSet::of([german, SkillId(3)])).len(), 2);
    }

    #[test]
    fn the_skill_limit_is_an_error() {
        let mut r = Registry::default();
        for i in 0..SkillId::LIMIT {
            r.skill(&format!("s{i}")).unwrap();
        }
        let err = r.skill("one-too-many").unwrap_err();
        assert_eq!(err.limit, SkillId::LIMIT);
    }
}
