//! The embedded store of the local platform: one SQLite database in WAL mode
//! with full sync, so a SIGKILL (or a power cut) at any moment leaves it
//! readable with every acknowledged write in it.
//!
//! `objects` holds the current version of each object; `events` is the log
//! of every change, keyed by resourceVersion (an AUTOINCREMENT key, so it
//! only grows), and is what a watch replays before it follows live changes.

use crate::object;
use crate::{EventType, RawEvent, RawList, RawWatch, Store, StoreError};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::Value;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// Events kept for watches that fall behind; older ones are compacted away
/// and a watch from before them must list again (`Gone`), as in Kubernetes.
const KEEP_EVENTS: u64 = 10_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    rv   INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE TABLE IF NOT EXISTS events (
    rv   INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_kind ON events (kind, rv);
";

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
    jobs: std::sync::mpsc::Sender<Job>,
}

/// Work for the store's thread.
type Job = Box<dyn FnOnce(&Inner) + Send>;

struct Inner {
    conn: Mutex<Connection>,
    live: broadcast::Sender<RawEvent>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn encode(e: EventType) -> &'static str {
    match e {
        EventType::Added => "ADDED",
        EventType::Modified => "MODIFIED",
        EventType::Deleted => "DELETED",
    }
}

fn decode(s: &str) -> Result<EventType, StoreError> {
    match s {
        "ADDED" => Ok(EventType::Added),
        "MODIFIED" => Ok(EventType::Modified),
        "DELETED" => Ok(EventType::Deleted),
        other => Err(backend(format!("unknown event type {other:?} in the event log"))),
    }
}

fn parse(body: &str) -> Result<Value, StoreError> {
    serde_json::from_str(body).map_err(|e| backend(format!("a stored object does not parse: {e}")))
}

/// The store holds every cluster's spec: readable by its owner only. Made
/// 0600 before SQLite opens it (its WAL and shared-memory files then take the
/// same mode), and an older, wider file is narrowed.
fn private_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let err = |e: std::io::Error| backend(format!("cannot create the store {}: {e}", path.display()));
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    let beside = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    };
    for file in [path.to_path_buf(), beside("-wal"), beside("-shm")] {
        if file.exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
        }
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_err = |e: rusqlite::Error| backend(format!("cannot open the store {}: {e}", path.display()));
        private_file(path)?;
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(open_err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(backend(format!(
                "the store {} cannot use WAL mode (got {mode})",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        // Reads are answered from the operator's cache; this connection
        // mostly appends. SQLite's default 2 MB page cache was a sixth of
        // the server's heap at 100 clusters.
        conn.pragma_update(None, "cache_size", "-256").map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(open_err)?;
        if check != "ok" {
            return Err(backend(format!(
                "the store {} is damaged: {check}",
                path.display()
            )));
        }
        let (live, _) = broadcast::channel(1024);
        let inner = Arc::new(Inner {
            conn: Mutex::new(conn),
            live,
        });
        // One thread owns the connection's work. Calls went through the
        // blocking pool, which took a thread per waiting call only for it
        // to queue on the connection's lock, and each thread grew a malloc
        // arena of its own. It ends when the last handle is dropped.
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let worker = inner.clone();
        std::thread::Builder::new()
            .name("pgo-store".into())
            .spawn(move || {
                for job in queue {
                    job(&worker);
                }
            })
            .map_err(|e| backend(format!("cannot start the store's thread: {e}")))?;
        Ok(SqliteStore { inner, jobs })
    }

    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |inner: &Inner| {
                // A caller that stopped waiting drops the answer.
                let _ = reply.send(f(inner));
            }))
            .map_err(|_| backend("the store's thread has stopped"))?;
        answer
            .await
            .map_err(|_| backend("the store's thread stopped during a call"))?
    }
}

