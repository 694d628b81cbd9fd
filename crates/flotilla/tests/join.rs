//! `flotilla join` and `flotilla unjoin` against a hub with its controllers running, on both
//! servers: the hub gets a ServiceAccount token made in the member (never the caller's
//! credentials when the member can make one), Works reach the member with it, and unjoin takes
//! the Cluster, its Works, the credentials and the member identity away, leaving the member's
//! objects in place unless asked to delete them. Bad input is a clear error. Auto-join takes the
//! same path for a provisioned cluster's kubeconfig Secret, and unjoins when its machines go.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context as _, Result, ensure};
use flotilla::join::{self, Identity, JoinOptions, UnjoinOptions};
use flotilla_api::{Cluster, Work, conditions, keys::labels};
use flotilla_testing::{Controllers, MemberServer, TestHub, kubeconfig_yaml};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, PostParams},
};
use serde_json::json;

async fn eventually<T, F, Fut>(what: &str, probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    flotilla_testing::eventually(Duration::from_secs(60), what, probe).await
}

fn start_controllers(hub: &Client) -> Result<Controllers> {
    Controllers::push(hub, |_| Ok(Vec::new()))
}

/// A kubeconfig file an administrator of `member` would have.
fn member_kubeconfig(
    dir: &tempfile::TempDir,
    name: &str,
    member: &MemberServer,
) -> Result<std::path::PathBuf> {
    let path = dir.path().join(format!("{name}.kubeconfig"));
    std::fs::write(
        &path,
        kubeconfig_yaml(&member.url, &member.token, &member.ca_pem),
    )?;
    Ok(path)
}

fn options(name: &str, kubeconfig: &std::path::Path) -> JoinOptions {
    JoinOptions {
        name: name.to_owned(),
        kubeconfig: kubeconfig.to_owned(),
        context: None,
        labels: BTreeMap::from([("team".to_owned(), "payments".to_owned())]),
        annotations: BTreeMap::new(),
        provider: Some("on-prem".to_owned()),
        region: Some("eu-west".to_owned()),
        zone: None,
        token_timeout: Duration::from_secs(30),
    }
}

fn unjoin_options(name: &str, delete_member_objects: bool) -> UnjoinOptions {
    UnjoinOptions {
        name: name.to_owned(),
        delete_member_objects,
        timeout: Duration::from_secs(60),
    }
}

/// A Work in `cluster`'s execution namespace holding one ConfigMap in namespace `default`.
async fn create_work(hub: &Client, cluster: &str, name: &str) -> Result<()> {
    let namespace = format!("flotilla-es-{cluster}");
    let works: Api<Work> = Api::namespaced(hub.clone(), &namespace);
    let namespaces: Api<Namespace> = Api::all(hub.clone());
    eventually("the execution namespace", || async {
        Ok(namespaces.get_opt(&namespace).await?)
    })
    .await?;
    let work: Work = serde_json::from_value(json!({
        "apiVersion": "work.flotilla.io/v1alpha1", "kind": "Work",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"workload": {"manifests": [{
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"},
            "data": {"from": "the hub"},
        }]}},
    }))?;
    works.create(&PostParams::default(), &work).await?;
    eventually("the Work applied", || async {
        let work = works.get(name).await?;
        let applied = work.status.as_ref().is_some_and(|s| {
            conditions::find(&s.conditions, conditions::APPLIED).is_some_and(|c| c.status == "True")
        });
        Ok(applied.then_some(()))
    })
    .await
}

async fn wait_ready(clusters: &Api<Cluster>, name: &str) -> Result<()> {
    eventually(&format!("{name} Ready"), || async {
        let cluster = clusters.get(name).await?;
        let ready = cluster
            .status
            .as_ref()
            .is_some_and(|s| conditions::is_true(&s.conditions, conditions::READY));
        Ok(ready.then_some(()))
    })
    .await
}

/// Whether `token` is accepted by the member (a namespace list with it).
async fn accepted(member: &MemberServer, token: &str) -> Result<bool> {
    let as_hub = MemberServer {
        token: token.to_owned(),
        ..member.clone()
    };
    let client = as_hub.client().await?;
    match Api::<Namespace>::all(client)
        .list_metadata(&ListParams::default().limit(1))
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 401 || status.code == 403 => Ok(false),
        Err(error) => Err(error.into()),
    }
}

