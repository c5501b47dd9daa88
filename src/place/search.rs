//! The placement search: which GPUs each replica's stages get. Works on a copy of the free
//! GPU masks; `mod.rs` turns the result into the report. See the module notes there for the
//! order of goals; [`Score`] is that order as a value, so that candidates can be compared.
//!
//! The unit a TP group should not leave is an *island*: an NVLink domain when the cluster
//! names them (its trays share one NVLink fabric), otherwise a node. An island with `f` free
//! GPUs holds `f / tp` island-local TP groups ("slots").

use super::Scope;
use super::cluster::Cluster;
use std::cmp::Reverse;
use std::collections::BTreeSet;

/// One placed replica: for each stage, its GPUs `(node index, gpu index)` in rank order.
pub(super) type Placed = Vec<Vec<(usize, u32)>>;

/// How the main search breaks ties between equally local choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Policy {
    /// Partly used islands and racks before whole ones (goal 3), then fewest islands.
    KeepWhole,
    /// Fewest islands per replica first (the most compact replicas), then best fit.
    Compact,
}

/// The order of goals as a value; lower is better, compared field by field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(super) struct Score {
    /// Replicas requested but not placed.
    pub unplaced: usize,
    /// Goal 1: TP groups split across islands (nodes, or NVLink domains).
    pub split_groups: usize,
    /// Goal 2: replicas whose pipeline leaves its rack.
    pub cross_rack: usize,
    /// Goal 3: whole free racks, then whole free nodes, that the placement breaks.
    pub racks_broken: usize,
    pub nodes_broken: usize,
    /// Not a goal, the tie-break: nodes per replica, summed (compact replicas first).
    pub nodes_used: usize,
}

/// The island of each node when TP groups may span trays of an NVLink domain: the domain,
/// else the node itself. Islands are numbered nodes first (`0..nodes`), domains after.
pub(super) fn island_of(c: &Cluster, node: usize, domains: bool) -> usize {
    match c.nodes[node].domain {
        Some(d) if domains => c.nodes.len() + d,
        _ => node,
    }
}

/// Scores a placement against the cluster as it was before (`free_after` = masks after).
pub(super) fn score(c: &Cluster, placed: &[Placed], target: usize, free_after: &[u128]) -> Score {
    let mut s = Score {
        unplaced: target.saturating_sub(placed.len()),
        ..Score::default()
    };
    for rep in placed {
        let mut rack = None;
        let mut cross = false;
        let mut nodes: Vec<usize> = rep.iter().flatten().map(|&(n, _)| n).collect();
        nodes.sort_unstable();
        nodes.dedup();
        s.nodes_used += nodes.len();
        for g in rep {
            let mut isl = None;
            let mut split = false;
            for &(n, _) in g {
                let i = island_of(c, n, true);
                split |= *isl.get_or_insert(i) != i;
                let r = c.nodes[n].rack;
                cross |= *rack.get_or_insert(r) != r;
            }
            s.split_groups += usize::from(split);
        }
        s.cross_rack += usize::from(cross);
    }
    let whole = |i: usize, f: u128| f.count_ones() == c.nodes[i].gpus;
    let mut rack_whole_before = vec![true; c.racks.len()];
    let mut rack_whole_after = vec![true; c.racks.len()];
    for (i, n) in c.nodes.iter().enumerate() {
        let before = whole(i, n.free);
        let after = whole(i, free_after[i]);
        rack_whole_before[n.rack] &= before;
        rack_whole_after[n.rack] &= after;
        s.nodes_broken += usize::from(before && !after);
    }
    s.racks_broken = rack_whole_before
        .iter()
        .zip(&rack_whole_after)
        .filter(|(b, a)| **b && !**a)
        .count();
    s
}

