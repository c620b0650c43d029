//! OpenShift's `restricted` security context constraint, as its admission
//! applies it to a pod: the namespace's uid and fsGroup are put in, and a
//! pod that names another uid or fsGroup is refused. Its uid is one no
//! image knows, so the process runs with group 0 and no passwd entry.

use serde_json::{Value, json};

/// Admits `spec` under a namespace whose range starts (and, here, ends) at
/// `uid`, or says why not.
pub fn restricted(spec: &mut Value, uid: u32) -> Result<(), String> {
    let refuse = |what: &str, v: u64| {
        Err(format!(
            "unable to validate against any security context constraint: {what}: Invalid value: {v}: must be in the ranges: [{uid}, {uid}]"
        ))
    };
    for key in ["runAsUser", "fsGroup"] {
        if let Some(v) = spec["securityContext"][key]
            .as_u64()
            .filter(|v| *v != u64::from(uid))
        {
            return refuse(&format!("spec.securityContext.{key}"), v);
        }
    }
    let containers = spec["containers"]
        .as_array_mut()
        .map(|c| c.iter_mut())
        .into_iter()
        .flatten();
    for c in containers {
        if let Some(v) = c["securityContext"]["runAsUser"]
            .as_u64()
            .filter(|v| *v != u64::from(uid))
        {
            return refuse("securityContext.runAsUser", v);
        }
        if !c["securityContext"].is_object() {
            c["securityContext"] = json!({});
        }
        c["securityContext"]["runAsUser"] = json!(uid);
    }
    if !spec["securityContext"].is_object() {
        spec["securityContext"] = json!({});
    }
    spec["securityContext"]["fsGroup"] = json!(uid);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_namespace_uid_is_put_in_and_another_is_refused() {
        let mut spec =
            json!({ "containers": [{ "name": "a" }], "securityContext": { "runAsNonRoot": true } });
        restricted(&mut spec, 1_000_650_000).unwrap();
        assert_eq!(
            spec["containers"][0]["securityContext"]["runAsUser"],
            1_000_650_000
        );
        assert_eq!(spec["securityContext"]["fsGroup"], 1_000_650_000);
        assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
        for bad in [
            json!({ "containers": [], "securityContext": { "fsGroup": 999 } }),
            json!({ "containers": [], "securityContext": { "runAsUser": 999 } }),
            json!({ "containers": [{ "securityContext": { "runAsUser": 999 } }] }),
        ] {
            let mut s = bad.clone();
            let err = restricted(&mut s, 1_000_650_000).unwrap_err();
            assert!(err.contains("999"), "{bad}: {err}");
        }
    }
}
