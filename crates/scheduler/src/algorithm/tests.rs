//! End-to-end tables for one decision: every worked example of the reference §3.5 through
//! [`schedule`], Steady versus Fresh, monotonicity, affinity-term fallback and diagnoses.

use flotilla_api::{
    Cluster,
    policy::{ClusterAffinity, SpreadByField},
    work::ResourceBinding,
};

use super::*;
use flotilla_testing::fixtures::{BindingBuilder, ClusterBuilder, EVEN_UID, ODD_UID, toleration};

/// One table row: name, fleet, binding, expected result.
type Case = (
    &'static str,
    Vec<Cluster>,
    BindingBuilder,
    Vec<(&'static str, i32)>,
);

fn run(clusters: Vec<Cluster>, binding: &ResourceBinding) -> Result<Decision> {
    let snapshot = Snapshot::from_clusters(clusters);
    schedule(&snapshot, &ScheduleInput::from_resource_binding(binding))
}

fn pairs(decision: &Decision) -> Vec<(&str, i32)> {
    decision
        .clusters
        .iter()
        .map(|t| (t.name.as_str(), t.replicas))
        .collect()
}

fn check(name: &str, clusters: Vec<Cluster>, binding: BindingBuilder, want: &[(&str, i32)]) {
    let decision = run(clusters, &binding.build()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(pairs(&decision), want, "{name}");
}

/// Clusters that can each hold `n` replicas of a request-free binding.
fn pods(list: &[(&str, i64)]) -> Vec<Cluster> {
    list.iter()
        .map(|(name, n)| ClusterBuilder::new(name).pods(*n).build())
        .collect()
}

#[test]
fn static_weight_tables() {
    let three = || pods(&[("a", 100), ("b", 100), ("c", 100)]);
    let four = || pods(&[("a", 100), ("b", 100), ("c", 100), ("d", 100)]);
    let w321 = [("a", 3), ("b", 2), ("c", 1)];
    let w2111 = [("a", 2), ("b", 1), ("c", 1), ("d", 1)];
    let table: Vec<Case> = vec![
        (
            "3:2:1 at 12",
            three(),
            BindingBuilder::new().static_weights(&w321).replicas(12),
            vec![("a", 6), ("b", 4), ("c", 2)],
        ),
        (
            "3:2:1 at 13",
            three(),
            BindingBuilder::new().static_weights(&w321).replicas(13),
            vec![("a", 7), ("b", 4), ("c", 2)],
        ),
        (
            "3:2:1 at 14",
            three(),
            BindingBuilder::new().static_weights(&w321).replicas(14),
            vec![("a", 7), ("b", 5), ("c", 2)],
        ),
        (
            "1:1 at 3",
            pods(&[("a", 9), ("b", 9)]),
            BindingBuilder::new()
                .static_weights(&[("a", 1), ("b", 1)])
                .replicas(3),
            vec![("a", 2), ("b", 1)],
        ),
        (
            "2:1:1:1 at 7",
            four(),
            BindingBuilder::new().static_weights(&w2111).replicas(7),
            vec![("a", 3), ("b", 2), ("c", 1), ("d", 1)],
        ),
        (
            "2:1:1:1 at 8",
            four(),
            BindingBuilder::new().static_weights(&w2111).replicas(8),
            vec![("a", 3), ("b", 2), ("c", 2), ("d", 1)],
        ),
        (
            "2:1:1:1 at 9",
            four(),
            BindingBuilder::new().static_weights(&w2111).replicas(9),
            vec![("a", 3), ("b", 2), ("c", 2), ("d", 2)],
        ),
        (
            "unweighted clusters are dropped",
            four(),
            BindingBuilder::new()
                .static_weights(&[("a", 1), ("b", 1)])
                .replicas(4),
            vec![("a", 2), ("b", 2)],
        ),
        (
            "all weights zero means weight 1 each",
            three(),
            BindingBuilder::new()
                .static_weights(&[("nowhere", 5)])
                .replicas(3),
            vec![("a", 1), ("b", 1), ("c", 1)],
        ),
        (
            "no weight preference means weight 1 each",
            three(),
            BindingBuilder::new().weighted_evenly().replicas(4),
            vec![("a", 2), ("b", 1), ("c", 1)],
        ),
        (
            "static weight ignores the previous result",
            three(),
            BindingBuilder::new()
                .static_weights(&w321)
                .replicas(12)
                .previous(&[("c", 12)]),
            vec![("a", 6), ("b", 4), ("c", 2)],
        ),
        (
            "static weight ignores capacity",
            pods(&[("a", 0), ("b", 0)]),
            BindingBuilder::new()
                .static_weights(&[("a", 1), ("b", 1)])
                .replicas(2),
            vec![("a", 1), ("b", 1)],
        ),
    ];
    for (name, clusters, binding, want) in table {
        check(name, clusters, binding, &want);
    }
}

#[test]
fn static_weight_takes_the_largest_matching_rule() {
    use flotilla_api::policy::{ClusterPreferences, StaticClusterWeight};
    let mut binding = BindingBuilder::new()
        .static_weights(&[])
        .replicas(6)
        .build();
    let label = |k: &str, v: &str| ClusterAffinity {
        label_selector: Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                match_labels: Some([(k.into(), v.into())].into()),
                ..Default::default()
            },
        ),
        ..Default::default()
    };
    let prefs = ClusterPreferences {
        static_weight_list: vec![
            StaticClusterWeight {
                target_cluster: label("env", "prod"),
                weight: 1,
            },
            StaticClusterWeight {
                target_cluster: ClusterAffinity {
                    cluster_names: vec!["a".into()],
                    ..Default::default()
                },
                weight: 2,
            },
        ],
        dynamic_weight: None,
    };
    if let Some(s) = binding
        .spec
        .placement
        .as_mut()
        .and_then(|p| p.replica_scheduling.as_mut())
    {
        s.weight_preference = Some(prefs);
    }
    let clusters = vec![
        ClusterBuilder::new("a").label("env", "prod").build(),
        ClusterBuilder::new("b").label("env", "prod").build(),
    ];
    assert_eq!(
        pairs(&run(clusters, &binding).expect("scheduled")),
        vec![("a", 4), ("b", 2)]
    );
}

