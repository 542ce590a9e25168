//! Per-customer running totals, kept so that memory grows with customers and not with events.
//!
//! Every window any metric or label asks about starts and ends on a day in a small sorted set of
//! boundaries: each snapshot, the snapshot minus each window (and minus twice each trend window),
//! and the snapshot plus the horizon. The boundaries cut time into segments, and an event only
//! adds to the one segment its day falls in: a count and a value sum per channel (all events,
//! each named event type, the label's qualifying events) and the latest time seen. Any window is
//! then a run of whole segments, summed when the rows are written. Events can come in any order.
//!
//! Two more things need days rather than segments: distinct active days (a bitmap of the days the
//! windows cover) and early life (per-day counts for the first days after the customer was first
//! seen; when an earlier event moves that first day back, the counts slide along).
//!
//! Distinct users do not add up over segments either: where the log has a user column, each
//! (customer, user) pair keeps the set of segments it was active in, one bit per segment, and the
//! users of a window are the pairs with a bit in its segments.
use crate::time::day_of;
use rustc_hash::FxHashMap;

/// The boundaries and what they mean.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// Snapshot days, ascending.
    pub snapshots: Vec<i64>,
    /// Boundary days, ascending and distinct.
    bounds: Vec<i64>,
    /// First day of the active-day bitmap, and the number of days it covers.
    bits_from: i64,
    bits_days: i64,
}

impl Timeline {
    /// `windows` are every window any metric looks back over (trend windows twice over);
    /// `horizon` the label's look-ahead.
    pub fn new(snapshots: &[i64], windows: &[u32], horizon: Option<u32>, bitmap: &[u32]) -> Self {
        let mut snaps = snapshots.to_vec();
        snaps.sort_unstable();
        snaps.dedup();
        let mut bounds = Vec::new();
        for &s in &snaps {
            bounds.push(s);
            bounds.extend(windows.iter().map(|&w| s - i64::from(w)));
            if let Some(h) = horizon {
                bounds.push(s + i64::from(h));
            }
        }
        bounds.sort_unstable();
        bounds.dedup();
        let widest = bitmap.iter().copied().max().unwrap_or(0);
        let (first, last) = (snaps[0], *snaps.last().unwrap());
        Timeline {
            bits_from: first - i64::from(widest),
            bits_days: if widest == 0 {
                0
            } else {
                last - first + i64::from(widest)
            },
            snapshots: snaps,
            bounds,
        }
    }

    /// Number of segments: one more than the boundaries.
    pub fn segments(&self) -> usize {
        self.bounds.len() + 1
    }

    /// The segment holding `day`.
    #[inline]
    pub fn segment(&self, day: i64) -> usize {
        self.bounds.partition_point(|&b| b <= day)
    }

    /// Segments making up days `[from, to)`; both must be boundaries.
    pub fn window(&self, from: i64, to: i64) -> std::ops::Range<usize> {
        let p = self
            .bounds
            .binary_search(&from)
            .expect("window start is a boundary");
        let q = self
            .bounds
            .binary_search(&to)
            .expect("window end is a boundary");
        p + 1..q + 1
    }

    /// Segments before `day` (a boundary).
    pub fn before(&self, day: i64) -> std::ops::Range<usize> {
        0..self.bounds.binary_search(&day).expect("boundary") + 1
    }

    /// 64-bit words of active-day bitmap per customer.
    pub fn bitmap_words(&self) -> usize {
        (self.bits_days as usize).div_ceil(64)
    }

    /// Bit of `day` in the bitmap, if it is covered.
    #[inline]
    fn bit(&self, day: i64) -> Option<usize> {
        let k = day - self.bits_from;
        (0..self.bits_days).contains(&k).then_some(k as usize)
    }
}

/// What each customer keeps, fixed for a run.
#[derive(Debug, Clone, Copy)]
pub struct StoreLayout {
    pub segments: usize,
    /// 0 = every event, 1..=T the named event types, then the qualifying events when the label
    /// counts only some types.
    pub channels: usize,
    pub values: bool,
    pub words: usize,
    pub early_days: usize,
    /// Distinct users are tracked (the log has a user column).
    pub users: bool,
}