/// The article's `TopologyAwarePlacement`: stage by stage, the first node (file order) with
/// `tp` free GPUs, else the first rack with `tp` free GPUs spread over its nodes in order.
/// Free counts only fall, so each "first" is a cursor that never moves back: linear in
/// nodes plus GPUs placed. A replica that cannot be finished is given back and ends the run.
pub(super) fn first_fit(c: &Cluster, t: u32, p: u32, target: usize) -> (Vec<Placed>, Vec<u128>) {
    let mut free: Vec<u128> = c.nodes.iter().map(|n| n.free).collect();
    let mut rack_nodes = vec![Vec::new(); c.racks.len()];
    let mut rack_free = vec![0u64; c.racks.len()];
    for (i, n) in c.nodes.iter().enumerate() {
        rack_nodes[n.rack].push(i);
        rack_free[n.rack] += u64::from(n.free_count());
    }
    let mut node_cur = 0usize;
    let mut rack_cur = 0usize;
    let mut in_rack_cur = vec![0usize; c.racks.len()];
    let mut out = Vec::new();
    let take = |free: &mut [u128], rack_free: &mut [u64], i: usize, k: u32, g: &mut Vec<(usize, u32)>| {
        for _ in 0..k {
            let b = free[i].trailing_zeros();
            free[i] &= !(1u128 << b);
            g.push((i, b));
        }
        rack_free[c.nodes[i].rack] -= u64::from(k);
    };
    'rep: while out.len() < target {
        let mut rep: Placed = Vec::with_capacity(p as usize);
        for _ in 0..p {
            while node_cur < free.len() && free[node_cur].count_ones() < t {
                node_cur += 1;
            }
            let mut g = Vec::with_capacity(t as usize);
            if node_cur < free.len() {
                take(&mut free, &mut rack_free, node_cur, t, &mut g);
                rep.push(g);
                continue;
            }
            while rack_cur < rack_free.len() && rack_free[rack_cur] < u64::from(t) {
                rack_cur += 1;
            }
            if rack_cur == rack_free.len() {
                // Give the unfinished replica back.
                for &(n, b) in rep.iter().flatten() {
                    free[n] |= 1u128 << b;
                }
                break 'rep;
            }
            let r = rack_cur;
            let mut need = t;
            while need > 0 {
                let cur = &mut in_rack_cur[r];
                while free[rack_nodes[r][*cur]] == 0 {
                    *cur += 1;
                }
                let i = rack_nodes[r][*cur];
                let k = free[i].count_ones().min(need);
                take(&mut free, &mut rack_free, i, k, &mut g);
                need -= k;
            }
            rep.push(g);
        }
        out.push(rep);
    }
    (out, free)
}

/// Island-local TP slots of one rack: per slot count, how many partly used and how many whole
/// islands hold it (exact counts), and stacks of island ids to pop from (entries go stale
/// when an island changes; they are checked on pop).
#[derive(Debug, Clone)]
struct RackSlots {
    part_n: Vec<u64>,
    whole_n: Vec<u64>,
    part: Vec<Vec<usize>>,
    whole: Vec<Vec<usize>>,
    total: u64,
    part_total: u64,
}

impl RackSlots {
    fn new(max: usize) -> Self {
        RackSlots {
            part_n: vec![0; max + 1],
            whole_n: vec![0; max + 1],
            part: vec![Vec::new(); max + 1],
            whole: vec![Vec::new(); max + 1],
            total: 0,
            part_total: 0,
        }
    }

    fn add(&mut self, i: usize, s: usize, whole: bool) {
        if s == 0 {
            return;
        }
        if whole {
            self.whole_n[s] += 1;
            self.whole[s].push(i);
        } else {
            self.part_n[s] += 1;
            self.part_total += s as u64;
            self.part[s].push(i);
        }
        self.total += s as u64;
    }

    fn remove(&mut self, s: usize, whole: bool) {
        if s == 0 {
            return;
        }
        if whole {
            self.whole_n[s] -= 1;
        } else {
            self.part_n[s] -= 1;
            self.part_total -= s as u64;
        }
        self.total -= s as u64;
    }

