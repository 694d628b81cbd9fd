//! Member clients: one `kube::Client` per member cluster, built from its Cluster
//! (`apiEndpoint`, `insecureSkipTLSVerification`, `proxyURL`) and the Secret named by
//! `spec.secretRef` (`token` + `caBundle`, or `kubeconfig`), both read from the shared caches;
//! rebuilt when either changes and dropped when the Cluster goes. Owns credential handling
//! only: never probes or writes anything, and no credential ever reaches a message or a log.
//! Every problem a user can cause comes back as [`Error::MemberClient`] with a message that
//! names the Secret and says how to fix it.

use std::time::Duration;

use base64::Engine as _;
use flotilla_api::Cluster;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Client, ResourceExt,
    config::{KubeConfigOptions, Kubeconfig},
    runtime::reflector::{ObjectRef, Store},
};
use serde_json::json;

use crate::{
    cache::{Caches, PerObject},
    error::{Error, Result, chain},
};

/// The member clients of one process.
pub struct Members {
    secrets: Store<Secret>,
    timeout: Duration,
    /// Per cluster: the fingerprint the clients were built for, and the clients.
    clients: PerObject<Cluster, Built>,
}

/// The clients of one member, built from one configuration.
#[derive(Clone)]
struct Built {
    fingerprint: String,
    /// Gives up on a silent member after the timeout.
    requests: Client,
    /// For watches, which stay silent while nothing changes: waits [`WATCH_READ_TIMEOUT`].
    watches: Client,
}

/// How long a watch may go without a byte before it is given up and started again: kube's
/// default read timeout, longer than the 290 s a kube-runtime watcher asks the server to keep
/// a watch open.
pub const WATCH_READ_TIMEOUT: Duration = Duration::from_secs(295);

impl Members {
    /// Member clients reading Clusters and Secrets from `caches`; every request a client sends
    /// gives up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::CachesStarted`] when the caches started before the Cluster or Secret cache was
    /// asked for.
    pub fn new(caches: &Caches, timeout: Duration) -> Result<Self> {
        let clusters = caches.get::<Cluster>()?;
        let secrets = caches.get::<Secret>()?;
        Ok(Self {
            secrets: secrets.store(),
            timeout,
            clients: PerObject::new(&clusters),
        })
    }

    /// The client for `cluster`, built anew when its connection settings or its Secret changed.
    ///
    /// # Errors
    ///
    /// [`Error::MemberClient`] saying what is wrong with the Cluster or its Secret.
    pub async fn client(&self, cluster: &Cluster) -> Result<Client> {
        self.connection(cluster).await.map(|(client, _)| client)
    }

    /// The client for `cluster` and a fingerprint of what it was built from: while the
    /// fingerprint stays the same, so does the client, so whatever a caller built on a client
    /// (a watch, a discovery cache) can be kept until it changes. The fingerprint holds no
    /// credential.
    ///
    /// # Errors
    ///
    /// [`Error::MemberClient`] saying what is wrong with the Cluster or its Secret.
    pub async fn connection(&self, cluster: &Cluster) -> Result<(Client, String)> {
        self.built(cluster)
            .await
            .map(|built| (built.requests, built.fingerprint))
    }

    /// As [`Members::connection`], but the client is for watches: it waits
    /// [`WATCH_READ_TIMEOUT`] for a byte instead of the request timeout, so a watch on a quiet
    /// member is not broken (and relisted) every few seconds.
    ///
    /// # Errors
    ///
    /// [`Error::MemberClient`] saying what is wrong with the Cluster or its Secret.
    pub async fn watch_connection(&self, cluster: &Cluster) -> Result<(Client, String)> {
        self.built(cluster)
            .await
            .map(|built| (built.watches, built.fingerprint))
    }

    async fn built(&self, cluster: &Cluster) -> Result<Built> {
        let secret = self.secret(cluster)?;
        let key = ObjectRef::from_obj(cluster);
        let fingerprint = fingerprint(cluster, &secret);
        if let Some(built) = self.clients.lock().get(&key)
            && built.fingerprint == fingerprint
        {
            return Ok(built.clone());
        }
        let config = config(cluster, &secret, self.timeout).await?;
        let mut watch_config = config.clone();
        watch_config.read_timeout = Some(WATCH_READ_TIMEOUT);
        let built = Built {
            fingerprint,
            requests: client(config, cluster)?,
            watches: client(watch_config, cluster)?,
        };
        self.clients.lock().insert(key, built.clone());
        Ok(built)
    }

    /// How many member clients are held.
    pub fn len(&self) -> usize {
        self.clients.lock().len()
    }

