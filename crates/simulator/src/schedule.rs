//! The scheduler's book of the simulated nodes: each node's room (allocatable, labels, taints,
//! whether it takes pods), what every pod placed on a node requests, and the pods waiting for
//! room. Placing a pod filters the nodes as kube-scheduler's default plugins do
//! (NodeUnschedulable, TaintToleration, NodeAffinity, NodeResourcesFit), scores the rest by
//! least allocated cpu and memory, and reserves the winner at once, so two pods placed at the
//! same moment never share the last room. A pod that fits nowhere gets kube's message
//! ("0/3 nodes are available: 3 Insufficient cpu.") and waits; releasing room hands back the
//! waiting pods to try again. Pure data: no IO, no clock.

use std::collections::{BTreeMap, HashMap, HashSet};

use flotilla_api::quantity::Totals;
use k8s_openapi::api::core::v1::{
    NodeSelectorRequirement, NodeSelectorTerm, PodSpec, Taint, Toleration,
};
use tracing::debug;

/// A pod's key in the book: `(namespace, name)`.
pub(crate) type PodKey = (String, String);

/// What one pod requests of a node, in millis per resource (`pods` counts 1000 per pod).
pub(crate) fn requests(spec: &PodSpec) -> Totals {
    let mut sum = Totals::default();
    for container in &spec.containers {
        if let Some(list) = container
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
        {
            skip_bad(sum.add_list(list));
        }
    }
    // Init containers run one at a time before the others: the pod needs the largest of them.
    let mut init = Totals::default();
    for container in spec.init_containers.iter().flatten() {
        let mut one = Totals::default();
        if let Some(list) = container
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
        {
            skip_bad(one.add_list(list));
        }
        init.max_with(&one);
    }
    sum.max_with(&init);
    if let Some(overhead) = &spec.overhead {
        skip_bad(sum.add_list(overhead));
    }
    sum.add(PODS, 1000);
    sum
}

fn skip_bad(errors: Vec<flotilla_api::quantity::QuantityError>) {
    for error in errors {
        debug!(%error, "a request that is not a quantity is not counted");
    }
}

const PODS: &str = "pods";

/// What a pod asks of the node it goes to, besides room.
#[derive(Clone, Debug, Default)]
pub(crate) struct Constraints {
    node_selector: BTreeMap<String, String>,
    /// Required node affinity: any one term must match (empty: no requirement).
    terms: Vec<NodeSelectorTerm>,
    tolerations: Vec<Toleration>,
}

impl Constraints {
    /// The constraints of a pod spec.
    pub(crate) fn of(spec: &PodSpec) -> Constraints {
        Constraints {
            node_selector: spec.node_selector.clone().unwrap_or_default(),
            terms: spec
                .affinity
                .as_ref()
                .and_then(|a| a.node_affinity.as_ref())
                .and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .as_ref()
                })
                .map(|s| s.node_selector_terms.clone())
                .unwrap_or_default(),
            tolerations: spec.tolerations.clone().unwrap_or_default(),
        }
    }

    /// Whether a node with `name` and `labels` satisfies the node selector and affinity.
    pub(crate) fn matches_node(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        self.node_selector
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && (self.terms.is_empty() || self.terms.iter().any(|t| term_matches(t, name, labels)))
    }

    /// The first taint of `taints` that keeps the pod off the node, if any.
    pub(crate) fn untolerated<'a>(&self, taints: &'a [Taint]) -> Option<&'a Taint> {
        taints.iter().find(|taint| {
            matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute")
                && !self.tolerations.iter().any(|t| tolerates(t, taint))
        })
    }
}

fn term_matches(term: &NodeSelectorTerm, name: &str, labels: &BTreeMap<String, String>) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        // kube: a term with no requirements matches nothing.
        return false;
    }
    expressions
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| {
            let value = (r.key == "metadata.name").then_some(name);
            requirement_matches(r, value)
        })
}

fn requirement_matches(requirement: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = requirement.values.as_deref().unwrap_or_default();
    let number = |text: &str| text.parse::<i64>().ok();
    match requirement.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| values.iter().all(|x| x != v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(have), Some(bound)) = (
                value.and_then(number),
                values.first().and_then(|v| number(v)),
            ) else {
                return false;
            };
            if requirement.operator == "Gt" {
                have > bound
            } else {
                have < bound
            }
        }
        _ => false,
    }
}

fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref()
        && !effect.is_empty()
        && effect != taint.effect
    {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => key.is_empty() || key == taint.key,
        _ => key == taint.key && toleration.value.as_deref() == Some(taint.value_or_empty()),
    }
}

trait TaintValue {
    fn value_or_empty(&self) -> &str;
}

impl TaintValue for Taint {
    fn value_or_empty(&self) -> &str {
        self.value.as_deref().unwrap_or("")
    }
}

/// One node as the scheduler sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Room {
    /// Allocatable, in millis per resource.
    pub(crate) allocatable: Totals,
    /// Ready and not cordoned.
    pub(crate) schedulable: bool,
    /// The node's labels.
    pub(crate) labels: BTreeMap<String, String>,
    /// The node's taints.
    pub(crate) taints: Vec<Taint>,
    /// The node's InternalIP (a pod's `hostIP`).
    pub(crate) address: String,
}

impl Room {
    /// Whether `self` may take a pod that `before` could not: more room, or different labels
    /// or taints.
    fn grew_from(&self, before: &Room) -> bool {
        (self.schedulable && !before.schedulable)
            || self.labels != before.labels
            || self.taints != before.taints
            || self
                .allocatable
                .0
                .iter()
                .any(|(r, v)| *v > before.allocatable.0.get(r).copied().unwrap_or(0))
    }
}

/// Where one pod is, or is about to be.
#[derive(Clone, Debug)]
struct Placement {
    /// The pod's uid; `None` while a pod the simulator is creating has not been created yet.
    uid: Option<String>,
    node: String,
    requests: Totals,
}

/// Where a pod goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fit {
    /// To this node, which is reserved for it.
    Node(String),
    /// Nowhere yet, for this reason (kube-scheduler's words); it waits for room.
    Nowhere(String),
}

/// The book.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    rooms: BTreeMap<String, Room>,
    used: HashMap<String, Totals>,
    placements: HashMap<PodKey, Placement>,
    waiting: HashSet<PodKey>,
}

impl Ledger {
    /// Records a node's room; returns `None` when nothing changed, else whether waiting pods
    /// should try again (the node may take a pod it could not before).
    pub(crate) fn set_room(&mut self, node: &str, room: Room) -> Option<bool> {
        let grew = match self.rooms.get(node) {
            Some(before) if *before == room => return None,
            Some(before) => room.grew_from(before),
            None => room.schedulable,
        };
        self.rooms.insert(node.to_owned(), room);
        Some(grew)
    }

    /// Forgets a node that is gone; returns whether it was known.
    pub(crate) fn remove_room(&mut self, node: &str) -> bool {
        self.rooms.remove(node).is_some()
    }

    /// The room of `node`, if it is a simulated node.
    pub(crate) fn room(&self, node: &str) -> Option<&Room> {
        self.rooms.get(node)
    }

    /// Every simulated node, by name.
    pub(crate) fn rooms(&self) -> impl Iterator<Item = (&String, &Room)> {
        self.rooms.iter()
    }

    /// Records what a pod seen in the cache holds: a bound pod that is neither finished nor
    /// gone holds its node's room; an unbound one holds nothing, except a reservation made for
    /// it. Returns whether room was freed.
    pub(crate) fn observe(
        &mut self,
        key: &PodKey,
        uid: &str,
        node: Option<&str>,
        requests: Totals,
        finished: bool,
    ) -> bool {
        match (node, finished) {
            (_, true) => self.forget(key, Some(uid)),
            (Some(node), false) => {
                self.waiting.remove(key);
                if let Some(held) = self.placements.get_mut(key)
                    && held.node == node
                    && held.requests == requests
                    && held.uid.as_deref().is_none_or(|held| held == uid)
                {
                    held.uid = Some(uid.to_owned());
                    return false;
                }
                let freed = self.take(key, |_| true);
                self.put(
                    key.clone(),
                    Placement {
                        uid: Some(uid.to_owned()),
                        node: node.to_owned(),
                        requests,
                    },
                );
                freed
            }
            // Unbound: keep a reservation made for this pod; drop what an older pod of the same
            // name held.
            (None, false) => self.take(key, |p| p.uid.as_deref().is_some_and(|held| held != uid)),
        }
    }

