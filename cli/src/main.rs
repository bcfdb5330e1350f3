//! `klamm`: a Kafka command-line tool on klamm's public API — kcat's
//! produce, consume, metadata and offset queries; the Kafka shell tools'
//! topics, groups, configs and ACLs (with a declarative ACL table); and a
//! decoder that prints any Kafka frame with every field named.
//!
//! Exit status: 0 when everything asked for succeeded; 1 when an
//! operation or one of its items failed (a broker error, a topic that
//! exists); 2 for bad usage or configuration; 3 when the cluster could
//! not be reached or did not answer in time; 4 when authentication
//! failed. A reader that stops reading (`klamm topics list | head`) ends
//! it quietly with 0; a stdout that fails otherwise (a full disk), with 1.

mod acls;
mod cluster;
mod configs;
mod consume;
mod decode;
mod groups;
mod out;
mod produce;
mod topics;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use klamm::admin::Admin;
use klamm::{Client, Config, Error, ErrorKind};

/// A Kafka command-line tool on the klamm client.
#[derive(Debug, Parser)]
#[command(
    name = "klamm",
    version,
    about = "A Kafka command-line tool: produce, consume, metadata, offsets, topics, groups, configs, ACLs, and a wire decoder",
    after_help = "kcat's mode flags work too: `klamm -P` (produce), `-C` (consume), `-L` (metadata), `-Q` (offsets).\n\
                  Exit status: 0 success, 1 an operation or item failed, 2 bad usage or configuration,\n\
                  3 the cluster could not be reached or timed out, 4 authentication failed."
)]
struct Cli {
    #[command(flatten)]
    conn: Connect,
    /// Print JSON (one document, or one line per record) instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// How to reach the cluster (every command that talks to one).
#[derive(Debug, Args)]
struct Connect {
    /// Bootstrap brokers, host:port[,host:port...].
    #[arg(short = 'b', long = "brokers", global = true, env = "KLAMM_BROKERS")]
    brokers: Option<String>,
    /// A client property with its Java name (security.protocol,
    /// sasl.mechanism, sasl.username, ssl.ca.location, compression.type, …);
    /// repeatable.
    #[arg(short = 'X', value_name = "KEY=VALUE", global = true)]
    properties: Vec<String>,
    /// A properties file with Java names (read first; -X and -b override it).
    #[arg(short = 'F', long = "config-file", value_name = "FILE", global = true)]
    config_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Produce records from stdin or files, one per line (kcat -P).
    Produce(produce::ProduceArgs),
    /// Consume records and print them (kcat -C), or as a group member (-G).
    Consume(consume::ConsumeArgs),
    /// Show brokers, topics and partitions (kcat -L).
    Metadata(cluster::MetadataArgs),
    /// Look up offsets by time, or the earliest and latest (kcat -Q).
    Offsets(cluster::OffsetsArgs),
    /// List, create, describe, grow and delete topics.
    #[command(subcommand)]
    Topics(topics::TopicsCommand),
    /// List and describe consumer groups (members, lag), reset and delete
    /// offsets, delete groups.
    #[command(subcommand)]
    Groups(groups::GroupsCommand),
    /// Describe and alter configs of topics, brokers, groups.
    #[command(subcommand)]
    Configs(configs::ConfigsCommand),
    /// List, create and delete ACLs, or apply a declarative ACL table.
    #[command(subcommand)]
    Acls(acls::AclsCommand),
    /// Decode a Kafka frame (a request, or a response of a given API and
    /// version) and print it as JSON with every field named.
    Decode(decode::DecodeArgs),
}

/// kcat's mode flags as subcommands: `klamm -C -b … -t …`.
fn kcat_modes(mut args: Vec<String>) -> Vec<String> {
    let mode = args
        .iter()
        .skip(1)
        .position(|a| matches!(a.as_str(), "-P" | "-C" | "-L" | "-Q"));
    if let Some(i) = mode {
        let sub = match args[i + 1].as_str() {
            "-P" => "produce",
            "-C" => "consume",
            "-L" => "metadata",
            _ => "offsets",
        };
        args.remove(i + 1);
        args.insert(1, sub.to_string());
    }
    args
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(kcat_modes(std::env::args().collect()));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("klamm: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::SomeFailed) => ExitCode::from(1),
        Err(e) => {
            eprintln!("klamm: {e}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// How a command ended when it did not fail as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for was done.
    Done,
    /// Some items failed (each reported where it was printed).
    SomeFailed,
}

impl Outcome {
    /// `SomeFailed` when any of `oks` is false.
    pub fn of(all_ok: bool) -> Outcome {
        if all_ok {
            Outcome::Done
        } else {
            Outcome::SomeFailed
        }
    }
}

/// The exit status for an error that ended the command.
fn exit_code(e: &Error) -> u8 {
    match e.kind() {
        ErrorKind::Config => 2,
        ErrorKind::Network | ErrorKind::Timeout => 3,
        ErrorKind::Auth => 4,
        _ => 1,
    }
}

async fn run(cli: Cli) -> klamm::Result<Outcome> {
    let json = cli.json;
    match cli.command {
        Command::Decode(args) => decode::run(args),
        command => {
            let extra = match &command {
                Command::Produce(a) => a.properties(),
                Command::Consume(a) => a.properties(),
                _ => Vec::new(),
            };
            let config = config(&cli.conn, extra)?;
            let client = Client::connect(config).await?;
            let outcome = match command {
                Command::Produce(a) => produce::run(&client, a).await,
                Command::Consume(a) => consume::run(&client, a, json).await,
                Command::Metadata(a) => {
                    cluster::metadata(&Admin::new(client.clone()), a, json).await
                }
                Command::Offsets(a) => cluster::offsets(&Admin::new(client.clone()), a, json).await,
                Command::Topics(c) => topics::run(&Admin::new(client.clone()), c, json).await,
                Command::Groups(c) => groups::run(&Admin::new(client.clone()), c, json).await,
                Command::Configs(c) => configs::run(&Admin::new(client.clone()), c, json).await,
                Command::Acls(c) => acls::run(&Admin::new(client.clone()), c, json).await,
                Command::Decode(_) => unreachable!("handled above"),
            };
            client.close().await;
            outcome
        }
    }
}

/// The client configuration: the properties file, then each -X, then what
/// the command's own flags set (-z, -G, …), then -b.
fn config(conn: &Connect, extra: Vec<(String, String)>) -> klamm::Result<Config> {
    let mut props: Vec<(String, String)> = Vec::new();
    if let Some(path) = &conn.config_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::config(path.display().to_string(), format!("cannot read: {e}")))?;
        props.extend(Config::parse_properties(&text)?);
    }
    for p in &conn.properties {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| Error::config(p.clone(), "-X takes KEY=VALUE"))?;
        props.push((k.trim().to_string(), v.trim().to_string()));
    }
    props.extend(extra);
    match &conn.brokers {
        Some(b) => props.push(("bootstrap.servers".into(), b.clone())),
        None if !props.iter().any(|(k, _)| k == "bootstrap.servers") => {
            return Err(Error::config(
                "bootstrap.servers",
                "no brokers: give -b host:port (or KLAMM_BROKERS, or bootstrap.servers in -F/-X)",
            ));
        }
        None => {}
    }
    if !props.iter().any(|(k, _)| k == "client.id") {
        props.push(("client.id".into(), "klamm-cli".into()));
    }
    let config = Config::from_properties(props)?;
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kcat_mode_flags_become_subcommands() {
        let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(
            kcat_modes(args("klamm -b x:1 -C -t t")),
            args("klamm consume -b x:1 -t t")
        );
        assert_eq!(
            kcat_modes(args("klamm -L -b x:1")),
            args("klamm metadata -b x:1")
        );
        assert_eq!(
            kcat_modes(args("klamm topics list")),
            args("klamm topics list")
        );
    }

    #[test]
    fn config_needs_brokers_and_names_bad_properties() {
        let none = Connect {
            brokers: None,
            properties: vec![],
            config_file: None,
        };
        assert_eq!(config(&none, vec![]).unwrap_err().kind(), ErrorKind::Config);
        let bad = Connect {
            brokers: Some("a:1".into()),
            properties: vec!["no.such.property=1".into()],
            config_file: None,
        };
        let e = config(&bad, vec![]).unwrap_err();
        assert_eq!(exit_code(&e), 2);
        assert!(e.to_string().contains("no.such.property"), "{e}");
        let ok = Connect {
            brokers: Some("a:1".into()),
            properties: vec!["linger.ms=5".into()],
            config_file: None,
        };
        let c = config(&ok, vec![]).unwrap();
        assert_eq!(c.net.bootstrap_servers, vec!["a:1".to_string()]);
        assert_eq!(c.net.client_id, "klamm-cli");
    }

    #[test]
    fn every_command_has_help() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
