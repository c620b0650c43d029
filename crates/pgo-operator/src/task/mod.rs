//! Pgtasks other than failovers (those belong to their cluster's
//! reconcile): work recorded in the store so it outlives the operator.

pub mod controller;
pub mod rmdata;
pub mod schedule;
pub mod to_pvc;