impl SqliteStore {
    /// Writes what `make` builds from the stored object and the given one,
    /// after checking the given resourceVersion.
    async fn rewrite(
        &self,
        kind: &str,
        object: Value,
        make: fn(&Value, Value) -> Result<Value, StoreError>,
    ) -> Result<Value, StoreError> {
        let kind = kind.to_string();
        let name = object::name(&object)?;
        self.run(move |inner| {
            inner.transact(|tx, events| {
                let (rv, current) =
                    Inner::current(tx, &kind, &name)?.ok_or_else(|| Inner::not_found(&kind, &name))?;
                Inner::check_version(&kind, &name, &object, rv)?;
                let next = make(&current, object)?;
                Inner::update(tx, events, &kind, &name, current, next)
            })
        })
        .await
    }
}

/// Puts `from`'s status (or none) into `to`.
fn copy_status(to: &mut Value, from: &Value) -> Result<(), StoreError> {
    let root = to
        .as_object_mut()
        .ok_or_else(|| StoreError::Invalid("an object must be a JSON map".into()))?;
    match from.get("status") {
        Some(s) => root.insert("status".into(), s.clone()),
        None => root.remove("status"),
    };
    Ok(())
}

/// A replace: metadata and spec from the writer; status and the fields the
/// store owns as stored; the generation counts spec changes.
fn spec_update(current: &Value, mut next: Value) -> Result<Value, StoreError> {
    copy_status(&mut next, current)?;
    let spec_changed = next.get("spec") != current.get("spec");
    let meta = object::metadata_mut(&mut next)?;
    for owned in ["uid", "creationTimestamp", "deletionTimestamp"] {
        match current.pointer(&format!("/metadata/{owned}")) {
            Some(v) => meta.insert(owned.into(), v.clone()),
            None => meta.remove(owned),
        };
    }
    let generation = object::generation(current) + i64::from(spec_changed);
    meta.insert("generation".into(), Value::from(generation));
    Ok(next)
}

/// A status replace: everything as stored but the status.
fn status_update(current: &Value, given: Value) -> Result<Value, StoreError> {
    let mut next = current.clone();
    copy_status(&mut next, &given)?;
    Ok(next)
}

