//! The pod network: a bridge on the host with a /24 of its own, and a
//! network namespace per pod joined to it by a veth pair. The host side
//! (the operator under test, the API server's TLS front, the Services'
//! proxies) reaches every pod at its IP; pods reach the host at the
//! bridge's address, and each other across the bridge.

use std::process::Command;

pub(crate) fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// The bridge and the /24 it routes: 10.<a>.<b>.0/24.
pub struct Bridge {
    pub name: String,
    pub prefix: String,
}

impl Bridge {
    /// A bridge no other test on this machine uses.
    pub fn create() -> Result<Bridge, String> {
        let used = String::from_utf8_lossy(
            &Command::new("ip")
                .args(["-4", "-o", "addr"])
                .output()
                .map_err(|e| e.to_string())?
                .stdout,
        )
        .to_string();
        let seed = std::process::id() as usize;
        for i in 0..200 {
            let n = (seed + i * 7919) % 40_000;
            let (a, b) = (100 + n / 250 % 100, n % 250 + 1);
            let prefix = format!("10.{a}.{b}");
            let name = format!("pgo{a}x{b}");
            if used.contains(&format!("{prefix}.")) {
                continue;
            }
            if run(&["ip", "link", "add", &name, "type", "bridge"]).is_err() {
                continue;
            }
            let bridge = Bridge { name, prefix };
            // A bridge without an address of its own takes its lowest
            // port's, which changes as pods' veths come and go: the pods'
            // cached neighbours (a Service's address, the gateway) would
            // then name a MAC nothing answers, and connections stall in
            // SYN retries until the cache expires. A fixed one, as a
            // node's bridge has.
            run(&[
                "ip",
                "link",
                "set",
                "dev",
                &bridge.name,
                "address",
                &format!("02:00:0a:{a:02x}:{b:02x}:01"),
            ])?;
            run(&[
                "ip",
                "addr",
                "add",
                &format!("{}/24", bridge.host()),
                "dev",
                &bridge.name,
            ])?;
            run(&["ip", "link", "set", &bridge.name, "up"])?;
            return Ok(bridge);
        }
        Err("no free /24 for a pod network".into())
    }

    /// The host's address on the bridge.
    pub fn host(&self) -> String {
        format!("{}.1", self.prefix)
    }

    /// One more host address (a Service's), `n` in 200..=254.
    pub fn add_address(&self, n: u8) -> Result<String, String> {
        let ip = format!("{}.{n}", self.prefix);
        run(&["ip", "addr", "add", &format!("{ip}/32"), "dev", &self.name])?;
        Ok(ip)
    }

    /// A network namespace for a pod at `<prefix>.<n>`, joined to the
    /// bridge; returns the namespace's name and the pod's IP.
    pub fn pod(&self, n: u8) -> Result<(String, String), String> {
        let ns = format!("{}-{n}", self.name);
        let host_end = format!("{}v{n}", self.name);
        let ip = format!("{}.{n}", self.prefix);
        let _ = run(&["ip", "netns", "del", &ns]);
        run(&["ip", "netns", "add", &ns])?;
        run(&[
            "ip", "link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ])?;
        run(&["ip", "link", "set", &host_end, "master", &self.name, "up"])?;
        run(&["ip", "-n", &ns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
        run(&["ip", "-n", &ns, "link", "set", "eth0", "up"])?;
        run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
        run(&["ip", "-n", &ns, "route", "add", "default", "via", &self.host()])?;
        Ok((ns, ip))
    }
}

/// Every process in the namespace `ns`.
pub fn pids(ns: &str) -> Vec<i32> {
    Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The pod namespaces on bridge `bridge`.
pub fn namespaces(bridge: &str) -> Vec<String> {
    let prefix = format!("{bridge}-");
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Removes the namespace (its veth goes with it).
pub fn remove(ns: &str) {
    let _ = run(&["ip", "netns", "del", ns]);
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = run(&["ip", "link", "del", &self.name]);
    }
}