    /// Whether no member client is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The Secret named by `spec.secretRef`, from the cache.
    fn secret(&self, cluster: &Cluster) -> Result<Secret> {
        let Some(reference) = &cluster.spec.secret_ref else {
            return Err(Error::MemberClient(format!(
                "spec.secretRef is not set; a Push cluster needs a Secret with its credentials ({HOW_TO_FIX})"
            )));
        };
        let key = ObjectRef::new(&reference.name).within(&reference.namespace);
        match self.secrets.get(&key) {
            Some(secret) => Ok(secret.as_ref().clone()),
            None => Err(Error::MemberClient(format!(
                "Secret {}/{} named by spec.secretRef does not exist; create it ({HOW_TO_FIX})",
                reference.namespace, reference.name
            ))),
        }
    }
}

/// The Secret key holding a bearer token valid on the member.
pub const TOKEN_KEY: &str = "token";
/// The Secret key holding the member API server's CA certificate (PEM).
pub const CA_BUNDLE_KEY: &str = "caBundle";
/// The Secret key holding a complete kubeconfig for the member.
pub const KUBECONFIG_KEY: &str = "kubeconfig";

const HOW_TO_FIX: &str = "the Secret needs the keys token and caBundle (PEM), or kubeconfig";

/// A string that changes whenever anything [`config`] reads changes, so a built client can be
/// reused until then.
fn fingerprint(cluster: &Cluster, secret: &Secret) -> String {
    format!(
        "{:?}|{}|{:?}|{:?}|{:?}",
        cluster.spec.api_endpoint,
        cluster.spec.insecure_skip_tls_verification,
        cluster.spec.proxy_url,
        secret.metadata.uid,
        secret.resource_version(),
    )
}

/// The kubeconfig that reaches a member, from its Cluster and credentials Secret. A
/// `kubeconfig` key is used as it is (its current context), except that it may not run
/// commands or read files on the hub; otherwise `spec.apiEndpoint` with `token` and `caBundle`
/// (which may be left out when `insecureSkipTLSVerification` is set or the member's
/// certificate is publicly trusted), in a context named `member`.
///
/// # Errors
///
/// [`Error::MemberClient`] saying what is wrong with the Cluster or the Secret.
pub fn kubeconfig(cluster: &Cluster, secret: &Secret) -> Result<Kubeconfig> {
    let secret_name = format!(
        "{}/{}",
        secret.namespace().unwrap_or_default(),
        secret.name_any()
    );
    let data = secret.data.clone().unwrap_or_default();
    let bad = |what: String| {
        Error::MemberClient(format!("Secret {secret_name}: {}", redact(&what, &data)))
    };
    let text = |key: &str| -> Result<Option<String>> {
        match data.get(key) {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes.0.clone())
                .map(|s| Some(s.trim().to_owned()).filter(|s| !s.is_empty()))
                .map_err(|_| bad(format!("{key} is not UTF-8 text"))),
        }
    };

    let kubeconfig = if let Some(yaml) = text(KUBECONFIG_KEY)? {
        // The parser's message quotes the YAML around the error, credentials included: say
        // only where it is.
        let kubeconfig = Kubeconfig::from_yaml(&yaml).map_err(|e| {
            bad(format!(
                "{KUBECONFIG_KEY} is not a valid kubeconfig{}; check it with kubectl --kubeconfig",
                position(&chain(&e))
                    .map(|(line, column)| format!(" (line {line}, column {column})"))
                    .unwrap_or_default()
            ))
        })?;
        refuse_host_access(&kubeconfig).map_err(|what| bad(format!("{KUBECONFIG_KEY}: {what}")))?;
        kubeconfig
    } else {
        let Some(endpoint) = cluster
            .spec
            .api_endpoint
            .as_deref()
            .filter(|e| !e.trim().is_empty())
        else {
            return Err(Error::MemberClient(format!(
                "spec.apiEndpoint is not set; set it to the member's API server URL, or put a \
                 {KUBECONFIG_KEY} in Secret {secret_name}"
            )));
        };
        let token = text(TOKEN_KEY)?.ok_or_else(|| {
            bad(format!(
                "the key {TOKEN_KEY} is missing or empty ({HOW_TO_FIX})"
            ))
        })?;
        let insecure = cluster.spec.insecure_skip_tls_verification;
        let ca = match text(CA_BUNDLE_KEY)? {
            Some(_) if insecure => None,
            Some(pem) if !pem.contains("-----BEGIN CERTIFICATE-----") => {
                return Err(bad(format!(
                    "{CA_BUNDLE_KEY} is not a PEM certificate (it must contain -----BEGIN CERTIFICATE-----)"
                )));
            }
            Some(pem) => Some(base64::engine::general_purpose::STANDARD.encode(pem)),
            None => None,
        };
        let mut cluster_entry = json!({ "server": endpoint });
        if insecure {
            cluster_entry["insecure-skip-tls-verify"] = json!(true);
        }
        if let Some(ca) = ca {
            cluster_entry["certificate-authority-data"] = json!(ca);
        }
        if let Some(proxy) = cluster.spec.proxy_url.as_deref().filter(|p| !p.is_empty()) {
            cluster_entry["proxy-url"] = json!(proxy);
        }
        serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "member", "cluster": cluster_entry}],
            "users": [{"name": "member", "user": {"token": token}}],
            "contexts": [{"name": "member", "context": {"cluster": "member", "user": "member"}}],
            "current-context": "member",
        }))
        .map_err(|e| {
            bad(format!(
                "the credentials do not form a client configuration: {e}"
            ))
        })?
    };
    Ok(kubeconfig)
}

