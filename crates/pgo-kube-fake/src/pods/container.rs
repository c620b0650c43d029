//! A container, run the way a container runtime runs it, from this
//! machine's own files: in the pod's network namespace, and a mount
//! namespace of its own whose root is a fresh tmpfs holding the host's
//! `/usr`, `/etc` and libraries read-only (the "image", with the
//! image's user and `/usr/local/bin/postgres-operator`), the pod's
//! volumes at the paths its spec names (read-only where it says), and
//! `/etc/hosts` naming the cluster's Services. The process runs as the
//! pod's `runAsUser`, `runAsGroup` and `fsGroup`, with no capabilities,
//! from the image's entrypoint with the container's args and env.

use super::volumes::{Mount, Source};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// What stands in for the container image.
#[derive(Clone, Debug)]
pub struct Image {
    /// The file at /usr/local/bin/postgres-operator, the entrypoint.
    pub binary: PathBuf,
    /// The image's environment (its Dockerfile's ENV).
    pub env: Vec<(String, String)>,
    /// The image's user and group (its Dockerfile's useradd).
    pub uid: u32,
}

const ENTRYPOINT: &str = "/usr/local/bin/postgres-operator";

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The pod's identity: (uid, gid, supplementary groups).
pub fn identity(pod: &Value, container: &Value, image: &Image) -> (u32, u32, Vec<u32>) {
    let pick = |key: &str| {
        container["securityContext"][key]
            .as_u64()
            .or_else(|| pod["spec"]["securityContext"][key].as_u64())
            .map(|v| v as u32)
    };
    let uid = pick("runAsUser").unwrap_or(image.uid);
    // As a runtime does: the group of the uid's passwd entry in the image,
    // and group 0 for a uid the image does not know.
    let gid = pick("runAsGroup").unwrap_or(if uid == image.uid { image.uid } else { 0 });
    let groups = pod["spec"]["securityContext"]["fsGroup"]
        .as_u64()
        .map(|g| vec![g as u32])
        .unwrap_or_default();
    (uid, gid, groups)
}

/// The container's environment: the image's, then its own (values, and
/// the downward API's pod fields).
pub fn env(
    pod: &Value,
    container: &Value,
    image: &Image,
    pod_ip: &str,
) -> Result<Vec<(String, String)>, String> {
    let mut out = vec![
        ("PATH".to_string(), "/usr/local/bin:/usr/bin:/bin".to_string()),
        (
            "HOSTNAME".to_string(),
            pod["metadata"]["name"].as_str().unwrap_or_default().to_string(),
        ),
    ];
    out.extend(image.env.iter().cloned());
    for e in container["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap_or_default().to_string();
        let value = if let Some(v) = e["value"].as_str() {
            v.to_string()
        } else if let Some(field) = e.pointer("/valueFrom/fieldRef/fieldPath").and_then(Value::as_str) {
            match field {
                "status.podIP" => pod_ip.to_string(),
                "metadata.name" => pod["metadata"]["name"].as_str().unwrap_or_default().to_string(),
                "metadata.namespace" => crate::NS.to_string(),
                "spec.nodeName" => pod["spec"]["nodeName"].as_str().unwrap_or_default().to_string(),
                other => {
                    return Err(format!(
                        "env {name}: a fieldRef this stand-in does not know: {other}"
                    ));
                }
            }
        } else {
            return Err(format!("env {name}: a source this stand-in does not know: {e}"));
        };
        out.push((name, value));
    }
    Ok(out)
}