#[test]
fn uid_parity_decides_ties() {
    let binding = |uid| {
        BindingBuilder::new()
            .static_weights(&[("A", 1), ("B", 1)])
            .replicas(5)
            .uid(uid)
    };
    check(
        "even uid",
        pods(&[("A", 9), ("B", 9)]),
        binding(EVEN_UID),
        &[("A", 3), ("B", 2)],
    );
    check(
        "odd uid",
        pods(&[("A", 9), ("B", 9)]),
        binding(ODD_UID),
        &[("A", 2), ("B", 3)],
    );
}

#[test]
fn dynamic_and_aggregated_worked_examples() {
    let table: Vec<Case> = vec![
        (
            "scale-down 2/4/6 to 6 divides by the previous result",
            pods(&[("m1", 10), ("m2", 10), ("m3", 10)]),
            BindingBuilder::new().dynamic().replicas(6).previous(&[
                ("m1", 2),
                ("m2", 4),
                ("m3", 6),
            ]),
            vec![("m1", 1), ("m2", 2), ("m3", 3)],
        ),
        (
            "aggregated scale-up 24 from m1:4 m2:8 with allocatable 4/6/8",
            pods(&[("m1", 4), ("m2", 6), ("m3", 8)]),
            BindingBuilder::new()
                .aggregated()
                .replicas(24)
                .previous(&[("m1", 4), ("m2", 8)]),
            vec![("m1", 7), ("m2", 12), ("m3", 5)],
        ),
        (
            "aggregated first schedule 12 over 6/8/10",
            pods(&[("m1", 6), ("m2", 8), ("m3", 10)]),
            BindingBuilder::new().aggregated().replicas(12),
            vec![("m2", 5), ("m3", 7)],
        ),
        (
            "dynamic 12 over 8/8/10",
            pods(&[("m1", 8), ("m2", 8), ("m3", 10)]),
            BindingBuilder::new().dynamic().replicas(12),
            vec![("m1", 4), ("m2", 4), ("m3", 4)],
        ),
        (
            "steady and unchanged keeps the result",
            pods(&[("m1", 100), ("m2", 100)]),
            BindingBuilder::new()
                .dynamic()
                .replicas(5)
                .previous(&[("m1", 5)]),
            vec![("m1", 5)],
        ),
        (
            "replicas on a vanished cluster are reassigned",
            pods(&[("m1", 2), ("m2", 4)]),
            BindingBuilder::new()
                .dynamic()
                .replicas(6)
                .previous(&[("m1", 3), ("gone", 3)]),
            vec![("m1", 4), ("m2", 2)],
        ),
        (
            "dynamic leaves out clusters without capacity",
            pods(&[("m1", 0), ("m2", 5)]),
            BindingBuilder::new().dynamic().replicas(3),
            vec![("m2", 3)],
        ),
    ];
    for (name, clusters, binding, want) in table {
        check(name, clusters, binding, &want);
    }
}

