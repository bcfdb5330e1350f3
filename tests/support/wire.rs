//! A minimal blocking Kafka connection for tests and examples: one request
//! at a time over `std::net::TcpStream`, built only from klamm's protocol
//! layer. (klamm's own asynchronous connection belongs to the network
//! layer; this exists so the protocol layer can be checked against a real
//! broker on its own.)

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use klamm::protocol::frame::{DEFAULT_MAX_FRAME_SIZE, decode_response_to, encode_request};
use klamm::protocol::messages::{ApiKey, ApiVersionsRequest, Request};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One broker connection with the versions the broker advertised.
pub struct Wire {
    stream: TcpStream,
    next_correlation_id: i32,
    /// (min, max) per API key, from the broker's ApiVersions response.
    pub broker_versions: Vec<Option<(i16, i16)>>,
}

impl Wire {
    /// Connects and asks the broker which versions it supports (ApiVersions v3).
    pub fn connect(addr: &str) -> Result<Wire, BoxError> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        stream.set_write_timeout(Some(Duration::from_secs(20)))?;
        stream.set_nodelay(true)?;
        let mut wire = Wire {
            stream,
            next_correlation_id: 1,
            broker_versions: Vec::new(),
        };
        let req = ApiVersionsRequest {
            client_software_name: "klamm-tests".into(),
            client_software_version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        };
        let resp = wire.call(&req, 3)?;
        if resp.error_code != 0 {
            return Err(format!("ApiVersions failed with error code {}", resp.error_code).into());
        }
        for k in &resp.api_keys {
            let i = usize::try_from(k.api_key).map_err(|_| "negative api key")?;
            if wire.broker_versions.len() <= i {
                wire.broker_versions.resize(i + 1, None);
            }
            wire.broker_versions[i] = Some((k.min_version, k.max_version));
        }
        Ok(wire)
    }

    /// The highest version of `key` both klamm and the broker support.
    pub fn version(&self, key: ApiKey) -> Option<i16> {
        let (_, ours) = key.versions();
        let (min, theirs) = (*self.broker_versions.get(key.code() as usize)?)?;
        let v = ours.min(theirs);
        (v >= min).then_some(v)
    }

    /// Sends `req` at `version` and waits for its response.
    pub fn call<R: Request>(&mut self, req: &R, version: i16) -> Result<R::Response, BoxError> {
        let id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let mut out = BytesMut::new();
        encode_request(&mut out, id, Some("klamm-tests"), req, version)?;
        self.stream.write_all(&out)?;
        let frame = self.read_frame()?;
        let (header, body) = decode_response_to::<R>(frame, version)?;
        if header.correlation_id != id {
            return Err(format!(
                "correlation id {} answered request {id}",
                header.correlation_id
            )
            .into());
        }
        Ok(body)
    }

    fn read_frame(&mut self) -> Result<Bytes, BoxError> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size)?;
        let size = i32::from_be_bytes(size);
        let size = usize::try_from(size).map_err(|_| format!("negative frame size {size}"))?;
        if size > DEFAULT_MAX_FRAME_SIZE {
            return Err(format!("frame of {size} bytes is over the limit").into());
        }
        let mut frame = vec![0u8; size];
        self.stream.read_exact(&mut frame)?;
        Ok(Bytes::from(frame))
    }
}
