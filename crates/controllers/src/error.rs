//! The crate's one error type. Owns only error shapes and their messages; never decides
//! anything.

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the hub controllers, one variant per action that failed
/// (the variant name is the `reason` label of the reconcile error metric).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing a Cluster's status failed.
    #[error("failed to write the status of Cluster {cluster}: {source}")]
    WriteClusterStatus {
        /// The Cluster.
        cluster: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Renewing the heartbeat Lease of a Cluster failed.
    #[error("failed to renew the heartbeat Lease of Cluster {cluster}: {source}")]
    RenewHeartbeat {
        /// The Cluster.
        cluster: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Writing a Cluster's taints failed.
    #[error("failed to write the taints of Cluster {cluster}: {source}")]
    WriteTaints {
        /// The Cluster.
        cluster: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Installing or updating a CRD failed.
    #[error("failed to install CRD {name}: {source}")]
    InstallCrd {
        /// The CRD name.
        name: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Watching a CRD for its Established condition failed.
    #[error("failed to wait for CRD {name}: {source}")]
    WaitCrd {
        /// The CRD name.
        name: String,
        /// The watch error.
        #[source]
        source: kube::runtime::wait::Error,
    },

    /// A CRD was not Established in time after it was installed.
    #[error(
        "CRD {name} was not Established within {seconds}s; check the API server's CRD controller"
    )]
    CrdNotEstablished {
        /// The CRD name.
        name: String,
        /// How long was waited.
        seconds: u64,
    },

    /// Creating a namespace failed.
    #[error("failed to create namespace {namespace}: {source}")]
    CreateNamespace {
        /// The namespace.
        namespace: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Writing a member's credentials Secret failed.
    #[error("failed to write the credentials Secret of {member}: {source}")]
    WriteMemberSecret {
        /// The member.
        member: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Registering a member's Cluster failed.
    #[error("failed to register Cluster {member}: {source}")]
    RegisterCluster {
        /// The member.
        member: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Adding or removing the cluster controller's finalizer failed.
    #[error("failed to update the finalizers of Cluster {cluster}: {source}")]
    ClusterFinalizer {
        /// The Cluster.
        cluster: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Removing a leaving Cluster's Works or execution namespace failed.
    #[error("failed to clean up after Cluster {cluster}: {source}")]
    CleanupCluster {
        /// The Cluster.
        cluster: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// A leaving Cluster still has Works being finalized; retried until they are gone.
    #[error("Cluster {cluster} is leaving: waiting for {works} Works in {namespace} to go")]
    WorksRemain {
        /// The Cluster.
        cluster: String,
        /// Its execution namespace.
        namespace: String,
        /// How many Works are left.
        works: usize,
    },

    /// Writing or deleting a cluster's namespace Work failed.
    #[error("failed to sync namespace Work {work} of Cluster {cluster}: {source}")]
    SyncNamespace {
        /// The Cluster.
        cluster: String,
        /// The Work.
        work: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Creating a MachineSet's machine failed.
    #[error("failed to create Machine {machine} of MachineSet {set}: {source}")]
    CreateMachine {
        /// The MachineSet.
        set: String,
        /// The Machine.
        machine: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Deleting a MachineSet's machine failed.
    #[error("failed to delete Machine {machine} of MachineSet {set}: {source}")]
    DeleteMachine {
        /// The MachineSet.
        set: String,
        /// The Machine.
        machine: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Adopting an orphaned machine into a MachineSet failed.
    #[error("failed to adopt Machine {machine} into MachineSet {set}: {source}")]
    AdoptMachine {
        /// The MachineSet.
        set: String,
        /// The Machine.
        machine: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Adding or removing the machine controller's finalizer failed.
    #[error("failed to update the finalizers of Machine {machine}: {source}")]
    MachineFinalizer {
        /// The Machine.
        machine: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Writing a Machine's status failed.
    #[error("failed to write the status of Machine {machine}: {source}")]
    WriteMachineStatus {
        /// The Machine.
        machine: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Cordoning, draining or deleting a deleted Machine's node failed.
    #[error("failed to drain Node {node} of Machine {machine}: {source}")]
    DrainNode {
        /// The Machine.
        machine: String,
        /// The Node.
        node: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// A deleted Machine's node still runs pods; retried until they are evicted or the drain
    /// timeout passes.
    #[error("Machine {machine} is being deleted: draining Node {node}, {pods} pods left")]
    NodeDraining {
        /// The Machine.
        machine: String,
        /// The Node.
        node: String,
        /// Pods still to evict.
        pods: usize,
    },

    /// A deleted Machine's cluster cannot be reached to drain its node; retried until the
    /// node deletion timeout passes.
    #[error(
        "Machine {machine} is being deleted: cannot reach its cluster to drain Node {node}: {message}"
    )]
    ClusterUnreachableForMachine {
        /// The Machine.
        machine: String,
        /// The Node.
        node: String,
        /// Why.
        message: String,
    },

    /// Writing a MachineHealthCheck's conditions on a Machine failed.
    #[error("failed to mark Machine {machine} for MachineHealthCheck {check}: {source}")]
    MarkMachine {
        /// The MachineHealthCheck.
        check: String,
        /// The Machine.
        machine: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Writing a MachineHealthCheck's status failed.
    #[error("failed to write the status of MachineHealthCheck {check}: {source}")]
    WriteMachineHealthCheckStatus {
        /// The MachineHealthCheck.
        check: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Writing a MachineSet's status failed.
    #[error("failed to write the status of MachineSet {set}: {source}")]
    WriteMachineSetStatus {
        /// The MachineSet.
        set: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// The controller platform failed (a cache asked for too late, a member client).
    #[error(transparent)]
    Platform(#[from] flotilla_runtime::Error),
}

impl Error {
    /// The client error, when the failure was a request to an API server.
    fn kube(&self) -> Option<&kube::Error> {
        match self {
            Error::WriteClusterStatus { source, .. }
            | Error::RenewHeartbeat { source, .. }
            | Error::WriteTaints { source, .. }
            | Error::InstallCrd { source, .. }
            | Error::CreateNamespace { source, .. }
            | Error::WriteMemberSecret { source, .. }
            | Error::RegisterCluster { source, .. }
            | Error::ClusterFinalizer { source, .. }
            | Error::CleanupCluster { source, .. }
            | Error::SyncNamespace { source, .. }
            | Error::CreateMachine { source, .. }
            | Error::DeleteMachine { source, .. }
            | Error::AdoptMachine { source, .. }
            | Error::WriteMachineSetStatus { source, .. }
            | Error::MachineFinalizer { source, .. }
            | Error::WriteMachineStatus { source, .. }
            | Error::DrainNode { source, .. }
            | Error::MarkMachine { source, .. }
            | Error::WriteMachineHealthCheckStatus { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl flotilla_runtime::ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Error::WriteClusterStatus { .. } => "WriteClusterStatus",
            Error::RenewHeartbeat { .. } => "RenewHeartbeat",
            Error::WriteTaints { .. } => "WriteTaints",
            Error::InstallCrd { .. } => "InstallCrd",
            Error::WaitCrd { .. } => "WaitCrd",
            Error::CrdNotEstablished { .. } => "CrdNotEstablished",
            Error::CreateNamespace { .. } => "CreateNamespace",
            Error::WriteMemberSecret { .. } => "WriteMemberSecret",
            Error::RegisterCluster { .. } => "RegisterCluster",
            Error::ClusterFinalizer { .. } => "ClusterFinalizer",
            Error::CleanupCluster { .. } => "CleanupCluster",
            Error::WorksRemain { .. } => "WorksRemain",
            Error::SyncNamespace { .. } => "SyncNamespace",
            Error::CreateMachine { .. } => "CreateMachine",
            Error::DeleteMachine { .. } => "DeleteMachine",
            Error::AdoptMachine { .. } => "AdoptMachine",
            Error::WriteMachineSetStatus { .. } => "WriteMachineSetStatus",
            Error::MachineFinalizer { .. } => "MachineFinalizer",
            Error::WriteMachineStatus { .. } => "WriteMachineStatus",
            Error::DrainNode { .. } => "DrainNode",
            Error::MarkMachine { .. } => "MarkMachine",
            Error::WriteMachineHealthCheckStatus { .. } => "WriteMachineHealthCheckStatus",
            Error::NodeDraining { .. } => "NodeDraining",
            Error::ClusterUnreachableForMachine { .. } => "ClusterUnreachableForMachine",
            Error::Platform(_) => "Platform",
        }
    }

    fn is_conflict(&self) -> bool {
        self.kube()
            .is_some_and(flotilla_runtime::error::is_conflict)
    }
}

pub use flotilla_runtime::error::chain;
