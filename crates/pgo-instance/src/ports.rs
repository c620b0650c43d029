//! Who holds a port: for a message that names the culprit instead of a
//! PostgreSQL that restarts for ever.

/// The socket inodes listening on TCP `port` (IPv4 and IPv6).
fn listening_inodes(port: u16) -> Vec<String> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is ADDR:PORT in hex; state 0A is LISTEN.
            let local_port = f
                .get(1)
                .and_then(|a| a.rsplit_once(':'))
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port)
                && f.get(3) == Some(&"0A")
                && let Some(inode) = f.get(9)
            {
                inodes.push(inode.to_string());
            }
        }
    }
    inodes
}

/// `pid N (command line)` of a process listening on TCP `port`, when one
/// can be found (another user's process may not be visible).
pub fn who_listens(port: u16) -> Option<String> {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for proc_entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = proc_entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if wanted.iter().any(|w| target.as_os_str() == w.as_str()) {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|b| String::from_utf8_lossy(&b).replace('\0', " ").trim().to_string())
                    .unwrap_or_default();
                return Some(format!("pid {pid} ({cmdline})"));
            }
        }
    }
    Some("a process this user cannot see".into())
}

/// `Err(why)` when `addr:port` cannot be listened on, naming who holds it.
pub fn check_free(addr: &str, port: u16) -> Result<(), String> {
    match std::net::TcpListener::bind((addr, port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(format!(
            "port {port} on {addr} is taken by {}; PostgreSQL cannot start until it is free",
            who_listens(port).unwrap_or_else(|| "another process".into())
        )),
        Err(e) => Err(format!("cannot listen on {addr}:{port}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_of_a_port_is_named() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = held.local_addr().map(|a| a.port()).unwrap_or_default();
        let err = check_free("127.0.0.1", port).unwrap_err();
        let me = format!("pid {}", std::process::id());
        assert!(err.contains(&me) && err.contains(&port.to_string()), "{err}");
        drop(held);
        assert_eq!(check_free("127.0.0.1", port), Ok(()));
    }
}