    /// Releases what a pod holds: one that is gone or finished (`uid` given: only if it is
    /// still that pod), or a reservation whose create failed (`None`: only a reservation not yet
    /// given a uid). Returns whether room was freed.
    pub(crate) fn forget(&mut self, key: &PodKey, uid: Option<&str>) -> bool {
        self.waiting.remove(key);
        self.take(key, |p| p.uid.as_deref() == uid)
    }

    /// Gives a reservation made before the pod existed the pod's uid.
    pub(crate) fn confirm(&mut self, key: &PodKey, uid: &str) {
        if let Some(placement) = self.placements.get_mut(key)
            && placement.uid.is_none()
        {
            placement.uid = Some(uid.to_owned());
        }
    }

    /// Places a pod: the best node that takes it, reserved for it, or why none does (and the pod
    /// then waits for room).
    pub(crate) fn place(
        &mut self,
        key: &PodKey,
        uid: Option<&str>,
        constraints: &Constraints,
        requests: &Totals,
    ) -> Fit {
        match self.best(constraints, requests) {
            Ok(node) => {
                self.waiting.remove(key);
                self.take(key, |_| true);
                self.put(
                    key.clone(),
                    Placement {
                        uid: uid.map(str::to_owned),
                        node: node.clone(),
                        requests: requests.clone(),
                    },
                );
                Fit::Node(node)
            }
            Err(message) => {
                self.waiting.insert(key.clone());
                Fit::Nowhere(message)
            }
        }
    }

    /// Reserves room on a given node (a DaemonSet's pod) without any filter.
    pub(crate) fn reserve_on(&mut self, key: &PodKey, node: &str, requests: &Totals) {
        self.take(key, |_| true);
        self.put(
            key.clone(),
            Placement {
                uid: None,
                node: node.to_owned(),
                requests: requests.clone(),
            },
        );
    }

    /// Drops the placements `keep` (given the pod's key and uid, `None` for a reservation)
    /// says are gone, after gone notices were missed; returns whether room was freed.
    pub(crate) fn retain(&mut self, keep: impl Fn(&PodKey, Option<&str>) -> bool) -> bool {
        let gone: Vec<PodKey> = self
            .placements
            .iter()
            .filter(|(key, p)| !keep(key, p.uid.as_deref()))
            .map(|(key, _)| key.clone())
            .collect();
        let mut freed = false;
        for key in gone {
            freed |= self.take(&key, |_| true);
        }
        freed
    }

    /// The pods waiting for room, handed back to try again.
    pub(crate) fn take_waiting(&mut self) -> Vec<PodKey> {
        self.waiting.drain().collect()
    }

    fn put(&mut self, key: PodKey, placement: Placement) {
        let used = self.used.entry(placement.node.clone()).or_default();
        for (resource, millis) in &placement.requests.0 {
            used.add(resource, *millis);
        }
        self.placements.insert(key, placement);
    }

    /// Removes `key`'s placement when `matches` says so; returns whether room was freed.
    fn take(&mut self, key: &PodKey, matches: impl Fn(&Placement) -> bool) -> bool {
        let Some(placement) = self.placements.get(key) else {
            return false;
        };
        if !matches(placement) {
            return false;
        }
        let Some(placement) = self.placements.remove(key) else {
            return false;
        };
        if let Some(used) = self.used.get_mut(&placement.node) {
            for (resource, millis) in &placement.requests.0 {
                used.add(resource, -millis);
            }
            if used.0.values().all(|v| *v <= 0) {
                self.used.remove(&placement.node);
            }
        }
        true
    }

    fn free(&self, node: &str, room: &Room, resource: &str) -> i128 {
        let allocatable = room.allocatable.0.get(resource).copied().unwrap_or(0);
        let used = self
            .used
            .get(node)
            .and_then(|u| u.0.get(resource))
            .copied()
            .unwrap_or(0);
        allocatable - used
    }

