//! Watch streams: newline-delimited `{"type","object"}` events in resourceVersion order, with
//! resourceVersion ""/"0"/N semantics, selector transitions (an object leaving the selector is
//! DELETED, entering it is ADDED), BOOKMARKs, `timeoutSeconds`, `sendInitialEvents`, and a
//! 410 Expired ERROR event when N is older than the retained history.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::app::ResourceRequest;
use crate::errors::{Error, Result};
use crate::handlers::crud::render;
use crate::registry::ResourceInfo;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::storage::{EventType, WatchEvent};

/// How often a watch that asked for bookmarks gets one (the server's default).
pub(crate) const BOOKMARK_INTERVAL: Duration = Duration::from_secs(15);

struct Filter {
    key: String,
    namespace: Option<String>,
    /// The one object watched on a deprecated `/watch/.../<name>` path.
    name: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        self.name
            .as_deref()
            .is_none_or(|n| obj.pointer("/metadata/name").and_then(Value::as_str) == Some(n))
            && self.labels.matches(obj)
            && self.fields.matches(obj)
    }

    /// The event to send for a change, if any.
    fn translate(&self, e: &WatchEvent) -> Option<&'static str> {
        if *e.key != *self.key {
            return None;
        }
        if let Some(ns) = &self.namespace
            && *ns != e.namespace
        {
            return None;
        }
        let now = self.matches(&e.object);
        match e.kind {
            EventType::Added => now.then_some("ADDED"),
            EventType::Deleted => now.then_some("DELETED"),
            EventType::Modified => {
                let before = e.prev.as_ref().map(|p| self.matches(p)).unwrap_or(now);
                match (before, now) {
                    (true, true) => Some("MODIFIED"),
                    (false, true) => Some("ADDED"),
                    (true, false) => Some("DELETED"),
                    (false, false) => None,
                }
            }
        }
    }
}