#[test]
fn steady_keeps_history_and_fresh_discards_it() {
    let clusters = || pods(&[("m1", 0), ("m2", 6)]);
    let binding = || {
        BindingBuilder::new()
            .dynamic()
            .replicas(6)
            .previous(&[("m1", 6)])
    };
    check(
        "steady",
        clusters(),
        binding().times(Some(10), Some(20)),
        &[("m1", 6)],
    );
    check(
        "fresh",
        clusters(),
        binding().times(Some(30), Some(20)),
        &[("m1", 3), ("m2", 3)],
    );
    check(
        "fresh when never scheduled before",
        clusters(),
        binding().times(Some(30), None),
        &[("m1", 3), ("m2", 3)],
    );
}

/// Regression: a `rescheduleTriggeredAt` in the future means "reschedule now", once. The
/// scheduler never writes a `lastScheduledTime` later than now, so the trigger stays later than
/// it; a successful schedule at the generation carrying the trigger spends it, and a later
/// trigger (a new generation) counts again.
#[test]
fn a_future_reschedule_trigger_counts_once_per_generation() {
    const FUTURE: i64 = 4_102_444_800; // 2100-01-01
    let b = BindingBuilder::new;
    let table: Vec<(&str, BindingBuilder, bool)> = vec![
        ("no trigger", b().generation(2).scheduled(), false),
        (
            "trigger before the last schedule",
            b().times(Some(10), Some(20)).generation(2).scheduled(),
            false,
        ),
        (
            "trigger after the last schedule, at a new generation",
            b().times(Some(20), Some(10))
                .generation(1)
                .scheduled()
                .generation(2),
            true,
        ),
        (
            "never scheduled",
            b().times(Some(20), None).generation(1),
            true,
        ),
        (
            "future trigger not yet scheduled at its generation",
            b().times(Some(FUTURE), Some(10))
                .generation(1)
                .scheduled()
                .generation(2),
            true,
        ),
        (
            "future trigger spent by a successful schedule at its generation",
            b().times(Some(FUTURE), Some(10)).generation(2).scheduled(),
            false,
        ),
        (
            "future trigger after a failed attempt",
            b().times(Some(FUTURE), Some(10))
                .generation(2)
                .schedule_failed(),
            true,
        ),
        (
            "no generation known: Karmada's rule alone",
            b().times(Some(FUTURE), Some(10)).scheduled(),
            true,
        ),
    ];
    for (name, binding, want) in table {
        let binding = binding.build();
        assert_eq!(
            ScheduleInput::from_resource_binding(&binding).is_fresh(),
            want,
            "{name}"
        );
    }
}

#[test]
fn not_enough_capacity_is_unschedulable() {
    let err = run(
        pods(&[("m1", 2), ("m2", 3)]),
        &BindingBuilder::new().dynamic().replicas(6).build(),
    )
    .expect_err("only 5 replicas fit");
    assert_eq!(
        err.condition_reason(),
        flotilla_api::conditions::reasons::UNSCHEDULABLE
    );
    assert!(
        err.to_string()
            .contains("Clusters available replicas 5 are not enough to schedule."),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("(available replicas per cluster: m1 2, m2 3; 2/2 clusters are available)"),
        "{err}"
    );
    let err = run(
        pods(&[("m1", 2), ("m2", 3)]),
        &BindingBuilder::new()
            .dynamic()
            .replicas(10)
            .previous(&[("m1", 1)])
            .build(),
    )
    .expect_err("scaling up by 9 with room for 5");
    assert!(
        err.to_string()
            .contains("available replicas per cluster: m1 3 including 1 already placed, m2 3;"),
        "{err}"
    );
    let err = run(
        vec![ClusterBuilder::new("m1").build()],
        &BindingBuilder::new().aggregated().replicas(1).build(),
    )
    .expect_err("no resource summary means no capacity");
    assert!(matches!(err, Error::Unschedulable { .. }), "{err}");
}

