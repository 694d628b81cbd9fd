//! Auto-join: a cluster a provider created joins the fleet by itself, and leaves it when its
//! machines go. The provider contract's kubeconfig Secret (`<cluster>-kubeconfig`, key `value`,
//! labelled `cluster.flotilla.io/cluster-name`) in a namespace where the cluster has machines is
//! joined through the same path as `flotilla join` (a ServiceAccount for the hub in the member,
//! a Cluster and credentials Secret on the hub), with the Cluster annotated
//! [`JOINED_FROM`](crate::local_provider::JOINED_FROM). When every machine of the cluster is
//! being deleted and its control plane is not being replaced, the Cluster is unjoined: the
//! scheduler moves its workloads to other members while the Cluster is being deleted, and only
//! then does the provider stop the control plane.
//!
//! With `--capi-kubeconfig`, clusters Cluster API created on a management cluster are joined
//! the same way once they report `Provisioned` and their kubeconfig Secret exists (Karmada's
//! cluster-api detector), and unjoined when they are deleted.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use flotilla_api::{
    Cluster,
    keys::labels,
    provisioning::{Machine, MachineRole},
};
use flotilla_runtime::{Context, Runner, Settings};
use futures::{FutureExt, StreamExt, future::BoxFuture};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client, ResourceExt,
    api::{ApiResource, DynamicObject, GroupVersionKind},
    config::Kubeconfig,
    runtime::{
        WatchStreamExt, controller::Action, reflector::ObjectRef, reflector::Store, watcher,
    },
};
use tracing::{info, warn};

use crate::local_provider::{self, Error, JOINED_FROM, kubeconfig_secret};

/// How auto-join runs.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// A Cluster API management cluster whose clusters are joined too.
    pub capi_kubeconfig: Option<PathBuf>,
}

struct State {
    hub: Client,
    machines: Store<Machine>,
}

