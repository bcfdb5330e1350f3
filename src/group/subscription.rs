//! What a group consumer subscribes to, kept current: a list of topics,
//! or every topic whose whole name matches a pattern (Java's
//! `subscribe(Pattern)`), and the metadata watch that turns new matching
//! topics and new partitions into a rebalance.
//!
//! The member engines only ever see a list of topics. A watcher task
//! refreshes the metadata every `metadata.max.age.ms` (the whole cluster
//! for a pattern, the known topics for a list); a pattern's matches are
//! resolved again and a changed list goes to the member as a new
//! subscription, while a changed partition count is seen by the member in
//! the refreshed metadata.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use super::member::Command;
use crate::client::Client;
use crate::error::{Error, Result};

/// A topic name pattern: a topic is subscribed when the pattern matches
/// its whole name (as Java's `Pattern.matcher(topic).matches()`). Internal
/// topics (`__consumer_offsets`, `__transaction_state`) never match.
///
/// ```
/// use klamm::group::TopicPattern;
///
/// let p = TopicPattern::new("orders-.*").unwrap();
/// assert!(p.matches("orders-eu"));
/// assert!(!p.matches("old-orders-eu")); // the whole name must match
/// assert!(TopicPattern::new("orders-(").is_err());
/// ```
#[derive(Debug, Clone)]
pub struct TopicPattern {
    source: String,
    regex: regex_lite::Regex,
}

impl TopicPattern {
    /// Compiles `pattern` (the syntax of the `regex-lite` crate: Perl-like
    /// classes, groups, alternation and repetition). An invalid pattern is
    /// a config error naming it.
    pub fn new(pattern: &str) -> Result<TopicPattern> {
        let regex = regex_lite::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
            Error::config(
                "subscription pattern",
                format!("'{pattern}' is not a valid pattern: {e}"),
            )
        })?;
        Ok(TopicPattern {
            source: pattern.to_string(),
            regex,
        })
    }

    /// Whether `topic` is subscribed by this pattern.
    pub fn matches(&self, topic: &str) -> bool {
        self.regex.is_match(topic)
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// The current subscription of one group consumer.
#[derive(Debug, Clone)]
pub(crate) enum Topics {
    List(Vec<String>),
    Pattern(TopicPattern),
}

/// Sorted, without duplicates.
pub(crate) fn normalized<S: Into<String>>(topics: impl IntoIterator<Item = S>) -> Vec<String> {
    let mut topics: Vec<String> = topics.into_iter().map(Into::into).collect();
    topics.sort();
    topics.dedup();
    topics
}

/// The topics of the client's metadata `pattern` matches, sorted.
pub(crate) fn matching(client: &Client, pattern: &TopicPattern) -> Vec<String> {
    let meta = client.metadata();
    normalized(
        meta.topics
            .values()
            .filter(|t| !t.is_internal && t.error.is_ok() && pattern.matches(&t.name))
            .map(|t| t.name.clone()),
    )
}

/// The shared subscription and the watcher keeping the member's topic
/// list in line with it.
pub(crate) struct Watch {
    current: Arc<Mutex<Topics>>,
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Watch {
    /// Starts watching for `member`, whose subscription is now `topics`
    /// (for a pattern, its matches `resolved` at start).
    pub(crate) fn start(
        client: Client,
        member: &mpsc::UnboundedSender<Command>,
        topics: Topics,
        resolved: Vec<String>,
    ) -> Watch {
        let current = Arc::new(Mutex::new(topics));
        let wake = Arc::new(Notify::new());
        let every = client
            .config()
            .metadata
            .max_age
            .max(Duration::from_millis(100));
        let task = tokio::spawn(watch(
            client,
            member.downgrade(),
            current.clone(),
            wake.clone(),
            every,
            resolved,
        ));
        Watch {
            current,
            wake,
            task,
        }
    }

    /// Replaces the subscription; the watcher resolves it at once.
    pub(crate) fn set(&self, topics: Topics) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = topics;
        self.wake.notify_one();
    }
}

async fn watch(
    client: Client,
    member: mpsc::WeakUnboundedSender<Command>,
    current: Arc<Mutex<Topics>>,
    wake: Arc<Notify>,
    every: Duration,
    mut sent: Vec<String>,
) {
    loop {
        tokio::select! {
            biased;
            _ = tokio::time::sleep(every) => {}
            _ = wake.notified() => {}
        }
        // The member is gone once its consumer is: so is the watch.
        let Some(member) = member.upgrade() else {
            return;
        };
        let topics = current.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let list = match &topics {
            Topics::List(list) => {
                if let Err(e) = client.refresh_metadata(None).await {
                    tracing::debug!(error = %e, "group subscription: metadata refresh failed");
                }
                list.clone()
            }
            Topics::Pattern(p) => match client.refresh_cluster_metadata().await {
                Ok(()) => matching(&client, p),
                Err(e) => {
                    // Keep the last matches rather than dropping topics
                    // because the cluster could not be asked.
                    tracing::debug!(error = %e, pattern = p.as_str(),
                        "group subscription: metadata refresh failed");
                    continue;
                }
            },
        };
        if list != sent {
            tracing::debug!(topics = ?list, "group subscription changed");
            if member.send(Command::Subscribe(list.clone())).is_err() {
                return;
            }
            sent = list;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_matches_whole_names_only() {
        let p = TopicPattern::new("a|b.c").unwrap();
        assert!(p.matches("a"));
        assert!(p.matches("bxc"));
        assert!(!p.matches("ab"), "alternation is anchored as a whole");
        assert!(!p.matches("bxcd"));
        assert_eq!(p.as_str(), "a|b.c");
    }

    #[test]
    fn an_invalid_pattern_is_a_config_error_naming_it() {
        let e = TopicPattern::new("[unclosed").unwrap_err();
        assert!(matches!(e, Error::Config { .. }), "{e:?}");
        assert!(e.to_string().contains("[unclosed"), "{e}");
    }
}