    /// Filter, then score by least allocated (kube's default), ties by name.
    fn best(&self, constraints: &Constraints, requests: &Totals) -> Result<String, String> {
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut best: Option<(i128, &String)> = None;
        for (name, room) in &self.rooms {
            let mut reject = |reason: String| *reasons.entry(reason).or_default() += 1;
            if !room.schedulable {
                reject("node(s) were unschedulable".to_owned());
                continue;
            }
            if let Some(taint) = constraints.untolerated(&room.taints) {
                reject(format!(
                    "node(s) had untolerated taint {{{}: {}}}",
                    taint.key,
                    taint.value_or_empty()
                ));
                continue;
            }
            if !constraints.matches_node(name, &room.labels) {
                reject("node(s) didn't match Pod's node affinity/selector".to_owned());
                continue;
            }
            let mut fits = true;
            for (resource, wanted) in &requests.0 {
                if *wanted > 0 && self.free(name, room, resource) < *wanted {
                    fits = false;
                    reject(if resource == PODS {
                        "Too many pods".to_owned()
                    } else {
                        format!("Insufficient {resource}")
                    });
                }
            }
            if !fits {
                continue;
            }
            let score = ["cpu", "memory"]
                .iter()
                .map(|resource| {
                    let allocatable = room.allocatable.0.get(*resource).copied().unwrap_or(0);
                    if allocatable <= 0 {
                        return 0;
                    }
                    let wanted = requests.0.get(*resource).copied().unwrap_or(0);
                    (self.free(name, room, resource) - wanted) * 100 / allocatable
                })
                .sum::<i128>();
            if best.is_none_or(|(top, _)| score > top) {
                best = Some((score, name));
            }
        }
        if let Some((_, name)) = best {
            return Ok(name.clone());
        }
        if self.rooms.is_empty() {
            return Err("no nodes available to schedule pods".to_owned());
        }
        let mut parts: Vec<String> = reasons
            .into_iter()
            .map(|(reason, count)| format!("{count} {reason}"))
            .collect();
        parts.sort();
        Err(format!(
            "0/{} nodes are available: {}.",
            self.rooms.len(),
            parts.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn room(cpu: i128, pods: i128) -> Room {
        let mut allocatable = Totals::default();
        allocatable.add("cpu", cpu);
        allocatable.add("memory", 16 << 30);
        allocatable.add(PODS, pods * 1000);
        Room {
            allocatable,
            schedulable: true,
            ..Room::default()
        }
    }

    fn pod(spec: serde_json::Value) -> (Constraints, Totals) {
        let spec: PodSpec = serde_json::from_value(spec).unwrap_or_default();
        (Constraints::of(&spec), requests(&spec))
    }

    fn cpu_pod(cpu: &str) -> (Constraints, Totals) {
        pod(json!({"containers": [{"name": "a", "image": "i",
            "resources": {"requests": {"cpu": cpu}}}]}))
    }

    fn key(name: &str) -> PodKey {
        ("default".to_owned(), name.to_owned())
    }

    fn ledger(rooms: &[(&str, Room)]) -> Ledger {
        let mut ledger = Ledger::default();
        for (name, room) in rooms {
            ledger.set_room(name, room.clone());
        }
        ledger
    }

    #[test]
    fn requests_sum_containers_take_the_largest_init_container_and_count_the_pod() {
        let (_, totals) = pod(json!({
            "containers": [
                {"name": "a", "image": "i", "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}}},
                {"name": "b", "image": "i", "resources": {"requests": {"cpu": "1"}}}],
            "initContainers": [
                {"name": "i", "image": "i", "resources": {"requests": {"cpu": "2", "memory": "10Mi"}}}],
        }));
        assert_eq!(totals.0.get("cpu"), Some(&2000));
        assert_eq!(totals.0.get("memory"), Some(&((1 << 30) * 1000)));
        assert_eq!(totals.0.get(PODS), Some(&1000));
    }

    #[test]
    fn pods_go_to_the_least_allocated_node_and_reserve_it() {
        let mut ledger = ledger(&[("a", room(4000, 110)), ("b", room(4000, 110))]);
        let (c, r) = cpu_pod("3");
        assert_eq!(
            ledger.place(&key("p1"), None, &c, &r),
            Fit::Node("a".into())
        );
        // a now has 1 cpu left: the next goes to b, the third fits nowhere.
        assert_eq!(
            ledger.place(&key("p2"), None, &c, &r),
            Fit::Node("b".into())
        );
        assert_eq!(
            ledger.place(&key("p3"), None, &c, &r),
            Fit::Nowhere("0/2 nodes are available: 2 Insufficient cpu.".into())
        );
        assert_eq!(ledger.take_waiting(), vec![key("p3")]);
    }

    #[test]
    fn no_fit_messages_count_each_reason_as_kube_does() {
        let cordoned = Room {
            schedulable: false,
            ..room(4000, 110)
        };
        let tainted = Room {
            taints: vec![Taint {
                key: "dedicated".into(),
                value: Some("gpu".into()),
                effect: "NoSchedule".into(),
                time_added: None,
            }],
            ..room(4000, 110)
        };
        let full = Room {
            labels: BTreeMap::from([("zone".to_owned(), "a".to_owned())]),
            ..room(4000, 0)
        };
        let zoned = Room {
            labels: BTreeMap::from([("zone".to_owned(), "b".to_owned())]),
            ..room(4000, 110)
        };
        let mut ledger = ledger(&[("a", cordoned), ("b", tainted), ("c", full), ("d", zoned)]);
        let (c, r) = pod(json!({"containers": [{"name": "a", "image": "i"}],
                                "nodeSelector": {"zone": "a"}}));
        assert_eq!(
            ledger.place(&key("p"), None, &c, &r),
            Fit::Nowhere(
                "0/4 nodes are available: 1 Too many pods, 1 node(s) didn't match Pod's node \
                 affinity/selector, 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) \
                 were unschedulable."
                    .into()
            )
        );
        let empty = &mut Ledger::default();
        assert_eq!(
            empty.place(&key("p"), None, &c, &r),
            Fit::Nowhere("no nodes available to schedule pods".into())
        );
    }

    #[test]
    fn tolerations_and_affinity_let_pods_onto_matching_nodes() {
        let tainted = Room {
            taints: vec![Taint {
                key: "dedicated".into(),
                value: Some("gpu".into()),
                effect: "NoSchedule".into(),
                time_added: None,
            }],
            labels: BTreeMap::from([("zone".to_owned(), "a".to_owned())]),
            ..room(4000, 110)
        };
        let mut ledger = ledger(&[("a", tainted), ("b", room(4000, 110))]);
        let (c, r) = pod(json!({"containers": [{"name": "a", "image": "i"}],
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}}));
        assert_eq!(ledger.place(&key("p"), None, &c, &r), Fit::Node("a".into()));
        let (c, r) = pod(json!({"containers": [{"name": "a", "image": "i"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]}]}}}}));
        assert_eq!(ledger.place(&key("q"), None, &c, &r), Fit::Node("b".into()));
    }

    #[test]
    fn room_comes_back_when_a_pod_finishes_or_goes_and_only_for_that_pod() {
        let mut ledger = ledger(&[("a", room(4000, 110))]);
        let (c, r) = cpu_pod("3");
        assert_eq!(
            ledger.place(&key("p1"), None, &c, &r),
            Fit::Node("a".into())
        );
        ledger.confirm(&key("p1"), "uid-1");
        assert!(matches!(
            ledger.place(&key("p2"), None, &c, &r),
            Fit::Nowhere(_)
        ));
        // The gone notice of an older pod with the same name frees nothing.
        assert!(!ledger.forget(&key("p1"), Some("uid-0")));
        // The cache showing the reserved pod still unbound keeps the reservation.
        assert!(!ledger.observe(&key("p1"), "uid-1", None, r.clone(), false));
        assert!(matches!(
            ledger.place(&key("p2"), None, &c, &r),
            Fit::Nowhere(_)
        ));
        // Finished: the room is free again.
        assert!(ledger.observe(&key("p1"), "uid-1", Some("a"), r.clone(), true));
        assert_eq!(
            ledger.place(&key("p2"), None, &c, &r),
            Fit::Node("a".into())
        );
        // A failed create gives back its reservation; a confirmed one stays.
        assert!(ledger.forget(&key("p2"), None));
        assert_eq!(
            ledger.place(&key("p3"), None, &c, &r),
            Fit::Node("a".into())
        );
    }

    #[test]
    fn a_new_or_grown_node_wakes_waiting_pods_and_an_unchanged_one_does_not() {
        let mut ledger = ledger(&[("a", room(1000, 110))]);
        assert_eq!(ledger.set_room("a", room(1000, 110)), None);
        assert_eq!(ledger.set_room("a", room(2000, 110)), Some(true));
        assert_eq!(ledger.set_room("a", room(1000, 110)), Some(false));
        assert_eq!(ledger.set_room("b", room(1000, 110)), Some(true));
        let cordoned = Room {
            schedulable: false,
            ..room(1000, 110)
        };
        assert_eq!(ledger.set_room("c", cordoned), Some(false));
        assert_eq!(ledger.set_room("c", room(1000, 110)), Some(true));
    }
}
