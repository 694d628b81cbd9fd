//! `flotilla schedule -f FILE`: schedule one binding against Clusters read from a multi-document
//! YAML stream, with no server, and render the result as json, yaml or a table. Owns parsing
//! and rendering only; the decision is [`crate::schedule`]'s.

use std::{fmt::Write as _, str::FromStr, sync::Arc};

use flotilla_api::{Cluster, ClusterResourceBinding, ResourceBinding, work::TargetCluster};
use serde::Serialize;

use crate::{
    algorithm::{ScheduleInput, schedule},
    error::{Error, Result},
    snapshot::Snapshot,
};

/// How to print an [`Outcome`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// A JSON list of `{name, replicas}`.
    Json,
    /// A YAML list of `{name, replicas}`.
    Yaml,
    /// An aligned `CLUSTER REPLICAS` table (the default).
    #[default]
    Table,
}

impl FromStr for OutputFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "json" => Ok(Self::Json),
            "yaml" => Ok(Self::Yaml),
            "table" | "" => Ok(Self::Table),
            other => Err(Error::WhatIfInput(format!(
                "unknown output format {other:?}: use json, yaml or table"
            ))),
        }
    }
}

/// The result of a what-if run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// `Kind namespace/name` of the binding.
    pub binding: String,
    /// The clusters and replicas the scheduler chose, sorted by name.
    pub clusters: Vec<TargetCluster>,
    /// The `clusterAffinities` term used, if any.
    pub affinity_name: Option<String>,
}

#[derive(Serialize)]
struct Row<'a> {
    name: &'a str,
    replicas: i32,
}

enum Binding {
    Namespaced(Box<ResourceBinding>),
    Cluster(Box<ClusterResourceBinding>),
}

/// Schedules the one (Cluster)ResourceBinding in `yaml_stream` against the Clusters in it.
///
/// Errors: malformed input ([`Error::WhatIfInput`]), or the scheduler's own "no fit" errors,
/// whose message lists every cluster and why it was rejected.
pub fn what_if(yaml_stream: &str) -> Result<Outcome> {
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(yaml_stream)
        .map_err(|e| Error::WhatIfInput(format!("not valid YAML: {e}")))?;
    let mut clusters = Vec::new();
    let mut bindings = Vec::new();
    for (index, doc) in documents.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        let kind = doc
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or_default()
            .to_owned();
        let name = doc
            .pointer("/metadata/name")
            .and_then(|n| n.as_str())
            .unwrap_or("<unnamed>")
            .to_owned();
        let invalid = |e: serde_json::Error| {
            Error::WhatIfInput(format!("document {} ({kind} {name}): {e}", index + 1))
        };
        match kind.as_str() {
            "Cluster" => clusters.push(Arc::new(
                serde_json::from_value::<Cluster>(doc).map_err(invalid)?,
            )),
            "ResourceBinding" => bindings.push(Binding::Namespaced(Box::new(
                serde_json::from_value(doc).map_err(invalid)?,
            ))),
            "ClusterResourceBinding" => bindings.push(Binding::Cluster(Box::new(
                serde_json::from_value(doc).map_err(invalid)?,
            ))),
            other => {
                return Err(Error::WhatIfInput(format!(
                    "document {} has kind {other:?}; expected Cluster, ResourceBinding or ClusterResourceBinding",
                    index + 1
                )));
            }
        }
    }
    let binding = match bindings.len() {
        1 => bindings.remove(0),
        n => {
            return Err(Error::WhatIfInput(format!(
                "expected exactly one ResourceBinding or ClusterResourceBinding, found {n}"
            )));
        }
    };
    if clusters.is_empty() {
        return Err(Error::WhatIfInput(
            "the input has no Cluster documents, so there is nothing to schedule onto: add one \
             Cluster document (with its status) per member cluster to the stream, separated by \
             `---`"
                .into(),
        ));
    }
    let snapshot = Snapshot::new(clusters);
    let (label, decision) = match &binding {
        Binding::Namespaced(b) => (
            format!(
                "ResourceBinding {}/{}",
                b.metadata.namespace.as_deref().unwrap_or("default"),
                b.metadata.name.as_deref().unwrap_or_default()
            ),
            schedule(&snapshot, &ScheduleInput::from_resource_binding(b))?,
        ),
        Binding::Cluster(b) => (
            format!(
                "ClusterResourceBinding {}",
                b.metadata.name.as_deref().unwrap_or_default()
            ),
            schedule(&snapshot, &ScheduleInput::from_cluster_resource_binding(b))?,
        ),
    };
    Ok(Outcome {
        binding: label,
        clusters: decision.clusters,
        affinity_name: decision.affinity_name,
    })
}

