//! What a watch-fed cache holds of one kind: each object by name with the
//! resourceVersion it was seen at, moving only forward, and the names
//! deleted lately so that a late answer to a write does not bring one back.
//! Shared by the store's cache and the Kubernetes platform's.

use std::collections::{BTreeMap, HashMap, VecDeque};

/// Names remembered as deleted; the oldest is forgotten past this.
const TOMBSTONES: usize = 4096;

pub struct Kept<T> {
    objects: BTreeMap<String, (u64, T)>,
    tombstones: HashMap<String, u64>,
    buried: VecDeque<String>,
}

impl<T> Default for Kept<T> {
    fn default() -> Self {
        Kept {
            objects: BTreeMap::new(),
            tombstones: HashMap::new(),
            buried: VecDeque::new(),
        }
    }
}

impl<T> Kept<T> {
    /// Keeps `object` seen at `version`, unless what is kept is as new or
    /// the name was deleted since.
    pub fn keep(&mut self, name: String, version: u64, object: T) {
        if self.tombstones.get(&name).is_some_and(|&v| v >= version)
            || self.objects.get(&name).is_some_and(|(v, _)| *v >= version)
        {
            return;
        }
        self.objects.insert(name, (version, object));
    }

    /// `name` was deleted at `version`.
    pub fn forget(&mut self, name: &str, version: u64) {
        if self.objects.get(name).is_some_and(|(v, _)| *v <= version) {
            self.objects.remove(name);
        }
        if self.tombstones.insert(name.to_string(), version).is_none() {
            self.buried.push_back(name.to_string());
        }
        while self.buried.len() > TOMBSTONES {
            if let Some(old) = self.buried.pop_front() {
                self.tombstones.remove(&old);
            }
        }
    }

    /// `name` was deleted by this process, at a version it does not know:
    /// the one it kept.
    pub fn deleted(&mut self, name: &str) {
        let version = self.version(name).unwrap_or(0);
        self.forget(name, version);
    }

    /// Everything, as a fresh list says; what was deleted before it is moot.
    pub fn relist(&mut self, items: impl IntoIterator<Item = (String, u64, T)>) {
        self.objects = items
            .into_iter()
            .map(|(name, version, object)| (name, (version, object)))
            .collect();
        self.tombstones.clear();
        self.buried.clear();
    }

    pub fn get(&self, name: &str) -> Option<&T> {
        self.objects.get(name).map(|(_, o)| o)
    }

    pub fn version(&self, name: &str) -> Option<u64> {
        self.objects.get(name).map(|(v, _)| *v)
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.objects.values().map(|(_, o)| o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_kept_only_moves_forward_and_a_deleted_name_stays_deleted() {
        // (what happens, the version kept after it; None: not kept)
        enum Step {
            Keep(u64),
            Forget(u64),
        }
        let cases: [(&str, &[Step], Option<u64>); 5] = [
            ("a newer write", &[Step::Keep(2), Step::Keep(3)], Some(3)),
            (
                "an older answer after a newer event",
                &[Step::Keep(5), Step::Keep(4)],
                Some(5),
            ),
            (
                "a late answer after the delete",
                &[Step::Keep(2), Step::Forget(6), Step::Keep(5)],
                None,
            ),
            (
                "made again after the delete",
                &[Step::Keep(2), Step::Forget(6), Step::Keep(7)],
                Some(7),
            ),
            (
                "a delete older than what is kept",
                &[Step::Keep(8), Step::Forget(6)],
                Some(8),
            ),
        ];
        for (what, steps, kept) in cases {
            let mut state = Kept::default();
            for step in steps {
                match step {
                    Step::Keep(v) => state.keep("a".into(), *v, ()),
                    Step::Forget(v) => state.forget("a", *v),
                }
            }
            assert_eq!(state.version("a"), kept, "{what}");
        }
    }
}
