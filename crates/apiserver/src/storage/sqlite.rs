//! Durable storage in one SQLite database (WAL, synchronous=FULL) shared by all logical
//! clusters: the live objects, a bounded event log for watch resumption after restart, and
//! each cluster's latest resourceVersion. One writer thread applies transactions in the order
//! they were submitted and group-commits whatever is queued, acknowledging each transaction
//! only after its commit. After each commit it runs every committed transaction's
//! `on_commit` step in submission (= resourceVersion) order, which is where the cluster
//! publishes the transaction's watch events, so watchers never see an uncommitted change. A
//! failed commit fails every transaction in the batch and marks their clusters failed: later
//! writes of those clusters are rejected without touching the database. It owns no in-memory
//! state beyond the queue and that set of failed clusters.

use std::collections::HashSet;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};

use rusqlite::{Connection, params};
use serde_json::Value;
use tokio::sync::oneshot;

use super::{EventType, HISTORY_LIMIT, WatchEvent};
use crate::errors::{Error, Result};

/// Most transactions folded into one SQLite commit.
const MAX_BATCH: usize = 4096;

/// Runs on the writer thread once a transaction's fate is known: `true` after its commit,
/// `false` if it will never be committed. Called in submission order, before the ack.
pub(crate) type OnCommit = Box<dyn FnOnce(bool) + Send>;

enum Msg {
    Write {
        cluster: String,
        rv: u64,
        events: Vec<Arc<WatchEvent>>,
        on_commit: OnCommit,
        ack: oneshot::Sender<Result<()>>,
    },
    Prune {
        cluster: String,
        rv: u64,
    },
    CreateCluster {
        cluster: String,
        ack: oneshot::Sender<Result<()>>,
    },
    DropCluster {
        cluster: String,
        ack: Option<oneshot::Sender<Result<()>>>,
    },
    Flush {
        ack: oneshot::Sender<Result<()>>,
    },
}

/// Handle to the writer thread. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Msg>,
    faults: FaultInjection,
}

#[derive(Debug, Default)]
struct FaultState {
    paused: bool,
    fail_next: usize,
    commits: u64,
}

/// Fault-injection point in the writer thread, for tests only (reached through the hidden
/// `Server::storage_faults`; nothing in `Config` turns it on). It can hold every batch before
/// its commit and make the next commits fail as a full disk would. Costs one uncontended
/// mutex lock per batch when unused.
#[doc(hidden)]
#[derive(Debug, Clone, Default)]
pub struct FaultInjection(Arc<(Mutex<FaultState>, Condvar)>);

