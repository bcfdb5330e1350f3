//! What a topic processor reads and how it batches.

use std::time::Duration;

use crate::error::Error;

/// Where a partition starts when its group has no committed offset
/// (Kasper took Sarama's `Consumer.Offsets.Initial`, newest by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Initial {
    /// The oldest record still in the log.
    Oldest,
    /// The next record written after the start.
    #[default]
    Newest,
}

/// A topic processor's configuration (Kasper's `Config`).
///
/// ```
/// use klamm_kasper::Config;
/// use std::time::Duration;
///
/// let mut config = Config::new("joiner", ["characters", "fictions"], [0, 1]);
/// config.batch_size = 100;
/// config.batch_wait = Duration::from_millis(500);
/// assert_eq!(config.group(), "kasper-topic-processor-joiner");
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// The processor's name: instances with the same name share the
    /// offsets of the group [`Config::group`].
    pub name: String,
    /// The topics read; all must have the same number of partitions.
    pub input_topics: Vec<String>,
    /// The partition numbers this instance processes, on every input
    /// topic. Instances sharing a name must not overlap.
    pub partitions: Vec<i32>,
    /// The most records in one batch (Kasper's `BatchSize`, 1000).
    pub batch_size: usize,
    /// The period of the flush tick: every tick, each partition's
    /// non-empty batch is processed (Kasper's `BatchWaitDuration`, 5 s).
    pub batch_wait: Duration,
    /// Where a partition with no committed offset starts.
    pub initial: Initial,
    /// Take the partitions from the consumer group [`Config::group`]
    /// instead of `partitions` (which must then be empty): instances join
    /// the group and split the partitions between them, and a partition
    /// moves when an instance comes or goes. The range assignor gives each
    /// member the same partition numbers of every input topic, so batches
    /// still gather one partition number across the topics. Not in
    /// Kasper, whose partitions are only configured.
    pub from_group: bool,
}

impl Config {
    /// A configuration with Kasper's defaults: batches of at most 1,000
    /// records, flushed at least every 5 seconds, starting at the newest
    /// record where nothing is committed.
    pub fn new<T: Into<String>>(
        name: impl Into<String>,
        input_topics: impl IntoIterator<Item = T>,
        partitions: impl IntoIterator<Item = i32>,
    ) -> Self {
        Config {
            name: name.into(),
            input_topics: input_topics.into_iter().map(Into::into).collect(),
            partitions: partitions.into_iter().collect(),
            batch_size: 1000,
            batch_wait: Duration::from_secs(5),
            initial: Initial::Newest,
            from_group: false,
        }
    }

    /// A configuration whose partitions come from the consumer group (see
    /// [`Config::from_group`](Config#structfield.from_group)), otherwise
    /// as [`Config::new`].
    ///
    /// ```
    /// use klamm_kasper::Config;
    /// let config = Config::in_group("joiner", ["characters", "fictions"]);
    /// assert!(config.from_group && config.partitions.is_empty());
    /// ```
    pub fn in_group<T: Into<String>>(
        name: impl Into<String>,
        input_topics: impl IntoIterator<Item = T>,
    ) -> Self {
        Config {
            from_group: true,
            ..Config::new(name, input_topics, [])
        }
    }

    /// The consumer group whose offsets the processor commits:
    /// `kasper-topic-processor-<name>`, as Kasper names it. With
    /// configured partitions the group is only a place for offsets (no
    /// member joins it); with [`Config::in_group`] the instances join it.
    pub fn group(&self) -> String {
        format!("kasper-topic-processor-{}", self.name)
    }

    /// Checks what can be checked without a broker.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let bad = |field, reason: &str| {
            Err(Error::Config {
                field,
                reason: reason.to_string(),
            })
        };
        if self.input_topics.is_empty() {
            return bad("input_topics", "no input topic");
        }
        if self.input_topics.iter().any(String::is_empty) {
            return bad("input_topics", "an empty topic name");
        }
        let mut topics = self.input_topics.clone();
        topics.sort();
        topics.dedup();
        if topics.len() != self.input_topics.len() {
            return bad("input_topics", "a topic is listed twice");
        }
        if self.from_group {
            if !self.partitions.is_empty() {
                return bad("partitions", "set, but the partitions come from the group");
            }
        } else if self.partitions.is_empty() {
            return bad("partitions", "no partition");
        }
        if self.partitions.iter().any(|&p| p < 0) {
            return bad("partitions", "a negative partition number");
        }
        let mut parts = self.partitions.clone();
        parts.sort_unstable();
        parts.dedup();
        if parts.len() != self.partitions.len() {
            return bad("partitions", "a partition is listed twice");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if self.batch_wait.is_zero() {
            return bad("batch_wait", "must be longer than zero");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kaspers() {
        let c = Config::new("hari-seldon", ["a"], [0]);
        assert_eq!(c.group(), "kasper-topic-processor-hari-seldon");
        assert_eq!(c.batch_size, 1000);
        assert_eq!(c.batch_wait, Duration::from_secs(5));
        assert_eq!(c.initial, Initial::Newest);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn configurations_that_cannot_work_are_refused() {
        let field = |c: Config| match c.validate() {
            Err(Error::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        };
        assert_eq!(
            field(Config::new("n", Vec::<String>::new(), [0])),
            "input_topics"
        );
        assert_eq!(field(Config::new("n", ["a", "a"], [0])), "input_topics");
        assert_eq!(field(Config::new("n", [""], [0])), "input_topics");
        assert_eq!(field(Config::new("n", ["a"], [])), "partitions");
        assert_eq!(field(Config::new("n", ["a"], [1, 1])), "partitions");
        assert_eq!(field(Config::new("n", ["a"], [-1])), "partitions");
        let mut c = Config::in_group("n", ["a"]);
        assert!(c.validate().is_ok());
        c.partitions = vec![0];
        assert_eq!(field(c), "partitions");
        let mut c = Config::new("n", ["a"], [0]);
        c.batch_size = 0;
        assert_eq!(field(c), "batch_size");
        let mut c = Config::new("n", ["a"], [0]);
        c.batch_wait = Duration::ZERO;
        assert_eq!(field(c), "batch_wait");
    }
}
