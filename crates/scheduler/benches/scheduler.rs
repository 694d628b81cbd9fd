//! Scheduling decisions per second at 100 / 1,000 / 5,000 candidate clusters for each strategy,
//! on one core (one thread). Prints a Markdown table. Run with
//! `cargo bench -p flotilla-scheduler --bench scheduler`.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use flotilla_api::{Cluster, policy::SpreadByField, work::ResourceBinding};
use flotilla_scheduler::{ScheduleInput, Snapshot, schedule};
use flotilla_testing::fixtures::{BindingBuilder, ClusterBuilder};

fn fleet(n: usize) -> Snapshot {
    let clusters: Vec<Cluster> = (0..n)
        .map(|i| {
            let region = format!("region-{}", i % 10);
            let zone = format!("{region}-{}", (i / 10) % 3);
            let cpu = 16 + (i * 7919) % 240;
            let used = (i * 104_729) % cpu;
            ClusterBuilder::new(&format!("member-{i:05}"))
                .region(&region)
                .zones(&[&zone])
                .provider(["aws", "gcp", "azure"][i % 3])
                .label("tier", ["gold", "silver"][i % 2])
                .allocatable(&[
                    ("cpu", &cpu.to_string()),
                    ("memory", &format!("{}Gi", cpu * 4)),
                    ("pods", "110"),
                ])
                .allocated(&[
                    ("cpu", &used.to_string()),
                    ("memory", &format!("{}Gi", used * 2)),
                    ("pods", "10"),
                ])
                .build()
        })
        .collect();
    Snapshot::from_clusters(clusters)
}

fn workload() -> BindingBuilder {
    BindingBuilder::new()
        .replicas(20)
        .request(&[("cpu", "500m"), ("memory", "1Gi")])
}

/// Static weights by label: gold clusters weigh 2, silver 1 (every cluster matches a rule).
fn by_tier() -> ResourceBinding {
    use flotilla_api::policy::{ClusterAffinity, StaticClusterWeight};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    let mut binding = workload().static_weights(&[]).build();
    let tier = |value: &str, weight| StaticClusterWeight {
        target_cluster: ClusterAffinity {
            label_selector: Some(LabelSelector {
                match_labels: Some([("tier".into(), value.into())].into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        weight,
    };
    if let Some(w) = binding
        .spec
        .placement
        .as_mut()
        .and_then(|p| p.replica_scheduling.as_mut())
        .and_then(|s| s.weight_preference.as_mut())
    {
        w.static_weight_list = vec![tier("gold", 2), tier("silver", 1)];
    }
    binding
}

fn strategies(n: usize) -> Vec<(&'static str, ResourceBinding)> {
    let weights: Vec<(String, i64)> = (0..n)
        .step_by(7)
        .map(|i| (format!("member-{i:05}"), 1 + (i % 5) as i64))
        .collect();
    let weights: Vec<(&str, i64)> = weights.iter().map(|(n, w)| (n.as_str(), *w)).collect();
    vec![
        ("Duplicated", workload().duplicated().build()),
        ("StaticWeight (2 label rules)", by_tier()),
        (
            "StaticWeight (1 rule per 7th cluster)",
            workload().static_weights(&weights).build(),
        ),
        ("DynamicWeight", workload().dynamic().build()),
        ("Aggregated", workload().aggregated().build()),
        (
            "DynamicWeight + spread cluster 2..5",
            workload()
                .dynamic()
                .spread(SpreadByField::Cluster, 2, 5)
                .build(),
        ),
        (
            "DynamicWeight + spread region 2..3, cluster 3..6",
            workload()
                .dynamic()
                .spread(SpreadByField::Cluster, 3, 6)
                .spread(SpreadByField::Region, 2, 3)
                .build(),
        ),
        (
            "Aggregated + spread zone 2..2, cluster 2..4",
            workload()
                .aggregated()
                .spread(SpreadByField::Cluster, 2, 4)
                .spread(SpreadByField::Zone, 2, 2)
                .build(),
        ),
    ]
}

fn measure(snapshot: &Snapshot, binding: &ResourceBinding) -> (f64, usize) {
    let input = ScheduleInput::from_resource_binding(binding);
    let decision = schedule(snapshot, &input).expect("benchmark bindings schedule");
    let chosen = decision.clusters.len();
    // Warm up, then run for about a second.
    for _ in 0..10 {
        black_box(schedule(snapshot, &input).ok());
    }
    let budget = Duration::from_millis(1000);
    let start = Instant::now();
    let mut iterations = 0u64;
    while start.elapsed() < budget {
        for _ in 0..10 {
            black_box(schedule(black_box(snapshot), black_box(&input)).ok());
        }
        iterations += 10;
    }
    (iterations as f64 / start.elapsed().as_secs_f64(), chosen)
}

fn main() {
    println!("| strategy | clusters | decisions/s | µs/decision | clusters chosen |");
    println!("|---|---:|---:|---:|---:|");
    for n in [100, 1_000, 5_000] {
        let snapshot = fleet(n);
        for (name, binding) in strategies(n) {
            let (rate, chosen) = measure(&snapshot, &binding);
            println!(
                "| {name} | {n} | {rate:.0} | {:.1} | {chosen} |",
                1e6 / rate
            );
        }
    }
}
