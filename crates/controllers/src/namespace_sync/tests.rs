use super::*;

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};

const ES: &str = "flotilla-es-member1";

fn namespace(name: &str, labels: &[(&str, &str)]) -> Arc<Namespace> {
    let mut ns = Namespace::default();
    ns.metadata.name = Some(name.to_owned());
    ns.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    Arc::new(ns)
}

fn deleting(ns: Arc<Namespace>) -> Arc<Namespace> {
    let mut ns = (*ns).clone();
    ns.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
    Arc::new(ns)
}

fn work_for(ns: &Namespace) -> Arc<Work> {
    Arc::new(desired_work(ES, ns))
}

fn work_name(namespace: &str) -> String {
    names::work_name("v1", "Namespace", None, namespace)
}

#[test]
fn which_namespaces_are_synced() {
    let cases = [
        ("shop", &[][..], true),
        ("default", &[][..], false),
        ("kube-system", &[][..], false),
        ("kube-node-lease", &[][..], false),
        ("flotilla-system", &[][..], false),
        ("flotilla-es-member1", &[][..], false),
        ("kubernetes-dashboard", &[][..], true),
        (
            "skipped",
            &[(labels::SKIP_AUTO_PROPAGATION, "true")][..],
            false,
        ),
        (
            "not-skipped",
            &[(labels::SKIP_AUTO_PROPAGATION, "false")][..],
            true,
        ),
    ];
    for (name, labels, want) in cases {
        assert_eq!(is_synced(&namespace(name, labels)), want, "{name}");
    }
}

#[test]
fn the_work_copies_the_namespace_and_its_labels_and_adopts_a_member_namespace() {
    let work = desired_work(ES, &namespace("shop", &[("team", "a")]));
    assert_eq!(work.name_any(), work_name("shop"));
    assert_eq!(work.namespace().as_deref(), Some(ES));
    assert_eq!(
        work.labels()
            .get(labels::SYNCED_NAMESPACE)
            .map(String::as_str),
        Some("shop")
    );
    let manifest = &work.spec.workload.manifests[0].0;
    assert_eq!(
        manifest,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": "shop", "labels": {"team": "a"},
            "annotations": {annotations::CONFLICT_RESOLUTION: "overwrite"}}})
    );
    assert_eq!(work.spec.preserve_resources_on_deletion, None);
}

#[test]
fn a_pass_writes_only_the_difference() {
    let shop = namespace("shop", &[("team", "a")]);
    let web = namespace("web", &[]);
    let system = namespace("kube-system", &[]);
    let namespaces = vec![shop.clone(), web.clone(), system];

    // Nothing yet: a Work per synced namespace.
    let steps = plan(ES, &namespaces, &[]);
    let written: Vec<String> = steps
        .iter()
        .map(|s| match s {
            Step::Write(w) => w.name_any(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(written, [work_name("shop"), work_name("web")]);

    // Up to date: nothing to do.
    let current = vec![work_for(&shop), work_for(&web)];
    assert_eq!(plan(ES, &namespaces, &current), []);

    // A label changed on the hub: that Work is written again.
    let relabelled = namespace("shop", &[("team", "b")]);
    let steps = plan(ES, &[relabelled.clone(), web.clone()], &current);
    assert_eq!(
        steps,
        [Step::Write(Box::new(desired_work(ES, &relabelled)))]
    );

    // A Work changed by hand is put back.
    let mut edited = (*work_for(&web)).clone();
    edited.spec.suspend_dispatching = Some(true);
    let steps = plan(ES, &namespaces, &[work_for(&shop), Arc::new(edited)]);
    assert_eq!(steps, [Step::Write(Box::new(desired_work(ES, &web)))]);
}

#[test]
fn namespaces_that_go_take_their_works_and_skipped_ones_release_them() {
    let shop = namespace("shop", &[]);
    let web = namespace("web", &[]);
    let old = namespace("old", &[]);
    let current = vec![work_for(&shop), work_for(&web), work_for(&old)];

    // `old` is gone, `web` is terminating, `shop` is now labelled to skip.
    let skipped = namespace("shop", &[(labels::SKIP_AUTO_PROPAGATION, "true")]);
    let steps = plan(ES, &[skipped, deleting(web)], &current);
    assert_eq!(
        steps,
        [
            Step::Release(work_name("shop")),
            Step::Delete(work_name("web")),
            Step::Delete(work_name("old")),
        ]
    );
}

#[test]
fn works_of_bindings_and_works_already_going_are_left_alone() {
    let shop = namespace("shop", &[]);
    // A binding propagates the Namespace itself: its Work carries the binding's id.
    let mut bound = (*work_for(&shop)).clone();
    bound
        .metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(
            labels::RESOURCE_BINDING_PERMANENT_ID.to_owned(),
            "id".to_owned(),
        );
    bound.spec.preserve_resources_on_deletion = Some(true);
    assert_eq!(
        plan(ES, std::slice::from_ref(&shop), &[Arc::new(bound.clone())]),
        []
    );
    assert_eq!(plan(ES, &[], &[Arc::new(bound)]), []);

    // A Work being deleted is not deleted again.
    let mut going = (*work_for(&shop)).clone();
    going.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
    assert_eq!(plan(ES, &[], &[Arc::new(going)]), []);

    // A Work without the sync label is not this controller's.
    let mut other = (*work_for(&shop)).clone();
    other.metadata.labels = None;
    other.metadata.name = Some("someone-elses".to_owned());
    assert_eq!(plan(ES, &[], &[Arc::new(other)]), []);
}
