//! What should exist, decided without touching anything: validation of user
//! input, the desired objects of a cluster, and its phase from observations.
//! Both platforms and the apiserver call these; none of them does I/O.

pub mod backrest;
pub mod backup;
pub mod desired;
pub mod event;
pub mod expire;
pub mod failover;
pub mod job;
pub mod names;
pub mod observed;
pub mod plan;
pub mod restore;
pub mod schedule;
pub mod status;
pub mod to_pvc;
pub mod validate;