/// The script that makes the container's root and runs it.
pub fn script(root: &Path, etc: &Path, binary: &Path, mounts: &[Mount], read_only_root: bool) -> String {
    let r = root.display().to_string();
    let mut s = String::from("set -eu\n");
    let _ = writeln!(s, "R={}", quote(&r));
    s.push_str("mount -t tmpfs -o mode=0755 pod-root \"$R\"\n");
    // The image: the host's programs and libraries, read-only.
    s.push_str(
        "for d in usr bin sbin lib lib32 lib64 libx32; do\n\
         \x20 if [ -L \"/$d\" ]; then ln -s \"$(readlink \"/$d\")\" \"$R/$d\";\n\
         \x20 elif [ -d \"/$d\" ]; then mkdir \"$R/$d\"; mount --rbind \"/$d\" \"$R/$d\"; mount -o remount,bind,ro \"$R/$d\"; fi\n\
         done\n",
    );
    // The image's /etc: the host's, copied so that mounts can be made
    // under it, with the image's user, and the pod's hosts (a bind
    // mount, so the kubelet can name new Services in it).
    s.push_str(
        "mkdir \"$R/etc\"; mount -t tmpfs -o mode=0755 image-etc \"$R/etc\"; cp -a /etc/. \"$R/etc/\"\n",
    );
    for f in ["passwd", "group"] {
        let _ = writeln!(
            s,
            "cp {} \"$R/etc/{f}\"",
            quote(&etc.join(f).display().to_string())
        );
    }
    let _ = writeln!(
        s,
        "mount --bind {} \"$R/etc/hosts\"",
        quote(&etc.join("hosts").display().to_string())
    );
    s.push_str("mount -t tmpfs -o mode=0755 image \"$R/usr/local\"\nmkdir -p \"$R/usr/local/bin\"\n");
    let _ = writeln!(
        s,
        "touch \"$R{ENTRYPOINT}\"; mount --bind {} \"$R{ENTRYPOINT}\"",
        quote(&binary.display().to_string())
    );
    s.push_str("mount -o remount,ro \"$R/usr/local\"\n");
    s.push_str("mkdir -p \"$R/proc\" \"$R/dev\" \"$R/tmp\" \"$R/var/run\"\n");
    s.push_str("mount -t proc proc \"$R/proc\"\nmount --rbind /dev \"$R/dev\"\n");
    for m in mounts {
        let target = format!("$R{}", m.target);
        if let Source::File(f) = &m.source {
            let _ = writeln!(
                s,
                "mkdir -p \"$(dirname \"{target}\")\"; touch \"{target}\"; mount --bind {} \"{target}\"",
                quote(&f.display().to_string())
            );
            continue;
        }
        let _ = writeln!(s, "mkdir -p \"{target}\"");
        match &m.source {
            Source::Dir(d) => {
                let _ = writeln!(s, "mount --bind {} \"{target}\"", quote(&d.display().to_string()));
            }
            Source::Memory => {
                let _ = writeln!(s, "mount -t tmpfs -o mode=1777 memory \"{target}\"");
            }
            Source::File(_) => {}
        }
        if m.read_only {
            let _ = writeln!(s, "mount -o remount,bind,ro \"{target}\"");
        }
    }
    if read_only_root {
        s.push_str("mount -o remount,ro \"$R/etc\"\nmount -o remount,ro \"$R\"\n");
    }
    s
}

/// Starts the container: the script as root in the pod's namespaces, then
/// the entrypoint in the new root as the pod's user. Its output goes to
/// `log`, as a runtime keeps a container's log.
#[allow(clippy::too_many_arguments)]
pub fn start(
    netns: &str,
    script: &str,
    root: &Path,
    identity: (u32, u32, Vec<u32>),
    env: &[(String, String)],
    args: &[String],
    log: &Path,
) -> Result<Child, String> {
    let (uid, gid, groups) = identity;
    let groups = if groups.is_empty() {
        "--clear-groups".to_string()
    } else {
        format!(
            "--groups={}",
            groups.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
        )
    };
    let mut exec = format!(
        "cd /; exec chroot \"$R\" /usr/bin/setpriv --reuid={uid} --regid={gid} {groups} --inh-caps=-all --bounding-set=-all --no-new-privs /usr/bin/env -i"
    );
    for (k, v) in env {
        let _ = write!(exec, " {}", quote(&format!("{k}={v}")));
    }
    let _ = write!(exec, " {ENTRYPOINT}");
    for a in args {
        let _ = write!(exec, " {}", quote(a));
    }
    let full = format!("{script}{exec}\n");
    std::fs::create_dir_all(root).map_err(|e| format!("{}: {e}", root.display()))?;
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    use std::os::unix::process::CommandExt;
    Command::new("ip")
        .args([
            "netns",
            "exec",
            netns,
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &full,
        ])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start the container: {e}"))
}
