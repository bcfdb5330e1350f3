//! Kasper's word-count example on klamm: reads lines from `words`, counts
//! each word per partition in memory, and writes "<word> has been seen N
//! times" to `word-counts` (N before this occurrence, as Kasper's example
//! says it). Stops on Ctrl-C.
//!
//! ```sh
//! KLAMM_BROKERS=127.0.0.1:9092 cargo run -p klamm-kasper --example word_count
//! ```

use std::collections::HashMap;

use klamm::consumer::ConsumerRecord;
use klamm::producer::ProducerRecord;
use klamm_kasper::{BoxError, Config, Processor, Sender, TopicProcessor};

struct WordCount {
    partition: i32,
    counts: HashMap<String, u64>,
}

impl Processor for WordCount {
    async fn process(
        &mut self,
        batch: &[ConsumerRecord],
        out: &mut Sender<'_>,
    ) -> Result<(), BoxError> {
        for record in batch {
            let line =
                String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned();
            for word in line.split_whitespace() {
                let seen = self.counts.entry(word.to_string()).or_default();
                let text = format!("{word} has been seen {seen} times");
                *seen += 1;
                out.send(
                    ProducerRecord::new("word-counts", text)
                        .with_key(word.to_string())
                        .with_partition(self.partition),
                );
            }
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let brokers = std::env::var("KLAMM_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let client = klamm::Client::connect(klamm::Config::from_properties([(
        "bootstrap.servers",
        brokers.as_str(),
    )])?)
    .await?;
    let config = Config::new("word-count", ["words"], [0]);
    let processor = TopicProcessor::new(client, config, |partition| WordCount {
        partition,
        counts: HashMap::new(),
    })
    .await?;
    let handle = processor.handle();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        handle.close();
    });
    processor.run().await?;
    Ok(())
}