#[test]
fn duplicated_and_non_workloads_go_everywhere() {
    check(
        "duplicated",
        pods(&[("a", 0), ("b", 9)]),
        BindingBuilder::new().duplicated().replicas(3),
        &[("a", 3), ("b", 3)],
    );
    check(
        "nil strategy is duplicated",
        pods(&[("a", 0), ("b", 9)]),
        BindingBuilder::new().replicas(2),
        &[("a", 2), ("b", 2)],
    );
    check(
        "non-workload gets replicas 0 everywhere",
        vec![
            ClusterBuilder::new("a").build(),
            ClusterBuilder::new("b").build(),
        ],
        BindingBuilder::new().resource("v1", "ConfigMap").dynamic(),
        &[("a", 0), ("b", 0)],
    );
    check(
        "workload with 0 replicas has its zero entries removed",
        pods(&[("a", 1)]),
        BindingBuilder::new().dynamic().request(&[("cpu", "1")]),
        &[],
    );
}

#[test]
fn no_cluster_fit_explains_every_cluster() {
    let clusters = vec![
        ClusterBuilder::new("tainted")
            .taint("maintenance", "NoSchedule")
            .build(),
        ClusterBuilder::new("elsewhere").region("us").build(),
        ClusterBuilder::new("leaving").deleting().build(),
    ];
    let affinity = ClusterAffinity {
        cluster_names: vec!["tainted".into(), "leaving".into()],
        ..Default::default()
    };
    let err = run(
        clusters,
        &BindingBuilder::new().affinity(affinity).replicas(1).build(),
    )
    .expect_err("nothing fits");
    let Error::NoClusterFit { diagnosis } = &err else {
        panic!("wrong error {err}")
    };
    assert_eq!(diagnosis.total, 3);
    assert_eq!(
        diagnosis.rejected["tainted"],
        "cluster(s) had untolerated taint {maintenance:NoSchedule}"
    );
    assert_eq!(
        diagnosis.rejected["elsewhere"],
        crate::plugins::cluster_affinity::REASON
    );
    assert_eq!(diagnosis.rejected["leaving"], "cluster(s) is being deleted");
    let message = err.to_string();
    assert!(
        message.starts_with("no cluster fits: 0/3 clusters are available: "),
        "{message}"
    );
    assert!(
        message.contains("tainted: cluster(s) had untolerated taint"),
        "{message}"
    );
    assert_eq!(
        err.condition_reason(),
        flotilla_api::conditions::reasons::NO_CLUSTER_FIT
    );
}

#[test]
fn cluster_affinities_fall_back_in_order() {
    let clusters = || {
        vec![
            ClusterBuilder::new("primary")
                .taint("down", "NoSchedule")
                .pods(9)
                .build(),
            ClusterBuilder::new("backup").pods(9).build(),
        ]
    };
    let names = |n: &str| ClusterAffinity {
        cluster_names: vec![n.into()],
        ..Default::default()
    };
    let binding = || {
        BindingBuilder::new()
            .duplicated()
            .replicas(2)
            .affinity_term("first", names("primary"))
            .affinity_term("second", names("backup"))
    };
    let decision = run(clusters(), &binding().build()).expect("falls back");
    assert_eq!(pairs(&decision), vec![("backup", 2)]);
    assert_eq!(decision.affinity_name.as_deref(), Some("second"));

    // Once on the second term, stay there even when the first would fit again …
    let healthy = || {
        vec![
            ClusterBuilder::new("primary").pods(9).build(),
            ClusterBuilder::new("backup").pods(9).build(),
        ]
    };
    let decision = run(healthy(), &binding().observed_term("second").build()).expect("stays");
    assert_eq!(decision.affinity_name.as_deref(), Some("second"));
    // … until a fresh reschedule starts over at the first term.
    let decision = run(
        healthy(),
        &binding()
            .observed_term("second")
            .times(Some(5), Some(1))
            .build(),
    )
    .expect("restarts");
    assert_eq!(
        (pairs(&decision), decision.affinity_name.as_deref()),
        (vec![("primary", 2)], Some("first"))
    );

    // When no term fits, the first term's error is reported.
    let err = run(
        vec![ClusterBuilder::new("other").build()],
        &binding().build(),
    )
    .expect_err("none fits");
    assert!(matches!(err, Error::NoClusterFit { .. }), "{err}");
}

