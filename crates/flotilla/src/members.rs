//! Reaching member clusters from the command line through the hub: `flotilla kubeconfig NAME`
//! (a kubeconfig built from the member's Cluster and credentials Secret) and `flotilla get`
//! (one kind in every member at once, with a CLUSTER column, as `karmadactl get` shows it).
//! Everything is read through the hub's `kube::Client`; credentials go only into the printed
//! kubeconfig a user asked for.

use std::time::Duration;

use anyhow::{Context as _, bail};
use flotilla_api::Cluster;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client, ResourceExt,
    api::{ApiResource, DynamicObject, ListParams},
    config::Kubeconfig,
};
use serde_json::Value;

/// How long one member may take to answer.
const MEMBER_TIMEOUT: Duration = Duration::from_secs(10);

/// The member's Cluster and the credentials Secret it names.
async fn credentials(hub: &Client, name: &str) -> anyhow::Result<(Cluster, Secret)> {
    let cluster = Api::<Cluster>::all(hub.clone())
        .get_opt(name)
        .await
        .with_context(|| format!("reading cluster {name} from the hub"))?
        .with_context(|| format!("cluster {name} not found on the hub (kubectl get clusters)"))?;
    let Some(reference) = cluster.spec.secret_ref.clone() else {
        bail!(
            "cluster {name} has no spec.secretRef: the hub holds no credentials for it (a Pull \
             cluster is reached through its agent)"
        );
    };
    let secret = Api::<Secret>::namespaced(hub.clone(), &reference.namespace)
        .get_opt(&reference.name)
        .await
        .with_context(|| format!("reading Secret {}/{}", reference.namespace, reference.name))?
        .with_context(|| {
            format!(
                "Secret {}/{} named by cluster {name}'s spec.secretRef does not exist",
                reference.namespace, reference.name
            )
        })?;
    Ok((cluster, secret))
}

/// A kubeconfig reaching member `name`, its context (and cluster and user) named `name`.
///
/// # Errors
///
/// When the Cluster or its Secret is missing or unusable.
pub async fn kubeconfig(hub: &Client, name: &str) -> anyhow::Result<Kubeconfig> {
    let (cluster, secret) = credentials(hub, name).await?;
    let mut kubeconfig = flotilla_runtime::members::kubeconfig(&cluster, &secret)?;
    let generated = kubeconfig.current_context.as_deref() == Some("member");
    if generated {
        for named in &mut kubeconfig.clusters {
            named.name = name.to_owned();
        }
        for named in &mut kubeconfig.auth_infos {
            named.name = name.to_owned();
        }
        for named in &mut kubeconfig.contexts {
            named.name = name.to_owned();
            if let Some(context) = &mut named.context {
                context.cluster = name.to_owned();
                context.user = Some(name.to_owned());
            }
        }
        kubeconfig.current_context = Some(name.to_owned());
    }
    Ok(kubeconfig)
}

/// A client for member `cluster`, built from its credentials on the hub.
async fn member_client(hub: &Client, cluster: &Cluster) -> anyhow::Result<Client> {
    let (cluster, secret) = credentials(hub, &cluster.name_any()).await?;
    let config = flotilla_runtime::members::config(&cluster, &secret, MEMBER_TIMEOUT).await?;
    Ok(Client::try_from(config)?)
}

/// What `flotilla get` asks for.
#[derive(Clone, Debug, clap::Args)]
pub struct GetRequest {
    /// The kind, as kubectl takes it (deployments, deploy, Deployment, deployments.apps).
    pub kind: String,
    /// One object by name (all when absent).
    pub name: Option<String>,
    /// The namespace (ignored for cluster-scoped kinds).
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// Every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Only this member (repeat for several; all when absent).
    #[arg(long = "cluster")]
    pub clusters: Vec<String>,
    /// Output format: wide, json or yaml (a table when absent).
    #[arg(short = 'o', long, default_value = "")]
    pub output: String,
}

