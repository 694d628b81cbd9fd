//! Well-known keys: labels, annotations, finalizers, field managers, taints and reserved
//! namespaces. Every controller takes its keys from here, so they are written once.

/// Labels Flotilla sets.
pub mod labels {
    /// On a template: the permanent id of the PropagationPolicy that claims it.
    pub const PROPAGATION_POLICY_PERMANENT_ID: &str = "propagationpolicy.flotilla.io/permanent-id";
    /// On a template: the permanent id of the ClusterPropagationPolicy that claims it.
    pub const CLUSTER_PROPAGATION_POLICY_PERMANENT_ID: &str =
        "clusterpropagationpolicy.flotilla.io/permanent-id";
    /// On a Work: the permanent id of the ResourceBinding it was rendered from.
    pub const RESOURCE_BINDING_PERMANENT_ID: &str = "resourcebinding.flotilla.io/permanent-id";
    /// On a Work: the permanent id of the ClusterResourceBinding it was rendered from.
    pub const CLUSTER_RESOURCE_BINDING_PERMANENT_ID: &str =
        "clusterresourcebinding.flotilla.io/permanent-id";
    /// On a member object: the permanent id of the Work that manages it.
    pub const WORK_PERMANENT_ID: &str = "work.flotilla.io/permanent-id";
    /// On a member object: who manages it.
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    /// The value of [`MANAGED_BY`] on objects Flotilla manages.
    pub const MANAGED_BY_FLOTILLA: &str = "flotilla";
    /// On a template: `Always` blocks deleting it while it is propagated.
    pub const DELETION_PROTECTED: &str = "resourcetemplate.flotilla.io/deletion-protected";
    /// On a namespace: `true` stops it being propagated automatically.
    pub const SKIP_AUTO_PROPAGATION: &str = "namespace.flotilla.io/skip-auto-propagation";
    /// On a Work the namespace-sync controller writes: the hub namespace it copies.
    pub const SYNCED_NAMESPACE: &str = "namespace.flotilla.io/synced";
    /// On a Machine: the Cluster it belongs to.
    pub const MACHINE_CLUSTER_NAME: &str = "cluster.flotilla.io/cluster-name";
    /// On a Machine: present on control-plane machines.
    pub const MACHINE_CONTROL_PLANE: &str = "cluster.flotilla.io/control-plane";
    /// On a Machine: the MachineSet that owns it.
    pub const MACHINE_SET_NAME: &str = "cluster.flotilla.io/set-name";
    /// On a Machine a MachineSet made: the hash of the template it was made from.
    pub const MACHINE_TEMPLATE_HASH: &str = "cluster.flotilla.io/template-hash";
}

/// Annotations Flotilla sets.
pub mod annotations {
    /// On a Machine (set by a user or a controller): delete this machine first when its
    /// MachineSet scales down.
    pub const DELETE_MACHINE: &str = "cluster.flotilla.io/delete-machine";
    /// On a Cluster or a Machine: the lifecycle controllers leave its machines alone.
    pub const PAUSED: &str = "cluster.flotilla.io/paused";
    /// On a template: the namespace of the PropagationPolicy that claims it.
    pub const PROPAGATION_POLICY_NAMESPACE: &str = "propagationpolicy.flotilla.io/namespace";
    /// On a template: the name of the PropagationPolicy that claims it.
    pub const PROPAGATION_POLICY_NAME: &str = "propagationpolicy.flotilla.io/name";
    /// On a template: the name of the ClusterPropagationPolicy that claims it.
    pub const CLUSTER_PROPAGATION_POLICY_NAME: &str = "clusterpropagationpolicy.flotilla.io/name";
    /// On a binding: the `metadata.generation` of the template it was built from.
    pub const RESOURCE_TEMPLATE_GENERATION: &str = "resourcetemplate.flotilla.io/generation";
    /// On a binding: the placement the scheduler last scheduled, as JSON.
    pub const APPLIED_PLACEMENT: &str = "policy.flotilla.io/applied-placement";
    /// On a Work: the OverridePolicies applied, as JSON.
    pub const APPLIED_OVERRIDES: &str = "policy.flotilla.io/applied-overrides";
    /// On a Work: the ClusterOverridePolicies applied, as JSON.
    pub const APPLIED_CLUSTER_OVERRIDES: &str = "policy.flotilla.io/applied-cluster-overrides";
    /// On a binding with `propagateDeps`: the objects its template depends on, as JSON
    /// (`[{apiVersion, kind, namespace, name}]`), written by the dependencies distributor.
    pub const DEPENDENCIES: &str = "resourcebinding.flotilla.io/dependencies";
    /// On a member object: the namespace of the Work that manages it.
    pub const WORK_NAMESPACE: &str = "work.flotilla.io/namespace";
    /// On a member object: the name of the Work that manages it.
    pub const WORK_NAME: &str = "work.flotilla.io/name";
    /// On a manifest: `overwrite` or `abort`, how to handle an unmanaged member object.
    pub const CONFLICT_RESOLUTION: &str = "work.flotilla.io/conflict-resolution";
    /// On a Cluster: `"true"` when the objects Flotilla applied to the member stay there
    /// (released, no longer managed) as the Cluster leaves the fleet, as `flotilla unjoin` sets
    /// unless asked to delete them.
    pub const RETAIN_MEMBER_OBJECTS: &str = "cluster.flotilla.io/retain-member-objects";
    /// On a Cluster: `<namespace>/<serviceaccount>`, the identity `flotilla join` made in the
    /// member for the hub, which `flotilla unjoin` removes.
    pub const MEMBER_IDENTITY: &str = "cluster.flotilla.io/member-identity";
}