/// Regression: region spreading ranks regions by Karmada's cluster score (ClusterLocality +
/// ClusterAffinity) alone, never by capacity. Two one-cluster regions that can both hold the
/// replicas tie, and the tie goes to the first region by name (r1, so cluster a), as in
/// Karmada, not to the roomier cluster b. Locality still decides when it differs.
#[test]
fn region_spread_ranks_regions_by_karmadas_score_not_capacity() {
    let clusters = || {
        vec![
            ClusterBuilder::new("a").region("r1").pods(5).build(),
            ClusterBuilder::new("b").region("r2").pods(10).build(),
        ]
    };
    let by_region = |b: BindingBuilder| {
        b.replicas(2)
            .spread(SpreadByField::Region, 1, 1)
            .spread(SpreadByField::Cluster, 1, 1)
    };
    check(
        "dynamic weight: tied regions go to r1",
        clusters(),
        by_region(BindingBuilder::new().dynamic()),
        &[("a", 2)],
    );
    check(
        "aggregated: tied regions go to r1",
        clusters(),
        by_region(BindingBuilder::new().aggregated()),
        &[("a", 2)],
    );
    check(
        "duplicated: tied regions go to r1",
        clusters(),
        by_region(BindingBuilder::new().duplicated()),
        &[("a", 2)],
    );
    check(
        "locality outranks the region name",
        clusters(),
        by_region(BindingBuilder::new().dynamic()).previous(&[("b", 2)]),
        &[("b", 2)],
    );
}

#[test]
fn locality_keeps_a_workload_where_it_runs() {
    let clusters = || pods(&[("big", 100), ("small", 10)]);
    let one = || {
        BindingBuilder::new()
            .duplicated()
            .replicas(1)
            .spread(SpreadByField::Cluster, 1, 1)
    };
    check(
        "available replicas decide for a new workload",
        clusters(),
        one(),
        &[("big", 1)],
    );
    check(
        "locality outranks capacity",
        clusters(),
        one().previous(&[("small", 1)]),
        &[("small", 1)],
    );
}

#[test]
fn tolerated_taints_do_not_block() {
    let clusters = vec![
        ClusterBuilder::new("a")
            .taint("gpu", "NoSchedule")
            .pods(5)
            .build(),
    ];
    let binding = BindingBuilder::new()
        .duplicated()
        .replicas(1)
        .tolerate(toleration(Some("gpu"), "Exists", None, None));
    check("tolerated", clusters, binding, &[("a", 1)]);
}

#[test]
fn spread_with_dynamic_weight_swaps_in_a_roomier_cluster() {
    // m2 and m4 run the workload (locality) but together hold only 110 of 120 replicas, so the
    // lower-ranked of them (m4) is swapped for the roomiest other cluster (m3), as in Karmada.
    let clusters = pods(&[("m1", 40), ("m2", 59), ("m3", 80), ("m4", 49)]);
    let binding = BindingBuilder::new()
        .dynamic()
        .replicas(120)
        .spread(SpreadByField::Cluster, 1, 2)
        .previous(&[("m2", 1), ("m4", 1)]);
    let decision = run(clusters, &binding.build()).expect("fits");
    let names: Vec<&str> = decision.clusters.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, vec!["m2", "m3"]);
    assert_eq!(
        decision.clusters.iter().map(|t| t.replicas).sum::<i32>(),
        120
    );
    // Without room anywhere the spread fails with the reason.
    let err = run(
        pods(&[("m1", 40), ("m2", 59)]),
        &BindingBuilder::new()
            .dynamic()
            .replicas(120)
            .spread(SpreadByField::Cluster, 1, 2)
            .build(),
    )
    .expect_err("only 99 fit");
    assert!(
        err.to_string()
            .contains("no enough resource when selecting 2 clusters"),
        "{err}"
    );
}

