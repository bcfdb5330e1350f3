//! [`Int32List`]: the type of every `[]int32` field of the generated
//! messages (replica, ISR and offline lists, partition indexes, broker ids).
//!
//! These lists are nearly always short: a replica list holds as many ids as
//! the replication factor. Decoding each into a `Vec` cost one allocation and
//! one free per list, which were most of the time a large Metadata answer
//! took to decode. An `Int32List` keeps up to [`Int32List::INLINE`] elements
//! in place and moves to the heap only past that.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};

/// A list of `int32`s that holds up to [`Int32List::INLINE`] elements
/// without allocating, and any number on the heap.
///
/// It dereferences to `[i32]`, so reading it is reading a slice; it is built
/// from a `Vec`, an array, a slice or an iterator. Equality and hashing are
/// those of the elements: where they are stored does not matter.
///
/// ```
/// use klamm::protocol::primitives::Int32List;
///
/// let mut replicas = Int32List::from([1, 2, 3]);
/// assert_eq!(replicas.len(), 3);
/// assert!(replicas.contains(&2));
/// replicas.push(4);
/// assert_eq!(replicas, vec![1, 2, 3, 4]);
/// assert_eq!(replicas.iter().sum::<i32>(), 10);
///
/// let many: Int32List = (0..100).collect();
/// assert_eq!(many[99], 99);
/// assert_eq!(Vec::from(many).len(), 100);
/// ```
#[derive(Clone)]
pub struct Int32List(Repr);

#[derive(Clone)]
enum Repr {
    Inline {
        len: u8,
        items: [i32; Int32List::INLINE],
    },
    Heap(Vec<i32>),
}

impl Int32List {
    /// How many elements are kept without allocating.
    pub const INLINE: usize = 7;

    /// An empty list.
    pub const fn new() -> Self {
        Int32List(Repr::Inline {
            len: 0,
            items: [0; Self::INLINE],
        })
    }

    /// A list of the `n` big-endian `int32`s at the start of `bytes`, which
    /// holds at least `4 * n` bytes (the caller has checked it).
    #[inline]
    pub(crate) fn from_be_bytes(bytes: &[u8]) -> Self {
        let n = bytes.len() / 4;
        if n <= Self::INLINE {
            let mut items = [0; Self::INLINE];
            for (slot, c) in items.iter_mut().zip(bytes.chunks_exact(4)) {
                *slot = i32::from_be_bytes([c[0], c[1], c[2], c[3]]);
            }
            // `n` is at most `INLINE`, which fits a `u8`.
            let len = n as u8;
            Int32List(Repr::Inline { len, items })
        } else {
            Int32List(Repr::Heap(
                bytes
                    .chunks_exact(4)
                    .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ))
        }
    }

    /// The elements as a slice.
    pub fn as_slice(&self) -> &[i32] {
        match &self.0 {
            Repr::Inline { len, items } => &items[..usize::from(*len)],
            Repr::Heap(v) => v,
        }
    }

    /// The elements as a mutable slice.
    pub fn as_mut_slice(&mut self) -> &mut [i32] {
        match &mut self.0 {
            Repr::Inline { len, items } => &mut items[..usize::from(*len)],
            Repr::Heap(v) => v,
        }
    }

    /// Appends an element, moving the list to the heap when it outgrows
    /// [`Int32List::INLINE`].
    pub fn push(&mut self, value: i32) {
        match &mut self.0 {
            Repr::Inline { len, items } if usize::from(*len) < Self::INLINE => {
                items[usize::from(*len)] = value;
                *len += 1;
            }
            Repr::Inline { len, items } => {
                let mut v = Vec::with_capacity(Self::INLINE * 2);
                v.extend_from_slice(&items[..usize::from(*len)]);
                v.push(value);
                self.0 = Repr::Heap(v);
            }
            Repr::Heap(v) => v.push(value),
        }
    }

    /// Removes every element.
    pub fn clear(&mut self) {
        match &mut self.0 {
            Repr::Inline { len, .. } => *len = 0,
            Repr::Heap(v) => v.clear(),
        }
    }

    /// The elements in a `Vec`.
    pub fn into_vec(self) -> Vec<i32> {
        match self.0 {
            Repr::Inline { len, items } => items[..usize::from(len)].to_vec(),
            Repr::Heap(v) => v,
        }
    }
}

impl Default for Int32List {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for Int32List {
    type Target = [i32];