/// Renders an outcome: json and yaml are a list of `{name, replicas}`; table is aligned text.
pub fn format_outcome(outcome: &Outcome, format: OutputFormat) -> Result<String> {
    let rows: Vec<Row<'_>> = outcome
        .clusters
        .iter()
        .map(|t| Row {
            name: &t.name,
            replicas: t.replicas,
        })
        .collect();
    match format {
        OutputFormat::Json => serde_json::to_string_pretty(&rows)
            .map(|mut s| {
                s.push('\n');
                s
            })
            .map_err(|e| Error::Render(e.to_string())),
        OutputFormat::Yaml => {
            if rows.is_empty() {
                return Ok("[]\n".to_owned());
            }
            serde_saphyr::to_string(&rows).map_err(|e| Error::Render(e.to_string()))
        }
        OutputFormat::Table => {
            let width = rows
                .iter()
                .map(|r| r.name.len())
                .max()
                .unwrap_or(0)
                .max("CLUSTER".len());
            let mut out = String::new();
            let _ = writeln!(out, "{:<width$}  REPLICAS", "CLUSTER");
            for row in &rows {
                let _ = writeln!(out, "{:<width$}  {}", row.name, row.replicas);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../examples/what-if/nginx-weighted.yaml");

    #[test]
    fn the_weighted_example_splits_two_to_one() {
        let outcome = what_if(EXAMPLE).expect("schedules");
        assert_eq!(outcome.binding, "ResourceBinding default/nginx-deployment");
        let got: Vec<(&str, i32)> = outcome
            .clusters
            .iter()
            .map(|t| (t.name.as_str(), t.replicas))
            .collect();
        assert_eq!(got, vec![("member1", 2), ("member2", 1)]);
        let json: serde_json::Value =
            serde_json::from_str(&format_outcome(&outcome, OutputFormat::Json).expect("json"))
                .expect("valid json");
        assert_eq!(
            json,
            serde_json::json!([{"name": "member1", "replicas": 2}, {"name": "member2", "replicas": 1}])
        );
        let yaml = format_outcome(&outcome, OutputFormat::Yaml).expect("yaml");
        let back: Vec<serde_json::Value> = serde_saphyr::from_str(&yaml).expect("valid yaml");
        assert_eq!(serde_json::Value::Array(back), json);
        let table = format_outcome(&outcome, OutputFormat::Table).expect("table");
        assert_eq!(table, "CLUSTER  REPLICAS\nmember1  2\nmember2  1\n");
    }

    #[test]
    fn nothing_fits_lists_every_cluster() {
        let input = EXAMPLE.replace(
            "clusterNames: [member1, member2]",
            "clusterNames: [member3]",
        );
        let err = what_if(&input).expect_err("member3 does not serve Deployments");
        let message = err.to_string();
        for needle in [
            "0/3 clusters are available",
            "member1: cluster(s) did not match",
            "member3: cluster(s) did not have the API resource",
        ] {
            assert!(message.contains(needle), "{needle:?} not in {message}");
        }
    }

    #[test]
    fn a_stream_without_clusters_asks_for_them() {
        let binding_only = EXAMPLE.split("---").last().unwrap_or_default().to_owned();
        let err = what_if(&binding_only).expect_err("no clusters");
        assert!(matches!(err, Error::WhatIfInput(_)), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("no Cluster documents")
                && message.contains("add one Cluster document"),
            "{message}"
        );
        assert!(!message.contains("0/0"), "{message}");
    }

    #[test]
    fn capacity_failures_list_each_clusters_available_replicas() {
        // member1 fits 60 replicas of 100m CPU (6 free CPUs), member2 40 (4 CPUs).
        let (head, _) = EXAMPLE
            .split_once("        staticWeightList:")
            .expect("the example has static weights");
        let dynamic = format!("{head}        dynamicWeight: AvailableReplicas\n")
            .replace("  replicas: 3\n", "  replicas: 500\n");
        let err = what_if(&dynamic).expect_err("100 fit, 500 asked");
        assert!(matches!(err, Error::Unschedulable { .. }), "{err}");
        let message = err.to_string();
        for needle in [
            "Clusters available replicas 100 are not enough to schedule.",
            "available replicas per cluster: member1 60, member2 40;",
            "2/3 clusters are available",
        ] {
            assert!(message.contains(needle), "{needle:?} not in {message}");
        }
    }

    #[test]
    fn bad_input_is_explained() {
        let table = [
            ("", "found 0"),
            (
                "kind: Deployment\nmetadata: {name: x}\n",
                "expected Cluster, ResourceBinding or ClusterResourceBinding",
            ),
            (
                "kind: Cluster\nmetadata: {name: x}\nspec: {syncMode: Sideways}\n",
                "document 1 (Cluster x)",
            ),
            ("a: [unclosed\n", "not valid YAML"),
        ];
        for (input, needle) in table {
            let err = what_if(input).expect_err(input);
            assert!(err.to_string().contains(needle), "{input:?}: {err}");
        }
        let two = format!(
            "{EXAMPLE}\n---\n{}",
            EXAMPLE.split("---").last().unwrap_or_default()
        );
        assert!(
            what_if(&two)
                .expect_err("two bindings")
                .to_string()
                .contains("found 2")
        );
        assert!("xml".parse::<OutputFormat>().is_err());
        assert_eq!(
            "yaml".parse::<OutputFormat>().ok(),
            Some(OutputFormat::Yaml)
        );
    }

    #[test]
    fn cluster_resource_bindings_are_scheduled_too() {
        let input = format!(
            "{}\n---\napiVersion: work.flotilla.io/v1alpha1\nkind: ClusterResourceBinding\nmetadata: {{name: admin-clusterrole}}\n\
             spec:\n  resource: {{apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRole, name: admin}}\n  placement: {{}}\n",
            EXAMPLE
                .split("---\napiVersion: work.flotilla.io")
                .next()
                .unwrap_or_default()
        );
        let err = what_if(&input).expect_err("no member serves ClusterRoles");
        assert!(matches!(err, Error::NoClusterFit { .. }), "{err}");
        let served = input.replace("- groupVersion: apps/v1\n", "- groupVersion: rbac.authorization.k8s.io/v1\n      resources:\n        - {name: clusterroles, kind: ClusterRole}\n    - groupVersion: apps/v1\n");
        let outcome = what_if(&served).expect("schedules");
        assert_eq!(outcome.binding, "ClusterResourceBinding admin-clusterrole");
        let got: Vec<(&str, i32)> = outcome
            .clusters
            .iter()
            .map(|t| (t.name.as_str(), t.replicas))
            .collect();
        assert_eq!(
            got,
            vec![("member1", 0), ("member2", 0)],
            "a non-workload goes to every fitting cluster"
        );
    }
}
