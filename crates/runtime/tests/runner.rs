//! The runner's behaviour against an in-process mock API server (a tower service answering
//! list and watch of ConfigMaps), on Tokio's paused clock: per-object backoff doubles and
//! resets on success, entries are dropped when the object is deleted, a 409 Conflict is
//! retried soon without backoff, shutdown lets in-flight reconciles finish, and every
//! controller of a process shares one watch per kind.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use flotilla_runtime::{
    Context, ContextOptions, ReconcileError, Runner, Settings, metrics::Metrics,
};
use futures::StreamExt;
use http::{Request, Response};
use http_body_util::{BodyExt, StreamBody, combinators::UnsyncBoxBody};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Client, ResourceExt,
    runtime::{controller::Action, reflector::ObjectRef},
};
use serde_json::json;
use tokio::{
    sync::mpsc,
    time::{Instant, sleep},
};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// A mock API server holding ConfigMaps: lists them, and streams the events the test sends to
/// the first watch (later watches stay open and silent).
struct Mock {
    objects: Vec<serde_json::Value>,
    events: Mutex<Option<mpsc::UnboundedReceiver<Bytes>>>,
    requests: Mutex<BTreeMap<String, usize>>,
}

fn configmap(name: &str, uid: &str, rv: u32) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "uid": uid, "resourceVersion": rv.to_string()},
    })
}

fn event(type_: &str, object: serde_json::Value) -> Bytes {
    Bytes::from(format!("{}\n", json!({"type": type_, "object": object})))
}

impl Mock {
    fn client(
        objects: Vec<serde_json::Value>,
    ) -> (Client, Arc<Mock>, mpsc::UnboundedSender<Bytes>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mock = Arc::new(Mock {
            objects,
            events: Mutex::new(Some(rx)),
            requests: Mutex::default(),
        });
        let serving = mock.clone();
        let service = tower::service_fn(move |request: Request<kube::client::Body>| {
            let mock = serving.clone();
            async move {
                // Secrets list slowly: their cache syncs a second after the ConfigMaps'.
                if request.uri().path() == "/api/v1/secrets" {
                    sleep(Duration::from_secs(1)).await;
                }
                Ok::<_, Infallible>(mock.answer(&request))
            }
        });
        (Client::new(service, "default"), mock, tx)
    }

    fn answer(&self, request: &Request<kube::client::Body>) -> Response<Body> {
        let uri = request.uri();
        let watch = uri.query().is_some_and(|q| q.contains("watch=true"));
        let key = format!("{} {}", if watch { "watch" } else { "list" }, uri.path());
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default() += 1;
        if !watch && uri.path() == "/api/v1/secrets" {
            let list = json!({
                "apiVersion": "v1", "kind": "SecretList", "metadata": {"resourceVersion": "10"},
                "items": [{"apiVersion": "v1", "kind": "Secret",
                           "metadata": {"name": "s", "namespace": "default", "resourceVersion": "3"}}],
            });
            return Response::new(
                http_body_util::Full::new(Bytes::from(list.to_string())).boxed_unsync(),
            );
        }
        if !watch {
            let list = json!({
                "apiVersion": "v1", "kind": "ConfigMapList",
                "metadata": {"resourceVersion": "10"}, "items": self.objects,
            });
            return Response::new(
                http_body_util::Full::new(Bytes::from(list.to_string())).boxed_unsync(),
            );
        }
        let events = if uri.path() == "/api/v1/configmaps" {
            self.events.lock().unwrap_or_else(|p| p.into_inner()).take()
        } else {
            None
        };
        let body = match events {
            Some(rx) => StreamBody::new(
                UnboundedReceiverStream::new(rx).map(|b| Ok(http_body::Frame::data(b))),
            )
            .boxed_unsync(),
            None => StreamBody::new(futures::stream::pending::<
                Result<http_body::Frame<Bytes>, Infallible>,
            >())
            .boxed_unsync(),
        };
        Response::new(body)
    }

    fn requests(&self, key: &str) -> usize {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
            .unwrap_or(0)
    }
}

#[derive(Debug, thiserror::Error)]
enum TestError {
    #[error("the write failed")]
    Failed,
    #[error("the object changed")]
    Conflict,
}