impl FaultInjection {
    fn state(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.0.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hold every batch before its commit until `resume`.
    pub fn pause(&self) {
        self.state().paused = true;
    }

    /// Let held and later batches commit.
    pub fn resume(&self) {
        self.state().paused = false;
        self.0.1.notify_all();
    }

    /// Make the next `n` batches fail instead of committing (nothing of them is written).
    pub fn fail_next(&self, n: usize) {
        self.state().fail_next = n;
    }

    /// Number of batches committed so far (incremented right after COMMIT, before any
    /// watch event of the batch is published or any ack is sent).
    pub fn commits(&self) -> u64 {
        self.state().commits
    }

    /// Called before a batch is applied: waits while paused; an error means "fail it".
    fn before_commit(&self) -> Option<String> {
        let mut st = self.state();
        while st.paused {
            st = self.0.1.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        if st.fail_next > 0 {
            st.fail_next -= 1;
            return Some("injected commit failure".into());
        }
        None
    }

    fn committed(&self) {
        self.state().commits += 1;
    }
}

/// A stored event row.
#[derive(Debug)]
pub(crate) struct LoadedEvent {
    /// RV.
    pub(crate) rv: u64,
    /// Event type code.
    pub(crate) kind: i64,
    /// Storage key.
    pub(crate) key: String,
    /// Namespace.
    pub(crate) namespace: String,
    /// Name.
    pub(crate) name: String,
    /// Object.
    pub(crate) value: Value,
}

/// Everything stored for one cluster.
#[derive(Debug, Default)]
pub(crate) struct LoadedCluster {
    /// Latest RV.
    pub(crate) rv: u64,
    /// (key, namespace, name, object).
    pub(crate) objects: Vec<(String, String, String, Value)>,
    /// Retained events in RV order.
    pub(crate) events: Vec<LoadedEvent>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS clusters (name TEXT PRIMARY KEY, rv INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS objects (
  cluster TEXT NOT NULL, key TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL,
  rv INTEGER NOT NULL, value BLOB NOT NULL,
  PRIMARY KEY (cluster, key, ns, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
  cluster TEXT NOT NULL, rv INTEGER NOT NULL, type INTEGER NOT NULL, key TEXT NOT NULL,
  ns TEXT NOT NULL, name TEXT NOT NULL, value BLOB NOT NULL,
  PRIMARY KEY (cluster, rv)) WITHOUT ROWID;
";

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Open (or create) the database, load every cluster, and start the writer thread.
pub(crate) fn open(path: &Path) -> Result<(Writer, Vec<(String, LoadedCluster)>)> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(SCHEMA)?;
    let clusters = load(&conn)?;
    let (tx, rx) = mpsc::channel();
    let faults = FaultInjection::default();
    let thread_faults = faults.clone();
    std::thread::Builder::new()
        .name("apiserver-sqlite".into())
        .spawn(move || writer_loop(conn, rx, thread_faults))
        .map_err(|source| Error::Io {
            action: "spawn storage writer for",
            path: path.display().to_string(),
            source,
        })?;
    Ok((Writer { tx, faults }, clusters))
}

fn load(conn: &Connection) -> Result<Vec<(String, LoadedCluster)>> {
    let mut out = Vec::new();
    let names: Vec<(String, i64)> = conn
        .prepare("SELECT name, rv FROM clusters ORDER BY name")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, rv) in names {
        let mut loaded = LoadedCluster {
            rv: to_u64(rv),
            ..Default::default()
        };
        let mut stmt =
            conn.prepare("SELECT key, ns, name, value FROM objects WHERE cluster = ?1")?;
        let rows = stmt.query_map([&name], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Vec<u8>>(3)?,
            ))
        })?;
        for row in rows {
            let (key, ns, obj_name, value) = row?;
            match serde_json::from_slice(&value) {
                Ok(v) => loaded.objects.push((key, ns, obj_name, v)),
                Err(e) => {
                    tracing::warn!(cluster = %name, %key, %ns, name = %obj_name, "skipping unreadable stored object: {e}")
                }
            }
        }
        let since = to_i64(loaded.rv.saturating_sub(HISTORY_LIMIT as u64));
        let mut stmt = conn.prepare(
            "SELECT rv, type, key, ns, name, value FROM events WHERE cluster = ?1 AND rv > ?2 ORDER BY rv",
        )?;
        let rows = stmt.query_map(params![&name, since], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Vec<u8>>(5)?,
            ))
        })?;
        for row in rows {
            let (rv, kind, key, namespace, ev_name, value) = row?;
            let Ok(value) = serde_json::from_slice(&value) else {
                // A gap would break history contiguity: drop what came before it.
                loaded.events.clear();
                continue;
            };
            loaded.events.push(LoadedEvent {
                rv: to_u64(rv),
                kind,
                key,
                namespace,
                name: ev_name,
                value,
            });
        }
        out.push((name, loaded));
    }
    Ok(out)
}

impl Writer {
    /// Queue one transaction's events. After the commit of its batch (or its failure) the
    /// writer thread runs `on_commit`, then the receiver resolves. If the writer is gone,
    /// `on_commit` is dropped unrun and the receiver fails.
    pub(crate) fn submit(
        &self,
        cluster: &str,
        rv: u64,
        events: Vec<Arc<WatchEvent>>,
        on_commit: OnCommit,
    ) -> oneshot::Receiver<Result<()>> {
        let (ack, rx) = oneshot::channel();
        let _ = self.tx.send(Msg::Write {
            cluster: cluster.to_string(),
            rv,
            events,
            on_commit,
            ack,
        });
        rx
    }

    /// The writer's fault-injection point (tests).
    #[doc(hidden)]
    pub(crate) fn faults(&self) -> &FaultInjection {
        &self.faults
    }

