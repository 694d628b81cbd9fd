//! Request counters: how many requests each logical cluster served, by verb and resource, so
//! tests can assert what clients ask for (one watch per kind per process, no relist loops).
//! Counting only: it never sees bodies or outcomes and never changes what a request does.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Mutex;

/// A Kubernetes API verb, named as kube-apiserver's RBAC rules and audit log name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    /// `GET` of one object (or its subresource).
    Get,
    /// `GET` of a collection without `watch`.
    List,
    /// `GET` of a collection with `watch=true`, or of a deprecated `/watch/` path.
    Watch,
    /// `POST` to a collection.
    Create,
    /// `PUT` of an object (or its subresource).
    Update,
    /// `PATCH` of an object (or its subresource).
    Patch,
    /// `DELETE` of one object.
    Delete,
    /// `DELETE` of a collection.
    DeleteCollection,
}

impl Verb {
    /// Every verb, in declaration order.
    pub const ALL: [Verb; 8] = [
        Verb::Get,
        Verb::List,
        Verb::Watch,
        Verb::Create,
        Verb::Update,
        Verb::Patch,
        Verb::Delete,
        Verb::DeleteCollection,
    ];

    /// The name kube uses: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which requests a count is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestKey {
    /// The logical cluster (`default` is the one served at the root).
    pub cluster: String,
    /// The verb.
    pub verb: Verb,
    /// The API group, `""` for the core group.
    pub group: String,
    /// The plural resource name; a subresource is written as RBAC writes it
    /// (`deployments/status`, `deployments/scale`).
    pub resource: String,
}

/// A snapshot of the server's request counters, from [`crate::Server::request_counts`].
///
/// Every authenticated request that reached a served resource of an existing logical cluster
/// is counted once when it arrives, whatever its outcome (a 404 or 409 counts; a 401, an
/// unknown path and discovery requests do not). A watch counts once however long it stays
/// open. Counts start at zero when the server starts and a logical cluster's counts are
/// dropped when it is removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCounts {
    counts: BTreeMap<RequestKey, u64>,
}

impl RequestCounts {
    /// How many `verb` requests `cluster` served for `group`/`resource` (0 if none).
    /// `group` is `""` for the core group; `resource` is plural, e.g. `configmaps`.
    pub fn get(&self, cluster: &str, verb: Verb, group: &str, resource: &str) -> u64 {
        let key = RequestKey {
            cluster: cluster.to_owned(),
            verb,
            group: group.to_owned(),
            resource: resource.to_owned(),
        };
        self.counts.get(&key).copied().unwrap_or(0)
    }

    /// Every nonzero count, ordered by cluster, verb, group and resource.
    pub fn iter(&self) -> impl Iterator<Item = (&RequestKey, u64)> + '_ {
        self.counts.iter().map(|(k, n)| (k, *n))
    }

    /// The sum of all counts.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// Per verb, indexed by `Verb as usize`.
type PerVerb = [u64; Verb::ALL.len()];

/// Group → resource → per-verb counts.
type PerGroup = HashMap<String, HashMap<String, PerVerb>>;

/// The live counters: cluster → group → resource → per-verb counts, so counting a request
/// that was seen before takes one lock and no allocation.
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    counts: Mutex<HashMap<String, PerGroup>>,
}

impl RequestLog {
    /// Count one request. `subresource` is `status` or `scale`, if any.
    pub(crate) fn record(
        &self,
        cluster: &str,
        verb: Verb,
        group: &str,
        plural: &str,
        subresource: Option<&str>,
    ) {
        let joined;
        let resource = match subresource {
            Some(sub) => {
                joined = format!("{plural}/{sub}");
                joined.as_str()
            }
            None => plural,
        };
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(per_verb) = counts
            .get_mut(cluster)
            .and_then(|groups| groups.get_mut(group))
            .and_then(|resources| resources.get_mut(resource))
        {
            per_verb[verb as usize] += 1;
            return;
        }
        counts
            .entry(cluster.to_owned())
            .or_default()
            .entry(group.to_owned())
            .or_default()
            .entry(resource.to_owned())
            .or_default()[verb as usize] += 1;
    }

    /// Drop a removed logical cluster's counts.
    pub(crate) fn forget_cluster(&self, cluster: &str) {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(cluster);
    }

    /// A copy of the current counts.
    pub(crate) fn snapshot(&self) -> RequestCounts {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = BTreeMap::new();
        for (cluster, groups) in counts.iter() {
            for (group, resources) in groups {
                for (resource, per_verb) in resources {
                    for verb in Verb::ALL {
                        let n = per_verb[verb as usize];
                        if n > 0 {
                            let key = RequestKey {
                                cluster: cluster.clone(),
                                verb,
                                group: group.clone(),
                                resource: resource.clone(),
                            };
                            out.insert(key, n);
                        }
                    }
                }
            }
        }
        RequestCounts { counts: out }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_index_their_own_slot() {
        for (i, verb) in Verb::ALL.into_iter().enumerate() {
            assert_eq!(verb as usize, i, "{verb}");
        }
    }

    #[test]
    fn counts_are_kept_per_cluster_verb_group_and_resource() {
        let log = RequestLog::default();
        log.record("default", Verb::Watch, "", "configmaps", None);
        log.record("default", Verb::Watch, "", "configmaps", None);
        log.record("default", Verb::List, "", "configmaps", None);
        log.record("member", Verb::Watch, "", "configmaps", None);
        log.record(
            "default",
            Verb::Update,
            "apps",
            "deployments",
            Some("status"),
        );
        let counts = log.snapshot();
        assert_eq!(counts.get("default", Verb::Watch, "", "configmaps"), 2);
        assert_eq!(counts.get("default", Verb::List, "", "configmaps"), 1);
        assert_eq!(counts.get("member", Verb::Watch, "", "configmaps"), 1);
        assert_eq!(
            counts.get("default", Verb::Update, "apps", "deployments/status"),
            1
        );
        assert_eq!(
            counts.get("default", Verb::Update, "apps", "deployments"),
            0
        );
        assert_eq!(counts.total(), 5);
        assert_eq!(counts.iter().count(), 4);
        log.forget_cluster("member");
        let counts = log.snapshot();
        assert_eq!(counts.get("member", Verb::Watch, "", "configmaps"), 0);
        assert_eq!(counts.total(), 4);
    }
}
