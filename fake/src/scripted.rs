//! A scripted single broker for unit tests, in the style of Sarama's
//! MockBroker: the test says which requests come, in which order, and what
//! each one is answered; anything else is recorded as unexpected and its
//! connection closed.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use klamm::protocol::codec::Message;
use klamm::protocol::frame::{encode_response, split_frame};
use klamm::protocol::messages::api_versions_response::ApiVersion;
use klamm::protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use klamm::protocol::messages::{
    ApiKey, ApiVersionsResponse, MetadataResponse, Request, RequestHeader,
};
use klamm::protocol::primitives::Uuid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Turns a request body (correlation id, version, body) into a response
/// frame, once or every time.
type Once = Box<dyn FnOnce(i32, i16, Bytes) -> Result<BytesMut, String> + Send>;
type Many = Box<dyn FnMut(i32, i16, Bytes) -> Result<BytesMut, String> + Send>;

struct Script {
    /// Answers for the next requests, in order.
    expected: VecDeque<(ApiKey, Once)>,
    /// Answers for every request of an API (after `expected`).
    always: BTreeMap<ApiKey, Many>,
    /// What came that nothing answered, or could not be read.
    unexpected: Vec<String>,
    /// Every request, in order: API and version.
    seen: Vec<(ApiKey, i16)>,
}

/// A single broker on loopback that answers as scripted. Its node id is 1.
///
/// ```
/// use klamm::protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
/// use klamm::{Client, Config};
/// use klamm_fake::ScriptedBroker;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let broker = ScriptedBroker::start().await?;
/// let metadata = broker.metadata_for(&[("events", 1)]);
/// broker.always(move |_: klamm::protocol::messages::MetadataRequest| metadata.clone());
///
/// let mut config = Config::default();
/// config.net.bootstrap_servers = vec![broker.addr()];
/// let client = Client::connect(config).await?;
/// assert_eq!(client.metadata().brokers.len(), 1);
/// client.close().await;
/// assert!(broker.unexpected().is_empty());
/// # let _ = (FindCoordinatorRequest::default(), FindCoordinatorResponse::default());
/// # Ok(())
/// # }
/// ```
pub struct ScriptedBroker {
    port: u16,
    script: Arc<Mutex<Script>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for ScriptedBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedBroker")
            .field("port", &self.port)
            .finish()
    }
}

/// Decodes an `R` at `version`, answers it with `f`, encodes the answer.
fn respond<R: Request>(
    f: impl FnOnce(R) -> R::Response,
    id: i32,
    version: i16,
    mut body: Bytes,
) -> Result<BytesMut, String> {
    let req = R::decode(&mut body, version).map_err(|e| e.to_string())?;
    let resp = f(req);
    let mut out = BytesMut::new();
    encode_response(&mut out, R::API_KEY, id, &resp, version).map_err(|e| e.to_string())?;
    Ok(out)
}