impl Inner {
    /// Runs `f` in one transaction; the events it records are published after
    /// the commit, in order, while the lock is still held.
    fn transact<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>, &mut Vec<RawEvent>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| backend("the store lock is poisoned"))?;
        let tx = conn.transaction().map_err(backend)?;
        let mut events = Vec::new();
        let out = f(&tx, &mut events)?;
        tx.commit().map_err(backend)?;
        if let Some(last) = events.last()
            && last.resource_version % 1000 == 0
        {
            let floor = last.resource_version.saturating_sub(KEEP_EVENTS);
            conn.execute("DELETE FROM events WHERE rv <= ?1", params![floor as i64])
                .map_err(backend)?;
        }
        for e in events {
            // No receiver is fine: nobody is watching.
            let _ = self.live.send(e);
        }
        Ok(out)
    }

    fn current(tx: &Transaction<'_>, kind: &str, name: &str) -> Result<Option<(u64, Value)>, StoreError> {
        let row: Option<(i64, String)> = tx
            .query_row(
                "SELECT rv, body FROM objects WHERE kind = ?1 AND name = ?2",
                params![kind, name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(backend)?;
        row.map(|(rv, body)| Ok((rv as u64, parse(&body)?))).transpose()
    }

    /// Records a change: a new resourceVersion for `object`, the event, and
    /// the object's new state.
    fn record(
        tx: &Transaction<'_>,
        events: &mut Vec<RawEvent>,
        kind: &str,
        name: &str,
        event_type: EventType,
        mut object: Value,
    ) -> Result<Value, StoreError> {
        tx.execute(
            "INSERT INTO events (kind, name, type, body) VALUES (?1, ?2, ?3, '')",
            params![kind, name, encode(event_type)],
        )
        .map_err(backend)?;
        let rv = tx.last_insert_rowid() as u64;
        object::metadata_mut(&mut object)?.insert("resourceVersion".into(), Value::String(rv.to_string()));
        let body = serde_json::to_string(&object).map_err(backend)?;
        tx.execute(
            "UPDATE events SET body = ?1 WHERE rv = ?2",
            params![body, rv as i64],
        )
        .map_err(backend)?;
        if event_type == EventType::Deleted {
            tx.execute(
                "DELETE FROM objects WHERE kind = ?1 AND name = ?2",
                params![kind, name],
            )
            .map_err(backend)?;
        } else {
            tx.execute(
                "INSERT OR REPLACE INTO objects (kind, name, rv, body) VALUES (?1, ?2, ?3, ?4)",
                params![kind, name, rv as i64, body],
            )
            .map_err(backend)?;
        }
        events.push(RawEvent {
            kind: kind.to_string(),
            resource_version: rv,
            event_type,
            object: object.clone(),
        });
        Ok(object)
    }

    fn check_version(kind: &str, name: &str, given: &Value, current: u64) -> Result<(), StoreError> {
        match object::given_version(given) {
            Some(v) if v != current.to_string() => Err(StoreError::Conflict {
                kind: kind.to_string(),
                name: name.to_string(),
                given: v,
                current,
            }),
            _ => Ok(()),
        }
    }

    fn not_found(kind: &str, name: &str) -> StoreError {
        StoreError::NotFound {
            kind: kind.to_string(),
            name: name.to_string(),
        }
    }

    /// Writes `next` over `current`; an object being deleted whose last
    /// finalizer is gone is deleted now. An unchanged object is not written.
    fn update(
        tx: &Transaction<'_>,
        events: &mut Vec<RawEvent>,
        kind: &str,
        name: &str,
        current: Value,
        mut next: Value,
    ) -> Result<Value, StoreError> {
        // The stored resourceVersion is compared, not the writer's.
        let rv = current.pointer("/metadata/resourceVersion").cloned();
        if let Some(rv) = rv {
            object::metadata_mut(&mut next)?.insert("resourceVersion".into(), rv);
        }
        if next == current {
            return Ok(current);
        }
        if object::is_deleting(&next) && !object::has_finalizers(&next) {
            return Self::record(tx, events, kind, name, EventType::Deleted, next);
        }
        Self::record(tx, events, kind, name, EventType::Modified, next)
    }

    fn events_since(&self, kind: &str, since: u64) -> Result<Vec<RawEvent>, StoreError> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| backend("the store lock is poisoned"))?;
        let oldest: Option<i64> = conn
            .query_row("SELECT MIN(rv) FROM events", [], |r| r.get(0))
            .map_err(backend)?;
        if let Some(oldest) = oldest
            && since + 1 < oldest as u64
        {
            return Err(StoreError::Gone(since));
        }
        let mut stmt = conn
            .prepare("SELECT rv, type, body FROM events WHERE kind = ?1 AND rv > ?2 ORDER BY rv")
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![kind, since as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(backend)?;
        let mut out = Vec::new();
        for row in rows {
            let (rv, t, body) = row.map_err(backend)?;
            out.push(RawEvent {
                kind: kind.to_string(),
                resource_version: rv as u64,
                event_type: decode(&t)?,
                object: parse(&body)?,
            });
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn get(&self, kind: &str, name: &str) -> Result<Value, StoreError> {
        let (kind, name) = (kind.to_string(), name.to_string());
        self.run(move |inner| {
            let conn = inner
                .conn
                .lock()
                .map_err(|_| backend("the store lock is poisoned"))?;
            let body: Option<String> = conn
                .query_row(
                    "SELECT body FROM objects WHERE kind = ?1 AND name = ?2",
                    params![kind, name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            match body {
                Some(b) => parse(&b),
                None => Err(Inner::not_found(&kind, &name)),
            }
        })
        .await
    }

    async fn list(&self, kind: &str) -> Result<RawList, StoreError> {
        let kind = kind.to_string();
        self.run(move |inner| {
            let conn = inner
                .conn
                .lock()
                .map_err(|_| backend("the store lock is poisoned"))?;
            let rv: i64 = conn
                .query_row("SELECT COALESCE(MAX(rv), 0) FROM events", [], |r| r.get(0))
                .map_err(backend)?;
            let mut stmt = conn
                .prepare("SELECT body FROM objects WHERE kind = ?1 ORDER BY name")
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![kind], |r| r.get::<_, String>(0))
                .map_err(backend)?;
            let mut items = Vec::new();
            for row in rows {
                items.push(parse(&row.map_err(backend)?)?);
            }
            Ok(RawList {
                items,
                resource_version: rv as u64,
            })
        })
        .await
    }

    async fn create(&self, kind: &str, mut object: Value) -> Result<Value, StoreError> {
        let kind = kind.to_string();
        let name = object::name(&object)?;
        self.run(move |inner| {
            inner.transact(|tx, events| {
                if Inner::current(tx, &kind, &name)?.is_some() {
                    return Err(StoreError::AlreadyExists { kind, name });
                }
                let stamp = object::now();
                let meta = object::metadata_mut(&mut object)?;
                meta.remove("resourceVersion");
                meta.remove("deletionTimestamp");
                meta.insert("generation".into(), Value::from(1));
                meta.insert("creationTimestamp".into(), Value::String(stamp));
                let uid = format!(
                    "{:016x}-{}",
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_nanos() as u64)
                        .unwrap_or(0),
                    name
                );
                meta.insert("uid".into(), Value::String(uid));
                Inner::record(tx, events, &kind, &name, EventType::Added, object)
            })
        })
        .await
    }

    async fn replace(&self, kind: &str, object: Value) -> Result<Value, StoreError> {
        self.rewrite(kind, object, spec_update).await
    }

    async fn replace_status(&self, kind: &str, object: Value) -> Result<Value, StoreError> {
        self.rewrite(kind, object, status_update).await
    }

    async fn delete(&self, kind: &str, name: &str) -> Result<Option<Value>, StoreError> {
        let (kind, name) = (kind.to_string(), name.to_string());
        self.run(move |inner| {
            inner.transact(|tx, events| {
                let (_, current) =
                    Inner::current(tx, &kind, &name)?.ok_or_else(|| Inner::not_found(&kind, &name))?;
                if !object::has_finalizers(&current) {
                    Inner::record(tx, events, &kind, &name, EventType::Deleted, current)?;
                    return Ok(None);
                }
                if object::is_deleting(&current) {
                    return Ok(Some(current));
                }
                let mut next = current;
                object::metadata_mut(&mut next)?
                    .insert("deletionTimestamp".into(), Value::String(object::now()));
                Inner::record(tx, events, &kind, &name, EventType::Modified, next).map(Some)
            })
        })
        .await
    }

    async fn watch(&self, kind: &str, since: u64) -> Result<RawWatch, StoreError> {
        // Subscribe before reading the log so nothing falls between the two;
        // what is in both is dropped by resourceVersion.
        let mut live = self.inner.live.subscribe();
        let k = kind.to_string();
        let backlog = self.run(move |inner| inner.events_since(&k, since)).await?;
        let (tx, rx) = mpsc::channel::<Result<RawEvent, StoreError>>(256);
        let store = self.clone();
        let kind = kind.to_string();
        tokio::spawn(async move {
            let mut last = since;
            let mut pending = backlog;
            loop {
                for event in pending.drain(..) {
                    if event.resource_version > last {
                        last = event.resource_version;
                        if tx.send(Ok(event)).await.is_err() {
                            return;
                        }
                    }
                }
                match live.recv().await {
                    Ok(event) if event.kind == kind => pending.push(event),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Fell behind the live feed: catch up from the log.
                        let k = kind.clone();
                        match store.run(move |inner| inner.events_since(&k, last)).await {
                            Ok(events) => pending = events,
                            Err(e) => {
                                let _ = tx.send(Err(e)).await;
                                return;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|e| (e, rx))
        })))
    }
}