fn text(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_joined_member_gets_works_through_its_own_service_account_and_keeps_its_objects_on_unjoin()
-> Result<()> {
    let hub = TestHub::start().await?;
    let member = hub.create_member("member1").await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = member_kubeconfig(&dir, "member1", &member)?;
    let _controllers = start_controllers(&hub.client)?;

    let joined = join::join(&hub.client, &options("member1", &kubeconfig)).await?;
    assert_eq!(
        joined.identity,
        Identity::ServiceAccount {
            namespace: "flotilla-hub".into(),
            name: "flotilla-hub".into()
        }
    );
    assert_eq!(joined.endpoint, member.url.trim_end_matches('/'));
    ensure!(joined.version.starts_with('v'), "{}", joined.version);

    // The hub holds the ServiceAccount's token, not the administrator's.
    let clusters: Api<Cluster> = Api::all(hub.client.clone());
    let registered = clusters.get("member1").await?;
    assert_eq!(registered.spec.provider.as_deref(), Some("on-prem"));
    assert_eq!(registered.spec.region.as_deref(), Some("eu-west"));
    assert_eq!(
        registered.labels().get("team").map(String::as_str),
        Some("payments")
    );
    let secrets: Api<Secret> = Api::namespaced(hub.client.clone(), "flotilla-cluster");
    let credentials = secrets.get("member1").await?;
    let token = text(&credentials, "token").context("a token")?;
    assert_ne!(token, member.token, "never the caller's own token");
    assert!(accepted(&member, &token).await?, "the token works");

    // Joining again is a no-op; the same name for another cluster is refused.
    join::join(&hub.client, &options("member1", &kubeconfig)).await?;
    let other = hub.create_member("member2").await?;
    let other_kubeconfig = member_kubeconfig(&dir, "member2", &other)?;
    let refused = join::join(&hub.client, &options("member1", &other_kubeconfig))
        .await
        .expect_err("the name is taken");
    assert!(
        format!("{refused:#}").contains("already a member"),
        "{refused:#}"
    );

    // Works reach the member with that token.
    wait_ready(&clusters, "member1").await?;
    create_work(&hub.client, "member1", "greeting").await?;
    let admin = member.client().await?;
    let member_cms: Api<ConfigMap> = Api::namespaced(admin.clone(), "default");
    let applied = member_cms.get("greeting").await?;
    assert_eq!(
        applied.labels().get(labels::MANAGED_BY).map(String::as_str),
        Some(labels::MANAGED_BY_FLOTILLA)
    );

    // Unjoin: the Cluster, its Works and credentials go; the member keeps the object, released.
    let unjoined = join::unjoin(&hub.client, &unjoin_options("member1", false)).await?;
    assert!(!unjoined.member_objects_deleted);
    assert_eq!(unjoined.identity_removed, Some(Ok(())));
    assert!(clusters.get_opt("member1").await?.is_none());
    assert!(secrets.get_opt("member1").await?.is_none());
    let works: Api<Work> = Api::namespaced(hub.client.clone(), "flotilla-es-member1");
    let left = works
        .list(&ListParams::default())
        .await
        .map(|l| l.items.len())
        .unwrap_or(0);
    assert_eq!(left, 0, "no Works left");
    let kept = member_cms
        .get_opt("greeting")
        .await?
        .context("the member object stays")?;
    assert_eq!(kept.labels().get(labels::MANAGED_BY), None, "released");
    assert_eq!(
        kept.data
            .unwrap_or_default()
            .get("from")
            .map(String::as_str),
        Some("the hub")
    );
    // The hub's identity in the member is gone, and its token with it.
    eventually("the hub's token revoked", || async {
        Ok((!accepted(&member, &token).await?).then_some(()))
    })
    .await?;
    let again = join::unjoin(&hub.client, &unjoin_options("member1", false))
        .await
        .expect_err("no such member");
    assert!(
        format!("{again:#}").contains("is not a member"),
        "{again:#}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn unjoin_with_delete_member_objects_removes_what_flotilla_applied() -> Result<()> {
    let hub = TestHub::start().await?;
    let member = hub.create_member("member1").await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = member_kubeconfig(&dir, "member1", &member)?;
    let _controllers = start_controllers(&hub.client)?;
    join::join(&hub.client, &options("member1", &kubeconfig)).await?;
    let clusters: Api<Cluster> = Api::all(hub.client.clone());
    wait_ready(&clusters, "member1").await?;
    create_work(&hub.client, "member1", "greeting").await?;

    let unjoined = join::unjoin(&hub.client, &unjoin_options("member1", true)).await?;
    assert!(unjoined.member_objects_deleted);
    let admin = member.client().await?;
    let member_cms: Api<ConfigMap> = Api::namespaced(admin, "default");
    assert!(
        member_cms.get_opt("greeting").await?.is_none(),
        "deleted from the member before the Cluster went"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn join_refuses_bad_input_with_a_reason() -> Result<()> {
    let hub = TestHub::start().await?;
    let member = hub.create_member("member1").await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = member_kubeconfig(&dir, "member1", &member)?;

    let error = join::join(&hub.client, &options("Not_A_Name", &kubeconfig))
        .await
        .expect_err("an invalid name");
    assert!(
        format!("{error:#}").contains("not a valid cluster name"),
        "{error:#}"
    );

    let missing = dir.path().join("nowhere.kubeconfig");
    let error = join::join(&hub.client, &options("member1", &missing))
        .await
        .expect_err("no kubeconfig");
    assert!(
        format!("{error:#}").contains("reading the member kubeconfig"),
        "{error:#}"
    );

    // A port nothing listens on (bound and released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dead = MemberServer {
        url: format!("https://127.0.0.1:{port}"),
        ..member.clone()
    };
    let dead_kubeconfig = member_kubeconfig(&dir, "dead", &dead)?;
    let error = join::join(&hub.client, &options("member1", &dead_kubeconfig))
        .await
        .expect_err("unreachable");
    assert!(
        format!("{error:#}").contains("cannot reach the member"),
        "{error:#}"
    );

    let wrong = MemberServer {
        token: "not-a-token".into(),
        ..member.clone()
    };
    let wrong_kubeconfig = member_kubeconfig(&dir, "wrong", &wrong)?;
    let error = join::join(&hub.client, &options("member1", &wrong_kubeconfig))
        .await
        .expect_err("bad credentials");
    assert!(
        format!("{error:#}").contains("does not accept"),
        "{error:#}"
    );

    let clusters: Api<Cluster> = Api::all(hub.client.clone());
    assert!(
        clusters.get_opt("member1").await?.is_none(),
        "nothing registered"
    );
    Ok(())
}

/// Auto-join on both servers, with a provider playing by the contract (`docs/providers.md`)
/// that is not the local one: a cluster's kubeconfig Secret, published while the cluster has
/// machines, is joined as `flotilla join` joins (the hub's own ServiceAccount token in the
/// member, never the admin's); when its last machine is being deleted (held by the provider's
/// finalizer, as a provider holds it until the cluster has left), the cluster is unjoined.
#[tokio::test(flavor = "multi_thread")]
async fn a_provisioned_clusters_kubeconfig_secret_is_auto_joined_and_unjoined_when_its_machines_go()
-> Result<()> {
    let hub = TestHub::start().await?;
    let member = hub.create_member("edge9").await?;
    let client = hub.client.clone();
    let _controllers = Controllers::push(&client, |ctx| {
        use futures::FutureExt as _;
        Ok(vec![
            flotilla::auto_join::controller(ctx, flotilla::auto_join::Options::default())?.boxed(),
        ])
    })?;
    let namespace = format!("autojoin-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": namespace}}))?,
        )
        .await?;
    let machines: Api<flotilla_api::Machine> = Api::namespaced(client.clone(), &namespace);
    machines
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "provisioning.flotilla.io/v1alpha1", "kind": "Machine",
                "metadata": {"name": "edge9-cp", "finalizers": ["provider.example.com/machine"]},
                "spec": {"clusterName": "edge9", "role": "ControlPlane",
                    "infrastructureRef": {"provider": "example"}},
            }))?,
        )
        .await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "edge9-kubeconfig",
                    "labels": {labels::MACHINE_CLUSTER_NAME: "edge9"}},
                "stringData": {"value": kubeconfig_yaml(&member.url, &member.token, &member.ca_pem)},
            }))?,
        )
        .await?;
    let clusters: Api<Cluster> = Api::all(client.clone());
    wait_ready(&clusters, "edge9").await?;
    let joined = clusters.get("edge9").await?;
    ensure!(
        joined
            .annotations()
            .get("provisioning.flotilla.io/joined-from")
            .map(String::as_str)
            == Some(format!("{namespace}/edge9-kubeconfig").as_str()),
        "{:?}",
        joined.annotations()
    );
    ensure!(
        joined.spec.provider.as_deref() == Some("example"),
        "{:?}",
        joined.spec.provider
    );
    let credentials = joined.spec.secret_ref.clone().context("a secretRef")?;
    let stored: Api<Secret> = Api::namespaced(client.clone(), &credentials.namespace);
    let token = text(&stored.get(&credentials.name).await?, "token").context("a token")?;
    ensure!(
        token != member.token,
        "the hub holds its own token, not the admin's"
    );
    ensure!(
        accepted(&member, &token).await?,
        "the hub's token works in the member"
    );

    // The machine goes (its provider's finalizer holds it): the cluster leaves the fleet.
    machines
        .delete("edge9-cp", &kube::api::DeleteParams::default())
        .await?;
    eventually("edge9 unjoined", || async {
        Ok(clusters.get_opt("edge9").await?.is_none().then_some(()))
    })
    .await?;
    machines
        .patch(
            "edge9-cp",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await?;
    Ok(())
}
