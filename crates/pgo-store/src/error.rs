#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {name:?} not found")]
    NotFound { kind: String, name: String },
    #[error("{kind} {name:?} already exists")]
    AlreadyExists { kind: String, name: String },
    #[error(
        "conflict on {kind} {name:?}: it was changed since it was read (resourceVersion {given}, now {current})"
    )]
    Conflict {
        kind: String,
        name: String,
        given: String,
        current: u64,
    },
    #[error("resourceVersion {0} is too old to watch from; list again")]
    Gone(u64),
    #[error("invalid object: {0}")]
    Invalid(String),
    #[error("store: {0}")]
    Backend(String),
}

impl StoreError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }
}
