//! The strategy templates: embedded defaults, overridable from a directory
//! (the operator-conf ConfigMap mounted at /operator-conf). The ConfigMap is
//! flat, so a template is known by its file name alone, and file names are
//! unique across strategies, as the spec says.

use crate::RenderError;
use std::collections::BTreeMap;
use std::path::Path;

/// The templates pgo ships, by the path under `templates/`.
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "cluster/1/cluster-deployment-1.json",
        include_str!("../../../templates/cluster/1/cluster-deployment-1.json"),
    ),
    (
        "cluster/1/cluster-replica-deployment-1.json",
        include_str!("../../../templates/cluster/1/cluster-replica-deployment-1.json"),
    ),
    (
        "cluster/1/cluster-service-1.json",
        include_str!("../../../templates/cluster/1/cluster-service-1.json"),
    ),
    (
        "cluster/1/cluster-instance-config-1.json",
        include_str!("../../../templates/cluster/1/cluster-instance-config-1.json"),
    ),
    ("pvc.json", include_str!("../../../templates/pvc.json")),
    (
        "backup-job.json",
        include_str!("../../../templates/backup-job.json"),
    ),
    (
        "rmdata-job.json",
        include_str!("../../../templates/rmdata-job.json"),
    ),
    (
        "backrest-job.json",
        include_str!("../../../templates/backrest-job.json"),
    ),
    (
        "backrest-restore-job.json",
        include_str!("../../../templates/backrest-restore-job.json"),
    ),
    ("seed-job.json", include_str!("../../../templates/seed-job.json")),
    (
        "backrest-repo-config.json",
        include_str!("../../../templates/backrest-repo-config.json"),
    ),
    (
        "backrest-repo-deployment.json",
        include_str!("../../../templates/backrest-repo-deployment.json"),
    ),
    (
        "backrest-repo-service.json",
        include_str!("../../../templates/backrest-repo-service.json"),
    ),
    (
        "backrest-pods-service.json",
        include_str!("../../../templates/backrest-pods-service.json"),
    ),
];

/// Templates by file name.
#[derive(Clone, Debug)]
pub struct Templates {
    files: BTreeMap<String, String>,
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

impl Templates {
    pub fn embedded() -> Self {
        Templates {
            files: EMBEDDED
                .iter()
                .map(|(p, t)| (file_name(p).to_string(), t.to_string()))
                .collect(),
        }
    }

    /// The embedded templates with every `*.json` of `dir` over them.
    pub fn with_overrides(dir: &Path) -> Result<Self, RenderError> {
        let mut t = Templates::embedded();
        let entries = std::fs::read_dir(dir).map_err(|e| RenderError::Template {
            file: dir.display().to_string(),
            reason: e.to_string(),
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
                continue;
            };
            if !name.ends_with(".json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|e| RenderError::Template {
                file: path.display().to_string(),
                reason: e.to_string(),
            })?;
            t.files.insert(name, text);
        }
        Ok(t)
    }

    /// The templates of a mounted operator-conf ConfigMap, which must hold
    /// every template pgo ships (it is generated from them): a missing key
    /// is a broken ConfigMap, named, not a silent fall back to a default.
    pub fn from_operator_conf(dir: &Path) -> Result<Self, RenderError> {
        let t = Templates::with_overrides(dir)?;
        for (path, _) in EMBEDDED {
            let name = file_name(path);
            if !dir.join(name).exists() {
                return Err(RenderError::MissingTemplate(format!(
                    "{name} in {}",
                    dir.display()
                )));
            }
        }
        Ok(t)
    }

    pub fn get(&self, name: &str) -> Result<&str, RenderError> {
        self.files
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| RenderError::MissingTemplate(name.to_string()))
    }

    /// Strategies with a complete template set.
    pub fn strategies(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .files
            .keys()
            .filter_map(|n| n.strip_prefix("cluster-deployment-")?.strip_suffix(".json"))
            .filter(|s| {
                [
                    "cluster-replica-deployment",
                    "cluster-service",
                    "cluster-instance-config",
                ]
                .iter()
                .all(|p| self.files.contains_key(&format!("{p}-{s}.json")))
            })
            .map(str::to_string)
            .collect();
        out.sort();
        out
    }

    /// The files, by name, as the operator-conf ConfigMap holds them.
    pub fn files(&self) -> &BTreeMap<String, String> {
        &self.files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_file_names_are_unique_across_strategies() {
        let mut seen = std::collections::BTreeSet::new();
        for (path, _) in EMBEDDED {
            assert!(
                seen.insert(file_name(path)),
                "{path}: its file name is used twice"
            );
        }
        // And the embedded list is every file under templates/.
        fn walk(dir: &Path, out: &mut Vec<String>, base: &Path) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out, base);
                } else {
                    out.push(p.strip_prefix(base).unwrap().to_string_lossy().to_string());
                }
            }
        }
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates");
        let mut on_disk = Vec::new();
        walk(&base, &mut on_disk, &base);
        on_disk.sort();
        let mut embedded: Vec<String> = EMBEDDED.iter().map(|(p, _)| p.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn strategy_one_is_complete() {
        assert_eq!(Templates::embedded().strategies(), ["1"]);
    }
}
