//! A pod's volumes, made as a kubelet makes them: a directory per claim
//! that outlives its pods, with the pod's `fsGroup` applied on every mount
//! (unless `fsGroupChangePolicy: OnRootMismatch` finds the root already
//! right); ConfigMaps, Secrets and projected volumes as files written
//! afresh, read-only to the container; emptyDirs, in memory when asked.

use crate::{CONFIGMAPS, FakeApi, SECRETS};
use base64::Engine;
use serde_json::Value;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// One volume, where it is on the host.
#[derive(Clone)]
pub enum Source {
    Dir(PathBuf),
    /// An emptyDir with `medium: Memory`: a tmpfs of the pod's own.
    Memory,
    /// One file (the container's termination message).
    File(PathBuf),
}

/// A volume of the pod, by name.
pub struct Volume {
    pub name: String,
    pub source: Source,
}

/// A mount of one container: the pod's path, from the host.
pub struct Mount {
    pub source: Source,
    pub target: String,
    pub read_only: bool,
}

/// Where a volume mount of a container comes from.
pub fn mounts(container: &Value, volumes: &[Volume]) -> Result<Vec<Mount>, String> {
    let mut out = Vec::new();
    for m in container["volumeMounts"].as_array().into_iter().flatten() {
        let name = m["name"].as_str().unwrap_or_default();
        let v = volumes
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| format!("volumeMount {name} names no volume of the pod"))?;
        out.push(Mount {
            source: v.source.clone(),
            target: m["mountPath"].as_str().unwrap_or_default().to_string(),
            read_only: m["readOnly"].as_bool().unwrap_or(false),
        });
    }
    Ok(out)
}

/// The claims' directories, which outlive pods.
pub fn claim_dir(base: &Path, claim: &str) -> PathBuf {
    base.join("claims").join(claim)
}

/// Makes every volume of `pod` under `dir` (the pod's own directory).
pub fn make(
    api: &FakeApi,
    base: &Path,
    dir: &Path,
    pod: &Value,
    service_account: &[(&str, Vec<u8>)],
) -> Result<Vec<Volume>, String> {
    let spec = &pod["spec"];
    let sc = &spec["securityContext"];
    let fs_group = sc["fsGroup"].as_u64().map(|g| g as u32);
    let on_root_mismatch = sc["fsGroupChangePolicy"].as_str() == Some("OnRootMismatch");
    let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
    let mut out = Vec::new();
    for v in spec["volumes"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or_default().to_string();
        let source = if let Some(claim) = v
            .pointer("/persistentVolumeClaim/claimName")
            .and_then(Value::as_str)
        {
            let d = claim_dir(base, claim);
            std::fs::create_dir_all(&d).map_err(|e| io(&d.display().to_string(), e))?;
            if let Some(gid) = fs_group {
                apply_fs_group(&d, gid, on_root_mismatch)?;
            }
            Source::Dir(d)
        } else if v.get("emptyDir").is_some() {
            if v.pointer("/emptyDir/medium").and_then(Value::as_str) == Some("Memory") {
                Source::Memory
            } else {
                let d = dir.join("empty").join(&name);
                std::fs::create_dir_all(&d).map_err(|e| io(&d.display().to_string(), e))?;
                // A kubelet makes emptyDirs world-writable (0777).
                std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777))
                    .map_err(|e| io(&d.display().to_string(), e))?;
                Source::Dir(d)
            }
        } else {
            let files = files_of(api, v, service_account)?;
            let d = dir.join("files").join(&name);
            let _ = std::fs::remove_dir_all(&d);
            for (path, bytes, mode) in files {
                write(&d, &path, &bytes, mode, fs_group)?;
            }
            std::fs::create_dir_all(&d).map_err(|e| io(&d.display().to_string(), e))?;
            Source::Dir(d)
        };
        out.push(Volume { name, source });
    }
    Ok(out)
}

/// What a kubelet does with `fsGroup` on each mount: the group owns every
/// file, which the group may read and write (and search, where the owner
/// may), and new files inherit the group (setgid on directories).
pub fn apply_fs_group(root: &Path, gid: u32, on_root_mismatch: bool) -> Result<(), String> {
    let meta = std::fs::metadata(root).map_err(|e| format!("{}: {e}", root.display()))?;
    if on_root_mismatch && meta.gid() == gid && meta.mode() & 0o2070 == 0o2070 {
        return Ok(());
    }
    walk(root, &mut |p, meta| {
        nix::unistd::chown(p, None, Some(nix::unistd::Gid::from_raw(gid)))
            .map_err(|e| format!("{}: {e}", p.display()))?;
        let mode = meta.mode() & 0o7777;
        let owner_x = mode & 0o100 != 0;
        let mut next = mode | 0o060;
        if meta.is_dir() {
            next |= 0o2010;
        } else if owner_x {
            next |= 0o010;
        }
        if next != mode {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(next))
                .map_err(|e| format!("{}: {e}", p.display()))?;
        }
        Ok(())
    })
}