    /// Islands needed for `need` slots taking the largest first from `counts`, and the
    /// slots still missing after all of them.
    fn count_needed(counts: &[u64], mut need: u64) -> (u64, u64) {
        let mut k = 0;
        for s in (1..counts.len()).rev() {
            let n = counts[s];
            if n == 0 || need == 0 {
                continue;
            }
            let want = need.div_ceil(s as u64);
            if want <= n {
                return (k + want, 0);
            }
            k += n;
            need -= n * s as u64;
        }
        (k, need)
    }

    /// `(whole islands broken, islands used)` for a replica of `need` slots here under
    /// `policy` (`Compact` does not count the whole islands it breaks: 0); `None` when the
    /// rack has fewer slots.
    fn plan(&self, need: u64, policy: Policy) -> Option<(u64, u64)> {
        if self.total < need {
            return None;
        }
        match policy {
            Policy::Compact => {
                let all: Vec<u64> = self
                    .part_n
                    .iter()
                    .zip(&self.whole_n)
                    .map(|(a, b)| a + b)
                    .collect();
                Some((0, Self::count_needed(&all, need).0))
            }
            Policy::KeepWhole => {
                let (k1, rest) = Self::count_needed(&self.part_n, need);
                if rest == 0 {
                    return Some((0, k1));
                }
                let (k2, _) = Self::count_needed(&self.whole_n, rest);
                Some((k2, k1 + k2))
            }
        }
    }
}

/// Phase 3's index of racks by free GPUs: best fit, roomiest and the count of whole TP groups
/// the racks could still make, each in O(log racks). Keyed `(free, Reverse(rack))` so that
/// ties go to the first rack in the file.
struct FreeIndex {
    set: BTreeSet<(u64, Reverse<usize>)>,
    shown: Vec<u64>,
    stages: u64,
    total: u64,
    t: u64,
}

impl FreeIndex {
    fn new(rack_free: &[u64], t: u64) -> Self {
        let mut ix = FreeIndex {
            set: BTreeSet::new(),
            shown: vec![0; rack_free.len()],
            stages: 0,
            total: 0,
            t,
        };
        for (r, &f) in rack_free.iter().enumerate() {
            ix.refresh(r, f);
        }
        ix
    }

    fn refresh(&mut self, r: usize, now: u64) {
        let old = self.shown[r];
        if old > 0 {
            self.set.remove(&(old, Reverse(r)));
        }
        if now > 0 {
            self.set.insert((now, Reverse(r)));
        }
        self.stages = self.stages - old / self.t + now / self.t;
        self.total = self.total - old + now;
        self.shown[r] = now;
    }

    fn best_fit(&self, need: u64) -> Option<usize> {
        let (f0, _) = *self.set.range((need, Reverse(usize::MAX))..).next()?;
        let &(_, Reverse(r)) = self
            .set
            .range((f0, Reverse(usize::MAX))..=(f0, Reverse(0)))
            .next_back()?;
        Some(r)
    }

    fn roomiest(&self) -> Option<(u64, usize)> {
        self.set.last().map(|&(f, Reverse(r))| (f, r))
    }
}

/// The search state.
pub(super) struct Engine<'a> {
    pub(super) c: &'a Cluster,
    /// Per node, bit `i` set = GPU `i` still free.
    pub(super) free: Vec<u128>,
    t: u32,
    p: u32,
    policy: Policy,
    /// Per island (dense ids): its nodes, rack, free GPUs, capacity.
    isl_nodes: Vec<Vec<usize>>,
    isl_rack: Vec<usize>,
    isl_free: Vec<u32>,
    isl_cap: Vec<u32>,
    pub(super) rack_islands: Vec<Vec<usize>>,
    pub(super) rack_free: Vec<u64>,
    slots: Vec<RackSlots>,
    /// Phase 3 only: per rack, `free_buckets[r][f]` = islands that had `f` free GPUs when
    /// pushed (stale entries are skipped on pop, as counts only fall). Empty until built.
    free_buckets: Vec<[Vec<Vec<usize>>; 2]>,
    /// The first rack that may still hold a slot (slots only fall, so it only moves on).
    slot_cur: usize,
}

