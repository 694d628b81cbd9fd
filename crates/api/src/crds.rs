//! The CustomResourceDefinitions of every Flotilla kind, generated from the Rust types. The
//! files in `config/crd/` are exactly these, written by `flotilla crds`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::{
    cluster::Cluster,
    gitops::GitRepo,
    policy::{ClusterOverridePolicy, ClusterPropagationPolicy, OverridePolicy, PropagationPolicy},
    provisioning::{Machine, MachineHealthCheck, MachineSet},
    work::{ClusterResourceBinding, ResourceBinding, Work},
};

/// Every Flotilla CRD, in a stable order.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        Cluster::crd(),
        PropagationPolicy::crd(),
        ClusterPropagationPolicy::crd(),
        OverridePolicy::crd(),
        ClusterOverridePolicy::crd(),
        ResourceBinding::crd(),
        ClusterResourceBinding::crd(),
        Work::crd(),
        Machine::crd(),
        MachineSet::crd(),
        MachineHealthCheck::crd(),
        GitRepo::crd(),
    ]
}

/// The file a CRD is written to: `<group>_<plural>.yaml`, as controller-gen names them.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}
