//! The kubeconfig the server writes to `DIR/kubeconfig`: one cluster and context per logical
//! cluster (the root cluster is `default`), all with the admin bearer token. Text only.

use base64::Engine as _;

/// Render a kubeconfig. `clusters` is (context name, server URL), default first.
pub(crate) fn render(ca_pem: &str, token: &str, clusters: &[(String, String)]) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let mut out = String::from("apiVersion: v1\nkind: Config\npreferences: {}\nclusters:\n");
    for (name, url) in clusters {
        out.push_str(&format!(
            "- name: {name}\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\n"
        ));
    }
    out.push_str("users:\n- name: admin\n  user:\n");
    out.push_str(&format!("    token: {token}\n"));
    out.push_str("contexts:\n");
    for (name, _) in clusters {
        out.push_str(&format!(
            "- name: {name}\n  context:\n    cluster: {name}\n    user: admin\n"
        ));
    }
    let current = clusters
        .first()
        .map(|(n, _)| n.as_str())
        .unwrap_or("default");
    out.push_str(&format!("current-context: {current}\n"));
    out
}