/// The client configuration for a member ([`kubeconfig`]), every request giving up after
/// `timeout`.
///
/// # Errors
///
/// [`Error::MemberClient`] saying what is wrong with the Cluster or the Secret.
pub async fn config(cluster: &Cluster, secret: &Secret, timeout: Duration) -> Result<kube::Config> {
    let kubeconfig = kubeconfig(cluster, secret)?;
    let secret_name = format!(
        "{}/{}",
        secret.namespace().unwrap_or_default(),
        secret.name_any()
    );
    let data = secret.data.clone().unwrap_or_default();
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| {
                Error::MemberClient(format!(
                    "Secret {secret_name}: {}",
                    redact(
                        &format!("the credentials are not usable: {}", chain(&e)),
                        &data
                    )
                ))
            })?;
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    Ok(config)
}

/// `line L column C` in a parser's message, if it says where.
fn position(message: &str) -> Option<(u64, u64)> {
    let rest = &message[message.find("line ")? + 5..];
    let (line, rest) = rest.split_once(' ')?;
    let column = rest.strip_prefix("column ")?;
    let column: String = column.chars().take_while(char::is_ascii_digit).collect();
    Some((line.parse().ok()?, column.parse().ok()?))
}

/// `message` with every credential in the Secret's data (each value, and each word of a value
/// that is not a YAML key, of 8 or more characters) replaced by `<redacted>`: no message a user
/// or a log sees may carry one.
fn redact(
    message: &str,
    data: &std::collections::BTreeMap<String, k8s_openapi::ByteString>,
) -> String {
    let mut secrets: Vec<String> = Vec::new();
    for value in data.values() {
        let text = String::from_utf8_lossy(&value.0);
        secrets.push(text.trim().to_owned());
        for word in text.split(|c: char| {
            c.is_whitespace() || matches!(c, ',' | '{' | '}' | '[' | ']' | '"' | '\'')
        }) {
            if !word.ends_with(':') {
                secrets.push(word.to_owned());
            }
        }
    }
    secrets.retain(|s| s.len() >= 8);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut message = message.to_owned();
    for secret in secrets {
        message = message.replace(&secret, "<redacted>");
    }
    message
}

/// Builds a client from a configuration made by [`config`].
///
/// # Errors
///
/// [`Error::MemberClient`] when the configuration cannot make a client (for example a proxy
/// scheme this build does not support).
fn client(config: kube::Config, cluster: &Cluster) -> Result<Client> {
    Client::try_from(config).map_err(|e| {
        Error::MemberClient(format!(
            "cannot build a client for cluster {}: {}",
            cluster.name_any(),
            chain(&e)
        ))
    })
}

