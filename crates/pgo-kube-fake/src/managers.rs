//! Instance managers for the stand-in kubelet's pods, over HTTPS on each
//! pod's loopback IP and the manager port, with the certificate in the
//! Secret the pod mounts (read at each connection, as a mounted Secret
//! follows its renewals): `/status` and `/volume` open, the control
//! endpoints behind the token in that Secret. Every control call is
//! recorded.

use crate::FakeApi;
use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::Arc;

const PORT: u16 = 8008;

/// A control call a manager received.
#[derive(Clone, Debug)]
pub struct ManagerCall {
    pub ip: String,
    pub path: String,
    pub authorized: bool,
}

impl FakeApi {
    /// Starts a manager at `ip` for a pod that mounts Secret `secret`
    /// (`namespace/name`).
    pub(crate) fn start_manager(&self, ip: String, secret: String) {
        let me = self.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::bind((ip.as_str(), PORT)).await {
                    Ok(l) => l,
                    Err(e) => {
                        tx.send(Err(e.to_string())).unwrap();
                        return;
                    }
                };
                tx.send(Ok(())).unwrap();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let (me, ip, secret) = (me.clone(), ip.clone(), secret.clone());
                    tokio::spawn(async move {
                        // No certificate mounted: the pod's manager could not start.
                        let Some(tls) = me.tls_config(&secret) else {
                            return;
                        };
                        let Ok(stream) = tokio_rustls::TlsAcceptor::from(tls).accept(stream).await else {
                            return;
                        };
                        let service = hyper::service::service_fn(move |req| {
                            let (me, ip, secret) = (me.clone(), ip.clone(), secret.clone());
                            async move { Ok::<_, Infallible>(me.manager(&ip, &secret, req)) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        if let Err(e) = rx.recv().unwrap() {
            panic!("cannot start a fake manager: {e}");
        }
    }

    fn secret_key(&self, secret: &str, key: &str) -> Option<Vec<u8>> {
        let (ns, name) = secret.split_once('/')?;
        let secret = self.get(&crate::collection(ns, "secrets"), name)?;
        base64::engine::general_purpose::STANDARD
            .decode(secret.pointer("/data")?.get(key)?.as_str()?)
            .ok()
    }

    fn token(&self, secret: &str) -> Option<String> {
        String::from_utf8(self.secret_key(secret, "token")?).ok()
    }

    fn tls_config(&self, secret: &str) -> Option<Arc<rustls::ServerConfig>> {
        let cert = self.secret_key(secret, "tls.crt")?;
        let key = self.secret_key(secret, "tls.key")?;
        crate::tls::server_config(&cert, &key).ok()
    }

    fn manager(&self, ip: &str, secret: &str, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_string();
        let answer = |code: StatusCode, v: Value| {
            Response::builder()
                .status(code)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(serde_json::to_vec(&v).unwrap())))
                .unwrap()
        };
        if req.method() == Method::GET {
            let role = self.0.lock().unwrap().manager_roles.get(ip).cloned();
            return match path.as_str() {
                "/status" => answer(StatusCode::OK, json!({ "name": ip, "ready": true, "role": role })),
                "/volume" => answer(
                    StatusCode::OK,
                    json!({ "name": "", "instance": ip, "path": "/pgdata/data",
                        "usedBytes": 41943040u64, "freeBytes": 1006632960u64, "totalBytes": 1073741824u64 }),
                ),
                _ => answer(StatusCode::NOT_FOUND, json!({ "error": "no such endpoint" })),
            };
        }
        let given = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string);
        let authorized = given.is_some() && given == self.token(secret);
        let mut s = self.0.lock().unwrap();
        s.manager_calls.push(ManagerCall {
            ip: ip.to_string(),
            path: path.clone(),
            authorized,
        });
        if !authorized {
            return answer(StatusCode::UNAUTHORIZED, json!({ "error": "not authenticated" }));
        }
        if path == "/control/promote" {
            s.manager_roles.insert(ip.to_string(), "Primary".into());
        }
        answer(StatusCode::OK, json!({}))
    }

    /// The control calls the managers received so far.
    pub fn manager_calls(&self) -> Vec<ManagerCall> {
        self.0.lock().unwrap().manager_calls.clone()
    }

    /// From now on every new pod gets a manager answering on its IP.
    pub fn serve_managers(&self) {
        self.0.lock().unwrap().serve_managers = true;
    }
}
