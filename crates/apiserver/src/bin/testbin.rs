//! A tiny launcher for the API server used by the crate's subprocess tests (kill -9
//! durability) and benchmarks; the product binary is `flotilla apiserver`.

use std::net::IpAddr;

use flotilla_apiserver::Config;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::new(".flotilla-apiserver");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--data-dir" => config.data_dir = args.next().ok_or("--data-dir needs a value")?.into(),
            "--bind-address" => {
                config.bind_address = args
                    .next()
                    .ok_or("--bind-address needs a value")?
                    .parse::<IpAddr>()?
            }
            "--port" => config.port = args.next().ok_or("--port needs a value")?.parse()?,
            "--in-memory" => config.in_memory = true,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    flotilla_apiserver::run(config).await?;
    Ok(())
}
