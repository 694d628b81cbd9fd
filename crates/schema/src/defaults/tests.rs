//! Table tests: inputs POSTed to a real kube-apiserver v1.37.2 with `?dryRun=All`, and the
//! objects and 422 causes it answered (server-set metadata such as `creationTimestamp` left out).

use serde_json::{Value, json};

use super::validate;

/// Defaults and the create-time strategy fields, as the server runs them on create.
fn default(group: &str, kind: &str, obj: &mut Value) {
    super::default(group, kind, obj);
    super::prepare_for_create(group, kind, obj);
}
use crate::Cause;

fn j(x: &str) -> Value {
    match serde_json::from_str(x) {
        Ok(v) => v,
        Err(e) => panic!("bad test JSON {e}: {x}"),
    }
}

const TMPL: &str = r#"{"metadata":{"labels":{"app":"a"}},"spec":{"containers":[{"name":"app","image":"nginx:1.2"}]}}"#;
const TMPL_OUT: &str = r#"{"metadata":{"labels":{"app":"a"}},"spec":{"containers":[{"name":"app","image":"nginx:1.2","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler"}}"#;

fn with_tmpl(x: &str, t: &str) -> String {
    x.replace("TMPL", t)
}

#[test]
fn defaults() {
    let uid = "880a675e-8dbe-45a2-bead-8040b104f763";
    let cases: Vec<(&str, &str, &str, String, String)> = vec![
        (
            "deployment: strategy, history, deadline, replicas, probes, ports",
            "apps",
            "Deployment",
            r#"{"metadata":{"name":"d","namespace":"default"},"spec":{"selector":{"matchLabels":{"app":"a"}},"template":{"metadata":{"labels":{"app":"a"}},"spec":{"containers":[{"name":"app","image":"nginx","ports":[{"containerPort":80}],"livenessProbe":{"httpGet":{"port":80}},"readinessProbe":{"tcpSocket":{"port":80}},"startupProbe":{"exec":{"command":["true"]}},"resources":{"limits":{"cpu":"1"}}}]}}}}"#.into(),
            r#"{"metadata":{"name":"d","namespace":"default"},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"a"}},"template":{"metadata":{"labels":{"app":"a"}},"spec":{"containers":[{"name":"app","image":"nginx","ports":[{"containerPort":80,"protocol":"TCP"}],"resources":{"limits":{"cpu":"1"}},"livenessProbe":{"httpGet":{"path":"/","port":80,"scheme":"HTTP"},"timeoutSeconds":1,"periodSeconds":10,"successThreshold":1,"failureThreshold":3},"readinessProbe":{"tcpSocket":{"port":80},"timeoutSeconds":1,"periodSeconds":10,"successThreshold":1,"failureThreshold":3},"startupProbe":{"exec":{"command":["true"]},"timeoutSeconds":1,"periodSeconds":10,"successThreshold":1,"failureThreshold":3},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"Always"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler"}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600},"status":{}}"#.into(),
        ),
        (
            "deployment: Recreate gets no rollingUpdate",
            "apps",
            "Deployment",
            with_tmpl(r#"{"metadata":{"name":"s"},"spec":{"selector":{"matchLabels":{"app":"a"}},"template":TMPL,"strategy":{"type":"Recreate"}}}"#, TMPL),
            with_tmpl(r#"{"metadata":{"name":"s"},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"a"}},"template":TMPL,"strategy":{"type":"Recreate"},"revisionHistoryLimit":10,"progressDeadlineSeconds":600},"status":{}}"#, TMPL_OUT),
        ),
        (
            "deployment: a partial rollingUpdate keeps the given field",
            "apps",
            "Deployment",
            with_tmpl(r#"{"metadata":{"name":"s"},"spec":{"selector":{"matchLabels":{"app":"a"}},"template":TMPL,"strategy":{"rollingUpdate":{"maxSurge":1}}}}"#, TMPL),
            with_tmpl(r#"{"metadata":{"name":"s"},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"a"}},"template":TMPL,"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":1}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600},"status":{}}"#, TMPL_OUT),
        ),
        (
            "statefulset: policies, strategy, retention, claim templates",
            "apps",
            "StatefulSet",
            with_tmpl(r#"{"metadata":{"name":"s"},"spec":{"selector":{"matchLabels":{"app":"a"}},"serviceName":"x","template":TMPL,"volumeClaimTemplates":[{"metadata":{"name":"data"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}]}}"#, TMPL),
            with_tmpl(r#"{"metadata":{"name":"s"},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"a"}},"template":TMPL,"volumeClaimTemplates":[{"kind":"PersistentVolumeClaim","apiVersion":"v1","metadata":{"name":"data"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}},"volumeMode":"Filesystem"},"status":{"phase":"Pending"}}],"serviceName":"x","podManagementPolicy":"OrderedReady","updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":0,"maxUnavailable":1}},"revisionHistoryLimit":10,"persistentVolumeClaimRetentionPolicy":{"whenDeleted":"Retain","whenScaled":"Retain"}},"status":{"replicas":0,"availableReplicas":0}}"#, TMPL_OUT),
        ),
        (
            "statefulset: OnDelete, empty serviceName, partial retention policy",
            "apps",
            "StatefulSet",
            with_tmpl(r#"{"metadata":{"name":"s"},"spec":{"selector":{"matchLabels":{"app":"a"}},"template":TMPL,"updateStrategy":{"type":"OnDelete"},"persistentVolumeClaimRetentionPolicy":{"whenDeleted":"Delete"}}}"#, TMPL),
            with_tmpl(r#"{"metadata":{"name":"s"},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"a"}},"template":TMPL,"serviceName":"","podManagementPolicy":"OrderedReady","updateStrategy":{"type":"OnDelete"},"revisionHistoryLimit":10,"persistentVolumeClaimRetentionPolicy":{"whenDeleted":"Delete","whenScaled":"Retain"}},"status":{"replicas":0,"availableReplicas":0}}"#, TMPL_OUT),
        ),
        (
            "daemonset: strategy, history, template generation",
            "apps",
            "DaemonSet",
            with_tmpl(r#"{"metadata":{"name":"s"},"spec":{"selector":{"matchLabels":{"app":"a"}},"template":TMPL}}"#, TMPL),
            with_tmpl(r#"{"metadata":{"name":"s","annotations":{"deprecated.daemonset.template.generation":"1"}},"spec":{"selector":{"matchLabels":{"app":"a"}},"template":TMPL,"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":1,"maxSurge":0}},"revisionHistoryLimit":10},"status":{"currentNumberScheduled":0,"numberMisscheduled":0,"desiredNumberScheduled":0,"numberReady":0}}"#, TMPL_OUT),
        ),
        (
            "daemonset: OnDelete",
            "apps",
            "DaemonSet",
            with_tmpl(r#"{"metadata":{"name":"s"},"spec":{"selector":{"matchLabels":{"app":"a"}},"template":TMPL,"updateStrategy":{"type":"OnDelete"}}}"#, TMPL),
            with_tmpl(r#"{"metadata":{"name":"s","annotations":{"deprecated.daemonset.template.generation":"1"}},"spec":{"selector":{"matchLabels":{"app":"a"}},"template":TMPL,"updateStrategy":{"type":"OnDelete"},"revisionHistoryLimit":10},"status":{"currentNumberScheduled":0,"numberMisscheduled":0,"desiredNumberScheduled":0,"numberReady":0}}"#, TMPL_OUT),
        ),
        (
            "replicaset: replicas",
            "apps",
            "ReplicaSet",
            with_tmpl(r#"{"metadata":{"name":"s"},"spec":{"selector":{"matchLabels":{"app":"a"}},"template":TMPL}}"#, TMPL),
            with_tmpl(r#"{"metadata":{"name":"s"},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"a"}},"template":TMPL},"status":{"replicas":0}}"#, TMPL_OUT),
        ),
        (
            "job: generated selector and labels from the uid",
            "batch",
            "Job",
            format!(r#"{{"metadata":{{"name":"j","uid":"{uid}"}},"spec":{{"template":{{"spec":{{"restartPolicy":"Never","containers":[{{"name":"app","image":"nginx:1.2"}}]}}}}}}}}"#),
            format!(r#"{{"metadata":{{"name":"j","uid":"{uid}","labels":{{"batch.kubernetes.io/controller-uid":"{uid}","batch.kubernetes.io/job-name":"j","controller-uid":"{uid}","job-name":"j"}}}},"spec":{{"parallelism":1,"completions":1,"backoffLimit":6,"selector":{{"matchLabels":{{"batch.kubernetes.io/controller-uid":"{uid}"}}}},"manualSelector":false,"template":{{"metadata":{{"labels":{{"batch.kubernetes.io/controller-uid":"{uid}","batch.kubernetes.io/job-name":"j","controller-uid":"{uid}","job-name":"j"}}}},"spec":{{"containers":[{{"name":"app","image":"nginx:1.2","resources":{{}},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}}],"restartPolicy":"Never","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{{}},"schedulerName":"default-scheduler"}}}},"completionMode":"NonIndexed","suspend":false,"podReplacementPolicy":"TerminatingOrFailed"}},"status":{{}}}}"#),
        ),
        (
            "job: own labels stay; template labels merged",
            "batch",
            "Job",
            format!(r#"{{"metadata":{{"name":"j","uid":"{uid}","labels":{{"own":"1"}}}},"spec":{{"template":{{"metadata":{{"labels":{{"x":"y"}}}},"spec":{{"restartPolicy":"Never","containers":[{{"name":"app","image":"nginx:1.2"}}]}}}}}}}}"#),
            format!(r#"{{"metadata":{{"name":"j","uid":"{uid}","labels":{{"own":"1"}}}},"spec":{{"parallelism":1,"completions":1,"backoffLimit":6,"selector":{{"matchLabels":{{"batch.kubernetes.io/controller-uid":"{uid}"}}}},"manualSelector":false,"template":{{"metadata":{{"labels":{{"batch.kubernetes.io/controller-uid":"{uid}","batch.kubernetes.io/job-name":"j","controller-uid":"{uid}","job-name":"j","x":"y"}}}},"spec":{{"containers":[{{"name":"app","image":"nginx:1.2","resources":{{}},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}}],"restartPolicy":"Never","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{{}},"schedulerName":"default-scheduler"}}}},"completionMode":"NonIndexed","suspend":false,"podReplacementPolicy":"TerminatingOrFailed"}},"status":{{}}}}"#),
        ),
        (
            "job: manual selector; job labels copied from the template",
            "batch",
            "Job",
            format!(r#"{{"metadata":{{"name":"j","uid":"{uid}"}},"spec":{{"manualSelector":true,"selector":{{"matchLabels":{{"x":"y"}}}},"template":{{"metadata":{{"labels":{{"x":"y"}}}},"spec":{{"restartPolicy":"OnFailure","containers":[{{"name":"app","image":"nginx:1.2"}}]}}}}}}}}"#),
            format!(r#"{{"metadata":{{"name":"j","uid":"{uid}","labels":{{"x":"y"}}}},"spec":{{"parallelism":1,"completions":1,"backoffLimit":6,"selector":{{"matchLabels":{{"x":"y"}}}},"manualSelector":true,"template":{{"metadata":{{"labels":{{"x":"y"}}}},"spec":{{"containers":[{{"name":"app","image":"nginx:1.2","resources":{{}},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}}],"restartPolicy":"OnFailure","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{{}},"schedulerName":"default-scheduler"}}}},"completionMode":"NonIndexed","suspend":false,"podReplacementPolicy":"TerminatingOrFailed"}},"status":{{}}}}"#),
        ),
        (
            "job: parallelism alone leaves completions unset; podFailurePolicy means Failed",
            "batch",
            "Job",
            r#"{"metadata":{"name":"j"},"spec":{"parallelism":3,"podFailurePolicy":{"rules":[{"action":"FailJob","onExitCodes":{"operator":"In","values":[1]}}]},"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"a","image":"x:1"}]}}}}"#.into(),
            r#"{"metadata":{"name":"j"},"spec":{"parallelism":3,"podFailurePolicy":{"rules":[{"action":"FailJob","onExitCodes":{"operator":"In","values":[1]}}]},"backoffLimit":6,"template":{"metadata":{},"spec":{"containers":[{"name":"a","image":"x:1","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Never","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler"}},"completionMode":"NonIndexed","suspend":false,"podReplacementPolicy":"Failed"},"status":{}}"#.into(),
        ),
        (
            "cronjob: policies and history limits; the job template gets only pod defaults",
            "batch",
            "CronJob",
            r#"{"metadata":{"name":"c"},"spec":{"schedule":"* * * * *","jobTemplate":{"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"app","image":"nginx:1.2"}]}}}}}}"#.into(),
            r#"{"metadata":{"name":"c"},"spec":{"schedule":"* * * * *","concurrencyPolicy":"Allow","suspend":false,"jobTemplate":{"metadata":{},"spec":{"template":{"metadata":{},"spec":{"containers":[{"name":"app","image":"nginx:1.2","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Never","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler"}}}},"successfulJobsHistoryLimit":3,"failedJobsHistoryLimit":1},"status":{}}"#.into(),
        ),
        (
            "pod: requests from limits, volumes, env, admission plugins, status",
            "",
            "Pod",
            r#"{"metadata":{"name":"p"},"spec":{"serviceAccountName":"x","automountServiceAccountToken":false,"initContainers":[{"name":"i","image":"busybox:1.0"}],"containers":[{"name":"app","image":"nginx:latest","resources":{"limits":{"cpu":"1","memory":"1Gi"},"requests":{"cpu":"500m"}}},{"name":"b","image":"nginx@sha256:abc","env":[{"name":"A","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}}],"ports":[{"containerPort":80,"hostPort":80}]}],"volumes":[{"name":"v","configMap":{"name":"c"}},{"name":"s","secret":{"secretName":"s"}},{"name":"e","emptyDir":{}},{"name":"h","hostPath":{"path":"/x"}},{"name":"pr","projected":{"sources":[{"configMap":{"name":"c"}}]}},{"name":"dw","downwardAPI":{"items":[{"path":"n","fieldRef":{"fieldPath":"metadata.name"}}]}}]}}"#.into(),
            r#"{"metadata":{"name":"p"},"spec":{"volumes":[{"name":"v","configMap":{"name":"c","defaultMode":420}},{"name":"s","secret":{"secretName":"s","defaultMode":420}},{"name":"e","emptyDir":{}},{"name":"h","hostPath":{"path":"/x","type":""}},{"name":"pr","projected":{"sources":[{"configMap":{"name":"c"}}],"defaultMode":420}},{"name":"dw","downwardAPI":{"items":[{"path":"n","fieldRef":{"apiVersion":"v1","fieldPath":"metadata.name"}}],"defaultMode":420}}],"initContainers":[{"name":"i","image":"busybox:1.0","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"containers":[{"name":"app","image":"nginx:latest","resources":{"limits":{"cpu":"1","memory":"1Gi"},"requests":{"cpu":"500m","memory":"1Gi"}},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"Always"},{"name":"b","image":"nginx@sha256:abc","ports":[{"hostPort":80,"containerPort":80,"protocol":"TCP"}],"env":[{"name":"A","valueFrom":{"fieldRef":{"apiVersion":"v1","fieldPath":"metadata.name"}}}],"resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","serviceAccountName":"x","serviceAccount":"x","automountServiceAccountToken":false,"securityContext":{},"schedulerName":"default-scheduler","tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300},{"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}],"priority":0,"enableServiceLinks":true,"preemptionPolicy":"PreemptLowerPriority"},"status":{"phase":"Pending","qosClass":"Burstable"}}"#.into(),
        ),
        (
            "pod: grpc, lifecycle, resourceFieldRef, sourceless volume, token, ephemeral, own toleration",
            "",
            "Pod",
            r#"{"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"x","livenessProbe":{"grpc":{"port":9}},"lifecycle":{"preStop":{"httpGet":{"port":80}}},"env":[{"name":"R","valueFrom":{"resourceFieldRef":{"resource":"limits.cpu"}}}],"resources":{"requests":{"cpu":"1"}}}],"volumes":[{"name":"x"},{"name":"t","projected":{"sources":[{"serviceAccountToken":{"path":"t"}},{"downwardAPI":{"items":[{"path":"a","fieldRef":{"fieldPath":"metadata.name"}}]}}]}},{"name":"e","ephemeral":{"volumeClaimTemplate":{"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}}}],"tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists"}]}}"#.into(),
            r#"{"metadata":{"name":"p"},"spec":{"volumes":[{"name":"x","emptyDir":{}},{"name":"t","projected":{"sources":[{"serviceAccountToken":{"expirationSeconds":3600,"path":"t"}},{"downwardAPI":{"items":[{"path":"a","fieldRef":{"apiVersion":"v1","fieldPath":"metadata.name"}}]}}],"defaultMode":420}},{"name":"e","ephemeral":{"volumeClaimTemplate":{"metadata":{},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}},"volumeMode":"Filesystem"}}}}],"containers":[{"name":"a","image":"x","env":[{"name":"R","valueFrom":{"resourceFieldRef":{"resource":"limits.cpu","divisor":"0"}}}],"resources":{"requests":{"cpu":"1"}},"livenessProbe":{"grpc":{"port":9,"service":""},"timeoutSeconds":1,"periodSeconds":10,"successThreshold":1,"failureThreshold":3},"lifecycle":{"preStop":{"httpGet":{"path":"/","port":80,"scheme":"HTTP"}}},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"Always"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","serviceAccountName":"default","serviceAccount":"default","securityContext":{},"schedulerName":"default-scheduler","tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists"},{"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}],"priority":0,"enableServiceLinks":true,"preemptionPolicy":"PreemptLowerPriority"},"status":{"phase":"Pending","qosClass":"Burstable"}}"#.into(),
        ),
        (
            "service: ClusterIP defaults (the server allocates the IP)",
            "",
            "Service",
            r#"{"metadata":{"name":"s"},"spec":{"selector":{"a":"b"},"ports":[{"port":80}]}}"#.into(),
            r#"{"metadata":{"name":"s"},"spec":{"ports":[{"protocol":"TCP","port":80,"targetPort":80}],"selector":{"a":"b"},"type":"ClusterIP","sessionAffinity":"None","ipFamilies":["IPv4"],"ipFamilyPolicy":"SingleStack","internalTrafficPolicy":"Cluster"},"status":{"loadBalancer":{}}}"#.into(),
        ),
        (
            "service: named target port, UDP, ClientIP affinity timeout",
            "",
            "Service",
            r#"{"metadata":{"name":"s"},"spec":{"selector":{"a":"b"},"ports":[{"port":80,"name":"h","targetPort":"http"},{"port":443,"name":"s","protocol":"UDP"}],"sessionAffinity":"ClientIP"}}"#.into(),
            r#"{"metadata":{"name":"s"},"spec":{"ports":[{"name":"h","protocol":"TCP","port":80,"targetPort":"http"},{"name":"s","protocol":"UDP","port":443,"targetPort":443}],"selector":{"a":"b"},"type":"ClusterIP","sessionAffinity":"ClientIP","sessionAffinityConfig":{"clientIP":{"timeoutSeconds":10800}},"ipFamilies":["IPv4"],"ipFamilyPolicy":"SingleStack","internalTrafficPolicy":"Cluster"},"status":{"loadBalancer":{}}}"#.into(),
        ),
        (
            "service: LoadBalancer",
            "",
            "Service",
            r#"{"metadata":{"name":"s"},"spec":{"type":"LoadBalancer","selector":{"a":"b"},"ports":[{"port":80}]}}"#.into(),
            r#"{"metadata":{"name":"s"},"spec":{"ports":[{"protocol":"TCP","port":80,"targetPort":80}],"selector":{"a":"b"},"type":"LoadBalancer","sessionAffinity":"None","externalTrafficPolicy":"Cluster","ipFamilies":["IPv4"],"ipFamilyPolicy":"SingleStack","allocateLoadBalancerNodePorts":true,"internalTrafficPolicy":"Cluster"},"status":{"loadBalancer":{}}}"#.into(),
        ),
        (
            "service: headless with selector",
            "",
            "Service",
            r#"{"metadata":{"name":"s"},"spec":{"clusterIP":"None","selector":{"a":"b"},"ports":[{"port":80}]}}"#.into(),
            r#"{"metadata":{"name":"s"},"spec":{"ports":[{"protocol":"TCP","port":80,"targetPort":80}],"selector":{"a":"b"},"clusterIP":"None","clusterIPs":["None"],"type":"ClusterIP","sessionAffinity":"None","ipFamilies":["IPv4"],"ipFamilyPolicy":"SingleStack","internalTrafficPolicy":"Cluster"},"status":{"loadBalancer":{}}}"#.into(),
        ),
        (
            "service: headless without selector is RequireDualStack",
            "",
            "Service",
            r#"{"metadata":{"name":"s"},"spec":{"clusterIP":"None"}}"#.into(),
            r#"{"metadata":{"name":"s"},"spec":{"clusterIP":"None","clusterIPs":["None"],"type":"ClusterIP","sessionAffinity":"None","ipFamilies":["IPv4","IPv6"],"ipFamilyPolicy":"RequireDualStack","internalTrafficPolicy":"Cluster"},"status":{"loadBalancer":{}}}"#.into(),
        ),
        (
            "service: ExternalName gets no IP families or traffic policy",
            "",
            "Service",
            r#"{"metadata":{"name":"s"},"spec":{"type":"ExternalName","externalName":"example.com","ports":[{"port":80}]}}"#.into(),
            r#"{"metadata":{"name":"s"},"spec":{"ports":[{"protocol":"TCP","port":80,"targetPort":80}],"type":"ExternalName","sessionAffinity":"None","externalName":"example.com"},"status":{"loadBalancer":{}}}"#.into(),
        ),
        (
            "secret: stringData folded into data, type Opaque",
            "",
            "Secret",
            r#"{"metadata":{"name":"c"},"stringData":{"a":"b"}}"#.into(),
            r#"{"metadata":{"name":"c"},"data":{"a":"Yg=="},"type":"Opaque"}"#.into(),
        ),
        ("configmap: nothing", "", "ConfigMap", r#"{"metadata":{"name":"c"}}"#.into(), r#"{"metadata":{"name":"c"}}"#.into()),
        ("serviceaccount: nothing", "", "ServiceAccount", r#"{"metadata":{"name":"c"}}"#.into(), r#"{"metadata":{"name":"c"}}"#.into()),
        (
            "pvc: volumeMode, status",
            "",
            "PersistentVolumeClaim",
            r#"{"metadata":{"name":"c"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}"#.into(),
            r#"{"metadata":{"name":"c"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}},"volumeMode":"Filesystem"},"status":{"phase":"Pending"}}"#.into(),
        ),
        (
            "namespace: finalizer, name label (overwritten), phase",
            "",
            "Namespace",
            r#"{"metadata":{"name":"ns1","labels":{"kubernetes.io/metadata.name":"other"}}}"#.into(),
            r#"{"metadata":{"name":"ns1","labels":{"kubernetes.io/metadata.name":"ns1"}},"spec":{"finalizers":["kubernetes"]},"status":{"phase":"Active"}}"#.into(),
        ),
        (
            "ingress: status",
            "networking.k8s.io",
            "Ingress",
            r#"{"metadata":{"name":"i"},"spec":{"rules":[{"host":"a.com","http":{"paths":[{"path":"/","pathType":"Prefix","backend":{"service":{"name":"s","port":{"number":80}}}}]}}]}}"#.into(),
            r#"{"metadata":{"name":"i"},"spec":{"rules":[{"host":"a.com","http":{"paths":[{"path":"/","pathType":"Prefix","backend":{"service":{"name":"s","port":{"number":80}}}}]}}]},"status":{"loadBalancer":{}}}"#.into(),
        ),
        ("clusterrole: rules null", "rbac.authorization.k8s.io", "ClusterRole", r#"{"metadata":{"name":"r"}}"#.into(), r#"{"metadata":{"name":"r"},"rules":null}"#.into()),
        (
            "rolebinding: User and Group subjects get the API group",
            "rbac.authorization.k8s.io",
            "RoleBinding",
            r#"{"metadata":{"name":"r"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"r"},"subjects":[{"kind":"User","name":"u"},{"kind":"Group","name":"g"},{"kind":"ServiceAccount","name":"sa"}]}"#.into(),
            r#"{"metadata":{"name":"r"},"subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"u"},{"kind":"Group","apiGroup":"rbac.authorization.k8s.io","name":"g"},{"kind":"ServiceAccount","name":"sa"}],"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"r"}}"#.into(),
        ),
        (
            "hpa: minReplicas, CPU metric, behavior's rules",
            "autoscaling",
            "HorizontalPodAutoscaler",
            r#"{"metadata":{"name":"h"},"spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"d"},"maxReplicas":4,"behavior":{"scaleDown":{"stabilizationWindowSeconds":60}}}}"#.into(),
            r#"{"metadata":{"name":"h"},"spec":{"scaleTargetRef":{"kind":"Deployment","name":"d","apiVersion":"apps/v1"},"minReplicas":1,"maxReplicas":4,"metrics":[{"type":"Resource","resource":{"name":"cpu","target":{"type":"Utilization","averageUtilization":80}}}],"behavior":{"scaleUp":{"stabilizationWindowSeconds":0,"selectPolicy":"Max","policies":[{"type":"Pods","value":4,"periodSeconds":15},{"type":"Percent","value":100,"periodSeconds":15}]},"scaleDown":{"stabilizationWindowSeconds":60,"selectPolicy":"Max","policies":[{"type":"Percent","value":100,"periodSeconds":15}]}}},"status":{"desiredReplicas":0,"currentMetrics":null}}"#.into(),
        ),
        (
            "hpa: given metrics and no behavior are kept",
            "autoscaling",
            "HorizontalPodAutoscaler",
            r#"{"metadata":{"name":"h"},"spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"d"},"minReplicas":2,"maxReplicas":4,"metrics":[{"type":"Pods","pods":{"metric":{"name":"qps"},"target":{"type":"AverageValue","averageValue":"1k"}}}]}}"#.into(),
            r#"{"metadata":{"name":"h"},"spec":{"scaleTargetRef":{"kind":"Deployment","name":"d","apiVersion":"apps/v1"},"minReplicas":2,"maxReplicas":4,"metrics":[{"type":"Pods","pods":{"metric":{"name":"qps"},"target":{"type":"AverageValue","averageValue":"1k"}}}]},"status":{"desiredReplicas":0,"currentMetrics":null}}"#.into(),
        ),
        (
            "limitrange: container default from max, request from default then min",
            "",
            "LimitRange",
            r#"{"metadata":{"name":"l"},"spec":{"limits":[{"type":"Container","max":{"cpu":"2","memory":"1Gi"},"min":{"ephemeral-storage":"1Gi"},"default":{"cpu":"500m"}},{"type":"Pod","max":{"cpu":"4"}}]}}"#.into(),
            r#"{"metadata":{"name":"l"},"spec":{"limits":[{"type":"Container","max":{"cpu":"2","memory":"1Gi"},"min":{"ephemeral-storage":"1Gi"},"default":{"cpu":"500m","memory":"1Gi"},"defaultRequest":{"cpu":"500m","ephemeral-storage":"1Gi","memory":"1Gi"}},{"type":"Pod","max":{"cpu":"4"}}]}}"#.into(),
        ),
        (
            "networkpolicy: Ingress, and Egress with egress rules",
            "networking.k8s.io",
            "NetworkPolicy",
            r#"{"metadata":{"name":"n"},"spec":{"podSelector":{},"egress":[{}]}}"#.into(),
            r#"{"metadata":{"name":"n"},"spec":{"podSelector":{},"egress":[{}],"policyTypes":["Ingress","Egress"]}}"#.into(),
        ),
        (
            "networkpolicy: given policyTypes kept",
            "networking.k8s.io",
            "NetworkPolicy",
            r#"{"metadata":{"name":"n"},"spec":{"podSelector":{},"policyTypes":["Egress"]}}"#.into(),
            r#"{"metadata":{"name":"n"},"spec":{"podSelector":{},"policyTypes":["Egress"]}}"#.into(),
        ),
        (
            "ingressclass: parameters' scope",
            "networking.k8s.io",
            "IngressClass",
            r#"{"metadata":{"name":"i"},"spec":{"controller":"example.com/c","parameters":{"kind":"P","name":"p"}}}"#.into(),
            r#"{"metadata":{"name":"i"},"spec":{"controller":"example.com/c","parameters":{"kind":"P","name":"p","scope":"Cluster"}}}"#.into(),
        ),
        (
            "csidriver: every default",
            "storage.k8s.io",
            "CSIDriver",
            r#"{"metadata":{"name":"d.example.com"},"spec":{}}"#.into(),
            r#"{"metadata":{"name":"d.example.com"},"spec":{"attachRequired":true,"podInfoOnMount":false,"volumeLifecycleModes":["Persistent"],"storageCapacity":false,"fsGroupPolicy":"ReadWriteOnceWithFSType","requiresRepublish":false,"seLinuxMount":false,"preventPodSchedulingIfMissing":false}}"#.into(),
        ),
        (
            "volumeattachment: status",
            "storage.k8s.io",
            "VolumeAttachment",
            r#"{"metadata":{"name":"va"},"spec":{"attacher":"d.example.com","nodeName":"n1","source":{"persistentVolumeName":"pv"}}}"#.into(),
            r#"{"metadata":{"name":"va"},"spec":{"attacher":"d.example.com","source":{"persistentVolumeName":"pv"},"nodeName":"n1"},"status":{"attached":false}}"#.into(),
        ),
        (
            "endpointslice: TCP ports, endpoint conditions",
            "discovery.k8s.io",
            "EndpointSlice",
            r#"{"metadata":{"name":"e"},"addressType":"IPv4","ports":[{"port":80}],"endpoints":[{"addresses":["10.0.0.1"]}]}"#.into(),
            r#"{"metadata":{"name":"e"},"addressType":"IPv4","endpoints":[{"addresses":["10.0.0.1"],"conditions":{}}],"ports":[{"name":"","protocol":"TCP","port":80}]}"#.into(),
        ),
        (
            "endpoints: TCP ports",
            "",
            "Endpoints",
            r#"{"metadata":{"name":"e"},"subsets":[{"addresses":[{"ip":"10.0.0.1"}],"ports":[{"port":80}]}]}"#.into(),
            r#"{"metadata":{"name":"e"},"subsets":[{"addresses":[{"ip":"10.0.0.1"}],"ports":[{"port":80,"protocol":"TCP"}]}]}"#.into(),
        ),
        (
            "resourcequota: empty status",
            "",
            "ResourceQuota",
            r#"{"metadata":{"name":"q"},"spec":{"hard":{"pods":"1"}}}"#.into(),
            r#"{"metadata":{"name":"q"},"spec":{"hard":{"pods":"1"}},"status":{}}"#.into(),
        ),
        ("an unknown kind is left alone", "example.com", "Widget", r#"{"spec":{}}"#.into(), r#"{"spec":{}}"#.into()),
    ];
    for (name, group, kind, input, want) in cases {
        let mut got = j(&input);
        default(group, kind, &mut got);
        assert_eq!(got, j(&want), "{name}");
        // Idempotent, and what the server answers passes validation.
        let mut again = got.clone();
        default(group, kind, &mut again);
        assert_eq!(again, got, "{name}: idempotent");
        assert_eq!(
            validate(group, kind, &got, None),
            Vec::<Cause>::new(),
            "{name}: valid"
        );
    }
}

fn c(reason: &str, field: &str, message: &str) -> Cause {
    Cause::new(reason, field, message)
}

const RFC1123_LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const RFC1123_SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const CONFIG_KEY: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

/// Validation on create: the input is defaulted first, as the server does.
#[test]
fn validation_on_create() {
    let inv = "FieldValueInvalid";
    let req = "FieldValueRequired";
    let ns = "FieldValueNotSupported";
    let dup = "FieldValueDuplicate";
    let forb = "FieldValueForbidden";
    let rs_t =
        r#"{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"a","image":"x"}]}}"#;
    let cases: Vec<(&str, &str, &str, String, Vec<Cause>)> = vec![
        (
            "deployment: replicas, labels, names, image, ports, duplicates, restart policy",
            "apps",
            "Deployment",
            r#"{"metadata":{"name":"d"},"spec":{"replicas":-1,"selector":{"matchLabels":{"app":"a"}},"template":{"metadata":{"labels":{"app":"b"}},"spec":{"restartPolicy":"Never","containers":[{"name":"App_1","image":""},{"name":"App_1","image":"x","ports":[{"containerPort":0},{"containerPort":70000,"hostPort":-1,"protocol":"FOO"}]}]}}}}"#.into(),
            vec![
                c(inv, "spec.replicas", "Invalid value: -1: must be greater than or equal to 0"),
                c(inv, "spec.template.metadata.labels", "Invalid value: {\"app\":\"b\"}: `selector` does not match template `labels`"),
                c(inv, "spec.template.spec.containers[0].name", &format!("Invalid value: \"App_1\": {RFC1123_LABEL}")),
                c(req, "spec.template.spec.containers[0].image", "Required value"),
                c(inv, "spec.template.spec.containers[1].name", &format!("Invalid value: \"App_1\": {RFC1123_LABEL}")),
                c(req, "spec.template.spec.containers[1].ports[0].containerPort", "Required value"),
                c(inv, "spec.template.spec.containers[1].ports[1].containerPort", "Invalid value: 70000: must be between 1 and 65535, inclusive"),
                c(inv, "spec.template.spec.containers[1].ports[1].hostPort", "Invalid value: -1: must be between 1 and 65535, inclusive"),
                c(ns, "spec.template.spec.containers[1].ports[1].protocol", "Unsupported value: \"FOO\": supported values: \"SCTP\", \"TCP\", \"UDP\""),
                c(dup, "spec.template.spec.containers[1].name", "Duplicate value: \"App_1\""),
                c(ns, "spec.template.spec.restartPolicy", "Unsupported value: \"Never\": supported values: \"Always\""),
            ],
        ),
        (
            "deployment: no selector, no containers",
            "apps",
            "Deployment",
            r#"{"metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[]}}}}"#.into(),
            vec![
                c(req, "spec.selector", "Required value"),
                c(inv, "spec.template.metadata.labels", "Invalid value: null: `selector` does not match template `labels`"),
                c(req, "spec.template.spec.containers", "Required value"),
            ],
        ),
        (
            "deployment: empty selector",
            "apps",
            "Deployment",
            with_tmpl(r#"{"metadata":{"name":"d"},"spec":{"selector":{},"template":TMPL}}"#, rs_t),
            vec![c(inv, "spec.selector", "Invalid value: {}: empty selector is invalid for deployment")],
        ),
        (
            "deployment: Recreate with rollingUpdate, negative limits",
            "apps",
            "Deployment",
            with_tmpl(r#"{"metadata":{"name":"d"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":TMPL,"strategy":{"type":"Recreate","rollingUpdate":{"maxSurge":1}},"revisionHistoryLimit":-1,"progressDeadlineSeconds":0,"minReadySeconds":-1}}"#, rs_t),
            vec![
                c(forb, "spec.strategy.rollingUpdate", "Forbidden: may not be specified when strategy `type` is 'Recreate'"),
                c(inv, "spec.minReadySeconds", "Invalid value: -1: must be greater than or equal to 0"),
                c(inv, "spec.revisionHistoryLimit", "Invalid value: -1: must be greater than or equal to 0"),
            ],
        ),
        (
            "deployment: unknown strategy type",
            "apps",
            "Deployment",
            with_tmpl(r#"{"metadata":{"name":"d"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":TMPL,"strategy":{"type":"Foo"}}}"#, rs_t),
            vec![c(ns, "spec.strategy", "Unsupported value: {\"Type\":\"Foo\",\"RollingUpdate\":null}: supported values: \"Recreate\", \"RollingUpdate\"")],
        ),
        (
            "deployment: maxSurge and maxUnavailable both 0",
            "apps",
            "Deployment",
            with_tmpl(r#"{"metadata":{"name":"d"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":TMPL,"strategy":{"rollingUpdate":{"maxSurge":0,"maxUnavailable":0}}}}"#, rs_t),
            vec![c(inv, "spec.strategy.rollingUpdate.maxUnavailable", "Invalid value: 0: may not be 0 when `maxSurge` is 0")],
        ),
        (
            "deployment: bad percentages",
            "apps",
            "Deployment",
            with_tmpl(r#"{"metadata":{"name":"d"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":TMPL,"strategy":{"rollingUpdate":{"maxSurge":-1,"maxUnavailable":"200%"}}}}"#, rs_t),
            vec![
                c(inv, "spec.strategy.rollingUpdate.maxSurge", "Invalid value: -1: must be greater than or equal to 0"),
                c(inv, "spec.strategy.rollingUpdate.maxUnavailable", "Invalid value: \"200%\": must not be greater than 100%"),
            ],
        ),
        (
            "deployment: not a percentage",
            "apps",
            "Deployment",
            with_tmpl(r#"{"metadata":{"name":"d"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":TMPL,"strategy":{"rollingUpdate":{"maxSurge":"120%","maxUnavailable":"x"}}}}"#, rs_t),
            vec![c(inv, "spec.strategy.rollingUpdate.maxUnavailable", "Invalid value: \"x\": a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")],
        ),
        (
            "replicaset: the pod spec checks in kube's order",
            "apps",
            "ReplicaSet",
            r#"{"metadata":{"name":"p"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"restartPolicy":"Sometimes","dnsPolicy":"Foo","serviceAccountName":"Bad_SA","initContainers":[{"name":"a","image":"x"}],"containers":[{"name":"a","image":"x","imagePullPolicy":"Sometimes","terminationMessagePolicy":"X","ports":[{"containerPort":80,"name":"Http_Port_Too_Long_Name"},{"containerPort":81,"name":"web"},{"containerPort":82,"name":"web"}],"env":[{"name":""},{"name":"A B","value":"x"},{"name":"C","value":"x","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}}],"volumeMounts":[{"name":"missing","mountPath":"/a"},{"name":"v","mountPath":""}],"resources":{"limits":{"cpu":"1"},"requests":{"cpu":"2"}},"livenessProbe":{"successThreshold":2,"httpGet":{"port":80}},"readinessProbe":{}}],"volumes":[{"name":"v","emptyDir":{}},{"name":"v","emptyDir":{}},{"name":"Bad"}]}}}}"#.into(),
            vec![
                c(dup, "spec.template.spec.volumes[1].name", "Duplicate value: \"v\""),
                c(inv, "spec.template.spec.volumes[2].name", &format!("Invalid value: \"Bad\": {RFC1123_LABEL}")),
                c(ns, "spec.template.spec.containers[0].terminationMessagePolicy", "Unsupported value: \"X\": supported values: \"File\", \"FallbackToLogsOnError\""),
                c(inv, "spec.template.spec.containers[0].ports[0].name", "Invalid value: \"Http_Port_Too_Long_Name\": must be no more than 15 characters"),
                c(inv, "spec.template.spec.containers[0].ports[0].name", "Invalid value: \"Http_Port_Too_Long_Name\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"),
                c(dup, "spec.template.spec.containers[0].ports[2].name", "Duplicate value: \"web\""),
                c(req, "spec.template.spec.containers[0].env[0].name", "Required value"),
                c(inv, "spec.template.spec.containers[0].env[2].valueFrom", "Invalid value: \"\": may not be specified when `value` is not empty"),
                c("FieldValueNotFound", "spec.template.spec.containers[0].volumeMounts[0].name", "Not found: \"missing\""),
                c(req, "spec.template.spec.containers[0].volumeMounts[1].mountPath", "Required value"),
                c(ns, "spec.template.spec.containers[0].imagePullPolicy", "Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\""),
                c(inv, "spec.template.spec.containers[0].resources.requests", "Invalid value: \"2\": must be less than or equal to cpu limit of 1"),
                c(inv, "spec.template.spec.containers[0].livenessProbe.successThreshold", "Invalid value: 2: must be 1"),
                c(req, "spec.template.spec.containers[0].readinessProbe", "Required value: must specify a handler type"),
                c(dup, "spec.template.spec.initContainers[0].name", "Duplicate value: \"a\""),
                c(ns, "spec.template.spec.restartPolicy", "Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""),
                c(ns, "spec.template.spec.dnsPolicy", "Unsupported value: \"Foo\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\""),
                c(inv, "spec.template.spec.serviceAccountName", &format!("Invalid value: \"Bad_SA\": {RFC1123_SUBDOMAIN}")),
                c(ns, "spec.template.spec.restartPolicy", "Unsupported value: \"Sometimes\": supported values: \"Always\""),
            ],
        ),
        (
            "replicaset: init probes, duplicate mount path, host port conflict, hostname",
            "apps",
            "ReplicaSet",
            r#"{"metadata":{"name":"p"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"initContainers":[{"name":"i","image":"x","readinessProbe":{"exec":{"command":["a"]}}}],"containers":[{"name":"a","image":"x","ports":[{"containerPort":80,"hostPort":8080}],"volumeMounts":[{"name":"v","mountPath":"/a"},{"name":"v","mountPath":"/a"}]},{"name":"b","image":"x","ports":[{"containerPort":81,"hostPort":8080}]}],"volumes":[{"name":"v","emptyDir":{}}],"hostname":"Bad_H"}}}}"#.into(),
            vec![
                c(inv, "spec.template.spec.containers[0].volumeMounts[1].mountPath", "Invalid value: \"/a\": must be unique"),
                c(dup, "spec.template.spec.containers[1].ports[0].hostPort", "Duplicate value: \"TCP//8080\""),
                c(forb, "spec.template.spec.initContainers[0].readinessProbe", "Forbidden: may not be set for init containers without restartPolicy=Always"),
                c(inv, "spec.template.spec.hostname", &format!("Invalid value: \"Bad_H\": {RFC1123_LABEL}")),
            ],
        ),
        (
            "ingress: wildcard host, service name, port name and number",
            "networking.k8s.io",
            "Ingress",
            r#"{"metadata":{"name":"i"},"spec":{"rules":[{"host":"*.A_B","http":{"paths":[{"path":"/","pathType":"Prefix","backend":{"service":{"name":"S1","port":{"number":80,"name":"x"}}}}]}}]}}"#.into(),
            vec![
                c(inv, "spec.rules[0].host", "Invalid value: \"*.A_B\": a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"),
                c(inv, "spec.rules[0].http.paths[0].backend.service.name", &format!("Invalid value: \"S1\": {RFC1123_LABEL}")),
                c(inv, "spec.rules[0].http.paths[0].backend", "Invalid value: \"\": cannot set both port name & port number"),
            ],
        ),
        (
            "replicaset: negative fields, label mismatch",
            "apps",
            "ReplicaSet",
            with_tmpl(r#"{"metadata":{"name":"s"},"spec":{"replicas":-2,"selector":{"matchLabels":{"a":"c"}},"template":TMPL,"minReadySeconds":-1}}"#, rs_t),
            vec![
                c(inv, "spec.replicas", "Invalid value: -2: must be greater than or equal to 0"),
                c(inv, "spec.minReadySeconds", "Invalid value: -1: must be greater than or equal to 0"),
                c(inv, "spec.template.metadata.labels", "Invalid value: {\"a\":\"b\"}: `selector` does not match template `labels`"),
            ],
        ),
        (
            "replicaset: no template",
            "apps",
            "ReplicaSet",
            r#"{"metadata":{"name":"s"},"spec":{"selector":{"matchLabels":{"a":"b"}}}}"#.into(),
            vec![
                c(inv, "spec.template.metadata.labels", "Invalid value: null: `selector` does not match template `labels`"),
                c(req, "spec.template.spec.containers", "Required value"),
            ],
        ),
        (
            "statefulset: policies, strategy, retention, claim storage, replicas",
            "apps",
            "StatefulSet",
            with_tmpl(r#"{"metadata":{"name":"s"},"spec":{"replicas":-1,"selector":{"matchLabels":{"a":"c"}},"template":TMPL,"podManagementPolicy":"Foo","updateStrategy":{"type":"Foo"},"revisionHistoryLimit":-1,"minReadySeconds":-1,"persistentVolumeClaimRetentionPolicy":{"whenDeleted":"X","whenScaled":"Y"},"volumeClaimTemplates":[{"metadata":{"name":"d"},"spec":{"accessModes":["ReadWriteOnce"]}}]}}"#, rs_t),
            vec![
                c(inv, "spec.podManagementPolicy", "Invalid value: \"Foo\": must be 'OrderedReady' or 'Parallel'"),
                c(inv, "spec.updateStrategy", "Invalid value: {\"Type\":\"Foo\",\"RollingUpdate\":null}: must be 'RollingUpdate' or 'OnDelete'"),
                c(ns, "spec.persistentVolumeClaimRetentionPolicy.whenDeleted", "Unsupported value: \"X\": supported values: \"Retain\", \"Delete\""),
                c(ns, "spec.persistentVolumeClaimRetentionPolicy.whenScaled", "Unsupported value: \"Y\": supported values: \"Retain\", \"Delete\""),
                c(req, "spec.volumeClaimTemplates[0].spec.resources[storage]", "Required value"),
                c(inv, "spec.replicas", "Invalid value: -1: must be greater than or equal to 0"),
                c(inv, "spec.minReadySeconds", "Invalid value: -1: must be greater than or equal to 0"),
                c(inv, "spec.template.metadata.labels", "Invalid value: {\"a\":\"b\"}: `selector` does not match template `labels`"),
            ],
        ),
        (
            "statefulset: rollingUpdate with OnDelete",
            "apps",
            "StatefulSet",
            with_tmpl(r#"{"metadata":{"name":"s"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":TMPL,"updateStrategy":{"type":"OnDelete","rollingUpdate":{"partition":-1}}}}"#, rs_t),
            vec![c(inv, "spec.updateStrategy.rollingUpdate", "Invalid value: {\"Partition\":-1,\"MaxUnavailable\":null}: only allowed for updateStrategy 'RollingUpdate'")],
        ),
        (
            "statefulset: negative partition, zero maxUnavailable",
            "apps",
            "StatefulSet",
            with_tmpl(r#"{"metadata":{"name":"s"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":TMPL,"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":-1,"maxUnavailable":0}}}}"#, rs_t),
            vec![
                c(inv, "spec.updateStrategy.rollingUpdate.partition", "Invalid value: -1: must be greater than or equal to 0"),
                c(inv, "spec.updateStrategy.rollingUpdate.maxUnavailable", "Invalid value: 0: cannot be 0"),
            ],
        ),
        (
            "statefulset: empty selector",
            "apps",
            "StatefulSet",
            r#"{"metadata":{"name":"s"},"spec":{"selector":{},"template":{"spec":{"containers":[{"name":"a","image":"x"}]}}}}"#.into(),
            vec![c(inv, "spec.selector", "Invalid value: {}: empty selector is invalid for statefulset")],
        ),
        (
            "daemonset: labels, minReadySeconds, strategy, history",
            "apps",
            "DaemonSet",
            with_tmpl(r#"{"metadata":{"name":"s"},"spec":{"selector":{"matchLabels":{"a":"c"}},"template":TMPL,"updateStrategy":{"type":"Foo"},"revisionHistoryLimit":-1,"minReadySeconds":-1}}"#, rs_t),
            vec![
                c(inv, "spec.template.metadata.labels", "Invalid value: {\"a\":\"b\"}: `selector` does not match template `labels`"),
                c(inv, "spec.minReadySeconds", "Invalid value: -1: must be greater than or equal to 0"),
                c(ns, "spec.updateStrategy", "Unsupported value: {\"Type\":\"Foo\",\"RollingUpdate\":null}: supported values: \"RollingUpdate\", \"OnDelete\""),
                c(inv, "spec.revisionHistoryLimit", "Invalid value: -1: must be greater than or equal to 0"),
            ],
        ),
        (
            "daemonset: maxUnavailable and maxSurge 0",
            "apps",
            "DaemonSet",
            with_tmpl(r#"{"metadata":{"name":"s"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":TMPL,"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":0,"maxSurge":0}}}}"#, rs_t),
            vec![c(req, "spec.updateStrategy.rollingUpdate.maxUnavailable", "Required value: cannot be 0 when maxSurge is 0")],
        ),
        (
            "daemonset: no selector matches nothing",
            "apps",
            "DaemonSet",
            with_tmpl(r#"{"metadata":{"name":"s"},"spec":{"template":TMPL}}"#, rs_t),
            vec![c(inv, "spec.template.metadata.labels", "Invalid value: {\"a\":\"b\"}: `selector` does not match template `labels`")],
        ),
        (
            "job: negative counts, restart policy Always",
            "batch",
            "Job",
            r#"{"metadata":{"name":"j","uid":"u1"},"spec":{"parallelism":-1,"completions":-1,"backoffLimit":-1,"activeDeadlineSeconds":0,"ttlSecondsAfterFinished":-1,"template":{"spec":{"containers":[{"name":"a","image":"x"}]}}}}"#.into(),
            vec![
                c(inv, "spec.parallelism", "Invalid value: -1: must be greater than or equal to 0"),
                c(inv, "spec.completions", "Invalid value: -1: must be greater than or equal to 0"),
                c(inv, "spec.backoffLimit", "Invalid value: -1: must be greater than or equal to 0"),
                c(inv, "spec.ttlSecondsAfterFinished", "Invalid value: -1: must be greater than or equal to 0"),
                c(req, "spec.template.spec.restartPolicy", "Required value: valid values: \"OnFailure\", \"Never\""),
            ],
        ),
        (
            "job: completion mode",
            "batch",
            "Job",
            r#"{"metadata":{"name":"j","uid":"u1"},"spec":{"completionMode":"Foo","template":{"spec":{"restartPolicy":"Never","containers":[{"name":"a","image":"x"}]}}}}"#.into(),
            vec![c(ns, "spec.completionMode", "Unsupported value: \"Foo\": supported values: \"NonIndexed\", \"Indexed\"")],
        ),
        (
            "job: pod replacement policy",
            "batch",
            "Job",
            r#"{"metadata":{"name":"j","uid":"u1"},"spec":{"podReplacementPolicy":"Foo","template":{"spec":{"restartPolicy":"Never","containers":[{"name":"a","image":"x"}]}}}}"#.into(),
            vec![c(ns, "spec.podReplacementPolicy", "Unsupported value: \"Foo\": supported values: \"Failed\", \"TerminatingOrFailed\"")],
        ),
        (
            "job: a selector without manualSelector",
            "batch",
            "Job",
            r#"{"metadata":{"name":"j","uid":"u1"},"spec":{"selector":{"matchLabels":{"x":"y"}},"template":{"metadata":{"labels":{"x":"y"}},"spec":{"restartPolicy":"Never","containers":[{"name":"a","image":"x"}]}}}}"#.into(),
            vec![c(inv, "spec.selector", "Invalid value: {\"matchLabels\":{\"batch.kubernetes.io/controller-uid\":\"u1\",\"x\":\"y\"}}: `selector` not auto-generated")],
        ),
        (
            "job: manualSelector without a selector",
            "batch",
            "Job",
            r#"{"metadata":{"name":"j","uid":"u1"},"spec":{"manualSelector":true,"template":{"metadata":{"labels":{"x":"y"}},"spec":{"restartPolicy":"Never","containers":[{"name":"a","image":"x"}]}}}}"#.into(),
            vec![
                c(req, "spec.selector", "Required value"),
                c(inv, "spec.template.metadata.labels", "Invalid value: {\"x\":\"y\"}: `selector` does not match template `labels`"),
            ],
        ),
        (
            "cronjob: empty schedule is reported last",
            "batch",
            "CronJob",
            r#"{"metadata":{"name":"c"},"spec":{"schedule":"","jobTemplate":{"spec":{"template":{"spec":{"containers":[{"name":"a","image":"x"}]}}}}}}"#.into(),
            vec![
                c(req, "spec.jobTemplate.spec.template.spec.restartPolicy", "Required value: valid values: \"OnFailure\", \"Never\""),
                c(req, "spec.schedule", "Required value"),
            ],
        ),
        (
            "cronjob: schedule, deadline, policy, history limits",
            "batch",
            "CronJob",
            r#"{"metadata":{"name":"c"},"spec":{"schedule":"bogus","concurrencyPolicy":"X","successfulJobsHistoryLimit":-1,"failedJobsHistoryLimit":-1,"startingDeadlineSeconds":-1,"jobTemplate":{"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"a","image":"x"}]}}}}}}"#.into(),
            vec![
                c(inv, "spec.schedule", "Invalid value: \"bogus\": expected exactly 5 fields, found 1: [bogus]"),
                c(inv, "spec.startingDeadlineSeconds", "Invalid value: -1: must be greater than or equal to 0"),
                c(ns, "spec.concurrencyPolicy", "Unsupported value: \"X\": supported values: \"Allow\", \"Forbid\", \"Replace\""),
                c(inv, "spec.successfulJobsHistoryLimit", "Invalid value: -1: must be greater than or equal to 0"),
                c(inv, "spec.failedJobsHistoryLimit", "Invalid value: -1: must be greater than or equal to 0"),
            ],
        ),
        (
            "cronjob: time zone",
            "batch",
            "CronJob",
            r#"{"metadata":{"name":"c"},"spec":{"schedule":"* * * * *","timeZone":"Mars/X","jobTemplate":{"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"a","image":"x"}]}}}}}}"#.into(),
            vec![c(inv, "spec.timeZone", "Invalid value: \"Mars/X\": unknown time zone Mars/X")],
        ),
        (
            "cronjob: TZ in schedule",
            "batch",
            "CronJob",
            r#"{"metadata":{"name":"c"},"spec":{"schedule":"TZ=UTC * * * * *","jobTemplate":{"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"a","image":"x"}]}}}}}}"#.into(),
            vec![c(inv, "spec.schedule", "Invalid value: \"TZ=UTC * * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead")],
        ),
        (
            "cronjob: name longer than 52",
            "batch",
            "CronJob",
            r#"{"metadata":{"name":"c-very-long-name-exceeding-fifty-two-characters-xxxxxxxx"},"spec":{"schedule":"@hourly","jobTemplate":{"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"a","image":"x"}]}}}}}}"#.into(),
            vec![c(inv, "metadata.name", "Invalid value: \"c-very-long-name-exceeding-fifty-two-characters-xxxxxxxx\": must be no more than 52 characters")],
        ),
        (
            "service: no ports",
            "",
            "Service",
            r#"{"metadata":{"name":"s"},"spec":{"selector":{"a":"b"}}}"#.into(),
            vec![c(req, "spec.ports", "Required value")],
        ),
        (
            "service: port names, ranges, protocol",
            "",
            "Service",
            r#"{"metadata":{"name":"s"},"spec":{"ports":[{"port":80},{"port":0,"name":"a"},{"port":70000,"name":"a","protocol":"X","targetPort":0}]}}"#.into(),
            vec![
                c(req, "spec.ports[0].name", "Required value"),
                c(inv, "spec.ports[1].port", "Invalid value: 0: must be between 1 and 65535, inclusive"),
                c(inv, "spec.ports[1].targetPort", "Invalid value: 0: must be between 1 and 65535, inclusive"),
                c(dup, "spec.ports[2].name", "Duplicate value: \"a\""),
                c(inv, "spec.ports[2].port", "Invalid value: 70000: must be between 1 and 65535, inclusive"),
                c(ns, "spec.ports[2].protocol", "Unsupported value: \"X\": supported values: \"SCTP\", \"TCP\", \"UDP\""),
                c(inv, "spec.ports[2].targetPort", "Invalid value: 70000: must be between 1 and 65535, inclusive"),
            ],
        ),
        (
            "service: port name, named target port, type, affinity",
            "",
            "Service",
            r#"{"metadata":{"name":"s"},"spec":{"ports":[{"port":80,"name":"Bad_Name","targetPort":"Bad_Name"}],"type":"Foo","sessionAffinity":"X"}}"#.into(),
            vec![
                c(inv, "spec.ports[0].name", &format!("Invalid value: \"Bad_Name\": {RFC1123_LABEL}")),
                c(inv, "spec.ports[0].targetPort", "Invalid value: \"Bad_Name\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"),
                c(ns, "spec.sessionAffinity", "Unsupported value: \"X\": supported values: \"ClientIP\", \"None\""),
                c(ns, "spec.type", "Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""),
            ],
        ),
        (
            "service: ExternalName needs externalName",
            "",
            "Service",
            r#"{"metadata":{"name":"s"},"spec":{"type":"ExternalName"}}"#.into(),
            vec![c(req, "spec.externalName", "Required value")],
        ),
        (
            "service: nodePort on ClusterIP",
            "",
            "Service",
            r#"{"metadata":{"name":"s"},"spec":{"ports":[{"port":80,"nodePort":30000}]}}"#.into(),
            vec![c(forb, "spec.ports[0].nodePort", "Forbidden: may not be used when `type` is 'ClusterIP'")],
        ),
        (
            "service: duplicate names, externalTrafficPolicy on ClusterIP",
            "",
            "Service",
            r#"{"metadata":{"name":"s"},"spec":{"ports":[{"port":80,"name":"a"},{"port":81,"name":"a"}],"externalTrafficPolicy":"Local"}}"#.into(),
            vec![
                c(dup, "spec.ports[1].name", "Duplicate value: \"a\""),
                c(inv, "spec.externalTrafficPolicy", "Invalid value: \"Local\": may only be set for externally-accessible services"),
            ],
        ),
        (
            "configmap: keys and binaryData overlap",
            "",
            "ConfigMap",
            r#"{"metadata":{"name":"c"},"data":{"a b":"x","":"y","..":"z","ok":"1"},"binaryData":{"ok":"eA=="}}"#.into(),
            vec![
                c(inv, "data[]", &format!("Invalid value: \"\": {CONFIG_KEY}")),
                c(inv, "data[..]", "Invalid value: \"..\": must not be '..'"),
                c(inv, "data[a b]", &format!("Invalid value: \"a b\": {CONFIG_KEY}")),
                c(inv, "data[ok]", "Invalid value: \"ok\": duplicate of key present in binaryData"),
            ],
        ),
        (
            "secret: key format",
            "",
            "Secret",
            r#"{"metadata":{"name":"c"},"data":{"a b":"eA=="}}"#.into(),
            vec![c(inv, "data[a b]", &format!("Invalid value: \"a b\": {CONFIG_KEY}"))],
        ),
        (
            "secret: tls",
            "",
            "Secret",
            r#"{"metadata":{"name":"c"},"type":"kubernetes.io/tls","data":{}}"#.into(),
            vec![c(req, "data[tls.crt]", "Required value"), c(req, "data[tls.key]", "Required value")],
        ),
        (
            "secret: dockerconfigjson missing",
            "",
            "Secret",
            r#"{"metadata":{"name":"c"},"type":"kubernetes.io/dockerconfigjson","data":{}}"#.into(),
            vec![c(req, "data[.dockerconfigjson]", "Required value")],
        ),
        (
            "secret: dockerconfigjson not JSON",
            "",
            "Secret",
            r#"{"metadata":{"name":"c"},"type":"kubernetes.io/dockerconfigjson","data":{".dockerconfigjson":"eA=="}}"#.into(),
            vec![c(inv, "data[.dockerconfigjson]", "Invalid value: \"<secret contents redacted>\": invalid character 'x' looking for beginning of value")],
        ),
        (
            "secret: dockercfg",
            "",
            "Secret",
            r#"{"metadata":{"name":"c"},"type":"kubernetes.io/dockercfg","data":{}}"#.into(),
            vec![c(req, "data[.dockercfg]", "Required value")],
        ),
        (
            "secret: basic-auth",
            "",
            "Secret",
            r#"{"metadata":{"name":"c"},"type":"kubernetes.io/basic-auth","data":{}}"#.into(),
            vec![c(req, "data[username]", "Required value"), c(req, "data[password]", "Required value")],
        ),
        (
            "secret: ssh-auth",
            "",
            "Secret",
            r#"{"metadata":{"name":"c"},"type":"kubernetes.io/ssh-auth","data":{}}"#.into(),
            vec![c(req, "data[ssh-privatekey]", "Required value")],
        ),
        (
            "secret: service-account-token",
            "",
            "Secret",
            r#"{"metadata":{"name":"c"},"type":"kubernetes.io/service-account-token","data":{}}"#.into(),
            vec![c(req, "metadata.annotations[kubernetes.io/service-account.name]", "Required value")],
        ),
        ("secret: any other type", "", "Secret", r#"{"metadata":{"name":"c"},"type":"bootstrap.kubernetes.io/token","data":{}}"#.into(), vec![]),
        (
            "pvc: access modes and storage required",
            "",
            "PersistentVolumeClaim",
            r#"{"metadata":{"name":"c"},"spec":{}}"#.into(),
            vec![
                c(req, "spec.accessModes", "Required value: at least 1 access mode is required"),
                c(req, "spec.resources[storage]", "Required value"),
            ],
        ),
        (
            "pvc: bad mode, zero storage, bad volumeMode",
            "",
            "PersistentVolumeClaim",
            r#"{"metadata":{"name":"c"},"spec":{"accessModes":["Foo"],"volumeMode":"X","resources":{"requests":{"storage":"0"}}}}"#.into(),
            vec![
                c(ns, "spec.accessModes", "Unsupported value: \"Foo\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\""),
                c(inv, "spec.resources[storage]", "Invalid value: \"0\": must be greater than zero"),
                c(ns, "spec.volumeMode", "Unsupported value: \"X\": supported values: \"Block\", \"Filesystem\""),
            ],
        ),
        (
            "namespace: finalizer names",
            "",
            "Namespace",
            r#"{"metadata":{"name":"ns2"},"spec":{"finalizers":["a/b/c"]}}"#.into(),
            vec![c(inv, "spec.finalizers", "Invalid value: \"a/b/c\": a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")],
        ),
        (
            "role: rules; missing verbs reported last",
            "rbac.authorization.k8s.io",
            "Role",
            r#"{"metadata":{"name":"r"},"rules":[{"apiGroups":[""],"resources":["pods"]},{"verbs":["get"]},{"verbs":["get"],"nonResourceURLs":["/x"]},{"verbs":["get"],"apiGroups":[""]}]}"#.into(),
            vec![
                c(req, "rules[1].apiGroups", "Required value: resource rules must supply at least one api group"),
                c(req, "rules[1].resources", "Required value: resource rules must supply at least one resource"),
                c(inv, "rules[2].nonResourceURLs", "Invalid value: [\"/x\"]: namespaced rules cannot apply to non-resource URLs"),
                c(req, "rules[3].resources", "Required value: resource rules must supply at least one resource"),
                c(req, "rules[0].verbs", "Required value"),
            ],
        ),
        (
            "clusterrole: mixed rule",
            "rbac.authorization.k8s.io",
            "ClusterRole",
            r#"{"metadata":{"name":"r"},"rules":[{"verbs":["get"],"nonResourceURLs":["/x"],"resources":["pods"]},{"verbs":["get"]},{"verbs":["get"],"nonResourceURLs":["x"]}]}"#.into(),
            vec![
                c(inv, "rules[0].nonResourceURLs", "Invalid value: [\"/x\"]: rules cannot apply to both regular resources and non-resource URLs"),
                c(req, "rules[1].apiGroups", "Required value: resource rules must supply at least one api group"),
                c(req, "rules[1].resources", "Required value: resource rules must supply at least one resource"),
            ],
        ),
        (
            "rolebinding: no roleRef",
            "rbac.authorization.k8s.io",
            "RoleBinding",
            r#"{"metadata":{"name":"r"}}"#.into(),
            vec![
                c(ns, "roleRef.apiGroup", "Unsupported value: \"\": supported values: \"rbac.authorization.k8s.io\""),
                c(ns, "roleRef.kind", "Unsupported value: \"\": supported values: \"Role\", \"ClusterRole\""),
                c(req, "roleRef.name", "Required value"),
            ],
        ),
        (
            "rolebinding: roleRef and subjects",
            "rbac.authorization.k8s.io",
            "RoleBinding",
            r#"{"metadata":{"name":"r"},"roleRef":{"apiGroup":"x","kind":"Foo","name":""},"subjects":[{"kind":"Foo","name":""},{"kind":"ServiceAccount","name":"Bad_N","apiGroup":"x"},{"kind":"User","name":"u","apiGroup":"x"},{"kind":"User","name":"u","namespace":"x"}]}"#.into(),
            vec![
                c(ns, "roleRef.apiGroup", "Unsupported value: \"x\": supported values: \"rbac.authorization.k8s.io\""),
                c(ns, "roleRef.kind", "Unsupported value: \"Foo\": supported values: \"Role\", \"ClusterRole\""),
                c(ns, "subjects[0].kind", "Unsupported value: \"Foo\": supported values: \"ServiceAccount\", \"User\", \"Group\""),
                c(inv, "subjects[1].name", &format!("Invalid value: \"Bad_N\": {RFC1123_SUBDOMAIN}")),
                c(ns, "subjects[1].apiGroup", "Unsupported value: \"x\": supported values: \"\""),
                c(ns, "subjects[2].apiGroup", "Unsupported value: \"x\": supported values: \"rbac.authorization.k8s.io\""),
                c(req, "subjects[0].name", "Required value"),
                c(req, "roleRef.name", "Required value"),
            ],
        ),
        (
            "clusterrolebinding: Role ref, service account namespace",
            "rbac.authorization.k8s.io",
            "ClusterRoleBinding",
            r#"{"metadata":{"name":"r"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"x"},"subjects":[{"kind":"ServiceAccount","name":"sa"}]}"#.into(),
            vec![
                c(ns, "roleRef.kind", "Unsupported value: \"Role\": supported values: \"ClusterRole\""),
                c(req, "subjects[0].namespace", "Required value"),
            ],
        ),
        (
            "ingress: neither rules nor default backend",
            "networking.k8s.io",
            "Ingress",
            r#"{"metadata":{"name":"i"},"spec":{}}"#.into(),
            vec![c(inv, "spec", "Invalid value: null: either `defaultBackend` or `rules` must be specified")],
        ),
        (
            "ingress: hosts, paths, path types, backends",
            "networking.k8s.io",
            "Ingress",
            r#"{"metadata":{"name":"i"},"spec":{"rules":[{"host":"A_B","http":{"paths":[]}},{"host":"*.a.com","http":{"paths":[{"path":"/","backend":{"service":{"name":"s","port":{"number":80}}}},{"path":"x","pathType":"Prefix","backend":{}},{"path":"/","pathType":"Foo","backend":{"service":{"name":"s","port":{"number":80}}}},{"pathType":"Exact","backend":{"service":{"name":"s"}}}]}},{"host":"1.2.3.4"}]}}"#.into(),
            vec![
                c(inv, "spec.rules[0].host", &format!("Invalid value: \"A_B\": {RFC1123_SUBDOMAIN}")),
                c(req, "spec.rules[0].http.paths", "Required value"),
                c(req, "spec.rules[1].http.paths[0].pathType", "Required value: pathType must be specified"),
                c(inv, "spec.rules[1].http.paths[1].path", "Invalid value: \"x\": must be an absolute path"),
                c(inv, "spec.rules[1].http.paths[1].backend", "Invalid value: \"\": resource or service backend is required"),
                c(ns, "spec.rules[1].http.paths[2].pathType", "Unsupported value: \"Foo\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\""),
                c(inv, "spec.rules[1].http.paths[3].path", "Invalid value: \"\": must be an absolute path"),
                c(req, "spec.rules[1].http.paths[3].backend", "Required value: port name or number is required"),
                c(inv, "spec.rules[2].host", "Invalid value: \"1.2.3.4\": must be a DNS name, not an IP address"),
            ],
        ),
        (
            "ingress: both backends, tls secret, class",
            "networking.k8s.io",
            "Ingress",
            r#"{"metadata":{"name":"i"},"spec":{"ingressClassName":"Bad_C","defaultBackend":{"resource":{"kind":"K","name":"n"},"service":{"name":"s","port":{"number":80}}},"tls":[{"hosts":["*.b.com"],"secretName":"Bad_S"}]}}"#.into(),
            vec![
                c(inv, "spec.defaultBackend", "Invalid value: \"\": cannot set both resource and service backends"),
                c(inv, "spec.tls[0].secretName", &format!("Invalid value: \"Bad_S\": {RFC1123_SUBDOMAIN}")),
                c(inv, "spec.ingressClassName", &format!("Invalid value: \"Bad_C\": {RFC1123_SUBDOMAIN}")),
            ],
        ),
        (
            "hpa: empty spec",
            "autoscaling",
            "HorizontalPodAutoscaler",
            r#"{"metadata":{"name":"h"},"spec":{}}"#.into(),
            vec![
                c(inv, "spec.maxReplicas", "Invalid value: 0: must be greater than or equal to `minReplicas`"),
                c(req, "spec.scaleTargetRef.kind", "Required value"),
                c(req, "spec.scaleTargetRef.name", "Required value"),
                c(inv, "spec.scaleTargetRef.apiVersion", "Invalid value: \"\": apiVersion must specify API group"),
                c(req, "spec.maxReplicas", "Required value"),
            ],
        ),
        (
            "hpa: a core apiVersion, scaling to zero without an object metric",
            "autoscaling",
            "HorizontalPodAutoscaler",
            r#"{"metadata":{"name":"h"},"spec":{"scaleTargetRef":{"apiVersion":"v1","kind":"StatefulSet","name":"u"},"maxReplicas":4,"minReplicas":0}}"#.into(),
            vec![
                c(inv, "spec.scaleTargetRef.apiVersion", "Invalid value: \"v1\": apiVersion must specify API group"),
                c(forb, "spec.metrics", "Forbidden: must specify at least one Object or External metric to support scaling to zero replicas"),
            ],
        ),
        (
            "hpa: bounds and a target without a value",
            "autoscaling",
            "HorizontalPodAutoscaler",
            r#"{"metadata":{"name":"h"},"spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"x"},"minReplicas":5,"maxReplicas":3,"metrics":[{"type":"Resource","resource":{"name":"cpu","target":{"type":"Utilization"}}}]}}"#.into(),
            vec![
                c(inv, "spec.maxReplicas", "Invalid value: 3: must be greater than or equal to `minReplicas`"),
                c(req, "spec.metrics[0].resource.target.averageUtilization", "Required value: must set either a target raw value or a target utilization"),
            ],
        ),
    ];
    for (name, group, kind, input, want) in cases {
        let mut obj = j(&input);
        default(group, kind, &mut obj);
        assert_eq!(validate(group, kind, &obj, None), want, "{name}");
    }
}

#[test]
fn cron_schedules() {
    let cases = [
        (
            "61 * * * *",
            Some("end of range (61) above maximum (59): 61"),
        ),
        (
            "* * * * * *",
            Some("expected exactly 5 fields, found 6: [* * * * * *]"),
        ),
        (
            "a * * * *",
            Some("failed to parse int from a: strconv.Atoi: parsing \"a\": invalid syntax"),
        ),
        (
            "*/0 * * * *",
            Some("step of range should be a positive number: */0"),
        ),
        (
            "5-2 * * * *",
            Some("beginning of range (5) beyond end of range (2): 5-2"),
        ),
        ("@bogus", Some("unrecognized descriptor: @bogus")),
        (
            "1,2,x * * * *",
            Some("failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax"),
        ),
        (
            "0 24 * * *",
            Some("end of range (24) above maximum (23): 24"),
        ),
        (
            "0 0 0 * *",
            Some("beginning of range (0) below minimum (1): 0"),
        ),
        ("* * * * 7", Some("end of range (7) above maximum (6): 7")),
        ("@every 5m", None),
        ("@weekly", None),
        ("0 0 * * MON-FRI", None),
        ("0 0 1 JAN *", None),
        ("0 0 ? * *", None),
        ("*/5 1-3 * * *", None),
    ];
    for (schedule, want) in cases {
        let mut obj = json!({"metadata": {"name": "c"}, "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "a", "image": "x"}]}}}}}});
        default("batch", "CronJob", &mut obj);
        let got = validate("batch", "CronJob", &obj, None);
        let want: Vec<Cause> = want
            .map(|m| {
                c(
                    "FieldValueInvalid",
                    "spec.schedule",
                    &format!("Invalid value: {}: {m}", json!(schedule)),
                )
            })
            .into_iter()
            .collect();
        assert_eq!(got, want, "{schedule}");
    }
}

/// Validation on update: `old` is the created object, `new` the old one changed by `edit`.
#[test]
fn validation_on_update() {
    let inv = "FieldValueInvalid";
    let forb = "FieldValueForbidden";
    let t = r#"{"metadata":{"labels":{"a":"b","c":"d"}},"spec":{"containers":[{"name":"a","image":"x"}]}}"#;
    type Edit = fn(&mut Value);
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        String,
        Edit,
        Vec<Cause>,
    );
    let cases: Vec<Case> = vec![
        (
            "deployment: selector immutable",
            "apps",
            "Deployment",
            with_tmpl(r#"{"metadata":{"name":"d"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":TMPL}}"#, t),
            |o| o["spec"]["selector"]["matchLabels"]["c"] = json!("d"),
            vec![c(inv, "spec.selector", "Invalid value: {\"matchLabels\":{\"a\":\"b\",\"c\":\"d\"}}: field is immutable")],
        ),
        (
            "deployment: template, replicas and strategy may change",
            "apps",
            "Deployment",
            with_tmpl(r#"{"metadata":{"name":"d"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":TMPL}}"#, t),
            |o| {
                o["spec"]["replicas"] = json!(3);
                o["spec"]["template"]["spec"]["containers"][0]["image"] = json!("y");
            },
            vec![],
        ),
        (
            "statefulset: selector, serviceName, podManagementPolicy immutable",
            "apps",
            "StatefulSet",
            with_tmpl(r#"{"metadata":{"name":"s"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":TMPL,"serviceName":"x"}}"#, t),
            |o| {
                o["spec"]["selector"]["matchLabels"]["c"] = json!("d");
                o["spec"]["serviceName"] = json!("y");
                o["spec"]["podManagementPolicy"] = json!("Parallel");
            },
            vec![
                c(inv, "spec.selector", "Invalid value: {\"matchLabels\":{\"a\":\"b\",\"c\":\"d\"}}: field is immutable"),
                c(inv, "spec.serviceName", "Invalid value: \"y\": field is immutable"),
                c(inv, "spec.podManagementPolicy", "Invalid value: \"Parallel\": field is immutable"),
            ],
        ),
        (
            "statefulset: replicas, template, strategy, retention may change",
            "apps",
            "StatefulSet",
            with_tmpl(r#"{"metadata":{"name":"s"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":TMPL,"serviceName":"x"}}"#, t),
            |o| {
                o["spec"]["replicas"] = json!(3);
                o["spec"]["template"]["spec"]["containers"][0]["image"] = json!("y");
                o["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
                o["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] = json!("Delete");
                o["spec"]["minReadySeconds"] = json!(5);
            },
            vec![],
        ),
        (
            "job: completions and completion mode",
            "batch",
            "Job",
            r#"{"metadata":{"name":"j","uid":"u1"},"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"a","image":"x"}]}}}}"#.into(),
            |o| {
                o["spec"]["completions"] = json!(3);
                o["spec"]["completionMode"] = json!("Indexed");
                o["spec"]["parallelism"] = json!(2);
                o["spec"]["backoffLimit"] = json!(1);
            },
            vec![
                c(inv, "spec.completions", "Invalid value: 3: can only be modified in tandem with spec.parallelism"),
                c(inv, "spec.completionMode", "Invalid value: \"Indexed\": field is immutable"),
            ],
        ),
        (
            "rolebinding: roleRef immutable",
            "rbac.authorization.k8s.io",
            "RoleBinding",
            r#"{"metadata":{"name":"r"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"r"}}"#.into(),
            |o| o["roleRef"]["name"] = json!("other"),
            vec![c(inv, "roleRef", "Invalid value: {\"APIGroup\":\"rbac.authorization.k8s.io\",\"Kind\":\"Role\",\"Name\":\"other\"}: field is immutable")],
        ),
        (
            "configmap: immutable data",
            "",
            "ConfigMap",
            r#"{"metadata":{"name":"c"},"data":{"a":"b"},"immutable":true}"#.into(),
            |o| o["data"]["a"] = json!("c"),
            vec![c(forb, "data", "Forbidden: field is immutable when `immutable` is set")],
        ),
        (
            "configmap: immutable cannot be unset",
            "",
            "ConfigMap",
            r#"{"metadata":{"name":"c"},"data":{"a":"b"},"immutable":true}"#.into(),
            |o| o["immutable"] = json!(false),
            vec![c(forb, "immutable", "Forbidden: field is immutable when `immutable` is set")],
        ),
        (
            "secret: immutable data",
            "",
            "Secret",
            r#"{"metadata":{"name":"s"},"data":{"a":"Yg=="},"immutable":true}"#.into(),
            |o| o["data"]["a"] = json!("Yw=="),
            vec![c(forb, "data", "Forbidden: field is immutable when `immutable` is set")],
        ),
        (
            "secret: type immutable",
            "",
            "Secret",
            r#"{"metadata":{"name":"s2"},"data":{"a":"Yg=="}}"#.into(),
            |o| o["type"] = json!("Foo"),
            vec![c(inv, "type", "Invalid value: \"Foo\": field is immutable")],
        ),
        (
            "service: clusterIP may not change",
            "",
            "Service",
            r#"{"metadata":{"name":"svc"},"spec":{"clusterIP":"10.0.0.0","ports":[{"port":80}]}}"#.into(),
            |o| {
                o["spec"]["clusterIP"] = json!("10.0.0.99");
                o["spec"]["clusterIPs"] = json!(["10.0.0.99"]);
            },
            vec![c(inv, "spec.clusterIPs[0]", "Invalid value: [\"10.0.0.99\"]: may not change once set")],
        ),
        (
            "pvc: spec immutable except requests",
            "",
            "PersistentVolumeClaim",
            r#"{"metadata":{"name":"pvc"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}"#.into(),
            |o| o["spec"]["accessModes"] = json!(["ReadWriteMany"]),
            vec![c(forb, "spec", "Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims")],
        ),
        (
            "pvc: requests may grow",
            "",
            "PersistentVolumeClaim",
            r#"{"metadata":{"name":"pvc"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}"#.into(),
            |o| o["spec"]["resources"]["requests"]["storage"] = json!("2Gi"),
            vec![],
        ),
    ];
    for (name, group, kind, input, edit, want) in cases {
        let mut old = j(&input);
        default(group, kind, &mut old);
        let mut new = old.clone();
        edit(&mut new);
        default(group, kind, &mut new);
        assert_eq!(validate(group, kind, &new, Some(&old)), want, "{name}");
    }
}

#[test]
fn image_pull_policy() {
    for (image, want) in [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.2", "IfNotPresent"),
        ("registry:5000/nginx", "Always"),
        ("registry:5000/nginx:1", "IfNotPresent"),
        ("nginx@sha256:abc", "IfNotPresent"),
    ] {
        let mut obj = json!({"spec": {"containers": [{"name": "a", "image": image}]}});
        default("", "Pod", &mut obj);
        assert_eq!(
            obj["spec"]["containers"][0]["imagePullPolicy"],
            json!(want),
            "{image}"
        );
    }
}

#[test]
fn pod_qos_and_host_network() {
    let mut obj = json!({"spec": {"hostNetwork": true, "containers": [{"name": "a", "image": "x:1", "ports": [{"containerPort": 8080}], "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}});
    default("", "Pod", &mut obj);
    assert_eq!(
        obj["spec"]["containers"][0]["ports"][0]["hostPort"],
        json!(8080)
    );
    assert_eq!(obj["status"]["qosClass"], json!("Guaranteed"));
    let mut obj = json!({"spec": {"containers": [{"name": "a", "image": "x:1"}]}});
    default("", "Pod", &mut obj);
    assert_eq!(obj["status"]["qosClass"], json!("BestEffort"));
}
