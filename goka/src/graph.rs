//! A processor's group graph (goka's `DefineGroup` and its edges).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::codec::{Codec, SharedCodec};
use crate::context::Context;
use crate::error::{BoxError, Error};

/// The table topic of `group`: `<group>-table`.
pub fn group_table(group: &str) -> String {
    format!("{group}-table")
}

/// The loop topic of `group`: `<group>-loop`.
pub fn loop_stream(group: &str) -> String {
    format!("{group}-loop")
}

/// A callback over decoded values, with the value type erased.
pub(crate) type Callback<V> =
    Arc<dyn Fn(&mut Context<'_, V>, &[u8]) -> Result<(), CallbackError> + Send + Sync>;

/// Why a callback did not finish: its own error, or a value its codec
/// could not decode.
#[derive(Debug)]
pub(crate) enum CallbackError {
    Failed(BoxError),
    Decode(Error),
}

/// What a processor does with an input record whose value is null.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NilHandling {
    /// Skip it (commit it without calling back): goka's default.
    #[default]
    Ignore,
    /// Call back with the value decoded from empty bytes.
    Decode,
}

type Encoder<V> = Box<dyn Fn(&V) -> Result<Vec<u8>, BoxError> + Send + Sync>;
type Decoder<V> = Box<dyn Fn(&[u8]) -> Result<V, BoxError> + Send + Sync>;

/// The table value codec of a group graph, or none (stateless).
pub(crate) struct TableEdge<V> {
    pub(crate) encode: Encoder<V>,
    pub(crate) decode: Decoder<V>,
}

/// A processor's group graph (goka's `GroupGraph`): the group, the
/// table value type `V` (use `()` for a stateless group), and its edges.
///
/// ```
/// use klamm_goka::{GroupGraph, Int64Codec, StringCodec};
///
/// // Counts clicks per user in the group table `clicks-table`.
/// let graph = GroupGraph::persist("clicks", Int64Codec)
///     .input("user-clicks", StringCodec, |ctx, _click: String| {
///         let n = ctx.value()?.unwrap_or(0);
///         ctx.set_value(&(n + 1))?;
///         Ok(())
///     });
/// graph.validate().unwrap();
/// assert_eq!(graph.table_topic().as_deref(), Some("clicks-table"));
/// ```
pub struct GroupGraph<V: Send + Sync + 'static> {
    pub(crate) group: String,
    pub(crate) table: Option<TableEdge<V>>,
    pub(crate) inputs: BTreeMap<String, Callback<V>>,
    /// Topics in the order inputs were declared, with the loop's.
    pub(crate) input_order: Vec<String>,
    pub(crate) has_loop: bool,
    pub(crate) loop_codec: Option<SharedCodec>,
    pub(crate) joins: BTreeMap<String, SharedCodec>,
    pub(crate) lookups: BTreeMap<String, SharedCodec>,
    pub(crate) outputs: BTreeMap<String, SharedCodec>,
    pub(crate) nil: NilHandling,
    pub(crate) problems: Vec<String>,
}

impl<V: Send + Sync + 'static> std::fmt::Debug for GroupGraph<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupGraph")
            .field("group", &self.group)
            .field("table", &self.table_topic())
            .field("inputs", &self.input_order)
            .field("joins", &self.joins.keys())
            .field("lookups", &self.lookups.keys())
            .field("outputs", &self.outputs.keys())
            .finish_non_exhaustive()
    }
}

impl GroupGraph<()> {
    /// A stateless group: no table.
    pub fn stateless(group: impl Into<String>) -> GroupGraph<()> {
        GroupGraph::empty(group.into(), None)
    }
}