/// What `JOINED_FROM` says for a kubeconfig Secret.
fn joined_from(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

fn join_options(
    cluster: &str,
    source: &str,
    provider: Option<String>,
    from: String,
) -> crate::join::JoinOptions {
    crate::join::JoinOptions {
        name: cluster.to_owned(),
        kubeconfig: PathBuf::from(source),
        context: None,
        labels: BTreeMap::from([(labels::MACHINE_CLUSTER_NAME.to_owned(), cluster.to_owned())]),
        annotations: BTreeMap::from([(JOINED_FROM.to_owned(), from)]),
        provider,
        region: None,
        zone: None,
        token_timeout: Duration::from_secs(30),
    }
}

fn secret_kubeconfig(secret: &Secret) -> Option<Kubeconfig> {
    let value = secret.data.as_ref()?.get("value")?;
    Kubeconfig::from_yaml(std::str::from_utf8(&value.0).ok()?).ok()
}

/// Joins the cluster `options` names unless a member of that name exists (one joined from
/// elsewhere is left alone, with a warning).
async fn ensure_joined(
    hub: &Client,
    options: &crate::join::JoinOptions,
    kubeconfig: Kubeconfig,
) -> Result<(), Error> {
    let clusters: Api<Cluster> = Api::all(hub.clone());
    let from = options.annotations.get(JOINED_FROM).cloned();
    match clusters
        .get_opt(&options.name)
        .await
        .map_err(|e| Error::api("ReadCluster", &options.name, &e))?
    {
        Some(existing) => {
            if existing.annotations().get(JOINED_FROM) != from.as_ref() {
                warn!(cluster = %options.name, "a member of this name exists and was not joined from {}; leaving it", options.kubeconfig.display());
            }
            Ok(())
        }
        None => {
            crate::join::join_with(hub, options, kubeconfig)
                .await
                .map_err(|e| Error::new("JoinCluster", format!("{e:#}")))?;
            info!(cluster = %options.name, from = %options.kubeconfig.display(), "joined a provisioned cluster to the fleet");
            Ok(())
        }
    }
}

/// Unjoins `cluster` if it is the member joined from `from`.
async fn ensure_unjoined(hub: &Client, cluster: &str, from: &str) -> Result<(), Error> {
    let clusters: Api<Cluster> = Api::all(hub.clone());
    let Some(existing) = clusters
        .get_opt(cluster)
        .await
        .map_err(|e| Error::api("ReadCluster", cluster, &e))?
    else {
        return Ok(());
    };
    if existing.annotations().get(JOINED_FROM).map(String::as_str) != Some(from) {
        return Ok(());
    }
    info!(%cluster, "the cluster is going: unjoining it (its workloads move to other members)");
    crate::join::unjoin(
        hub,
        &crate::join::UnjoinOptions {
            name: cluster.to_owned(),
            delete_member_objects: false,
            timeout: Duration::from_secs(120),
        },
    )
    .await
    .map_err(|e| Error::new("UnjoinCluster", format!("{e:#}")))?;
    Ok(())
}

async fn reconcile(secret: Arc<Secret>, state: Arc<State>) -> Result<Action, Error> {
    let Some(cluster) = secret.labels().get(labels::MACHINE_CLUSTER_NAME).cloned() else {
        return Ok(Action::await_change());
    };
    let name = secret.name_any();
    if name != kubeconfig_secret(&cluster) {
        return Ok(Action::await_change());
    }
    let namespace = secret.namespace().unwrap_or_default();
    let machines: Vec<Arc<Machine>> = state
        .machines
        .state()
        .into_iter()
        .filter(|m| {
            m.namespace().as_deref() == Some(namespace.as_str()) && m.spec.cluster_name == cluster
        })
        .collect();
    let from = joined_from(&namespace, &name);
    let live = machines
        .iter()
        .any(|m| m.metadata.deletion_timestamp.is_none());
    if live && secret.metadata.deletion_timestamp.is_none() {
        let Some(kubeconfig) = secret_kubeconfig(&secret) else {
            warn!(secret = %from, "the kubeconfig Secret holds no kubeconfig under key value");
            return Ok(Action::await_change());
        };
        let provider = machines
            .first()
            .map(|m| m.spec.infrastructure_ref.provider.clone());
        let options = join_options(&cluster, &format!("Secret {from}"), provider, from);
        ensure_joined(&state.hub, &options, kubeconfig).await?;
        return Ok(Action::await_change());
    }
    // Every machine is going: the cluster goes too, unless its control plane is being
    // replaced (a MachineSet rolling it).
    let mut going = !machines.is_empty() || secret.metadata.deletion_timestamp.is_some();
    for machine in machines
        .iter()
        .filter(|m| m.spec.role == MachineRole::ControlPlane)
    {
        going &= local_provider::cluster_going(&state.hub, machine).await?;
    }
    if going {
        ensure_unjoined(&state.hub, &cluster, &from).await?;
    }
    Ok(Action::await_change())
}

/// The controller: woken by kubeconfig Secrets and by the machines of their clusters.
///
/// # Errors
///
/// When the shared caches already started.
pub fn controller(ctx: &Arc<Context>, options: Options) -> anyhow::Result<BoxFuture<'static, ()>> {
    let machines = ctx.caches().get::<Machine>()?.store();
    let runner = Runner::<Secret>::new(
        ctx,
        "auto-join",
        Settings {
            backoff_base: Duration::from_millis(500),
            ..Settings::new(4)
        },
    )?
    .watches(|machine: Arc<Machine>| {
        vec![
            ObjectRef::<Secret>::new(&kubeconfig_secret(&machine.spec.cluster_name))
                .within(&machine.namespace().unwrap_or_default()),
        ]
    })?;
    let state = Arc::new(State {
        hub: ctx.client().clone(),
        machines,
    });
    let local = runner.run(reconcile, state);
    let Some(path) = options.capi_kubeconfig else {
        return Ok(local.boxed());
    };
    let hub = ctx.client().clone();
    let stop = ctx.stop().clone();
    Ok(async move {
        tokio::select! {
            () = local => {}
            () = capi(hub, path, stop) => {}
        }
    }
    .boxed())
}

/// Cluster API's Cluster kind on the management cluster.
fn capi_cluster_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cluster.x-k8s.io", "v1beta1", "Cluster"),
        "clusters",
    )
}

/// Whether a Cluster API Cluster reports provisioned (`status.phase`, or v1beta2's
/// `status.initialization.controlPlaneInitialized`).
pub fn capi_provisioned(cluster: &DynamicObject) -> bool {
    let status = cluster.data.get("status");
    status.and_then(|s| s.get("phase")).and_then(|p| p.as_str()) == Some("Provisioned")
        || status
            .and_then(|s| s.pointer("/initialization/controlPlaneInitialized"))
            .and_then(serde_json::Value::as_bool)
            == Some(true)
}

async fn capi_client(path: &std::path::Path) -> anyhow::Result<Client> {
    let kubeconfig = Kubeconfig::read_from(path)?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    Ok(Client::try_from(config)?)
}

