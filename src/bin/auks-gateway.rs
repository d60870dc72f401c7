//! auks-gateway: submit Kerberized Slurm jobs over HTTPS (see the
//! "Gateway" section of README.md). Usage:
//! `auks-gateway [-F] [-f /etc/auks/gateway.toml] [--check]`.
#![forbid(unsafe_code)]

#[path = "../gateway/mod.rs"]
mod gateway;

use gateway::config::{GatewayConfig, DEFAULT_PATH};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: auks-gateway [-F] [-f CONFIG] [--check]
  -F                   stay in the foreground, log to stderr (always the case;
                       accepted for uniformity with auksd)
  -f, --config CONFIG  configuration file (default /etc/auks/gateway.toml)
  --check              validate the configuration and its files, then exit
  --version            print the version (and the Slurm and krb5 built against)
  -h, --help           this help";

fn main() -> ExitCode {
    let mut path = PathBuf::from(DEFAULT_PATH);
    let mut check = false;
    let mut args = lexopt::Parser::from_env();
    loop {
        use lexopt::prelude::*;
        match args.next() {
            Ok(None) => break,
            Ok(Some(Short('f') | Long("config"))) => match args.value() {
                Ok(v) => path = PathBuf::from(v),
                Err(e) => return usage_error(&e.to_string()),
            },
            Ok(Some(Long("check"))) => check = true,
            Ok(Some(Short('F'))) => {}
            Ok(Some(Long("version"))) => {
                print!("{}", auks::version::text("auks-gateway"));
                return ExitCode::SUCCESS;
            }
            Ok(Some(Short('h') | Long("help"))) => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            Ok(Some(a)) => return usage_error(&a.unexpected().to_string()),
            Err(e) => return usage_error(&e.to_string()),
        }
    }
    let cfg = match GatewayConfig::load(&path) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .max_blocking_threads(cfg.max_concurrent_requests.saturating_mul(2).clamp(8, 512))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    if check {
        return match gateway::prepare(cfg) {
            Ok(_) => {
                println!("auks-gateway: configuration {} is valid", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e.to_string()),
        };
    }
    match rt.block_on(gateway::run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}

fn usage_error(m: &str) -> ExitCode {
    eprintln!("auks-gateway: {m}\n{USAGE}");
    ExitCode::from(1)
}

fn fail(m: &str) -> ExitCode {
    gateway::event(&format!("cannot start: {m}"));
    ExitCode::from(2)
}
