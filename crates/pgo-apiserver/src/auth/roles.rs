//! Roles and their permissions (the pgorole file).

use super::AuthFileError;
use std::collections::BTreeMap;
use std::path::Path;

macro_rules! permissions {
    ($($p:ident),* $(,)?) => {
        /// What a role may do, named as in the original's pgorole file.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Permission { $($p),* }
        impl Permission {
            pub const ALL: &[Permission] = &[$(Permission::$p),*];
            pub fn name(self) -> &'static str {
                match self { $(Permission::$p => stringify!($p)),* }
            }
        }
    };
}

permissions!(
    CreateCluster,
    DeleteCluster,
    ShowCluster,
    ShowSecrets,
    ScaleCluster,
    Failover,
    TestCluster,
    DfCluster,
    Status,
    Version,
    ShowMetrics,
    CreateBackup,
    ShowBackup,
    DeleteBackup,
    Restore,
    CreateSchedule,
    ShowSchedule,
    DeleteSchedule,
    ShowPVC,
    CreateConfigMap,
    ShowConfigMap,
    DeleteConfigMap,
    Restart,
    // 3.4's names for what later issues build (custom configs, users,
    // policies, labels, upgrades, workflows) and for what pgo does not
    // have (pgbouncer, pgpool, ingest, load): a 3.4 pgorole is read as
    // it is, and each gates its verb once there is one.
    Reload,
    ShowConfig,
    Label,
    Load,
    CreatePolicy,
    DeletePolicy,
    ShowPolicy,
    ApplyPolicy,
    ShowWorkflow,
    CreateUpgrade,
    ShowUpgrade,
    DeleteUpgrade,
    CreateUser,
    DeleteUser,
    User,
    CreatePgbouncer,
    DeletePgbouncer,
    CreatePgpool,
    DeletePgpool,
    CreateIngest,
    ShowIngest,
    DeleteIngest,
);

/// 3.4's name for [`Permission::Failover`].
const FAILOVER_3_4: &str = "CreateFailover";

impl Permission {
    pub fn parse(s: &str) -> Option<Permission> {
        if s == FAILOVER_3_4 {
            return Some(Permission::Failover);
        }
        Permission::ALL.iter().copied().find(|p| p.name() == s)
    }
}

/// The pgorole file written on first start.
pub fn default_roles_file() -> String {
    // '*', not today's list: permissions added by a later pgo reach the
    // admin role without editing the file.
    "# role: Permission, Permission, ...   ('*' is every permission)\npgoadmin: *\npgoreader: ShowCluster, TestCluster, DfCluster, Status, Version, ShowMetrics, ShowBackup, ShowSchedule, ShowPVC, ShowConfigMap, ShowConfig\n".to_string()
}

#[derive(Clone, Debug, Default)]
pub struct Roles {
    roles: BTreeMap<String, Vec<Permission>>,
}

impl Roles {
    pub fn read(path: &Path) -> Result<Roles, AuthFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| AuthFileError {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Roles::parse(&text).map_err(|reason| AuthFileError {
            path: path.display().to_string(),
            reason,
        })
    }

    pub fn parse(text: &str) -> Result<Roles, String> {
        let mut roles = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let n = i + 1;
            let (role, perms) = line
                .split_once(':')
                .ok_or_else(|| format!("line {n}: expected 'role: Permission, ...'"))?;
            let role = role.trim();
            if role.is_empty() {
                return Err(format!("line {n}: the role name is empty"));
            }
            let mut list = Vec::new();
            for p in perms.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                if p == "*" {
                    list.extend_from_slice(Permission::ALL);
                } else {
                    list.push(
                        Permission::parse(p).ok_or_else(|| format!("line {n}: unknown permission {p:?}"))?,
                    );
                }
            }
            roles.insert(role.to_string(), list);
        }
        Ok(Roles { roles })
    }

    pub fn permissions(&self, role: &str) -> Option<&Vec<Permission>> {
        self.roles.get(role)
    }

    pub fn has(&self, role: &str) -> bool {
        self.roles.contains_key(role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_file_gives_admin_everything_and_reader_only_shows() {
        let roles = Roles::parse(&default_roles_file()).unwrap();
        assert_eq!(
            roles.permissions("pgoadmin").unwrap().len(),
            Permission::ALL.len()
        );
        let reader = roles.permissions("pgoreader").unwrap();
        assert!(reader.contains(&Permission::ShowCluster));
        assert!(!reader.contains(&Permission::CreateCluster));
        assert!(!reader.contains(&Permission::ShowSecrets));
    }

    #[test]
    fn a_stock_3_4_pgorole_is_read_with_every_permission_name_of_that_release() {
        let stock = "pgoadmin: CreateSchedule, DeleteSchedule, ShowSchedule, DeletePgbouncer, CreatePgbouncer, DeletePgpool, CreatePgpool, Restore, ShowSecrets, Reload, ShowConfig, Status, DfCluster, DeleteCluster, ShowCluster, CreateCluster, TestCluster, ShowBackup, DeleteBackup, CreateBackup, Label, Load, CreatePolicy, DeletePolicy, ShowPolicy, ApplyPolicy, ShowWorkflow, ShowPVC, CreateUpgrade, ShowUpgrade, DeleteUpgrade, CreateUser, DeleteUser, User, Version, CreateIngest, ShowIngest, DeleteIngest, CreateFailover\n\npgoreader: Status, ShowConfig, DfCluster, ShowCluster, TestCluster, ShowBackup, ShowPolicy, ShowWorkflow, ShowPVC, ShowUpgrade, Version, ShowSchedule\n";
        let roles = Roles::parse(stock).unwrap();
        let admin = roles.permissions("pgoadmin").unwrap();
        assert!(
            admin.contains(&Permission::Failover),
            "CreateFailover is 3.4's name for it"
        );
        assert!(admin.contains(&Permission::Restore));
        assert!(
            !admin.contains(&Permission::ScaleCluster),
            "3.4 had no such permission"
        );
        let reader = roles.permissions("pgoreader").unwrap();
        assert!(reader.contains(&Permission::ShowConfig));
        assert!(!reader.contains(&Permission::CreateCluster));
    }

    #[test]
    fn errors_name_the_line() {
        let err = Roles::parse("pgoadmin: *\nbroken line\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        let err = Roles::parse("r: CreateCluster, Fly\n").unwrap_err();
        assert!(err.contains("line 1") && err.contains("Fly"), "{err}");
    }
}