impl ReconcileError for TestError {
    fn reason(&self) -> &'static str {
        "WriteSomething"
    }
    fn is_conflict(&self) -> bool {
        matches!(self, TestError::Conflict)
    }
}

/// What a test's reconcile does on each call, and when each call happened.
#[derive(Default)]
struct Script {
    /// Per call (by index), the outcome; past the end, success.
    outcomes: Vec<Option<TestError>>,
    calls: Mutex<Vec<Instant>>,
    /// How long each reconcile takes.
    work: Duration,
    finished: AtomicUsize,
}

impl Script {
    fn calls(&self) -> Vec<Instant> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

async fn reconcile(_: Arc<ConfigMap>, script: Arc<Script>) -> Result<Action, TestError> {
    let index = {
        let mut calls = script.calls.lock().unwrap_or_else(|p| p.into_inner());
        calls.push(Instant::now());
        calls.len() - 1
    };
    sleep(script.work).await;
    script.finished.fetch_add(1, Ordering::SeqCst);
    match script.outcomes.get(index) {
        Some(Some(TestError::Failed)) => Err(TestError::Failed),
        Some(Some(TestError::Conflict)) => Err(TestError::Conflict),
        _ => Ok(Action::await_change()),
    }
}

const BASE: Duration = Duration::from_millis(100);

fn settings() -> Settings {
    Settings {
        concurrency: 2,
        backoff_base: BASE,
        backoff_max: Duration::from_secs(10),
        conflict_retry: Duration::from_millis(30),
    }
}

fn context(client: Client) -> Arc<Context> {
    Context::new(
        client,
        Arc::new(Metrics::default()),
        CancellationToken::new(),
        ContextOptions::default(),
    )
}

async fn wait_calls(script: &Script, n: usize) {
    for _ in 0..10_000 {
        if script.calls().len() >= n {
            return;
        }
        sleep(Duration::from_millis(5)).await;
    }
    panic!("only {} of {n} calls happened", script.calls().len());
}

fn gaps(calls: &[Instant]) -> Vec<Duration> {
    calls.windows(2).map(|w| w[1] - w[0]).collect()
}

/// `got` is `want` or at most 20 ms later (the timer's granularity).
fn about(got: Duration, want: Duration) -> bool {
    got >= want && got <= want + Duration::from_millis(20)
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_doubling_and_a_success_resets_the_backoff() {
    let (client, _mock, events) = Mock::client(vec![configmap("a", "uid-a", 1)]);
    let ctx = context(client);
    let script = Arc::new(Script {
        outcomes: vec![
            Some(TestError::Failed),
            Some(TestError::Failed),
            Some(TestError::Failed),
            None,
            Some(TestError::Failed),
        ],
        ..Default::default()
    });
    let runner = Runner::<ConfigMap>::new(&ctx, "test", settings()).expect("runner");
    ctx.start();
    let running = tokio::spawn(runner.run(reconcile, script.clone()));
    wait_calls(&script, 4).await;
    // A change after the success: the next failure waits the base delay again.
    events
        .send(event("MODIFIED", configmap("a", "uid-a", 11)))
        .expect("send");
    wait_calls(&script, 6).await;
    let gaps = gaps(&script.calls());
    for (i, want) in [BASE, BASE * 2, BASE * 4].into_iter().enumerate() {
        assert!(
            about(gaps[i], want),
            "gap {i}: {:?}, want {want:?}",
            gaps[i]
        );
    }
    assert!(about(gaps[4], BASE), "after a success: {:?}", gaps[4]);
    let metrics = ctx.metrics().render();
    assert!(
        metrics.contains(
            "flotilla_controller_reconcile_errors_total{controller=\"test\",reason=\"WriteSomething\"} 4"
        ),
        "{metrics}"
    );
    ctx.stop().cancel();
    running.await.expect("runner stops");
}

#[tokio::test(start_paused = true)]
async fn a_conflict_is_retried_soon_without_backoff() {
    let (client, _mock, _events) = Mock::client(vec![configmap("a", "uid-a", 1)]);
    let ctx = context(client);
    let script = Arc::new(Script {
        outcomes: (0..4).map(|_| Some(TestError::Conflict)).collect(),
        ..Default::default()
    });
    let runner = Runner::<ConfigMap>::new(&ctx, "test", settings()).expect("runner");
    ctx.start();
    let running = tokio::spawn(runner.run(reconcile, script.clone()));
    wait_calls(&script, 5).await;
    for (i, gap) in gaps(&script.calls()).into_iter().enumerate() {
        assert!(about(gap, Duration::from_millis(30)), "gap {i}: {gap:?}");
    }
    let metrics = ctx.metrics().render();
    assert!(
        metrics.contains("reason=\"Conflict\"} 4"),
        "conflicts are counted by their own reason: {metrics}"
    );
    ctx.stop().cancel();
    running.await.expect("runner stops");
}

#[tokio::test(start_paused = true)]
async fn a_deleted_object_starts_its_backoff_over() {
    let (client, _mock, events) = Mock::client(vec![configmap("a", "uid-a", 1)]);
    let ctx = context(client);
    let script = Arc::new(Script {
        outcomes: (0..6).map(|_| Some(TestError::Failed)).collect(),
        ..Default::default()
    });
    let runner = Runner::<ConfigMap>::new(&ctx, "test", settings()).expect("runner");
    ctx.start();
    let running = tokio::spawn(runner.run(reconcile, script.clone()));
    // Three failures: the next retry would wait 4 × BASE.
    wait_calls(&script, 3).await;
    events
        .send(event("DELETED", configmap("a", "uid-a", 12)))
        .expect("send");
    sleep(Duration::from_secs(5)).await;
    let before = script.calls().len();
    events
        .send(event("ADDED", configmap("a", "uid-a2", 13)))
        .expect("send");
    wait_calls(&script, before + 2).await;
    let calls = script.calls();
    let gap = calls[before + 1] - calls[before];
    assert!(
        about(gap, BASE),
        "a recreated object's first retry waits the base delay, not the old count's: {gap:?}"
    );
    ctx.stop().cancel();
    running.await.expect("runner stops");
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_in_flight_reconciles_and_starts_no_new_ones() {
    let objects = vec![configmap("a", "uid-a", 1), configmap("b", "uid-b", 2)];
    let (client, _mock, events) = Mock::client(objects);
    let ctx = context(client);
    let script = Arc::new(Script {
        work: Duration::from_secs(2),
        ..Default::default()
    });
    let runner = Runner::<ConfigMap>::new(&ctx, "test", settings()).expect("runner");
    ctx.start();
    let running = tokio::spawn(runner.run(reconcile, script.clone()));
    wait_calls(&script, 2).await;
    assert_eq!(script.finished.load(Ordering::SeqCst), 0, "both in flight");
    ctx.stop().cancel();
    // A change arriving during shutdown starts nothing.
    let _ = events.send(event("MODIFIED", configmap("a", "uid-a", 20)));
    running.await.expect("runner stops");
    assert_eq!(
        (script.calls().len(), script.finished.load(Ordering::SeqCst)),
        (2, 2),
        "the in-flight reconciles finished and none started after the stop"
    );
}

#[tokio::test(start_paused = true)]
async fn controllers_of_one_process_share_one_watch_per_kind() {
    let (client, mock, _events) = Mock::client(vec![configmap("a", "uid-a", 1)]);
    let ctx = context(client);
    let first = Arc::new(Script::default());
    let second = Arc::new(Script::default());
    let one = Runner::<ConfigMap>::new(&ctx, "one", settings()).expect("runner");
    let two = Runner::<ConfigMap>::new(&ctx, "two", settings())
        .expect("runner")
        .watches(|cm: Arc<ConfigMap>| [ObjectRef::from_obj(cm.as_ref())])
        .expect("watches");
    ctx.start();
    let a = tokio::spawn(one.run(reconcile, first.clone()));
    let b = tokio::spawn(two.run(reconcile, second.clone()));
    wait_calls(&first, 1).await;
    wait_calls(&second, 1).await;
    assert_eq!(mock.requests("watch /api/v1/configmaps"), 1);
    assert_eq!(mock.requests("list /api/v1/configmaps"), 1);
    assert!(ctx.caches().synced());
    // A kind asked for after the caches started is refused: it would miss the initial list.
    assert!(Runner::<k8s_openapi::api::core::v1::Secret>::new(&ctx, "late", settings()).is_err());
    ctx.stop().cancel();
    a.await.expect("stops");
    b.await.expect("stops");
}

/// Reconciles that read another kind's store: they see it complete.
struct Reader {
    secrets: kube::runtime::reflector::Store<k8s_openapi::api::core::v1::Secret>,
    seen: Mutex<Vec<usize>>,
}

async fn read_secrets(_: Arc<ConfigMap>, reader: Arc<Reader>) -> Result<Action, TestError> {
    let seen = reader.secrets.state().len();
    reader
        .seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(seen);
    Ok(Action::await_change())
}

#[tokio::test(start_paused = true)]
async fn reconciles_start_only_once_every_cache_is_filled() {
    let objects = (0..4)
        .map(|i| configmap(&format!("c{i}"), &format!("uid-{i}"), i))
        .collect();
    let (client, _mock, _events) = Mock::client(objects);
    let ctx = context(client);
    let secrets = ctx
        .caches()
        .get::<k8s_openapi::api::core::v1::Secret>()
        .expect("secret cache")
        .store();
    let reader = Arc::new(Reader {
        secrets,
        seen: Mutex::default(),
    });
    let runner = Runner::<ConfigMap>::new(&ctx, "reader", settings()).expect("runner");
    ctx.start();
    let running = tokio::spawn(runner.run(read_secrets, reader.clone()));
    for _ in 0..1000 {
        if reader.seen.lock().unwrap_or_else(|p| p.into_inner()).len() >= 4 {
            break;
        }
        sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        *reader.seen.lock().unwrap_or_else(|p| p.into_inner()),
        [1, 1, 1, 1],
        "every reconcile ran after the slow Secret cache was filled"
    );
    ctx.stop().cancel();
    running.await.expect("stops");
}

#[tokio::test(start_paused = true)]
async fn more_objects_than_the_subscription_buffer_are_all_reconciled() {
    let objects = (0..3000)
        .map(|i| configmap(&format!("c{i}"), &format!("uid-{i}"), i))
        .collect();
    let (client, _mock, _events) = Mock::client(objects);
    let ctx = context(client);
    let script = Arc::new(Script::default());
    let runner = Runner::<ConfigMap>::new(
        &ctx,
        "many",
        Settings {
            concurrency: 64,
            ..settings()
        },
    )
    .expect("runner");
    ctx.start();
    let running = tokio::spawn(runner.run(reconcile, script.clone()));
    wait_calls(&script, 3000).await;
    ctx.stop().cancel();
    running.await.expect("stops");
}

/// Reconciles that record which object they were for.
#[derive(Default)]
struct Names(Mutex<Vec<String>>);

async fn record_name(cm: Arc<ConfigMap>, names: Arc<Names>) -> Result<Action, TestError> {
    names
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(cm.name_any());
    Ok(Action::await_change())
}

#[tokio::test(start_paused = true)]
async fn a_related_object_deleted_wakes_what_it_mapped_to() {
    let (client, _mock, events) =
        Mock::client(vec![configmap("a", "uid-a", 1), configmap("b", "uid-b", 2)]);
    let ctx = context(client);
    let names = Arc::new(Names::default());
    // `b` stands for an object of another kind that names `a` (a Machine its MachineSet).
    let runner = Runner::<ConfigMap>::new(&ctx, "owner", settings())
        .expect("runner")
        .watches(|cm: Arc<ConfigMap>| {
            (cm.name_any() == "b").then(|| ObjectRef::<ConfigMap>::new("a").within("default"))
        })
        .expect("watches");
    ctx.start();
    let running = tokio::spawn(runner.run(record_name, names.clone()));
    let seen = || names.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for _ in 0..1000 {
        if seen().contains(&"a".to_owned()) && seen().contains(&"b".to_owned()) {
            break;
        }
        sleep(Duration::from_millis(10)).await;
    }
    sleep(Duration::from_secs(1)).await;
    let before = seen().iter().filter(|n| *n == "a").count();
    let _ = events.send(event("DELETED", configmap("b", "uid-b", 3)));
    for _ in 0..1000 {
        if seen().iter().filter(|n| *n == "a").count() > before {
            break;
        }
        sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        seen().iter().filter(|n| *n == "a").count(),
        before + 1,
        "deleting b woke a once: {:?}",
        seen()
    );
    ctx.stop().cancel();
    running.await.expect("stops");
}