/// One parsed event, ready to add.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    /// Local seconds.
    pub time: i64,
    /// 0 when the event's type is not a named one, else its channel.
    pub channel: u16,
    /// Counts as activity for the label.
    pub qualifies: bool,
    /// NaN when the event has no value.
    pub value: f64,
}

/// The customers of one shard (customers are spread over shards by a hash of their id, so
/// shards fill in parallel) and their totals, in flat arrays indexed by customer.
pub struct Shard {
    index: FxHashMap<Box<str>, u32>,
    pub ids: Vec<Box<str>>,
    counts: Vec<u32>,
    sums: Vec<f64>,
    latest: Vec<i64>,
    bits: Vec<u64>,
    /// First day seen (event or subscription start); i64::MAX before any.
    first_day: Vec<i64>,
    early_n: Vec<u32>,
    early_v: Vec<f64>,
    /// Latest event time in the shard.
    pub last_event: i64,
    pub events: u64,
    l: StoreLayout,
    /// Channel of the qualifying events, when it is not channel 0.
    qualifying: Option<usize>,
    users: UserSets,
}

/// Each (customer, user) pair's active segments.
#[derive(Default)]
struct UserSets {
    /// 64-bit words per pair.
    words: usize,
    /// User id -> user number in the shard.
    user_index: FxHashMap<Box<str>, u32>,
    /// (customer << 32 | user) -> pair.
    pair_index: FxHashMap<u64, u32>,
    /// Per customer: its pairs, and the pair of its latest event (u32::MAX before any): an
    /// account's events mostly come from the user of the event before.
    pairs_of: Vec<Vec<u32>>,
    last_pair: Vec<u32>,
    /// Per pair: its user; per user: the id.
    pair_user: Vec<u32>,
    user_names: Vec<Box<str>>,
    /// Per pair: `words` words of segment bits.
    bits: Vec<u64>,
}

impl Shard {
    pub fn new(l: StoreLayout, qualifying: Option<usize>) -> Shard {
        Shard {
            index: FxHashMap::default(),
            ids: Vec::new(),
            counts: Vec::new(),
            sums: Vec::new(),
            latest: Vec::new(),
            bits: Vec::new(),
            first_day: Vec::new(),
            early_n: Vec::new(),
            early_v: Vec::new(),
            last_event: i64::MIN,
            events: 0,
            users: UserSets {
                words: if l.users { l.segments.div_ceil(64) } else { 0 },
                ..UserSets::default()
            },
            l,
            qualifying,
        }
    }

    /// The customer's index, added if new.
    pub fn customer(&mut self, id: &str) -> usize {
        if let Some(&c) = self.index.get(id) {
            return c as usize;
        }
        let c = self.ids.len();
        self.index.insert(id.into(), c as u32);
        self.ids.push(id.into());
        let l = &self.l;
        let cells = l.segments * l.channels;
        self.counts.resize(self.counts.len() + cells, 0);
        if l.values {
            self.sums.resize(self.sums.len() + cells, 0.0);
        }
        self.latest.resize(self.latest.len() + l.segments, i64::MIN);
        self.bits.resize(self.bits.len() + l.words, 0);
        self.first_day.push(i64::MAX);
        self.early_n.resize(self.early_n.len() + l.early_days, 0);
        if l.values {
            self.early_v.resize(self.early_v.len() + l.early_days, 0.0);
        }
        if l.users {
            self.users.pairs_of.push(Vec::new());
            self.users.last_pair.push(u32::MAX);
        }
        c
    }

    /// Marks `user` active for customer `c` on the segment of `day`.
    pub fn add_user(&mut self, c: usize, user: &str, day: i64, tl: &Timeline) {
        let u = &mut self.users;
        let last = u.last_pair[c];
        let pair =
            if last != u32::MAX && *u.user_names[u.pair_user[last as usize] as usize] == *user {
                last as usize
            } else {
                let next = u.user_names.len() as u32;
                let k = *u.user_index.entry(user.into()).or_insert(next);
                if k == next {
                    u.user_names.push(user.into());
                }
                let key = (c as u64) << 32 | u64::from(k);
                let pairs = u.pair_user.len() as u32;
                let pair = *u.pair_index.entry(key).or_insert(pairs);
                if pair == pairs {
                    u.pairs_of[c].push(pair);
                    u.pair_user.push(k);
                    u.bits.resize(u.bits.len() + u.words, 0);
                }
                u.last_pair[c] = pair;
                pair as usize
            };
        let seg = tl.segment(day);
        u.bits[pair * u.words + seg / 64] |= 1 << (seg % 64);
    }