impl<'a> Engine<'a> {
    /// `domains`: whether islands are NVLink domains (TP groups may span trays).
    pub(super) fn new(c: &'a Cluster, t: u32, p: u32, domains: bool, policy: Policy) -> Self {
        // Dense island ids in order of first node.
        let mut id_of = vec![usize::MAX; c.nodes.len() + c.domains.len()];
        let mut isl_nodes: Vec<Vec<usize>> = Vec::new();
        let mut isl_rack = Vec::new();
        for (i, n) in c.nodes.iter().enumerate() {
            let key = island_of(c, i, domains);
            if id_of[key] == usize::MAX {
                id_of[key] = isl_nodes.len();
                isl_nodes.push(Vec::new());
                isl_rack.push(n.rack);
            }
            isl_nodes[id_of[key]].push(i);
        }
        let free: Vec<u128> = c.nodes.iter().map(|n| n.free).collect();
        let isl_free: Vec<u32> = isl_nodes
            .iter()
            .map(|v| v.iter().map(|&i| free[i].count_ones()).sum())
            .collect();
        let isl_cap: Vec<u32> = isl_nodes
            .iter()
            .map(|v| v.iter().map(|&i| c.nodes[i].gpus).sum())
            .collect();
        let mut rack_islands = vec![Vec::new(); c.racks.len()];
        for (k, &r) in isl_rack.iter().enumerate() {
            rack_islands[r].push(k);
        }
        let mut slots = Vec::with_capacity(c.racks.len());
        let mut rack_free = Vec::with_capacity(c.racks.len());
        for isl in &rack_islands {
            let max = isl.iter().map(|&k| isl_cap[k] / t).max().unwrap_or(0) as usize;
            let mut rs = RackSlots::new(max);
            // Reverse file order: stacks pop the first island in the file first.
            for &k in isl.iter().rev() {
                rs.add(k, (isl_free[k] / t) as usize, isl_free[k] == isl_cap[k]);
            }
            slots.push(rs);
            rack_free.push(isl.iter().map(|&k| u64::from(isl_free[k])).sum());
        }
        Engine {
            c,
            free,
            t,
            p,
            policy,
            isl_nodes,
            isl_rack,
            isl_free,
            isl_cap,
            rack_islands,
            rack_free,
            slots,
            free_buckets: Vec::new(),
            slot_cur: 0,
        }
    }

    /// Island-local TP groups rack `r` still holds.
    pub(super) fn rack_slots(&self, r: usize) -> u64 {
        self.slots[r].total
    }

    /// The first rack with a slot left, if any.
    fn rack_with_slot(&mut self) -> Option<usize> {
        while self.slot_cur < self.slots.len() && self.slots[self.slot_cur].total == 0 {
            self.slot_cur += 1;
        }
        (self.slot_cur < self.slots.len()).then_some(self.slot_cur)
    }

    fn whole(&self, k: usize) -> bool {
        self.isl_free[k] == self.isl_cap[k]
    }