/// Finalizers Flotilla sets.
pub mod finalizers {
    /// On a Work: the execution controller removes member objects before the Work goes.
    pub const EXECUTION_CONTROLLER: &str = "flotilla.io/execution-controller";
    /// On a binding: the binding controller removes Works before the binding goes.
    pub const BINDING_CONTROLLER: &str = "flotilla.io/binding-controller";
    /// On a Cluster: the cluster controller removes the execution namespace before it goes.
    pub const CLUSTER_CONTROLLER: &str = "flotilla.io/cluster-controller";
    /// On a Machine: the machine controller deprovisions it before it goes.
    pub const MACHINE_CONTROLLER: &str = "provisioning.flotilla.io/machine-controller";
}

/// Server-side-apply field managers, one per controller.
pub mod field_managers {
    /// The resource detector.
    pub const DETECTOR: &str = "flotilla-detector";
    /// The dependencies distributor.
    pub const DEPENDENCIES: &str = "flotilla-dependencies";
    /// The scheduler.
    pub const SCHEDULER: &str = "flotilla-scheduler";
    /// The binding controller.
    pub const BINDING: &str = "flotilla-binding";
    /// The execution controller.
    pub const EXECUTION: &str = "flotilla-execution";
    /// The work-status controller.
    pub const WORK_STATUS: &str = "flotilla-work-status";
    /// The binding-status controller.
    pub const BINDING_STATUS: &str = "flotilla-binding-status";
    /// The cluster controller.
    pub const CLUSTER: &str = "flotilla-cluster";
    /// The cluster-status controller.
    pub const CLUSTER_STATUS: &str = "flotilla-cluster-status";
    /// The pull-mode agent.
    pub const AGENT: &str = "flotilla-agent";
    /// The machine controllers.
    pub const PROVISIONING: &str = "flotilla-provisioning";
    /// The MachineHealthCheck controller (its conditions on Machines are its own).
    pub const MACHINE_HEALTH_CHECK: &str = "flotilla-machinehealthcheck";
    /// `flotilla join` and `flotilla unjoin`, in the member and on the hub.
    pub const JOIN: &str = "flotilla-join";
}

/// Taint keys the cluster controller manages.
pub mod taints {
    /// The cluster's Ready condition is False.
    pub const NOT_READY: &str = "cluster.flotilla.io/not-ready";
    /// The cluster's Ready condition is Unknown.
    pub const UNREACHABLE: &str = "cluster.flotilla.io/unreachable";
    /// The cluster is cordoned.
    pub const UNSCHEDULABLE: &str = "cluster.flotilla.io/unschedulable";
}

/// Reserved namespaces.
pub mod namespaces {
    /// Where Flotilla's own components run.
    pub const SYSTEM: &str = "flotilla-system";
    /// Where cluster credentials and pull-mode Leases live.
    pub const CLUSTER: &str = "flotilla-cluster";
    /// The prefix of execution namespaces (see [`crate::names::execution_namespace`]).
    pub const EXECUTION_PREFIX: &str = "flotilla-es-";
    /// In a joined member: where the hub's ServiceAccount and its token live.
    pub const MEMBER_IDENTITY: &str = "flotilla-hub";
}

/// The scheduler a binding uses when it names none.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";