/// One Cluster API Cluster: joined when provisioned with its kubeconfig Secret, unjoined when
/// deleted.
async fn capi_reconcile(
    hub: &Client,
    management: &Client,
    cluster: &DynamicObject,
) -> Result<(), Error> {
    let name = cluster.name_any();
    let namespace = cluster.namespace().unwrap_or_default();
    let secret_name = kubeconfig_secret(&name);
    let from = format!("capi:{}", joined_from(&namespace, &secret_name));
    if cluster.metadata.deletion_timestamp.is_some() {
        return ensure_unjoined(hub, &name, &from).await;
    }
    if !capi_provisioned(cluster) {
        return Ok(());
    }
    let secrets: Api<Secret> = Api::namespaced(management.clone(), &namespace);
    let Some(secret) = secrets
        .get_opt(&secret_name)
        .await
        .map_err(|e| Error::api("ReadKubeconfig", &secret_name, &e))?
    else {
        return Ok(());
    };
    let Some(kubeconfig) = secret_kubeconfig(&secret) else {
        return Ok(());
    };
    let options = join_options(
        &name,
        &format!("Secret {namespace}/{secret_name} on the Cluster API management cluster"),
        Some("cluster-api".to_owned()),
        from,
    );
    ensure_joined(hub, &options, kubeconfig).await
}

/// Watches the management cluster's Cluster API Clusters until `stop`; a cluster whose
/// kubeconfig Secret is not there yet is looked at again every few seconds.
async fn capi(hub: Client, path: PathBuf, stop: tokio_util::sync::CancellationToken) {
    let management = loop {
        match capi_client(&path).await {
            Ok(client) => break client,
            Err(error) => {
                warn!(kubeconfig = %path.display(), "cannot reach the Cluster API management cluster: {error:#}");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(10)) => {}
                }
            }
        }
    };
    let resource = capi_cluster_resource();
    let api: Api<DynamicObject> = Api::all_with(management.clone(), &resource);
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut known: BTreeMap<String, DynamicObject> = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(3));
    info!(kubeconfig = %path.display(), "watching Cluster API clusters");
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            event = events.next() => {
                match event {
                    Some(Ok(watcher::Event::Apply(c) | watcher::Event::InitApply(c))) => {
                        let key = format!("{}/{}", c.namespace().unwrap_or_default(), c.name_any());
                        known.insert(key, c);
                    }
                    Some(Ok(watcher::Event::Delete(c))) => {
                        let key = format!("{}/{}", c.namespace().unwrap_or_default(), c.name_any());
                        known.remove(&key);
                        let from = format!("capi:{}", joined_from(&c.namespace().unwrap_or_default(), &kubeconfig_secret(&c.name_any())));
                        if let Err(error) = ensure_unjoined(&hub, &c.name_any(), &from).await {
                            warn!(cluster = %c.name_any(), "{error}");
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => warn!("watching Cluster API clusters: {error}"),
                    None => return,
                }
            }
            _ = tick.tick() => {
                for cluster in known.values() {
                    if let Err(error) = capi_reconcile(&hub, &management, cluster).await {
                        warn!(cluster = %cluster.name_any(), "{error}");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(status: serde_json::Value) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Cluster",
            "metadata": {"name": "c", "namespace": "default"},
            "status": status,
        }))
        .expect("a Cluster")
    }

    #[test]
    fn cluster_api_clusters_join_once_provisioned() {
        for (status, provisioned) in [
            (serde_json::json!({"phase": "Provisioned"}), true),
            (serde_json::json!({"phase": "Provisioning"}), false),
            (
                serde_json::json!({"initialization": {"controlPlaneInitialized": true}}),
                true,
            ),
            (
                serde_json::json!({"initialization": {"controlPlaneInitialized": false}}),
                false,
            ),
            (serde_json::json!({}), false),
        ] {
            assert_eq!(
                capi_provisioned(&cluster(status.clone())),
                provisioned,
                "{status}"
            );
        }
    }

    #[test]
    fn joins_are_what_flotilla_join_would_register() {
        let options = join_options(
            "edge1",
            "Secret default/edge1-kubeconfig",
            Some("local".into()),
            joined_from("default", "edge1-kubeconfig"),
        );
        assert_eq!(options.name, "edge1");
        assert_eq!(options.annotations[JOINED_FROM], "default/edge1-kubeconfig");
        assert_eq!(options.labels[labels::MACHINE_CLUSTER_NAME], "edge1");
        assert_eq!(options.provider.as_deref(), Some("local"));
    }
}