    fn deref(&self) -> &[i32] {
        self.as_slice()
    }
}

impl DerefMut for Int32List {
    fn deref_mut(&mut self) -> &mut [i32] {
        self.as_mut_slice()
    }
}

impl AsRef<[i32]> for Int32List {
    fn as_ref(&self) -> &[i32] {
        self.as_slice()
    }
}

impl fmt::Debug for Int32List {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl PartialEq for Int32List {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Int32List {}

impl Hash for Int32List {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl PartialEq<[i32]> for Int32List {
    fn eq(&self, other: &[i32]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<&[i32]> for Int32List {
    fn eq(&self, other: &&[i32]) -> bool {
        self.as_slice() == *other
    }
}

impl<const N: usize> PartialEq<[i32; N]> for Int32List {
    fn eq(&self, other: &[i32; N]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<Vec<i32>> for Int32List {
    fn eq(&self, other: &Vec<i32>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq<Int32List> for Vec<i32> {
    fn eq(&self, other: &Int32List) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl From<Vec<i32>> for Int32List {
    /// Keeps the `Vec`'s allocation: the list stays on the heap.
    fn from(v: Vec<i32>) -> Self {
        Int32List(Repr::Heap(v))
    }
}

impl From<&[i32]> for Int32List {
    fn from(v: &[i32]) -> Self {
        v.iter().copied().collect()
    }
}

impl<const N: usize> From<[i32; N]> for Int32List {
    fn from(v: [i32; N]) -> Self {
        v.into_iter().collect()
    }
}

impl From<Int32List> for Vec<i32> {
    fn from(v: Int32List) -> Self {
        v.into_vec()
    }
}

impl FromIterator<i32> for Int32List {
    fn from_iter<I: IntoIterator<Item = i32>>(iter: I) -> Self {
        let mut out = Int32List::new();
        out.extend(iter);
        out
    }
}

impl Extend<i32> for Int32List {
    fn extend<I: IntoIterator<Item = i32>>(&mut self, iter: I) {
        for v in iter {
            self.push(v);
        }
    }
}

impl<'a> IntoIterator for &'a Int32List {
    type Item = &'a i32;
    type IntoIter = std::slice::Iter<'a, i32>;

    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl IntoIterator for Int32List {
    type Item = i32;
    type IntoIter = IntoIter;

    fn into_iter(self) -> IntoIter {
        IntoIter {
            list: self,
            next: 0,
        }
    }
}

/// The owning iterator of an [`Int32List`].
#[derive(Debug, Clone)]
pub struct IntoIter {
    list: Int32List,
    next: usize,
}

impl Iterator for IntoIter {
    type Item = i32;

    fn next(&mut self) -> Option<i32> {
        let v = self.list.as_slice().get(self.next).copied()?;
        self.next += 1;
        Some(v)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.list.len() - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for IntoIter {}

#[cfg(test)]
mod tests {
    use super::*;

    fn be(values: &[i32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_be_bytes()).collect()
    }

    #[test]
    fn short_lists_stay_inline_and_long_ones_go_to_the_heap() {
        let short = Int32List::from_be_bytes(&be(&[1, -2, 3]));
        assert!(matches!(short.0, Repr::Inline { len: 3, .. }));
        assert_eq!(short, [1, -2, 3]);

        let full: Vec<i32> = (0..Int32List::INLINE as i32).collect();
        let at_limit = Int32List::from_be_bytes(&be(&full));
        assert!(matches!(at_limit.0, Repr::Inline { .. }));
        assert_eq!(at_limit, full);

        let over: Vec<i32> = (0..=Int32List::INLINE as i32).collect();
        let long = Int32List::from_be_bytes(&be(&over));
        assert!(matches!(long.0, Repr::Heap(_)));
        assert_eq!(long, over);

        assert!(Int32List::from_be_bytes(&[]).is_empty());
    }

    #[test]
    fn push_moves_to_the_heap_past_the_inline_capacity_and_keeps_the_order() {
        let mut list = Int32List::new();
        for v in 0..20 {
            list.push(v);
            assert_eq!(list.len(), v as usize + 1);
            assert_eq!(list.last(), Some(&v));
        }
        assert!(matches!(list.0, Repr::Heap(_)));
        assert_eq!(list.into_vec(), (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn equality_and_hash_ignore_where_the_elements_are_stored() {
        use std::collections::hash_map::DefaultHasher;
        let inline = Int32List::from([5, 6]);
        let heap = Int32List::from(vec![5, 6]);
        assert!(matches!(inline.0, Repr::Inline { .. }));
        assert!(matches!(heap.0, Repr::Heap(_)));
        assert_eq!(inline, heap);
        let hash = |l: &Int32List| {
            let mut h = DefaultHasher::new();
            l.hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&inline), hash(&heap));
        assert_ne!(inline, Int32List::from([5, 7]));
        assert_ne!(inline, Int32List::from([5]));
        assert_eq!(format!("{inline:?}"), "[5, 6]");
    }

    #[test]
    fn clear_mutation_and_owned_iteration() {
        let mut list: Int32List = [3, 1, 2].into();
        list.sort_unstable();
        assert_eq!(list, [1, 2, 3]);
        list[0] = 9;
        assert_eq!(list.iter().copied().collect::<Vec<_>>(), vec![9, 2, 3]);
        let it = list.clone().into_iter();
        assert_eq!(it.len(), 3);
        assert_eq!(it.collect::<Vec<_>>(), vec![9, 2, 3]);
        list.clear();
        assert!(list.is_empty());
        let mut heap = Int32List::from(vec![1; 30]);
        heap.clear();
        assert!(heap.is_empty());
    }
}
