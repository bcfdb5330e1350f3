//! goka's click-count example on klamm: an emitter writes a click for a
//! random user of `user-0`..`user-9` every 100 ms to `user-click` (10
//! partitions, created when missing); a processor counts clicks per user
//! in its group table `mini-group-table` (stored with redb under the
//! system temp directory); a view over that table prints the counts
//! every second. Stops after 5 s, or on Ctrl-C.
//!
//! ```sh
//! KLAMM_BROKERS=127.0.0.1:9092 cargo run -p klamm-goka --example clicks
//! ```

use std::time::Duration;

use klamm::admin::{Admin, NewTopic};
use klamm_goka::{
    Emitter, GroupGraph, Int64Codec, MemoryBuilder, Processor, ProcessorOptions, RedbBuilder,
    StringCodec, View,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let brokers = std::env::var("KLAMM_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let client = klamm::Client::connect(klamm::Config::from_properties([
        ("bootstrap.servers", brokers.as_str()),
        ("auto.offset.reset", "earliest"),
    ])?)
    .await?;
    let topic = "user-click";
    let created = Admin::new(client.clone())
        .create_topics(&[NewTopic::new(topic, 10, 1)])
        .await;
    println!("user-click: {:?}", created.get(topic).map(|r| r.is_ok()));

    let graph = GroupGraph::persist("mini-group", Int64Codec).input(
        topic,
        StringCodec,
        |ctx, _click: String| {
            let clicks = ctx.value()?.unwrap_or(0) + 1;
            ctx.set_value(&clicks)?;
            Ok(())
        },
    );
    let storage = RedbBuilder::new(std::env::temp_dir().join("klamm-goka-clicks"));
    let processor = Processor::new(client.clone(), graph, ProcessorOptions::new(storage)).await?;
    let handle = processor.handle();
    let running = tokio::spawn(processor.run());

    let emitter = Emitter::new(client.clone(), topic, StringCodec).await?;
    let view = View::start(
        client.clone(),
        "mini-group-table",
        Int64Codec,
        MemoryBuilder::new(),
    )
    .await?;
    view.wait_running().await?;

    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        if tokio::time::Instant::now() > deadline {
            break;
        }
        n += 1;
        // A cheap spread of users without a random-number crate.
        let user = format!("user-{}", (n * 7 + n / 3) % 10);
        emitter.emit(&user, &format!("click {n}")).await?;
        if n.is_multiple_of(10) {
            println!("{:?}", view.iter()?);
        }
    }
    emitter.finish().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!("final: {:?}", view.iter()?);
    println!("stats: {:?}", handle.stats());
    view.close().await;
    handle.stop();
    running.await??;
    client.close().await;
    Ok(())
}