    /// Takes `k` free GPUs from island `isl` (callers ask only for what is free). Inside a
    /// domain: the best-fitting tray when one holds them all, else the tray with the most,
    /// partly used trays before whole ones; lowest GPU indices first.
    fn grab(&mut self, isl: usize, k: u32) -> Vec<(usize, u32)> {
        let before_s = (self.isl_free[isl] / self.t) as usize;
        let before_w = self.whole(isl);
        let mut out = Vec::with_capacity(k as usize);
        let mut need = k;
        while need > 0 {
            let nodes = &self.isl_nodes[isl];
            let pick = if nodes.len() == 1 {
                nodes[0]
            } else {
                let key = |&i: &usize| {
                    let f = self.free[i].count_ones();
                    let whole = f == self.c.nodes[i].gpus;
                    // Fits: smallest fitting first; else: largest first.
                    (f < need, whole, if f >= need { f } else { u32::MAX - f })
                };
                match nodes
                    .iter()
                    .filter(|&&i| self.free[i] != 0)
                    .min_by_key(|i| key(i))
                {
                    Some(&i) => i,
                    None => break, // never reached: callers check isl_free
                }
            };
            let mut m = self.free[pick];
            if m == 0 {
                break; // never reached: callers ask only for free GPUs
            }
            while need > 0 && m != 0 {
                let g = m.trailing_zeros();
                m &= !(1u128 << g);
                out.push((pick, g));
                need -= 1;
            }
            self.free[pick] = m;
        }
        let took = out.len() as u32;
        self.isl_free[isl] -= took;
        let r = self.isl_rack[isl];
        self.rack_free[r] -= u64::from(took);
        let after_s = (self.isl_free[isl] / self.t) as usize;
        let after_w = self.whole(isl);
        if (before_s, before_w) != (after_s, after_w) {
            self.slots[r].remove(before_s, before_w);
            self.slots[r].add(isl, after_s, after_w);
        }
        if !self.free_buckets.is_empty() && self.isl_free[isl] != 0 {
            let w = usize::from(self.whole(isl));
            self.free_buckets[r][w][self.isl_free[isl] as usize].push(isl);
        }
        out
    }

    /// An island of rack `r` with exactly `s` slots and the given wholeness, from the stack.
    fn pop_slot(&mut self, r: usize, s: usize, whole: bool) -> Option<usize> {
        loop {
            let stack = if whole {
                &mut self.slots[r].whole[s]
            } else {
                &mut self.slots[r].part[s]
            };
            let k = stack.pop()?;
            if (self.isl_free[k] / self.t) as usize == s && self.whole(k) == whole {
                // Counts stay; `grab` moves the island.
                return Some(k);
            }
        }
    }

    /// The island to take the next slots from: best fit if one holds `need`, else the one
    /// with the most; partly used before whole under `KeepWhole`.
    fn next_slot_island(&mut self, r: usize, need: u64) -> Option<(usize, usize)> {
        let max = self.slots[r].part_n.len();
        let n = (need.min(max as u64) as usize).max(1);
        let has = |e: &Engine, s: usize, w: bool| {
            let c = if w {
                &e.slots[r].whole_n
            } else {
                &e.slots[r].part_n
            };
            c[s] > 0
        };
        match self.policy {
            // Best fit across both kinds, else the largest of either.
            Policy::Compact => {
                let fits = (n..max).flat_map(|s| [(s, false), (s, true)]);
                let largest = (1..max).rev().flat_map(|s| [(s, false), (s, true)]);
                for (s, w) in fits.chain(largest) {
                    if has(self, s, w)
                        && let Some(k) = self.pop_slot(r, s, w)
                    {
                        return Some((k, s));
                    }
                }
            }
            // Partly used islands first (best fit, else the largest), then whole ones.
            Policy::KeepWhole => {
                for w in [false, true] {
                    let fit = (n..max).find(|&s| has(self, s, w));
                    let s = fit.or_else(|| (1..max).rev().find(|&s| has(self, s, w)));
                    if let Some(s) = s
                        && let Some(k) = self.pop_slot(r, s, w)
                    {
                        return Some((k, s));
                    }
                }
            }
        }
        None
    }

    /// `need` stages from island-local slots of rack `r`.
    fn slot_stages(&mut self, r: usize, mut need: u64) -> Placed {
        let mut stages = Vec::with_capacity(need as usize);
        while need > 0 {
            let Some((k, s)) = self.next_slot_island(r, need) else {
                break;
            };
            let take = (s as u64).min(need);
            for _ in 0..take {
                let g = self.grab(k, self.t);
                stages.push(g);
            }
            need -= take;
        }
        stages
    }

