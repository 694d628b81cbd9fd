//! The CA and serving certificate: generated with rcgen on first start, kept in the data
//! directory (`ca.crt`, `ca.key`, `server.crt`, `server.key`) and reused after restart. The
//! serving certificate is re-issued from the same CA when it does not cover the bind address.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::errors::{Error, Result};

/// PEM material for the server.
pub(crate) struct Certificates {
    /// CA certificate (PEM), published in the kubeconfig.
    pub(crate) ca_pem: String,
    /// Serving certificate chain (PEM).
    pub(crate) server_pem: String,
    /// Serving key (PEM).
    pub(crate) server_key_pem: String,
}

fn read(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            action: "read",
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Write a file readable only by the owner.
pub(crate) fn write_private(path: &Path, contents: &str) -> Result<()> {
    write_file(path, contents, true)
}

/// Write a file readable only by the owner, atomically (rename), optionally fsynced.
pub(crate) fn write_file(path: &Path, contents: &str, sync: bool) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |source| Error::Io {
        action: "write",
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(contents.as_bytes()).map_err(io)?;
    if sync {
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "flotilla-apiserver-ca");
    dn.push(DnType::OrganizationName, "flotilla");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    params
}

fn sans(bind: IpAddr) -> Vec<String> {
    let mut v = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if !bind.is_unspecified() && !v.contains(&bind.to_string()) {
        v.push(bind.to_string());
    }
    v
}

/// Load or create the certificates in `dir` for a server bound to `bind`.
pub(crate) fn load_or_create(dir: &Path, bind: IpAddr) -> Result<Certificates> {
    let ca_crt = dir.join("ca.crt");
    let ca_key = dir.join("ca.key");
    let srv_crt = dir.join("server.crt");
    let srv_key = dir.join("server.key");
    let sans_file = dir.join("server.sans");
    let want_sans = sans(bind).join(",");
    let (ca_pem, ca_key_pem) = match (read(&ca_crt)?, read(&ca_key)?) {
        (Some(c), Some(k)) => (c, k),
        _ => {
            let key = KeyPair::generate()?;
            let cert = ca_params().self_signed(&key)?;
            let (c, k) = (cert.pem(), key.serialize_pem());
            write_private(&ca_key, &k)?;
            write_private(&ca_crt, &c)?;
            (c, k)
        }
    };
    if let (Some(c), Some(k), Some(s)) = (read(&srv_crt)?, read(&srv_key)?, read(&sans_file)?)
        && s.trim() == want_sans
    {
        return Ok(Certificates {
            ca_pem,
            server_pem: c,
            server_key_pem: k,
        });
    }
    let ca_key = KeyPair::from_pem(&ca_key_pem)?;
    let issuer = Issuer::new(ca_params(), ca_key);
    let mut params = CertificateParams::new(sans(bind))?;
    params.subject_alt_names = sans(bind)
        .into_iter()
        .map(|s| match s.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => Ok(SanType::DnsName(s.try_into()?)),
        })
        .collect::<Result<Vec<_>, rcgen::Error>>()?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "flotilla-apiserver");
    params.distinguished_name = dn;
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    let (c, k) = (cert.pem(), key.serialize_pem());
    write_private(&srv_key, &k)?;
    write_private(&srv_crt, &c)?;
    write_private(&sans_file, &want_sans)?;
    Ok(Certificates {
        ca_pem,
        server_pem: c,
        server_key_pem: k,
    })
}

/// The rustls server configuration (HTTP/2 and HTTP/1.1 via ALPN).
pub(crate) fn server_config(certs: &Certificates) -> Result<Arc<rustls::ServerConfig>> {
    let bad = |e: rustls::pki_types::pem::Error| Error::internal(format!("parse PEM: {e}"));
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(certs.server_pem.as_bytes())
            .collect::<std::result::Result<_, _>>()
            .map_err(bad)?;
    let key = PrivateKeyDer::from_pem_slice(certs.server_key_pem.as_bytes()).map_err(bad)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