fn line(kind: &str, body: Vec<u8>) -> Bytes {
    let mut out = Vec::with_capacity(body.len() + 32);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend(body);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

fn bookmark(info: &ResourceInfo, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let obj = json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": meta});
    line("BOOKMARK", serde_json::to_vec(&obj).unwrap_or_default())
}

fn error_event(e: &Error) -> Bytes {
    line(
        "ERROR",
        serde_json::to_vec(&e.to_status()).unwrap_or_default(),
    )
}

/// `GET ...?watch=true`, or `GET` of a deprecated `/watch/` path (which may name one object).
pub(crate) fn watch(rr: ResourceRequest) -> Result<Response> {
    let info = rr.info.clone();
    if info.namespaced && rr.name.is_some() && rr.namespace.is_none() {
        return Err(Error::path_not_found());
    }
    let filter = Filter {
        key: info.storage_key(),
        namespace: rr.namespace.clone().filter(|_| info.namespaced),
        name: rr.name.clone(),
        labels: LabelSelector::parse(rr.query.get("labelSelector").unwrap_or(""))?,
        fields: FieldSelector::parse(
            rr.query.get("fieldSelector").unwrap_or(""),
            &info.kind,
            &info.api_version(),
        )?,
    };
    let bookmarks = rr.query.flag("allowWatchBookmarks");
    let timeout = match rr.query.get("timeoutSeconds") {
        Some(t) if !t.is_empty() => {
            Some(Duration::from_secs(t.parse::<u64>().map_err(|_| {
                Error::bad_request(format!("invalid timeoutSeconds {t:?}"))
            })?))
        }
        _ => None,
    };
    let send_initial = rr.query.flag("sendInitialEvents");
    // `kubectl get -w`: every event's object is a one-row Table; only the first carries the
    // column definitions.
    let table = match rr.table {
        Some(version) => Some((
            version,
            crate::handlers::table::Include::of(rr.query.get("includeObject"))?,
        )),
        None => None,
    };
    let first = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let encode = {
        let info = info.clone();
        let first = first.clone();
        move |o: &Value| -> Vec<u8> {
            let rendered = render(&info, o);
            let Some((version, include)) = table else {
                return rendered;
            };
            let obj: Value = serde_json::from_slice(&rendered).unwrap_or(Value::Null);
            let rv = o
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(Value::Null);
            let definitions = first.swap(false, std::sync::atomic::Ordering::Relaxed);
            let t = crate::handlers::table::table(
                &info,
                version,
                &[obj],
                json!({"resourceVersion": rv}),
                include,
                definitions,
            );
            serde_json::to_vec(&t).unwrap_or_default()
        }
    };
    let bookmark_interval = rr.bookmark_interval.max(Duration::from_millis(10));
    let rv_param = rr.query.get("resourceVersion").unwrap_or("").to_string();
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(256);
    let mut initial: Vec<Bytes> = Vec::new();
    let mut last_rv;
    let events;
    // The snapshot may hold changes still being committed: shown only once they are.
    let mut snapshot_rv = None;
    if rv_param.is_empty() || rv_param == "0" || send_initial {
        let (objs, rv, receiver) = rr.cluster.snapshot_and_watch(|s| {
            s.objects(&filter.key)
                .map(|objs| {
                    objs.iter()
                        .filter(|((ns, _), o)| {
                            filter.namespace.as_ref().is_none_or(|n| n == ns) && filter.matches(o)
                        })
                        .map(|(_, o)| o.clone())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        });
        for o in objs {
            initial.push(line("ADDED", encode(&o)));
        }
        if send_initial && bookmarks {
            initial.push(bookmark(&info, rv, true));
        }
        last_rv = rv;
        snapshot_rv = Some(rv);
        events = Ok((Vec::new(), receiver));
    } else {
        let n: u64 = rv_param
            .parse()
            .map_err(|_| Error::bad_request(format!("invalid resourceVersion {rv_param:?}")))?;
        // A resourceVersion the server has not reached yet is waited for, as kube-apiserver
        // does: nothing is sent until changes after it happen (or `timeoutSeconds` ends it).
        last_rv = n;
        events = rr.cluster.watch_from(n);
    }
    let cluster = rr.cluster.clone();
    let removed = cluster.removed();
    let task = async move {
        let send = |b: Bytes| {
            let tx = tx.clone();
            async move { tx.send(Ok(b)).await.is_ok() }
        };
        if let Some(rv) = snapshot_rv
            && let Err(e) = cluster.wait_committed(rv).await
        {
            let _ = send(error_event(&e)).await;
            return;
        }
        for b in initial {
            if !send(b).await {
                return;
            }
        }
        let (backlog, mut receiver) = match events {
            Ok(x) => x,
            Err(e) => {
                let _ = send(error_event(&e)).await;
                return;
            }
        };
        let deliver = |e: &WatchEvent| filter.translate(e).map(|k| line(k, encode(&e.object)));
        for e in backlog {
            last_rv = e.rv;
            if let Some(b) = deliver(&e)
                && !send(b).await
            {
                return;
            }
        }
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut tick = tokio::time::interval(bookmark_interval);
        tick.tick().await;
        tokio::pin!(removed);
        loop {
            let sleep_until = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = sleep_until => return,
                _ = tx.closed() => return,
                _ = &mut removed => return,
                _ = tick.tick(), if bookmarks => {
                    if !send(bookmark(&info, last_rv, false)).await {
                        return;
                    }
                }
                r = receiver.recv() => match r {
                    Ok(e) => {
                        if e.rv <= last_rv {
                            continue;
                        }
                        last_rv = e.rv;
                        if let Some(b) = deliver(&e)
                            && !send(b).await
                        {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Catch up from the retained history.
                        match cluster.read(|s| s.events_since(last_rv)) {
                            Some(missed) => {
                                for e in missed {
                                    last_rv = e.rv;
                                    if let Some(b) = deliver(&e)
                                        && !send(b).await
                                    {
                                        return;
                                    }
                                }
                            }
                            None => {
                                let _ = send(error_event(&Error::gone(format!(
                                    "too old resource version: {last_rv}"
                                ))))
                                .await;
                                return;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    };
    tokio::spawn(tracing::Instrument::in_current_span(task));
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.extensions_mut().insert(crate::app::Streamed);
    Ok(resp)
}
