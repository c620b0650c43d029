//! The fake API server over HTTP on loopback, watches included, for a
//! whole `postgres-operator` pointed at it by a kubeconfig.

use crate::{Change, FakeApi, head, parse};
use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use std::convert::Infallible;
use tokio_stream::wrappers::BroadcastStream;

type Reply = Response<BoxBody<Bytes, Infallible>>;

pub(crate) fn query_value(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .find_map(|p| p.strip_prefix(&format!("{key}=")).map(str::to_string))
}

fn line(change: &Change) -> Result<Frame<Bytes>, Infallible> {
    let event = json!({ "type": change.kind, "object": change.object });
    let mut text = serde_json::to_vec(&event).unwrap();
    text.push(b'\n');
    Ok(Frame::data(Bytes::from(text)))
}

impl FakeApi {
    /// Serves HTTP on 127.0.0.1 from a thread of its own, for as long as
    /// the test process lives; returns the port.
    /// A client of this server over HTTP, where watches work.
    pub fn http_client(&self) -> kube::Client {
        let port = self.serve_http();
        let url = format!("http://127.0.0.1:{port}").parse().unwrap();
        let mut config = kube::Config::new(url);
        config.default_namespace = crate::NS.into();
        kube::Client::try_from(config).unwrap()
    }

    pub fn serve_http(&self) -> u16 {
        let (tx, rx) = std::sync::mpsc::channel();
        let me = self.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap().port()).unwrap();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let me = me.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let me = me.clone();
                            async move { Ok::<_, Infallible>(me.http(req).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        rx.recv().unwrap()
    }

    async fn http(&self, req: Request<hyper::body::Incoming>) -> Reply {
        let (method, path, query, content_type) = head(&req);
        let bytes = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let watch =
            method == Method::GET && matches!(query_value(&query, "watch").as_deref(), Some("true" | "1"));
        let mut state = self.0.lock().unwrap();
        state
            .log
            .push(format!("{method} {path}{}", if watch { "?watch" } else { "" }));
        if watch {
            let (collection, _, _) = parse(&path);
            let since = query_value(&query, "resourceVersion")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let (past, feed) = state.changes_since(&collection, since);
            drop(state);
            // Only what matches the selector, as the API server filters; a
            // watcher that falls behind is cut off (it lists again), never
            // left to miss changes unawares.
            let sel = crate::selector(&query);
            let wanted = move |c: &Change| {
                c.collection == collection && c.version > since && crate::matches(&c.object, &sel)
            };
            let past: Vec<Change> = past.into_iter().filter(|c| wanted(c)).collect();
            let future = BroadcastStream::new(feed)
                .take_while(|c| futures::future::ready(c.is_ok()))
                .filter_map(move |c| futures::future::ready(c.ok().filter(|c| wanted(c))));
            let events = futures::stream::iter(past).chain(future).map(|c| line(&c));
            return Response::builder()
                .status(200)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(BodyExt::boxed(StreamBody::new(events)))
                .unwrap();
        }
        let (code, answer) = state.handle(&method, &path, &query, &content_type, body);
        drop(state);
        Response::builder()
            .status(code)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(BodyExt::boxed(Full::new(Bytes::from(
                serde_json::to_vec(&answer).unwrap(),
            ))))
            .unwrap()
    }
}