    pub fn find(&self, id: &str) -> Option<usize> {
        self.index.get(id).map(|&c| c as usize)
    }

    /// Moves the customer's first day back to `day` if it is earlier, sliding the early-life
    /// counts so that they stay relative to it.
    pub fn seen_on(&mut self, c: usize, day: i64) {
        let first = self.first_day[c];
        if day >= first {
            return;
        }
        self.first_day[c] = day;
        let e = self.l.early_days;
        if e == 0 || first == i64::MAX {
            return;
        }
        let shift = (first - day).min(e as i64) as usize;
        let n = &mut self.early_n[c * e..(c + 1) * e];
        n.copy_within(0..e - shift, shift);
        n[..shift].fill(0);
        if self.l.values {
            let v = &mut self.early_v[c * e..(c + 1) * e];
            v.copy_within(0..e - shift, shift);
            v[..shift].fill(0.0);
        }
    }

    /// Adds one event of customer `c`.
    #[inline]
    pub fn add(&mut self, c: usize, ev: &Event, tl: &Timeline) {
        let l = self.l;
        let day = day_of(ev.time);
        let seg = tl.segment(day);
        let at = (c * l.segments + seg) * l.channels;
        let has_value = l.values && !ev.value.is_nan();
        self.counts[at] += 1;
        if has_value {
            self.sums[at] += ev.value;
        }
        if ev.channel > 0 {
            let k = at + usize::from(ev.channel);
            self.counts[k] += 1;
            if has_value {
                self.sums[k] += ev.value;
            }
        }
        if ev.qualifies
            && let Some(q) = self.qualifying
        {
            self.counts[at + q] += 1;
        }
        let latest = &mut self.latest[c * l.segments + seg];
        *latest = (*latest).max(ev.time);
        if let Some(b) = tl.bit(day) {
            self.bits[c * l.words + b / 64] |= 1 << (b % 64);
        }
        self.seen_on(c, day);
        let e = l.early_days;
        let k = day - self.first_day[c];
        if (k as usize) < e {
            self.early_n[c * e + k as usize] += 1;
            if has_value {
                self.early_v[c * e + k as usize] += ev.value;
            }
        }
        self.last_event = self.last_event.max(ev.time);
        self.events += 1;
    }

    /// A read-only view of one customer.
    pub fn view(&self, c: usize) -> CustomerView<'_> {
        let l = &self.l;
        let cells = l.segments * l.channels;
        CustomerView {
            counts: &self.counts[c * cells..(c + 1) * cells],
            sums: if l.values {
                &self.sums[c * cells..(c + 1) * cells]
            } else {
                &[]
            },
            latest: &self.latest[c * l.segments..(c + 1) * l.segments],
            bits: &self.bits[c * l.words..(c + 1) * l.words],
            first_day: self.first_day[c],
            early_n: &self.early_n[c * l.early_days..(c + 1) * l.early_days],
            early_v: if l.values {
                &self.early_v[c * l.early_days..(c + 1) * l.early_days]
            } else {
                &[]
            },
            channels: l.channels,
            pairs: if l.users {
                &self.users.pairs_of[c]
            } else {
                &[]
            },
            pair_bits: &self.users.bits,
            pair_words: self.users.words,
        }
    }

    /// Bytes held per customer (for the summary).
    pub fn bytes_per_customer(&self) -> usize {
        let l = &self.l;
        let cells = l.segments * l.channels;
        // A pair's bits and index entries, and each user's id, spread over the customers.
        let users = if l.users {
            let u = &self.users;
            24 + (u.pair_index.len() * (u.words * 8 + 20) + u.user_index.len() * 40)
                / self.ids.len().max(1)
        } else {
            0
        };
        users
            + cells * 4
            + if l.values { cells * 8 } else { 0 }
            + l.segments * 8
            + l.words * 8
            + 8
            + l.early_days * if l.values { 12 } else { 4 }
    }
}