#[test]
fn zone_provider_and_label_spreads_are_implemented() {
    let clusters = || {
        vec![
            ClusterBuilder::new("a")
                .region("r1")
                .zones(&["z1"])
                .provider("aws")
                .label("rack", "x")
                .pods(10)
                .build(),
            ClusterBuilder::new("b")
                .region("r1")
                .zones(&["z2"])
                .provider("gcp")
                .label("rack", "y")
                .pods(10)
                .build(),
            ClusterBuilder::new("c")
                .region("r2")
                .zones(&["z3"])
                .provider("aws")
                .label("rack", "z")
                .pods(10)
                .build(),
        ]
    };
    for field in [
        SpreadByField::Region,
        SpreadByField::Zone,
        SpreadByField::Provider,
    ] {
        let binding = BindingBuilder::new()
            .dynamic()
            .replicas(4)
            .spread(SpreadByField::Cluster, 2, 2)
            .spread(field, 2, 2);
        let decision =
            run(clusters(), &binding.build()).unwrap_or_else(|e| panic!("{field:?}: {e}"));
        assert_eq!(decision.clusters.len(), 2, "{field:?}");
        assert_eq!(
            decision.clusters.iter().map(|t| t.replicas).sum::<i32>(),
            4,
            "{field:?}"
        );
    }
    let binding = BindingBuilder::new()
        .dynamic()
        .replicas(3)
        .spread(SpreadByField::Cluster, 3, 3)
        .spread_by_label("rack", 3, 3);
    check(
        "label",
        clusters(),
        binding,
        &[("a", 1), ("b", 1), ("c", 1)],
    );
    let binding = BindingBuilder::new()
        .dynamic()
        .replicas(3)
        .spread(SpreadByField::Cluster, 1, 0)
        .spread(SpreadByField::Region, 3, 3);
    let err = run(clusters(), &binding.build()).expect_err("only two regions");
    assert!(matches!(err, Error::Unschedulable { .. }), "{err}");
}

/// Property-style: Webster is house-monotone, so adding replicas never takes any away from a
/// cluster, and Steady scale-up/scale-down only moves each cluster in the direction of the
/// change.
#[test]
fn scale_up_and_scale_down_are_monotone() {
    let clusters = || pods(&[("a", 400), ("b", 250), ("c", 170), ("d", 60), ("e", 9)]);
    let weights = [("a", 7), ("b", 5), ("c", 3), ("d", 2), ("e", 1)];
    let get = |d: &Decision, n: &str| {
        d.clusters
            .iter()
            .find(|t| t.name == n)
            .map_or(0, |t| t.replicas)
    };
    let names = ["a", "b", "c", "d", "e"];
    for uid in [EVEN_UID, ODD_UID] {
        // Static weights: each fresh result dominates the previous one.
        let mut last: Option<Decision> = None;
        for replicas in 0..300 {
            let d = run(
                clusters(),
                &BindingBuilder::new()
                    .uid(uid)
                    .static_weights(&weights)
                    .replicas(replicas)
                    .build(),
            )
            .expect("static");
            assert_eq!(d.clusters.iter().map(|t| t.replicas).sum::<i32>(), replicas);
            if let Some(prev) = &last {
                for n in names {
                    assert!(
                        get(&d, n) >= get(prev, n),
                        "static {uid} {replicas}: {n} went down"
                    );
                }
            }
            last = Some(d);
        }
        for strategy in ["dynamic", "aggregated"] {
            let builder = |b: BindingBuilder| {
                if strategy == "dynamic" {
                    b.dynamic()
                } else {
                    b.aggregated()
                }
            };
            // Steady scale-up one replica at a time from nothing.
            let mut previous: Vec<(String, i32)> = Vec::new();
            for replicas in 1..=400 {
                let prev: Vec<(&str, i32)> =
                    previous.iter().map(|(n, r)| (n.as_str(), *r)).collect();
                let d = run(
                    clusters(),
                    &builder(BindingBuilder::new().uid(uid))
                        .replicas(replicas)
                        .previous(&prev)
                        .build(),
                )
                .unwrap_or_else(|e| panic!("{strategy} up {replicas}: {e}"));
                assert_eq!(d.clusters.iter().map(|t| t.replicas).sum::<i32>(), replicas);
                for (n, r) in &previous {
                    assert!(
                        get(&d, n) >= *r,
                        "{strategy} {uid} up to {replicas}: {n} went down"
                    );
                }
                previous = d
                    .clusters
                    .iter()
                    .map(|t| (t.name.clone(), t.replicas))
                    .collect();
            }
            // Steady scale-down back to zero.
            for replicas in (1..400).rev() {
                let prev: Vec<(&str, i32)> =
                    previous.iter().map(|(n, r)| (n.as_str(), *r)).collect();
                let d = run(
                    clusters(),
                    &builder(BindingBuilder::new().uid(uid))
                        .replicas(replicas)
                        .previous(&prev)
                        .build(),
                )
                .unwrap_or_else(|e| panic!("{strategy} down {replicas}: {e}"));
                assert_eq!(d.clusters.iter().map(|t| t.replicas).sum::<i32>(), replicas);
                for n in names {
                    let before = previous.iter().find(|(p, _)| p == n).map_or(0, |(_, r)| *r);
                    assert!(
                        get(&d, n) <= before,
                        "{strategy} {uid} down to {replicas}: {n} went up"
                    );
                }
                previous = d
                    .clusters
                    .iter()
                    .map(|t| (t.name.clone(), t.replicas))
                    .collect();
            }
        }
    }
}