/// The kind a member serves under `wanted` (`deploy`, `deployments`, `Deployment`,
/// `deployments.apps` …), and whether it is namespaced.
async fn resolve(client: &Client, wanted: &str) -> anyhow::Result<(ApiResource, bool)> {
    let wanted = wanted.to_ascii_lowercase();
    let (name, group) = match wanted.split_once('.') {
        Some((name, group)) => (name.to_owned(), Some(group.to_owned())),
        None => (wanted.clone(), None),
    };
    let mut lists = vec![(
        String::new(),
        client
            .list_core_api_resources("v1")
            .await
            .context("discovery")?,
    )];
    for api_group in client.list_api_groups().await.context("discovery")?.groups {
        let Some(version) = api_group
            .preferred_version
            .clone()
            .or_else(|| api_group.versions.first().cloned())
        else {
            continue;
        };
        if let Ok(list) = client
            .list_api_group_resources(&version.group_version)
            .await
        {
            lists.push((api_group.name.clone(), list));
        }
    }
    for (group_name, list) in lists {
        if group.as_deref().is_some_and(|g| g != group_name) {
            continue;
        }
        let version = list
            .group_version
            .rsplit('/')
            .next()
            .unwrap_or("v1")
            .to_owned();
        for resource in list.resources {
            if resource.name.contains('/') {
                continue;
            }
            let matches = resource.name == name
                || resource.singular_name == name
                || resource.kind.to_ascii_lowercase() == name
                || resource
                    .short_names
                    .as_ref()
                    .is_some_and(|s| s.contains(&name));
            if matches {
                let api_resource = ApiResource {
                    group: group_name.clone(),
                    version: version.clone(),
                    api_version: list.group_version.clone(),
                    kind: resource.kind.clone(),
                    plural: resource.name.clone(),
                };
                return Ok((api_resource, resource.namespaced));
            }
        }
    }
    bail!("the server doesn't have a resource type {wanted:?}")
}

/// One member's answer: its objects (for json and yaml) and their Table (for the default and
/// wide output).
struct MemberAnswer {
    objects: Vec<Value>,
    table: Option<Value>,
}

async fn get_from(
    client: &Client,
    request: &GetRequest,
    wants_table: bool,
) -> anyhow::Result<MemberAnswer> {
    let (resource, namespaced) = resolve(client, &request.kind).await?;
    let api: Api<DynamicObject> = if namespaced && !request.all_namespaces {
        Api::namespaced_with(client.clone(), &request.namespace, &resource)
    } else {
        Api::all_with(client.clone(), &resource)
    };
    let objects: Vec<Value> = match &request.name {
        Some(name) => match api.get_opt(name).await? {
            Some(object) => vec![serde_json::to_value(object)?],
            None => Vec::new(),
        },
        None => api
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()?,
    };
    let table = if wants_table && !objects.is_empty() {
        let mut url = match &request.name {
            Some(name) => format!("{}/{name}", api.resource_url()),
            None => api.resource_url().to_owned(),
        };
        url.push_str("?includeObject=Metadata");
        let http = http::Request::get(url)
            .header(
                http::header::ACCEPT,
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
            )
            .body(Vec::new())?;
        let text = client.request_text(http).await?;
        let table: Value = serde_json::from_str(&text).context("the member's Table")?;
        (table["kind"] == "Table").then_some(table)
    } else {
        None
    };
    Ok(MemberAnswer { objects, table })
}

/// The text of one Table cell.
fn cell(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "<none>".to_owned(),
        other => other.to_string(),
    }
}