/// A kubeconfig stored in a hub Secret must not make the hub run commands or read its own
/// files: only inline data is accepted.
fn refuse_host_access(kubeconfig: &Kubeconfig) -> Result<(), String> {
    for named in &kubeconfig.auth_infos {
        let Some(user) = &named.auth_info else {
            continue;
        };
        let name = &named.name;
        if user.exec.is_some() {
            return Err(format!(
                "user {name} uses an exec plugin, which the hub will not run; use a token"
            ));
        }
        if user.auth_provider.is_some() {
            return Err(format!("user {name} uses an auth provider; use a token"));
        }
        if user.token_file.is_some()
            || user.client_certificate.is_some()
            || user.client_key.is_some()
        {
            return Err(format!(
                "user {name} refers to files; inline them (token, client-certificate-data, client-key-data)"
            ));
        }
    }
    for named in &kubeconfig.clusters {
        if named
            .cluster
            .as_ref()
            .is_some_and(|c| c.certificate_authority.is_some())
        {
            return Err(format!(
                "cluster {} refers to a certificate-authority file; use certificate-authority-data",
                named.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use flotilla_api::cluster::{ClusterSpec, LocalSecretReference};
    use k8s_openapi::ByteString;
    use kube::api::ObjectMeta;

    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    fn cluster(endpoint: Option<&str>, insecure: bool) -> Cluster {
        Cluster::new(
            "member1",
            ClusterSpec {
                api_endpoint: endpoint.map(str::to_owned),
                insecure_skip_tls_verification: insecure,
                secret_ref: Some(LocalSecretReference {
                    namespace: "flotilla-cluster".to_owned(),
                    name: "member1".to_owned(),
                }),
                ..Default::default()
            },
        )
    }

    fn secret(data: &[(&str, &str)]) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some("member1".to_owned()),
                namespace: Some("flotilla-cluster".to_owned()),
                ..Default::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        }
    }

    async fn problem(cluster: &Cluster, secret: &Secret) -> Option<String> {
        match config(cluster, secret, Duration::from_secs(5)).await {
            Ok(_) => None,
            Err(Error::MemberClient(message)) => Some(message),
            Err(other) => Some(format!("unexpected error kind: {other}")),
        }
    }

    #[tokio::test]
    async fn bad_credentials_say_what_is_wrong() {
        let endpoint = Some("https://127.0.0.1:6443");
        let exec_kubeconfig = "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\nusers: [{name: u, user: {exec: {command: /bin/sh, apiVersion: client.authentication.k8s.io/v1}}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n";
        let file_kubeconfig = "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1', certificate-authority: /etc/ca.pem}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n";
        let table: Vec<(&str, Cluster, Secret, Option<&str>)> = vec![
            (
                "token and CA",
                cluster(endpoint, false),
                secret(&[("token", "t"), ("caBundle", PEM)]),
                None,
            ),
            (
                "insecure without CA",
                cluster(endpoint, true),
                secret(&[("token", "t")]),
                None,
            ),
            (
                "missing token",
                cluster(endpoint, false),
                secret(&[("caBundle", PEM)]),
                Some("Secret flotilla-cluster/member1: the key token is missing"),
            ),
            (
                "empty token",
                cluster(endpoint, false),
                secret(&[("token", " \n"), ("caBundle", PEM)]),
                Some("the key token is missing or empty"),
            ),
            (
                "CA not PEM",
                cluster(endpoint, false),
                secret(&[("token", "t"), ("caBundle", "hello")]),
                Some("caBundle is not a PEM certificate"),
            ),
            (
                "no endpoint",
                cluster(None, false),
                secret(&[("token", "t"), ("caBundle", PEM)]),
                Some("spec.apiEndpoint is not set"),
            ),
            (
                "kubeconfig garbage",
                cluster(None, false),
                secret(&[("kubeconfig", "{{{")]),
                Some("kubeconfig is not a valid kubeconfig"),
            ),
            (
                "kubeconfig exec",
                cluster(None, false),
                secret(&[("kubeconfig", exec_kubeconfig)]),
                Some("exec plugin"),
            ),
            (
                "kubeconfig files",
                cluster(None, false),
                secret(&[("kubeconfig", file_kubeconfig)]),
                Some("certificate-authority file"),
            ),
        ];
        for (name, cluster, secret, want) in table {
            let got = problem(&cluster, &secret).await;
            match (want, got) {
                (None, None) => {}
                (Some(want), Some(got)) => {
                    assert!(got.contains(want), "{name}: {got:?} lacks {want:?}")
                }
                (want, got) => panic!("{name}: wanted {want:?}, got {got:?}"),
            }
        }
    }

    #[tokio::test]
    async fn messages_never_carry_the_credentials() {
        let secret_token = "s3cr3t-t0ken-value";
        let broken = [
            format!("users: [{{name: u, user: {{token: {secret_token}}}}}]\nclusters: {{{{{{"),
            format!("apiVersion: v1\nusers:\n- name: u\n  user: {{token: [{secret_token}\n"),
            format!("apiVersion: v1\nkind: Config\nusers: {secret_token}\n"),
        ];
        for yaml in broken {
            let message = problem(&cluster(None, false), &secret(&[("kubeconfig", &yaml)]))
                .await
                .unwrap_or_default();
            assert!(!message.is_empty(), "{yaml:?} was accepted");
            assert!(!message.contains(secret_token), "{message}");
        }
        let message = problem(
            &cluster(Some("https://127.0.0.1:6443"), false),
            &secret(&[("token", secret_token), ("caBundle", "not pem")]),
        )
        .await
        .unwrap_or_default();
        assert!(!message.contains(secret_token), "{message}");
    }

    #[test]
    fn the_fingerprint_follows_the_secret_and_the_endpoint() {
        let mut s = secret(&[("token", "t")]);
        s.metadata.resource_version = Some("1".to_owned());
        let a = fingerprint(&cluster(Some("https://a"), false), &s);
        assert_eq!(a, fingerprint(&cluster(Some("https://a"), false), &s));
        assert_ne!(a, fingerprint(&cluster(Some("https://b"), false), &s));
        assert_ne!(a, fingerprint(&cluster(Some("https://a"), true), &s));
        s.metadata.resource_version = Some("2".to_owned());
        assert_ne!(a, fingerprint(&cluster(Some("https://a"), false), &s));
    }
}