#[test]
fn the_snapshot_is_not_mutated() {
    let snapshot = Snapshot::from_clusters(pods(&[("a", 3), ("b", 4)]));
    let before = format!("{:?}", snapshot.clusters());
    let binding = BindingBuilder::new().dynamic().replicas(5).build();
    let first = schedule(&snapshot, &ScheduleInput::from_resource_binding(&binding)).expect("fits");
    let second =
        schedule(&snapshot, &ScheduleInput::from_resource_binding(&binding)).expect("fits");
    assert_eq!(first, second);
    assert_eq!(before, format!("{:?}", snapshot.clusters()));
}

#[test]
fn plugins_can_be_switched_off_by_name() {
    let clusters = vec![
        ClusterBuilder::new("a")
            .taint("x", "NoSchedule")
            .pods(1)
            .build(),
    ];
    let binding = BindingBuilder::new().duplicated().replicas(1).build();
    let snapshot = Snapshot::from_clusters(clusters);
    let input = ScheduleInput::from_resource_binding(&binding);
    assert!(matches!(
        schedule(&snapshot, &input),
        Err(Error::NoClusterFit { .. })
    ));
    let registry = Registry::default().without(&["TaintToleration"]);
    let decision = schedule_with(&registry, &snapshot, &input).expect("taints ignored");
    assert_eq!(pairs(&decision), vec![("a", 1)]);
}

#[test]
fn unsupported_karmada_features_are_reported_not_ignored() {
    use flotilla_api::{
        policy::{OverflowAffinityTerm, WorkloadAffinity, WorkloadAffinityTerm},
        work::Component,
    };
    let clusters = || pods(&[("m1", 10), ("m2", 10)]);
    let base = || BindingBuilder::new().replicas(2).build();

    let mut workload_affinity = base();
    if let Some(placement) = workload_affinity.spec.placement.as_mut() {
        placement.workload_affinity = Some(WorkloadAffinity {
            affinity: Some(WorkloadAffinityTerm {
                group_by_label_key: "app".into(),
            }),
            anti_affinity: None,
        });
    }
    let mut overflow = BindingBuilder::new()
        .replicas(2)
        .affinity_term("primary", Default::default())
        .build();
    if let Some(placement) = overflow.spec.placement.as_mut() {
        placement.cluster_affinities[0]
            .overflow_affinities
            .push(OverflowAffinityTerm {
                affinity_name: "spill".into(),
                affinity: Default::default(),
            });
    }
    let mut components = base();
    components.spec.components.push(Component {
        name: "jobmanager".into(),
        ..Default::default()
    });

    for (name, binding, field) in [
        ("workload affinity", workload_affinity, "workloadAffinity"),
        ("overflow affinities", overflow, "overflowAffinities"),
        ("components", components, "spec.components"),
    ] {
        let error = run(clusters(), &binding).expect_err(name);
        assert!(
            matches!(error, Error::UnsupportedPlacement(_)),
            "{name}: {error}"
        );
        assert!(error.to_string().contains(field), "{name}: {error}");
    }
    // The same bindings without those fields schedule.
    assert!(run(clusters(), &base()).is_ok());
}
