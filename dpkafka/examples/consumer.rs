//! dp-kafka's consumer example on klamm: a managed producer writes the
//! lines given as arguments (or three of its own) to `my-topic`; a
//! managed consumer with three workers prints them with the request id
//! the producer attached; Ctrl-C (or having printed them all) stops it
//! and closes both within a deadline, as dp-kafka's examples do.
//!
//! ```sh
//! KLAMM_BROKERS=127.0.0.1:9092 cargo run -p klamm-dpkafka --example consumer -- hello world
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use klamm_dpkafka::{
    ConsumerGroup, ConsumerGroupConfig, Handler, HandlerError, Message, Producer, ProducerConfig,
    State,
};
use tokio::sync::Notify;

struct Printer {
    printed: AtomicUsize,
    expected: usize,
    all_done: Arc<Notify>,
}

impl Handler for Printer {
    async fn handle(&self, worker: usize, m: &Message) -> Result<(), HandlerError> {
        let text = std::str::from_utf8(m.data())?;
        println!(
            "worker {worker}: {text:?} (partition {}, offset {}, request-id {})",
            m.partition(),
            m.offset(),
            m.request_id().unwrap_or("-")
        );
        if self.printed.fetch_add(1, Ordering::AcqRel) + 1 >= self.expected {
            self.all_done.notify_one();
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let brokers: Vec<String> = std::env::var("KLAMM_BROKERS")
        .unwrap_or_else(|_| "127.0.0.1:9092".into())
        .split(',')
        .map(str::to_string)
        .collect();
    let mut lines: Vec<String> = std::env::args().skip(1).collect();
    if lines.is_empty() {
        lines = ["one", "two", "three"].map(String::from).to_vec();
    }
    let topic = "my-topic";

    let mut pconfig = ProducerConfig::new(brokers.clone(), topic);
    pconfig.min_brokers_healthy = 1;
    let producer = Producer::new(pconfig).await?;
    producer.wait_initialised().await?;
    for line in &lines {
        producer.send_bytes(line.clone()).await?.await?;
    }
    println!("producer: {}", producer.check_health().await.message);

    let mut config = ConsumerGroupConfig::new(brokers, topic, "dp-example");
    config.num_workers = 3;
    let consumer = ConsumerGroup::new(config).await?;
    let all_done = Arc::new(Notify::new());
    consumer.register_handler(Printer {
        printed: AtomicUsize::new(0),
        expected: lines.len(),
        all_done: all_done.clone(),
    })?;
    consumer.start().await?;
    consumer.wait_for(State::Consuming).await;
    println!("consumer: {}", consumer.check_health().await.message);

    tokio::select! {
        _ = all_done.notified() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    consumer.stop_and_wait().await?;
    consumer.close(Duration::from_secs(10)).await?;
    producer.close(Duration::from_secs(10)).await?;
    Ok(())
}