/// Lines of a table whose columns are padded to their widest cell, three spaces apart.
fn render_table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, text) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(text);
            } else {
                line.push_str(&format!("{text:<width$}   ", width = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The rows `flotilla get` prints for `answers` (cluster name, Table): a header of CLUSTER, a
/// NAMESPACE column when listing every namespace, and the server's columns (priority 0, or all
/// with `wide`).
pub fn table_rows(
    answers: &[(String, Value)],
    wide: bool,
    namespace_column: bool,
) -> Vec<Vec<String>> {
    let mut header: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for (cluster, table) in answers {
        let definitions = table["columnDefinitions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let shown: Vec<usize> = definitions
            .iter()
            .enumerate()
            .filter(|(_, d)| wide || d["priority"].as_i64().unwrap_or(0) == 0)
            .map(|(i, _)| i)
            .collect();
        if header.is_none() {
            let mut h = Vec::new();
            if namespace_column {
                h.push("NAMESPACE".to_owned());
            }
            h.extend(shown.iter().map(|&i| {
                definitions[i]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_uppercase()
            }));
            h.push("CLUSTER".to_owned());
            header = Some(h);
        }
        for row in table["rows"].as_array().cloned().unwrap_or_default() {
            let cells = row["cells"].as_array().cloned().unwrap_or_default();
            let mut line = Vec::new();
            if namespace_column {
                line.push(
                    row.pointer("/object/metadata/namespace")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
            line.extend(
                shown
                    .iter()
                    .map(|&i| cells.get(i).map(cell).unwrap_or_default()),
            );
            line.push(cluster.clone());
            rows.push(line);
        }
    }
    header.into_iter().chain(rows).collect()
}

/// Runs `flotilla get`: prints what every member (or the named ones) holds, and returns how
/// many members could not be asked (each said on stderr).
///
/// # Errors
///
/// When the hub cannot be read or the output format is unknown.
pub async fn get(hub: &Client, request: &GetRequest) -> anyhow::Result<usize> {
    let output = request.output.as_str();
    if !matches!(output, "" | "wide" | "json" | "yaml") {
        bail!("unknown output format {output:?}: use wide, json or yaml");
    }
    let mut clusters = Api::<Cluster>::all(hub.clone())
        .list(&ListParams::default())
        .await
        .context("listing the hub's clusters")?
        .items;
    clusters.sort_by_key(ResourceExt::name_any);
    for wanted in &request.clusters {
        if !clusters.iter().any(|c| &c.name_any() == wanted) {
            bail!("cluster {wanted} not found on the hub (kubectl get clusters)");
        }
    }
    clusters.retain(|c| request.clusters.is_empty() || request.clusters.contains(&c.name_any()));
    let wants_table = matches!(output, "" | "wide");
    let asks = clusters.iter().map(|cluster| async move {
        let name = cluster.name_any();
        let answer = async {
            let client = member_client(hub, cluster).await?;
            get_from(&client, request, wants_table).await
        }
        .await;
        (name, answer)
    });
    let answers = futures::future::join_all(asks).await;
    let mut failed = 0;
    let mut tables = Vec::new();
    let mut items = Vec::new();
    for (cluster, answer) in answers {
        match answer {
            Ok(answer) => {
                if let Some(table) = answer.table {
                    tables.push((cluster.clone(), table));
                }
                for mut object in answer.objects {
                    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                        let annotations = meta
                            .entry("annotations")
                            .or_insert_with(|| Value::Object(Default::default()));
                        if let Some(annotations) = annotations.as_object_mut() {
                            annotations.insert(
                                CLUSTER_ANNOTATION.to_owned(),
                                Value::String(cluster.clone()),
                            );
                        }
                    }
                    items.push(object);
                }
            }
            Err(error) => {
                failed += 1;
                eprintln!("error: cluster {cluster}: {error:#}");
            }
        }
    }
    let mut out = crate::output::Output::stdout();
    match output {
        "json" | "yaml" => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
            if output == "json" {
                out.println(serde_json::to_string_pretty(&list)?)?;
            } else {
                out.print(serde_saphyr::to_string(&list)?)?;
            }
        }
        _ => {
            let rows = table_rows(&tables, output == "wide", request.all_namespaces);
            if rows.len() <= 1 {
                if failed == 0 {
                    eprintln!("No resources found.");
                }
            } else {
                out.print(render_table(&rows))?;
            }
        }
    }
    Ok(failed)
}

/// The annotation `flotilla get -o json|yaml` adds to each object: the member it came from.
pub const CLUSTER_ANNOTATION: &str = "cluster.flotilla.io/name";

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tables_gain_a_cluster_column_and_wide_shows_every_column() {
        let table = |rows: &[(&str, &str, &str)]| {
            json!({
                "kind": "Table",
                "columnDefinitions": [
                    {"name": "Name", "priority": 0},
                    {"name": "Ready", "priority": 0},
                    {"name": "Images", "priority": 1},
                ],
                "rows": rows.iter().map(|(n, r, i)| json!({
                    "cells": [n, r, i],
                    "object": {"metadata": {"namespace": "demo"}},
                })).collect::<Vec<_>>(),
            })
        };
        let answers = vec![
            (
                "member1".to_owned(),
                table(&[("nginx", "2/2", "docker.io/nginx")]),
            ),
            (
                "member2".to_owned(),
                table(&[("nginx", "1/2", "mirror/nginx")]),
            ),
        ];
        let narrow = table_rows(&answers, false, false);
        assert_eq!(
            narrow,
            [
                vec!["NAME", "READY", "CLUSTER"],
                vec!["nginx", "2/2", "member1"],
                vec!["nginx", "1/2", "member2"],
            ]
        );
        let wide = table_rows(&answers, true, true);
        assert_eq!(wide[0], ["NAMESPACE", "NAME", "READY", "IMAGES", "CLUSTER"]);
        assert_eq!(wide[2], ["demo", "nginx", "1/2", "mirror/nginx", "member2"]);
        assert_eq!(
            render_table(&narrow),
            "NAME    READY   CLUSTER\nnginx   2/2     member1\nnginx   1/2     member2\n"
        );
        assert!(table_rows(&[], false, false).is_empty());
    }
}
