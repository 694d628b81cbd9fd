//! The crate's one error type, with variants named for the action that failed. Owns only error
//! shapes and their messages; never decides anything.

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while simulating a member.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The shared caches refused a kind (a programming error: every cache is asked for before
    /// the caches start).
    #[error(transparent)]
    Platform(#[from] flotilla_runtime::Error),

    /// Reading the member's `/version` or its core API discovery failed.
    #[error("failed to read the member's {what}: {source}; is the member's API server up?")]
    Discover {
        /// `/version` or `/api/v1`.
        what: &'static str,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Creating or updating a simulated Node failed.
    #[error("failed to apply Node {node}: {source}")]
    ApplyNode {
        /// The Node.
        node: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Writing a simulated Node's status failed.
    #[error("failed to write the status of Node {node}: {source}")]
    WriteNodeStatus {
        /// The Node.
        node: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Renewing a Node's heartbeat Lease in `kube-node-lease` failed.
    #[error("failed to renew the Lease of Node {node}: {source}")]
    RenewLease {
        /// The Node.
        node: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Binding a pod to a node through `pods/binding` failed.
    #[error("failed to bind pod {pod} to node {node}: {source}")]
    BindPod {
        /// `namespace/name`.
        pod: String,
        /// The node.
        node: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Creating a workload's pod failed.
    #[error("failed to create pod {pod}: {source}")]
    CreatePod {
        /// `namespace/name`.
        pod: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Deleting a pod failed.
    #[error("failed to delete pod {pod}: {source}")]
    DeletePod {
        /// `namespace/name`.
        pod: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Writing a pod's status failed.
    #[error("failed to write the status of pod {pod}: {source}")]
    WritePodStatus {
        /// `namespace/name`.
        pod: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Creating a Deployment's ReplicaSet failed.
    #[error("failed to create ReplicaSet {replica_set}: {source}")]
    CreateReplicaSet {
        /// `namespace/name`.
        replica_set: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Scaling a Deployment's ReplicaSet failed.
    #[error("failed to scale ReplicaSet {replica_set}: {source}")]
    ScaleReplicaSet {
        /// `namespace/name`.
        replica_set: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Deleting a surplus ReplicaSet failed.
    #[error("failed to delete ReplicaSet {replica_set}: {source}")]
    DeleteReplicaSet {
        /// `namespace/name`.
        replica_set: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Writing a workload's status through `/status` failed.
    #[error("failed to write the status of {kind} {name}: {source}")]
    WriteStatus {
        /// The workload's kind.
        kind: &'static str,
        /// `namespace/name`.
        name: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
}

impl Error {
    fn kube(&self) -> Option<&kube::Error> {
        match self {
            Error::Platform(_) => None,
            Error::Discover { source, .. }
            | Error::ApplyNode { source, .. }
            | Error::WriteNodeStatus { source, .. }
            | Error::RenewLease { source, .. }
            | Error::BindPod { source, .. }
            | Error::CreatePod { source, .. }
            | Error::DeletePod { source, .. }
            | Error::WritePodStatus { source, .. }
            | Error::CreateReplicaSet { source, .. }
            | Error::ScaleReplicaSet { source, .. }
            | Error::DeleteReplicaSet { source, .. }
            | Error::WriteStatus { source, .. } => Some(source),
        }
    }
}

impl flotilla_runtime::ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Error::Platform(_) => "Platform",
            Error::Discover { .. } => "Discover",
            Error::ApplyNode { .. } => "ApplyNode",
            Error::WriteNodeStatus { .. } => "WriteNodeStatus",
            Error::RenewLease { .. } => "RenewLease",
            Error::BindPod { .. } => "BindPod",
            Error::CreatePod { .. } => "CreatePod",
            Error::DeletePod { .. } => "DeletePod",
            Error::WritePodStatus { .. } => "WritePodStatus",
            Error::CreateReplicaSet { .. } => "CreateReplicaSet",
            Error::ScaleReplicaSet { .. } => "ScaleReplicaSet",
            Error::DeleteReplicaSet { .. } => "DeleteReplicaSet",
            Error::WriteStatus { .. } => "WriteStatus",
        }
    }

    fn is_conflict(&self) -> bool {
        self.kube()
            .is_some_and(flotilla_runtime::error::is_conflict)
    }
}