    fn build_free_buckets(&mut self) {
        let mut fb = Vec::with_capacity(self.rack_islands.len());
        for isl in &self.rack_islands {
            let max = isl.iter().map(|&k| self.isl_cap[k]).max().unwrap_or(0) as usize;
            let mut b: [Vec<Vec<usize>>; 2] = [vec![Vec::new(); max + 1], vec![Vec::new(); max + 1]];
            for &k in isl.iter().rev() {
                let f = self.isl_free[k] as usize;
                if f > 0 {
                    b[usize::from(self.whole(k))][f].push(k);
                }
            }
            fb.push(b);
        }
        self.free_buckets = fb;
    }

    /// An island of rack `r` with exactly `f` free GPUs, whole or partly used.
    fn pop_free(&mut self, r: usize, f: usize, whole: bool) -> Option<usize> {
        while let Some(k) = self.free_buckets[r][usize::from(whole)][f].pop() {
            if self.isl_free[k] as usize == f && self.whole(k) == whole {
                return Some(k);
            }
        }
        None
    }

    /// A TP group of `need` GPUs from rack `r`'s islands when no island holds a whole one.
    /// Islands too small for a slot go first (so that the slots left stay for later groups),
    /// partly used before whole ones (so that whole nodes stay whole); in each class the best
    /// fit when one holds the rest, else the one with the most free. Returns fewer when the
    /// rack runs out.
    fn span_in_rack(&mut self, r: usize, mut need: u32) -> Vec<(usize, u32)> {
        if self.free_buckets.is_empty() {
            self.build_free_buckets();
        }
        let mut out = Vec::with_capacity(need as usize);
        let maxf = self.free_buckets[r][0].len().saturating_sub(1);
        let t = self.t as usize;
        let small = (1, t.saturating_sub(1).min(maxf));
        let slot = (t.max(1), maxf);
        let classes = [(small, false), (small, true), (slot, false), (slot, true)];
        while need > 0 {
            let n = need as usize;
            let mut pick = None;
            'class: for &((lo, hi), whole) in &classes {
                if lo > hi {
                    continue;
                }
                for f in n.max(lo)..=hi {
                    if let Some(k) = self.pop_free(r, f, whole) {
                        pick = Some((f as u32, k));
                        break 'class;
                    }
                }
                for f in (lo..=hi.min(n.saturating_sub(1))).rev() {
                    if let Some(k) = self.pop_free(r, f, whole) {
                        pick = Some((f as u32, k));
                        break 'class;
                    }
                }
            }
            let Some((f, k)) = pick else { break };
            let take = f.min(need);
            out.extend(self.grab(k, take));
            need -= take;
        }
        out
    }

    fn stage_in_rack(&mut self, r: usize) -> Vec<(usize, u32)> {
        if self.slots[r].total > 0 {
            let mut s = self.slot_stages(r, 1);
            return s.pop().unwrap_or_default();
        }
        self.span_in_rack(r, self.t)
    }

    /// Replicas from the slots left in `racks`, several racks each: partly used racks before
    /// whole ones (under `KeepWhole`), best fit, else the rack with the most.
    fn combine_slots(&mut self, racks: &[usize], target: usize, out: &mut Vec<Placed>) {
        let p = u64::from(self.p);
        let rack_whole = |e: &Engine, r: usize| e.rack_islands[r].iter().all(|&k| e.whole(k));
        // Keyed (class, slots, Reverse(rack)): class 0 = partly used, 1 = whole.
        let mut sets: [BTreeSet<(u64, Reverse<usize>)>; 2] = [BTreeSet::new(), BTreeSet::new()];
        let mut class = vec![0usize; self.c.racks.len()];
        let mut total = 0u64;
        for &r in racks {
            if self.slots[r].total > 0 {
                let cl = usize::from(self.policy == Policy::KeepWhole && rack_whole(self, r));
                class[r] = cl;
                sets[cl].insert((self.slots[r].total, Reverse(r)));
                total += self.slots[r].total;
            }
        }
        while out.len() < target && total >= p {
            let mut need = p;
            let mut stages = Vec::with_capacity(self.p as usize);
            while need > 0 {
                let set = if sets[0].is_empty() {
                    &mut sets[1]
                } else {
                    &mut sets[0]
                };
                let fit = set.range((need, Reverse(usize::MAX))..).next().map(|e| e.0);
                let pick = match fit {
                    Some(s0) => set
                        .range((s0, Reverse(usize::MAX))..=(s0, Reverse(0)))
                        .next_back()
                        .copied(),
                    None => set.last().copied(),
                };
                let Some((s, Reverse(r))) = pick else { break };
                set.remove(&(s, Reverse(r)));
                let take = s.min(need);
                stages.extend(self.slot_stages(r, take));
                need -= take;
                total -= take;
                if self.slots[r].total > 0 {
                    // A rack once used is partly used.
                    class[r] = 0;
                    sets[0].insert((self.slots[r].total, Reverse(r)));
                }
            }
            out.push(stages);
        }
    }

    /// The rack key of phase 1: smaller is better.
    fn rack_key(&self, r: usize, p: u64, one_island: bool) -> Option<(bool, u64, u64, u64, usize)> {
        let (broken, islands) = self.slots[r].plan(p, self.policy)?;
        if one_island && islands != 1 {
            return None;
        }
        let whole_rack =
            self.policy == Policy::KeepWhole && self.rack_islands[r].iter().all(|&k| self.whole(k));
        Some(match self.policy {
            Policy::KeepWhole => (whole_rack, broken, islands, self.slots[r].total, r),
            Policy::Compact => (false, islands, 0, self.slots[r].total, r),
        })
    }

    pub(super) fn run(&mut self, target: usize, tp_within: Scope, pp_within: Scope) -> Vec<Placed> {
        let p = u64::from(self.p);
        let mut out: Vec<Placed> = Vec::new();
        let nracks = self.c.racks.len();
        // With --pp-within node a replica must sit in one island (callers make islands nodes).
        let one_island = pp_within == Scope::IntraNode;

        // Phase 1: whole replicas from island-local slots of one rack.
        let mut set: BTreeSet<(bool, u64, u64, u64, usize)> = BTreeSet::new();
        for r in 0..nracks {
            if let Some(k) = self.rack_key(r, p, one_island) {
                set.insert(k);
            }
        }
        while out.len() < target {
            let Some(first) = set.pop_first() else { break };
            let r = first.4;
            if one_island {
                // The island that holds the whole replica: best fit among those that can.
                let stages = self.one_island_replica(r);
                out.push(stages);
            } else {
                out.push(self.slot_stages(r, p));
            }
            if let Some(k) = self.rack_key(r, p, one_island) {
                set.insert(k);
            }
        }
        drop(set);

        // Phase 2: slots combined across racks, inside one pod first when the cluster names
        // pods, then anywhere.
        if pp_within == Scope::CrossRack && out.len() < target {
            let mut pods: Vec<(&str, Vec<usize>)> = Vec::new();
            for (r, rack) in self.c.racks.iter().enumerate() {
                if let Some(pod) = rack.pod.as_deref() {
                    match pods.iter_mut().find(|(name, _)| *name == pod) {
                        Some((_, v)) => v.push(r),
                        None => pods.push((pod, vec![r])),
                    }
                }
            }
            for (_, racks) in &pods {
                self.combine_slots(racks, target, &mut out);
            }
            let all: Vec<usize> = (0..nracks).collect();
            self.combine_slots(&all, target, &mut out);
        }

        // Phase 3: TP groups that span islands, once slots cannot make a replica.
        if tp_within >= Scope::IntraRack && pp_within >= Scope::IntraRack {
            let need_gpus = u64::from(self.t) * p;
            let t = u64::from(self.t);
            let mut idx = FreeIndex::new(&self.rack_free, t);
            while out.len() < target {
                // 3a: one rack. While slots are left (goal 1), the rack holding the most of
                // them among those with room for the replica; else, when pipelines may cross
                // racks, the slots are used first by 3b/3c. Without slots: best fit (the
                // fewest free GPUs that hold a replica).
                let slotted = self.rack_with_slot().map(|from| {
                    (from..nracks)
                        .filter(|&r| self.slots[r].total > 0 && self.rack_free[r] >= need_gpus)
                        .max_by_key(|&r| (self.slots[r].total.min(p), Reverse(self.rack_free[r]), Reverse(r)))
                });
                // When pipelines may cross racks, one rack is taken only if it holds all the
                // slots left (or p of them): otherwise 3b/3c place more groups in slots.
                let slots_left: u64 = match slotted {
                    Some(_) if pp_within == Scope::CrossRack => (self.slot_cur..nracks)
                        .map(|r| self.slots[r].total)
                        .sum::<u64>()
                        .min(p),
                    _ => 0,
                };
                let pick = match slotted {
                    None => idx.best_fit(need_gpus),
                    Some(Some(r))
                        if pp_within == Scope::CrossRack && self.slots[r].total.min(p) < slots_left =>
                    {
                        None
                    }
                    Some(Some(r)) => Some(r),
                    Some(None) if pp_within < Scope::CrossRack => idx.best_fit(need_gpus),
                    Some(None) => None,
                };
                if let Some(r) = pick {
                    let stages = (0..self.p).map(|_| self.stage_in_rack(r)).collect();
                    idx.refresh(r, self.rack_free[r]);
                    out.push(stages);
                    continue;
                }
                if pp_within < Scope::CrossRack {
                    break;
                }
                // 3b: stages inside racks, the pipeline across racks: the slots left first,
                // then stay in the current rack while it holds a stage, else the roomiest.
                if idx.stages >= p {
                    let mut stages = Vec::with_capacity(self.p as usize);
                    let mut cur: Option<usize> = None;
                    for _ in 0..self.p {
                        let with_slot = self.rack_with_slot();
                        let r = match (with_slot, cur.filter(|&r| self.rack_free[r] >= t)) {
                            (Some(r), _) => r,
                            (None, Some(r)) => r,
                            // The fullest rack that still holds a stage: it has the fewest
                            // whole nodes to break.
                            (None, None) => match idx.best_fit(t) {
                                Some(r) => r,
                                None => break, // `idx.stages >= p` rules this out
                            },
                        };
                        cur = Some(r);
                        stages.push(self.stage_in_rack(r));
                        idx.refresh(r, self.rack_free[r]);
                    }
                    out.push(stages);
                    continue;
                }
                // 3c: groups that straddle racks, roomiest racks first.
                if tp_within < Scope::CrossRack || idx.total < need_gpus {
                    break;
                }
                let mut stages = Vec::with_capacity(self.p as usize);
                for _ in 0..self.p {
                    if let Some(r) = self.rack_with_slot() {
                        stages.push(self.stage_in_rack(r));
                        idx.refresh(r, self.rack_free[r]);
                        continue;
                    }
                    let mut g = Vec::with_capacity(self.t as usize);
                    while (g.len() as u32) < self.t {
                        let Some((_, r)) = idx.roomiest() else { break };
                        let want = self.t - g.len() as u32;
                        g.extend(self.span_in_rack(r, want));
                        idx.refresh(r, self.rack_free[r]);
                    }
                    stages.push(g);
                }
                out.push(stages);
            }
        }
        out
    }

    /// With --pp-within node: the replica's `p` slots from one island of rack `r`, the
    /// partly used best fit first, then the whole best fit.
    fn one_island_replica(&mut self, r: usize) -> Placed {
        let p = self.p as usize;
        let t = self.t;
        let best = self.rack_islands[r]
            .iter()
            .copied()
            .filter(|&k| (self.isl_free[k] / t) as usize >= p)
            .min_by_key(|&k| {
                (
                    self.policy == Policy::KeepWhole && self.whole(k),
                    self.isl_free[k],
                    k,
                )
            });
        match best {
            Some(k) => (0..p).map(|_| self.grab(k, t)).collect(),
            None => Vec::new(),
        }
    }
}
