//! `/version` reports the version the server is started with, and refuses a malformed one.

use anyhow::Result;
use flotilla_apiserver::{Config, Error, Server};

#[tokio::test]
async fn version_is_the_configured_one() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::new(dir.path());
    config.in_memory = true;
    config.kubernetes_version = Some("v1.34.2".into());
    let server = Server::start(config).await?;
    let info = server.client(None).await?.apiserver_version().await?;
    assert_eq!(
        (
            info.major.as_str(),
            info.minor.as_str(),
            info.git_version.as_str()
        ),
        ("1", "34", "v1.34.2")
    );
    server.shutdown().await;

    let mut config = Config::new(dir.path());
    config.in_memory = true;
    config.kubernetes_version = Some("latest".into());
    match Server::start(config).await {
        Err(Error::InvalidKubernetesVersion(v)) => assert_eq!(v, "latest"),
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("a malformed version was accepted"),
    }
    Ok(())
}
