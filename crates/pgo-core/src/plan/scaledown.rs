//! A scaledown, from the note `pgo scaledown` writes on the cluster with the
//! lowered count. Where each leaving replica is follows from what is stored,
//! so there is no step to record:
//!
//! - **noted**: its Pgreplica is live. It is marked (if its data goes) and
//!   deleted.
//! - **leaving**: its Pgreplica is deleted and held by its finalizer. The
//!   steady plan stops it, drops its slot and releases it.
//! - **gone**: its Pgreplica is no more. The note is dropped.

use super::action::{Action, Next, Plan};
use super::{PlanError, Stored};
use pgo_api::labels::{self, Scaledown};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Noted,
    Leaving,
    Gone,
}

/// One leaving replica that needs something done.
#[derive(Clone, Debug, PartialEq)]
pub struct Move {
    pub replica: String,
    pub data: Scaledown,
    pub state: State,
    /// Already marked for its data to go.
    pub marked: bool,
}

/// The noted and gone replicas; leaving ones are the steady plan's.
pub fn moves(stored: &Stored<'_>) -> Result<Vec<Move>, PlanError> {
    let mut moves = Vec::new();
    for (replica, data) in labels::scaledowns(stored.cluster.metadata.annotations.as_ref()) {
        let data = data.map_err(|why| PlanError {
            what: format!("the scaledown of replica {replica}"),
            why,
        })?;
        let found = stored.replica(&replica);
        let state = match found {
            None => State::Gone,
            Some(r) if r.metadata.deletion_timestamp.is_some() => State::Leaving,
            Some(_) => State::Noted,
        };
        if state != State::Leaving {
            moves.push(Move {
                marked: found.is_some_and(|r| super::wants_data_deleted(&r.metadata.annotations)),
                replica,
                data,
                state,
            });
        }
    }
    Ok(moves)
}

pub fn plan(moves: &[Move]) -> Plan {
    let mut actions = Vec::new();
    let mut gone = Vec::new();
    for m in moves {
        match m.state {
            State::Noted => {
                if m.data == Scaledown::DeleteData && !m.marked {
                    actions.push(Action::MarkDeleteData(m.replica.clone()));
                }
                actions.push(Action::DeleteReplica(m.replica.clone()));
            }
            State::Gone => gone.push(m.replica.clone()),
            State::Leaving => {}
        }
    }
    if !gone.is_empty() {
        actions.push(Action::DropScaledownNotes(gone));
    }
    Plan::new(actions, Next::NOW)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn noted_replicas_are_marked_and_deleted_gone_ones_lose_their_note() {
        let mut c = cluster("db");
        c.metadata.annotations = Some(
            [
                labels::scaledown_note("db-a", true),
                labels::scaledown_note("db-b", false),
                labels::scaledown_note("db-c", true),
                labels::scaledown_note("db-d", false),
            ]
            .into_iter()
            .collect(),
        );
        let mut leaving = replica("db", "db-c");
        leaving.metadata.deletion_timestamp = Some(deleted_at());
        let mut marked = replica("db", "db-a");
        marked.metadata.annotations = Some([(labels::DELETE_DATA.into(), "true".into())].into());
        let unmarked = replica("db", "db-a");
        for (case, a, want) in [
            (
                "not marked yet",
                unmarked,
                vec![
                    Action::MarkDeleteData("db-a".into()),
                    Action::DeleteReplica("db-a".into()),
                    Action::DeleteReplica("db-b".into()),
                    Action::DropScaledownNotes(vec!["db-d".into()]),
                ],
            ),
            (
                "marked by a pass that stopped before the delete",
                marked,
                vec![
                    Action::DeleteReplica("db-a".into()),
                    Action::DeleteReplica("db-b".into()),
                    Action::DropScaledownNotes(vec!["db-d".into()]),
                ],
            ),
        ] {
            let replicas = [a, replica("db", "db-b"), leaving.clone()];
            let stored = Stored {
                cluster: &c,
                replicas: &replicas,
                failover: None,
                restore: None,
            };
            let moves = moves(&stored).unwrap();
            assert!(
                moves.iter().all(|m| m.replica != "db-c"),
                "{case}: leaving is not a move"
            );
            assert_eq!(plan(&moves).actions, want, "{case}");
        }
    }
}