    /// Record a new (empty) cluster durably.
    pub(crate) async fn create_cluster(&self, cluster: &str) -> Result<()> {
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Msg::CreateCluster {
                cluster: cluster.to_string(),
                ack,
            })
            .map_err(|_| Error::StorageClosed)?;
        rx.await.map_err(|_| Error::StorageClosed)?
    }

    /// Drop events at or below `rv`.
    pub(crate) fn prune(&self, cluster: &str, rv: u64) {
        let _ = self.tx.send(Msg::Prune {
            cluster: cluster.to_string(),
            rv,
        });
    }

    /// Delete every row of a cluster; resolves once committed.
    pub(crate) fn drop_cluster(&self, cluster: &str) -> oneshot::Receiver<Result<()>> {
        let (ack, rx) = oneshot::channel();
        let _ = self.tx.send(Msg::DropCluster {
            cluster: cluster.to_string(),
            ack: Some(ack),
        });
        rx
    }

    /// Resolves once everything queued before it is committed.
    pub(crate) async fn flush(&self) -> Result<()> {
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Msg::Flush { ack })
            .map_err(|_| Error::StorageClosed)?;
        rx.await.map_err(|_| Error::StorageClosed)?
    }
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Msg>, faults: FaultInjection) {
    // Clusters with a failed commit: their memory holds changes the disk does not, so nothing
    // later of theirs may be written (it could depend on the lost change) until removed.
    let mut failed: HashSet<String> = HashSet::new();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let mut rejected = Vec::new();
        let mut kept = Vec::with_capacity(batch.len());
        for msg in batch {
            match &msg {
                Msg::Write { cluster, .. } | Msg::Prune { cluster, .. }
                    if failed.contains(cluster) =>
                {
                    rejected.push(msg)
                }
                Msg::DropCluster { cluster, .. } => {
                    failed.remove(cluster);
                    kept.push(msg);
                }
                _ => kept.push(msg),
            }
        }
        let outcome = if kept.is_empty() {
            Ok(())
        } else if let Some(e) = faults.before_commit() {
            Err(e)
        } else {
            apply_batch(&mut conn, &kept).map_err(|e| e.to_string())
        };
        match &outcome {
            Ok(()) => faults.committed(),
            Err(e) => {
                tracing::error!("sqlite batch failed: {e}");
                for msg in &kept {
                    if let Msg::Write { cluster, .. } = msg {
                        failed.insert(cluster.clone());
                    }
                }
            }
        }
        for msg in kept {
            finish(msg, &outcome);
        }
        let earlier = Err("an earlier write of this logical cluster failed".to_string());
        for msg in rejected {
            finish(msg, &earlier);
        }
    }
}

/// Run a message's commit step and ack it.
fn finish(msg: Msg, outcome: &std::result::Result<(), String>) {
    let ack = match msg {
        Msg::Write { ack, on_commit, .. } => {
            on_commit(outcome.is_ok());
            ack
        }
        Msg::CreateCluster { ack, .. } | Msg::Flush { ack } => ack,
        Msg::DropCluster { ack: Some(ack), .. } => ack,
        Msg::Prune { .. } | Msg::DropCluster { ack: None, .. } => return,
    };
    let _ = ack.send(match outcome {
        Ok(()) => Ok(()),
        Err(e) => Err(Error::internal(format!("storage write failed: {e}"))),
    });
}

fn apply_batch(conn: &mut Connection, batch: &[Msg]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut put_obj = tx.prepare_cached(
            "INSERT OR REPLACE INTO objects (cluster, key, ns, name, rv, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut del_obj = tx.prepare_cached(
            "DELETE FROM objects WHERE cluster = ?1 AND key = ?2 AND ns = ?3 AND name = ?4",
        )?;
        let mut put_ev = tx.prepare_cached(
            "INSERT OR REPLACE INTO events (cluster, rv, type, key, ns, name, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut put_rv = tx.prepare_cached(
            "INSERT INTO clusters (name, rv) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET rv = excluded.rv",
        )?;
        for msg in batch {
            match msg {
                Msg::Write {
                    cluster,
                    rv,
                    events,
                    ..
                } => {
                    for e in events {
                        let value = serde_json::to_vec(&*e.object).map_err(|err| {
                            rusqlite::Error::ToSqlConversionFailure(Box::new(err))
                        })?;
                        let key: &str = &e.key;
                        match e.kind {
                            EventType::Deleted => {
                                del_obj.execute(params![cluster, key, e.namespace, e.name])?;
                            }
                            _ => {
                                put_obj.execute(params![
                                    cluster,
                                    key,
                                    e.namespace,
                                    e.name,
                                    to_i64(e.rv),
                                    value
                                ])?;
                            }
                        }
                        put_ev.execute(params![
                            cluster,
                            to_i64(e.rv),
                            e.kind.code(),
                            key,
                            e.namespace,
                            e.name,
                            value
                        ])?;
                    }
                    put_rv.execute(params![cluster, to_i64(*rv)])?;
                }
                Msg::CreateCluster { cluster, .. } => {
                    tx.execute(
                        "INSERT OR IGNORE INTO clusters (name, rv) VALUES (?1, 0)",
                        [cluster],
                    )?;
                }
                Msg::Prune { cluster, rv } => {
                    tx.execute(
                        "DELETE FROM events WHERE cluster = ?1 AND rv <= ?2",
                        params![cluster, to_i64(*rv)],
                    )?;
                }
                Msg::Flush { .. } => {}
                Msg::DropCluster { cluster, .. } => {
                    tx.execute("DELETE FROM objects WHERE cluster = ?1", [cluster])?;
                    tx.execute("DELETE FROM events WHERE cluster = ?1", [cluster])?;
                    tx.execute("DELETE FROM clusters WHERE name = ?1", [cluster])?;
                }
            }
        }
    }
    tx.commit()
}
