//! Override-engine throughput: renders/s of one Deployment for one cluster through
//! `render::manifest` with five overriders (image, command, args, labels, annotations) in one
//! OverridePolicy and a ClusterOverridePolicy adding a plaintext patch, single-threaded. Run with
//! `cargo bench -p flotilla-propagation --bench render` (`RENDER_BENCH_ITERATIONS` sets N).

use std::time::Instant;

use flotilla_api::{Cluster, ClusterOverridePolicy, OverridePolicy, work::TargetCluster};
use flotilla_propagation::render;
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = std::env::var("RENDER_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let template = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "uid": "u", "resourceVersion": "9",
            "labels": {"app": "web"}, "managedFields": [{"manager": "kubectl"}]},
        "spec": {"replicas": 6, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "app", "image": "docker.io/library/nginx:1.27", "args": ["-g", "daemon off;"],
                     "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}},
                    {"name": "sidecar", "image": "busybox:1.36", "command": ["sleep"]}]}}},
        "status": {"replicas": 6}});
    let cluster: Cluster = serde_json::from_value(json!({
        "apiVersion": "cluster.flotilla.io/v1alpha1", "kind": "Cluster",
        "metadata": {"name": "member1", "labels": {"region": "us-east"}},
        "spec": {"syncMode": "Push", "region": "us-east"}}))?;
    let op: OverridePolicy = serde_json::from_value(json!({
        "apiVersion": "policy.flotilla.io/v1alpha1", "kind": "OverridePolicy",
        "metadata": {"name": "five", "namespace": "shop"},
        "spec": {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}],
            "overrideRules": [{"targetCluster": {"clusterNames": ["member1"]}, "overriders": {
                "imageOverrider": [{"component": "Registry", "operator": "replace", "value": "mirror.example.com"}],
                "commandOverrider": [{"containerName": "sidecar", "operator": "add", "value": ["3600"]}],
                "argsOverrider": [{"containerName": "app", "operator": "add", "value": ["-q"]}],
                "labelsOverrider": [{"operator": "add", "value": {"tier": "frontend"}}],
                "annotationsOverrider": [{"operator": "add", "value": {"owner": "team-a"}}]}}]}}))?;
    let cop: ClusterOverridePolicy = serde_json::from_value(json!({
        "apiVersion": "policy.flotilla.io/v1alpha1", "kind": "ClusterOverridePolicy",
        "metadata": {"name": "nodes"},
        "spec": {"overrideRules": [{"overriders": {"plaintext": [
            {"path": "/spec/template/spec/priorityClassName", "operator": "add", "value": "high"}]}}]}}))?;
    let target = TargetCluster {
        name: "member1".into(),
        replicas: 2,
    };
    let (ops, cops) = (vec![op], vec![cop]);
    let once = render::manifest(&template, &target, true, None, &cluster, &cops, &ops)?;
    assert_eq!(
        once.applied.overrides.len(),
        1,
        "the OverridePolicy applied"
    );
    let start = Instant::now();
    for _ in 0..n {
        let r = render::manifest(&template, &target, true, None, &cluster, &cops, &ops)?;
        std::hint::black_box(r);
    }
    let elapsed = start.elapsed();
    println!("| benchmark | result |");
    println!("|---|---|");
    println!(
        "| override engine: renders/s, one Deployment, 6 overriders, one core ({n} renders) | {:.0} |",
        f64::from(n) / elapsed.as_secs_f64()
    );
    println!(
        "| override engine: time per render | {:.1} µs |",
        elapsed.as_secs_f64() * 1e6 / f64::from(n)
    );
    Ok(())
}