/// One customer's totals.
pub struct CustomerView<'a> {
    counts: &'a [u32],
    sums: &'a [f64],
    latest: &'a [i64],
    bits: &'a [u64],
    pub first_day: i64,
    early_n: &'a [u32],
    early_v: &'a [f64],
    channels: usize,
    /// The customer's (customer, user) pairs, and every pair's segment bits.
    pairs: &'a [u32],
    pair_bits: &'a [u64],
    pair_words: usize,
}

impl CustomerView<'_> {
    /// Events of `channel` in the segments.
    pub fn count(&self, channel: usize, segs: std::ops::Range<usize>) -> u64 {
        segs.map(|s| u64::from(self.counts[s * self.channels + channel]))
            .sum()
    }

    /// Value of `channel` in the segments.
    pub fn value(&self, channel: usize, segs: std::ops::Range<usize>) -> f64 {
        if self.sums.is_empty() {
            return 0.0;
        }
        segs.map(|s| self.sums[s * self.channels + channel]).sum()
    }

    /// Latest event time in the segments.
    pub fn latest(&self, segs: std::ops::Range<usize>) -> Option<i64> {
        self.latest[segs]
            .iter()
            .copied()
            .max()
            .filter(|&t| t != i64::MIN)
    }

    /// Distinct users with an event in the segments.
    pub fn users(&self, segs: std::ops::Range<usize>) -> u64 {
        if segs.is_empty() {
            return 0;
        }
        // The window's segments as a mask over each word of a pair's bits.
        let w = self.pair_words;
        let mask = |k: usize| -> u64 {
            let (lo, hi) = (k * 64, k * 64 + 64);
            let a = segs.start.clamp(lo, hi) - lo;
            let b = segs.end.clamp(lo, hi) - lo;
            match b - a {
                0 => 0,
                64 => u64::MAX,
                n => ((1u64 << n) - 1) << a,
            }
        };
        self.pairs
            .iter()
            .filter(|&&p| {
                let bits = &self.pair_bits[p as usize * w..(p as usize + 1) * w];
                bits.iter().enumerate().any(|(k, b)| b & mask(k) != 0)
            })
            .count() as u64
    }

    /// Distinct days with an event in `[from, to)`.
    pub fn active_days(&self, tl: &Timeline, from: i64, to: i64) -> u32 {
        (from..to)
            .filter_map(|d| tl.bit(d))
            .filter(|&b| self.bits[b / 64] & (1 << (b % 64)) != 0)
            .count() as u32
    }

    /// Events and value on the first days after the customer was first seen, before `before`.
    pub fn early(&self, before: i64) -> (u64, f64) {
        if self.first_day == i64::MAX {
            return (0, 0.0);
        }
        let days = (before - self.first_day).clamp(0, self.early_n.len() as i64) as usize;
        let n = self.early_n[..days].iter().map(|&x| u64::from(x)).sum();
        let v = if self.early_v.is_empty() {
            0.0
        } else {
            self.early_v[..days].iter().sum()
        };
        (n, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::SECONDS_PER_DAY;

    fn layout(tl: &Timeline, early: usize) -> StoreLayout {
        StoreLayout {
            segments: tl.segments(),
            channels: 1,
            values: true,
            words: tl.bitmap_words(),
            early_days: early,
            users: true,
        }
    }

    fn ev(day: i64) -> Event {
        Event {
            time: day * SECONDS_PER_DAY + 3600,
            channel: 0,
            qualifies: true,
            value: 2.0,
        }
    }

    #[test]
    fn windows_are_runs_of_segments_and_order_does_not_matter() {
        let tl = Timeline::new(&[100, 114], &[7, 28], Some(30), &[7, 28]);
        let days = [60, 71, 72, 86, 93, 99, 100, 107, 113, 114, 130, 150];
        let mut a = Shard::new(layout(&tl, 10), None);
        let mut b = Shard::new(layout(&tl, 10), None);
        let ca = a.customer("x");
        let cb = b.customer("x");
        for &d in &days {
            a.add(ca, &ev(d), &tl);
        }
        for &d in days.iter().rev() {
            b.add(cb, &ev(d), &tl);
        }
        for shard in [&a, &b] {
            let v = shard.view(0);
            let naive = |from: i64, to: i64| days.iter().filter(|&&d| d >= from && d < to).count();
            for &s in &[100, 114] {
                for w in [7, 28] {
                    assert_eq!(
                        v.count(0, tl.window(s - w, s)) as usize,
                        naive(s - w, s),
                        "s {s} w {w}"
                    );
                    assert_eq!(v.active_days(&tl, s - w, s) as usize, naive(s - w, s));
                }
                assert_eq!(v.count(0, tl.before(s)) as usize, naive(i64::MIN, s));
                assert_eq!(v.count(0, tl.window(s, s + 30)) as usize, naive(s, s + 30));
                assert_eq!(v.value(0, tl.before(s)), 2.0 * naive(i64::MIN, s) as f64);
            }
            assert_eq!(v.latest(tl.before(100)), Some(99 * SECONDS_PER_DAY + 3600));
            assert_eq!(v.first_day, 60);
            // Early life: days 60..70 hold one event (day 60).
            assert_eq!(v.early(100), (1, 2.0));
            assert_eq!(v.early(60), (0, 0.0));
        }
    }

    #[test]
    fn distinct_users_of_a_window_match_a_naive_count_across_many_segments() {
        // Enough snapshots for more than 64 segments, so a pair's bits span several words.
        let snaps: Vec<i64> = (0..40).map(|k| 1000 + 5 * k).collect();
        let tl = Timeline::new(&snaps, &[7, 28], None, &[]);
        assert!(tl.segments() > 64, "{}", tl.segments());
        let mut shard = Shard::new(layout(&tl, 0), None);
        let (a, b) = (shard.customer("a"), shard.customer("b"));
        // (customer, user, day): users shared across customers stay distinct per customer.
        let mut events = Vec::new();
        for k in 0..300i64 {
            let day = 960 + (k * 37) % 330;
            let user = format!("u{}", k % 9);
            events.push((if k % 3 == 0 { b } else { a }, user, day));
        }
        for (c, u, d) in &events {
            shard.add(*c, &ev(*d), &tl);
            shard.add_user(*c, u, *d, &tl);
        }
        for &s in &snaps {
            for w in [7, 28] {
                for c in [a, b] {
                    let naive: std::collections::HashSet<&str> = events
                        .iter()
                        .filter(|(cc, _, d)| *cc == c && *d >= s - w && *d < s)
                        .map(|(_, u, _)| u.as_str())
                        .collect();
                    let got = shard.view(c).users(tl.window(s - w, s));
                    assert_eq!(
                        got as usize,
                        naive.len(),
                        "customer {c} snapshot {s} window {w}"
                    );
                }
            }
            let all: std::collections::HashSet<&str> = events
                .iter()
                .filter(|(cc, _, d)| *cc == a && *d < s)
                .map(|(_, u, _)| u.as_str())
                .collect();
            assert_eq!(shard.view(a).users(tl.before(s)) as usize, all.len());
        }
    }

    #[test]
    fn early_life_slides_when_an_earlier_event_arrives() {
        let tl = Timeline::new(&[200], &[7], None, &[]);
        let mut s = Shard::new(layout(&tl, 30), None);
        let c = s.customer("y");
        for d in [150, 151, 170, 185] {
            s.add(c, &ev(d), &tl);
        }
        assert_eq!(s.view(c).early(200).0, 3);
        // First seen moves back to 140: the window is now days 140..170.
        s.add(c, &ev(140), &tl);
        assert_eq!(s.view(c).early(200).0, 3);
        assert_eq!(s.view(c).early(151).0, 2);
        // Back to 100: nothing from before survives.
        s.add(c, &ev(100), &tl);
        assert_eq!(s.view(c).early(200).0, 1);
    }
}