fn walk(p: &Path, f: &mut dyn FnMut(&Path, &std::fs::Metadata) -> Result<(), String>) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    f(p, &meta)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(p).map_err(|e| format!("{}: {e}", p.display()))? {
            let entry = entry.map_err(|e| format!("{}: {e}", p.display()))?;
            walk(&entry.path(), f)?;
        }
    }
    Ok(())
}

fn write(dir: &Path, path: &str, bytes: &[u8], mode: u32, group: Option<u32>) -> Result<(), String> {
    if path.split('/').any(|c| c == ".." || c.is_empty()) {
        return Err(format!("volume item path {path} is not relative"));
    }
    let file = dir.join(path);
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(&file, bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", file.display()))?;
    if let Some(gid) = group {
        nix::unistd::chown(&file, None, Some(nix::unistd::Gid::from_raw(gid)))
            .map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(())
}

/// The files of a ConfigMap, Secret, projected or service-account volume:
/// (path, content, mode).
fn files_of(
    api: &FakeApi,
    v: &Value,
    service_account: &[(&str, Vec<u8>)],
) -> Result<Vec<(String, Vec<u8>, u32)>, String> {
    let default_mode = |src: &Value, fallback: &Value| {
        src["defaultMode"]
            .as_u64()
            .or_else(|| fallback["defaultMode"].as_u64())
            .unwrap_or(0o644) as u32
    };
    if let Some(cm) = v.get("configMap") {
        return object_files(
            api,
            CONFIGMAPS,
            cm,
            cm["name"].as_str(),
            default_mode(cm, &Value::Null),
            false,
        );
    }
    if let Some(s) = v.get("secret") {
        return object_files(
            api,
            SECRETS,
            s,
            s["secretName"].as_str(),
            default_mode(s, &Value::Null),
            true,
        );
    }
    if let Some(p) = v.get("projected") {
        let mut out = Vec::new();
        for src in p["sources"].as_array().into_iter().flatten() {
            let mode = default_mode(src, p);
            if let Some(s) = src.get("secret") {
                out.extend(object_files(api, SECRETS, s, s["name"].as_str(), mode, true)?);
            } else if let Some(cm) = src.get("configMap") {
                out.extend(object_files(
                    api,
                    CONFIGMAPS,
                    cm,
                    cm["name"].as_str(),
                    mode,
                    false,
                )?);
            } else if let Some(t) = src.get("serviceAccountToken") {
                let path = t["path"].as_str().unwrap_or("token").to_string();
                let token = service_account
                    .iter()
                    .find(|(k, _)| *k == "token")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                out.push((path, token, mode));
            } else {
                return Err(format!("a projected source this stand-in does not know: {src}"));
            }
        }
        return Ok(out);
    }
    Err(format!("a volume this stand-in does not know: {v}"))
}

fn object_files(
    api: &FakeApi,
    coll: &str,
    src: &Value,
    name: Option<&str>,
    default_mode: u32,
    base64: bool,
) -> Result<Vec<(String, Vec<u8>, u32)>, String> {
    let name = name.ok_or_else(|| format!("a volume names no object: {src}"))?;
    let Some(object) = api.get(coll, name) else {
        // As the kubelet does: an optional source that is missing is an
        // empty volume; any other keeps the pod from starting.
        if src["optional"] == true {
            return Ok(Vec::new());
        }
        return Err(format!(
            "{} {name} does not exist",
            if base64 { "Secret" } else { "ConfigMap" }
        ));
    };
    let data = object["data"].as_object().cloned().unwrap_or_default();
    let decode = |v: &Value| -> Result<Vec<u8>, String> {
        let s = v.as_str().unwrap_or_default();
        if base64 {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| format!("{name}: {e}"))
        } else {
            Ok(s.as_bytes().to_vec())
        }
    };
    match src["items"].as_array() {
        Some(items) => items
            .iter()
            .map(|i| {
                let key = i["key"].as_str().unwrap_or_default();
                let value = data.get(key).ok_or_else(|| format!("{name} has no key {key}"))?;
                let mode = i["mode"].as_u64().map(|m| m as u32).unwrap_or(default_mode);
                Ok((
                    i["path"].as_str().unwrap_or(key).to_string(),
                    decode(value)?,
                    mode,
                ))
            })
            .collect(),
        None => data
            .iter()
            .map(|(k, v)| Ok((k.clone(), decode(v)?, default_mode)))
            .collect(),
    }
}
