//! The shard hash: which of N workers owns a customer id, the same on every run and machine.
use crate::error::{Error, Result};

/// `--shard i/N`: only the customers whose id hashes to shard i of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    pub fn parse(s: &str) -> Result<Shard> {
        let bad = || Error::Usage(format!("--shard {s}: expected i/N with 0 <= i < N"));
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u64, u64) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// The shard of an id: FNV-1a (64-bit) of its UTF-8 bytes, modulo N. Fixed forever, so every
    /// run on every machine splits the same way.
    pub fn of(id: &str, count: u64) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in id.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h % count
    }

    /// Whether a row belongs here. A row whose id cannot be read belongs to shard 0, so it is
    /// reported once across all shards.
    pub fn owns(self, id: Option<&str>) -> bool {
        match id {
            Some(id) => Shard::of(id, self.count) == self.index,
            None => self.index == 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Shard;

    #[test]
    fn parses_and_hashes_stably() {
        assert_eq!(Shard::parse("1/4").unwrap(), Shard { index: 1, count: 4 });
        assert!(Shard::parse("4/4").is_err());
        assert!(Shard::parse("0/0").is_err());
        assert!(Shard::parse("x").is_err());
        // FNV-1a of "" is the offset basis; of "a" a published constant (both below u64::MAX).
        assert_eq!(Shard::of("", u64::MAX), 0xcbf2_9ce4_8422_2325);
        assert_eq!(Shard::of("a", u64::MAX), 0xaf63_dc4c_8601_ec8c);
        let s = Shard { index: 0, count: 3 };
        assert!(s.owns(None));
    }
}