impl ScriptedBroker {
    /// Starts the broker on a free port of 127.0.0.1. Until scripted it
    /// answers only ApiVersions (with every version klamm's codec has).
    pub async fn start() -> std::io::Result<ScriptedBroker> {
        let listener = crate::server::bind(0)?;
        let port = listener.local_addr()?.port();
        let script = Arc::new(Mutex::new(Script {
            expected: VecDeque::new(),
            always: BTreeMap::new(),
            unexpected: Vec::new(),
            seen: Vec::new(),
        }));
        let s = Arc::clone(&script);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(serve(Arc::clone(&s), stream));
            }
        });
        Ok(ScriptedBroker { port, script, task })
    }

    fn lock(&self) -> MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The next request not answered by [`ScriptedBroker::always`] must be
    /// an `R`; `f` gives its answer.
    pub fn expect<R, F>(&self, f: F)
    where
        R: Request + 'static,
        F: FnOnce(R) -> R::Response + Send + 'static,
    {
        let answer: Once = Box::new(move |id, v, body| respond::<R>(f, id, v, body));
        self.lock().expected.push_back((R::API_KEY, answer));
    }

    /// Every request of type `R` that no [`ScriptedBroker::expect`] is
    /// waiting for gets `f`'s answer.
    pub fn always<R, F>(&self, mut f: F)
    where
        R: Request + 'static,
        F: FnMut(R) -> R::Response + Send + 'static,
    {
        let answer: Many = Box::new(move |id, v, body| respond::<R>(&mut f, id, v, body));
        self.lock().always.insert(R::API_KEY, answer);
    }

    /// The requests that came unscripted (or could not be read), described.
    pub fn unexpected(&self) -> Vec<String> {
        self.lock().unexpected.clone()
    }

    /// Every request received, in order: its API and version.
    pub fn seen(&self) -> Vec<(ApiKey, i16)> {
        self.lock().seen.clone()
    }

    /// Whether every expected request came and nothing unexpected did;
    /// the error says what is wrong.
    pub fn verify(&self) -> Result<(), String> {
        let s = self.lock();
        let mut problems: Vec<String> = s.unexpected.clone();
        problems.extend(
            s.expected
                .iter()
                .map(|(k, _)| format!("{} was expected and never came", k.name())),
        );
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// A Metadata answer naming this broker (node 1) as the only broker,
    /// the controller, and the leader of every partition of `topics`
    /// (name, partition count).
    pub fn metadata_for(&self, topics: &[(&str, i32)]) -> MetadataResponse {
        MetadataResponse {
            brokers: vec![MetadataResponseBroker {
                node_id: 1,
                host: "127.0.0.1".into(),
                port: i32::from(self.port),
                ..Default::default()
            }],
            cluster_id: Some("klamm-scripted".into()),
            controller_id: 1,
            topics: topics
                .iter()
                .enumerate()
                .map(|(i, (name, n))| MetadataResponseTopic {
                    name: Some((*name).to_string()),
                    topic_id: Uuid::from_u128(0x5c21_u128 << 64 | (i as u128 + 1)),
                    partitions: (0..*n)
                        .map(|p| MetadataResponsePartition {
                            partition_index: p,
                            leader_id: 1,
                            replica_nodes: [1].into(),
                            isr_nodes: [1].into(),
                            ..Default::default()
                        })
                        .collect(),
                    topic_authorized_operations: i32::MIN,
                    ..Default::default()
                })
                .collect(),
            cluster_authorized_operations: i32::MIN,
            ..Default::default()
        }
    }
}

impl Drop for ScriptedBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(script: Arc<Mutex<Script>>, mut stream: TcpStream) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    loop {
        let frame = match split_frame(&mut buf, 100 * 1024 * 1024) {
            Ok(Some(f)) => f.freeze(),
            Ok(None) => match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            },
            Err(_) => return,
        };
        let reply = answer(&script, frame);
        match reply {
            Some(out) => {
                if stream.write_all(&out).await.is_err() {
                    return;
                }
            }
            None => return,
        }
    }
}

fn answer(script: &Arc<Mutex<Script>>, mut frame: Bytes) -> Option<BytesMut> {
    let mut s = script.lock().unwrap_or_else(|p| p.into_inner());
    let (Some(code), Some(version)) = (
        frame.get(0..2).map(|b| i16::from_be_bytes([b[0], b[1]])),
        frame.get(2..4).map(|b| i16::from_be_bytes([b[0], b[1]])),
    ) else {
        s.unexpected
            .push("a frame too short for a request header".into());
        return None;
    };
    let Some(key) = ApiKey::from_code(code) else {
        s.unexpected.push(format!("unknown API key {code}"));
        return None;
    };
    let header = match RequestHeader::decode(&mut frame, key.request_header_version(version)) {
        Ok(h) => h,
        Err(e) => {
            s.unexpected
                .push(format!("{} v{version}: bad header: {e}", key.name()));
            return None;
        }
    };
    s.seen.push((key, version));
    let id = header.correlation_id;
    let mut result = if s.expected.front().is_some_and(|(k, _)| *k == key) {
        s.expected.pop_front().map(|(_, f)| f(id, version, frame))
    } else {
        s.always.get_mut(&key).map(|f| f(id, version, frame))
    };
    if result.is_none() && key == ApiKey::ApiVersions {
        result = Some(api_versions(id, version));
    }
    match result {
        Some(Ok(out)) => Some(out),
        Some(Err(e)) => {
            s.unexpected
                .push(format!("{} v{version}: could not answer: {e}", key.name()));
            None
        }
        None => {
            let next = s
                .expected
                .front()
                .map_or("nothing".to_string(), |(k, _)| k.name().to_string());
            s.unexpected.push(format!(
                "{} v{version} came unscripted (expected next: {next})",
                key.name()
            ));
            None
        }
    }
}

fn api_versions(id: i32, version: i16) -> Result<BytesMut, String> {
    let resp = ApiVersionsResponse {
        api_keys: ApiKey::ALL
            .iter()
            .map(|k| ApiVersion {
                api_key: k.code(),
                min_version: k.versions().0,
                max_version: k.versions().1,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let mut out = BytesMut::new();
    encode_response(&mut out, ApiKey::ApiVersions, id, &resp, version)
        .map_err(|e| e.to_string())?;
    Ok(out)
}
