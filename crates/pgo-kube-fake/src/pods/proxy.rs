//! What carries traffic on the pod network besides the pods themselves:
//! the API server's HTTPS front at the bridge's address (as
//! `kubernetes.default.svc`), and each Service's address, which spreads
//! new connections over the endpoints ready at that moment.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};

/// Ready endpoints, by Service and port: ("db", 5432) → ["10.1.2.3:5432"].
pub type Endpoints = Arc<Mutex<BTreeMap<(String, u16), Vec<String>>>>;

/// Forwards each connection to `ip:port` to one of the Service's ready
/// endpoints, in turn; refuses it (closes) when none is ready.
pub async fn service(listener: TcpListener, service: String, port: u16, endpoints: Endpoints) {
    let mut turn = 0usize;
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            continue;
        };
        let target = {
            let map = endpoints.lock().unwrap();
            map.get(&(service.clone(), port))
                .and_then(|list| (!list.is_empty()).then(|| list[turn % list.len()].clone()))
        };
        turn = turn.wrapping_add(1);
        let Some(target) = target else {
            continue;
        };
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(&target).await {
                let mut inbound = inbound;
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

/// HTTPS in front of the API server's plain HTTP on loopback.
pub async fn api_front(listener: TcpListener, tls: Arc<rustls::ServerConfig>, api_port: u16) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(mut inbound) = acceptor.accept(inbound).await else {
                return;
            };
            if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", api_port)).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}