impl<V: Send + Sync + 'static> GroupGraph<V> {
    /// A group with a table (goka's `Persist`): its values, encoded with
    /// `codec`, live in `<group>-table`.
    pub fn persist<C: Codec<Value = V>>(group: impl Into<String>, codec: C) -> GroupGraph<V> {
        let codec = Arc::new(codec);
        let (e, d) = (codec.clone(), codec);
        GroupGraph::empty(
            group.into(),
            Some(TableEdge {
                encode: Box::new(move |v| e.encode(v)),
                decode: Box::new(move |b| d.decode(b)),
            }),
        )
    }

    fn empty(group: String, table: Option<TableEdge<V>>) -> GroupGraph<V> {
        GroupGraph {
            group,
            table,
            inputs: BTreeMap::new(),
            input_order: Vec::new(),
            has_loop: false,
            loop_codec: None,
            joins: BTreeMap::new(),
            lookups: BTreeMap::new(),
            outputs: BTreeMap::new(),
            nil: NilHandling::Ignore,
            problems: Vec::new(),
        }
    }

    fn add_input(&mut self, topic: String, callback: Callback<V>) {
        if topic.is_empty() {
            self.problems
                .push("an input stream has an empty topic".into());
            return;
        }
        if self.inputs.contains_key(&topic) {
            self.problems
                .push(format!("the input stream {topic} is declared twice"));
            return;
        }
        self.input_order.push(topic.clone());
        self.inputs.insert(topic, callback);
    }

    fn erase<C, F>(codec: C, callback: F) -> Callback<V>
    where
        C: Codec,
        F: Fn(&mut Context<'_, V>, C::Value) -> Result<(), BoxError> + Send + Sync + 'static,
    {
        Arc::new(move |ctx, data| {
            let value = codec
                .decode(data)
                .map_err(|e| CallbackError::Decode(Error::Codec(e)))?;
            callback(ctx, value).map_err(CallbackError::Failed)
        })
    }

    /// An input stream (goka's `Input`): its records, decoded with
    /// `codec`, go to `callback`. Inputs, the loop and join tables must
    /// be co-partitioned.
    pub fn input<C, F>(mut self, topic: impl Into<String>, codec: C, callback: F) -> Self
    where
        C: Codec,
        F: Fn(&mut Context<'_, V>, C::Value) -> Result<(), BoxError> + Send + Sync + 'static,
    {
        self.add_input(topic.into(), Self::erase(codec, callback));
        self
    }

    /// Several input streams with one codec and callback (goka's `Inputs`).
    pub fn inputs<C, F, S>(
        mut self,
        topics: impl IntoIterator<Item = S>,
        codec: C,
        callback: F,
    ) -> Self
    where
        C: Codec + Clone,
        F: Fn(&mut Context<'_, V>, C::Value) -> Result<(), BoxError>
            + Send
            + Sync
            + Clone
            + 'static,
        S: Into<String>,
    {
        for t in topics {
            self.add_input(t.into(), Self::erase(codec.clone(), callback.clone()));
        }
        self
    }

    /// The loop stream `<group>-loop` (goka's `Loop`): what
    /// [`Context::loopback`] writes comes back to `callback`.
    pub fn loopback<C, F>(mut self, codec: C, callback: F) -> Self
    where
        C: Codec + Clone,
        F: Fn(&mut Context<'_, V>, C::Value) -> Result<(), BoxError> + Send + Sync + 'static,
    {
        if self.has_loop {
            self.problems
                .push("more than one loop stream in group graph".into());
            return self;
        }
        self.has_loop = true;
        self.loop_codec = Some(Arc::new(codec.clone()));
        let topic = loop_stream(&self.group);
        self.add_input(topic, Self::erase(codec, callback));
        self
    }

    /// A join table (goka's `Join`): co-partitioned with the inputs,
    /// recovered before they are read and kept current; read with
    /// [`Context::join`].
    pub fn join<C: Codec>(mut self, table: impl Into<String>, codec: C) -> Self {
        self.joins.insert(table.into(), Arc::new(codec));
        self
    }

    /// A lookup table (goka's `Lookup`): any partitioning, all of it held
    /// in a [`View`](crate::View); read with [`Context::lookup`].
    pub fn lookup<C: Codec>(mut self, table: impl Into<String>, codec: C) -> Self {
        self.lookups.insert(table.into(), Arc::new(codec));
        self
    }

    /// An output stream (goka's `Output`): [`Context::emit`] writes only to
    /// declared outputs.
    pub fn output<C: Codec>(mut self, topic: impl Into<String>, codec: C) -> Self {
        self.outputs.insert(topic.into(), Arc::new(codec));
        self
    }

    /// What to do with null input values. Default [`NilHandling::Ignore`].
    pub fn nil_handling(mut self, nil: NilHandling) -> Self {
        self.nil = nil;
        self
    }

    /// The group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// `<group>-table`, when the group has a table.
    pub fn table_topic(&self) -> Option<String> {
        self.table.as_ref().map(|_| group_table(&self.group))
    }

    /// `<group>-loop`, when the group has a loop.
    pub fn loop_topic(&self) -> Option<String> {
        self.has_loop.then(|| loop_stream(&self.group))
    }

    /// The input streams (with the loop), in declaration order.
    pub fn input_topics(&self) -> &[String] {
        &self.input_order
    }

    /// Checks goka's rules: a group name; no empty or repeated input; at
    /// most one loop; at least one input stream besides the loop; no
    /// edge on the group's own loop or table topic; and (beyond goka) an
    /// output that is not also an input.
    pub fn validate(&self) -> Result<(), Error> {
        if self.group.is_empty() {
            return Err(Error::Graph("the group name is empty".into()));
        }
        if let Some(p) = self.problems.first() {
            return Err(Error::Graph(p.clone()));
        }
        let loop_topic = loop_stream(&self.group);
        let table_topic = group_table(&self.group);
        if !self
            .input_order
            .iter()
            .any(|t| *t != loop_topic || !self.has_loop)
        {
            return Err(Error::Graph("no input stream in group graph".into()));
        }
        let declared: BTreeSet<&String> = self
            .input_order
            .iter()
            .filter(|t| !(self.has_loop && **t == loop_topic))
            .chain(self.joins.keys())
            .chain(self.lookups.keys())
            .chain(self.outputs.keys())
            .collect();
        for t in declared {
            if *t == loop_topic {
                return Err(Error::Graph(format!(
                    "{t}: should not directly use loop stream"
                )));
            }
            if *t == table_topic {
                return Err(Error::Graph(format!(
                    "{t}: should not directly use group table"
                )));
            }
        }
        if let Some(t) = self.outputs.keys().find(|t| self.inputs.contains_key(*t)) {
            return Err(Error::Graph(format!("{t} is both an input and an output")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Int64Codec, StringCodec};

    fn noop(_: &mut Context<'_, i64>, _: String) -> Result<(), BoxError> {
        Ok(())
    }

    fn refused(g: GroupGraph<i64>) -> String {
        g.validate().unwrap_err().to_string()
    }

    #[test]
    fn goka_rules() {
        let base = || GroupGraph::persist("g", Int64Codec);
        assert!(base().input("in", StringCodec, noop).validate().is_ok());
        assert_eq!(
            refused(base()),
            "invalid group graph: no input stream in group graph"
        );
        assert_eq!(
            refused(base().loopback(StringCodec, noop)),
            "invalid group graph: no input stream in group graph"
        );
        assert_eq!(
            refused(
                base()
                    .input("in", StringCodec, noop)
                    .loopback(StringCodec, noop)
                    .loopback(StringCodec, noop)
            ),
            "invalid group graph: more than one loop stream in group graph"
        );
        assert_eq!(
            refused(
                base()
                    .input("in", StringCodec, noop)
                    .input("in", StringCodec, noop)
            ),
            "invalid group graph: the input stream in is declared twice"
        );
        assert_eq!(
            refused(base().input("", StringCodec, noop)),
            "invalid group graph: an input stream has an empty topic"
        );
        assert_eq!(
            refused(base().input("g-loop", StringCodec, noop)),
            "invalid group graph: g-loop: should not directly use loop stream"
        );
        assert_eq!(
            refused(
                base()
                    .input("in", StringCodec, noop)
                    .join("g-table", Int64Codec)
            ),
            "invalid group graph: g-table: should not directly use group table"
        );
        assert_eq!(
            refused(
                base()
                    .input("in", StringCodec, noop)
                    .output("g-loop", StringCodec)
            ),
            "invalid group graph: g-loop: should not directly use loop stream"
        );
        assert_eq!(
            refused(
                base()
                    .input("in", StringCodec, noop)
                    .output("in", StringCodec)
            ),
            "invalid group graph: in is both an input and an output"
        );
        let g = base()
            .inputs(["a", "b"], StringCodec, noop)
            .loopback(StringCodec, noop);
        assert_eq!(g.input_topics(), ["a", "b", "g-loop"]);
        assert_eq!(g.loop_topic().as_deref(), Some("g-loop"));
        assert!(g.validate().is_ok());
        assert_eq!(GroupGraph::stateless("s").table_topic(), None);
    }
}
