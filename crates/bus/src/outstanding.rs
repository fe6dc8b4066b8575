//! Bookkeeping of unacked delivery tags, shared by both subscriptions, so an ack never names
//! a tag the channel no longer holds (RabbitMQ closes the channel on an unknown tag, even for
//! a multiple-ack whose tag was already acked singly).

use std::collections::BTreeSet;

use crate::DeliveryTag;

/// Unacked tags of the current channel generation.
#[derive(Debug, Default)]
pub(crate) struct Outstanding {
    generation: Option<u64>,
    tags: BTreeSet<u64>,
}

impl Outstanding {
    /// Starts a new generation, forgetting every tag of the previous one.
    pub(crate) fn reset(&mut self, generation: Option<u64>) {
        self.generation = generation;
        self.tags.clear();
    }

    /// The current generation, if a channel is open.
    pub(crate) fn generation(&self) -> Option<u64> {
        self.generation
    }

    /// Records a new delivery on the current generation.
    pub(crate) fn insert(&mut self, value: u64) {
        self.tags.insert(value);
    }

    /// Number of unacked deliveries.
    pub(crate) fn len(&self) -> usize {
        self.tags.len()
    }

    /// For a multiple-ack through `tag`: removes and returns the highest unacked tag at or
    /// below it, or `None` if the tag is stale or nothing is left to ack.
    pub(crate) fn take_through(&mut self, tag: DeliveryTag) -> Option<u64> {
        if self.generation != Some(tag.generation()) {
            return None;
        }
        let highest = *self.tags.range(..=tag.value()).next_back()?;
        self.tags = self.tags.split_off(&(highest + 1));
        Some(highest)
    }

    /// For a single ack: removes `tag` and says whether it was unacked on this generation.
    pub(crate) fn take_one(&mut self, tag: DeliveryTag) -> bool {
        self.generation == Some(tag.generation()) && self.tags.remove(&tag.value())
    }

    /// Puts back a tag taken by [`Outstanding::take_one`] whose ack could not be sent.
    pub(crate) fn restore(&mut self, tag: DeliveryTag) {
        if self.generation == Some(tag.generation()) {
            self.tags.insert(tag.value());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiple_ack_takes_the_highest_unacked_tag_and_ignores_stale_ones() {
        let mut o = Outstanding::default();
        o.reset(Some(7));
        for t in 1..=5 {
            o.insert(t);
        }
        assert!(o.take_one(DeliveryTag::new(7, 3)));
        assert!(!o.take_one(DeliveryTag::new(7, 3)));
        assert_eq!(o.take_through(DeliveryTag::new(6, 5)), None);
        assert_eq!(o.take_through(DeliveryTag::new(7, 3)), Some(2));
        assert_eq!(o.take_through(DeliveryTag::new(7, 3)), None);
        assert_eq!(o.len(), 2);
        assert_eq!(o.take_through(DeliveryTag::new(7, 9)), Some(5));
        assert_eq!(o.len(), 0);
        o.insert(6);
        o.reset(Some(8));
        assert_eq!(o.take_through(DeliveryTag::new(7, 6)), None);
        assert_eq!(o.generation(), Some(8));
    }
}
