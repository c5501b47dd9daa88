//! The placement search: which GPUs each replica's stages get. Works on a copy of the free
//! GPU masks; `mod.rs` turns the result into the report. See the module notes there for the
//! phases and the order of goals.

use super::Scope;
use super::cluster::Cluster;
use std::cmp::Reverse;
use std::collections::BTreeSet;

/// One placed replica: for each stage, its GPUs `(node index, gpu index)` in rank order.
pub(super) type Placed = Vec<Vec<(usize, u32)>>;

/// Node-local TP slots of one rack, bucketed by how many slots a node holds.
#[derive(Debug, Clone)]
pub(super) struct RackSlots {
    /// `buckets[s]` = nodes holding exactly `s` slots (index 0 unused). Popped from the end;
    /// filled in reverse file order so that ties go to the first node in the file.
    buckets: Vec<Vec<usize>>,
    pub(super) total: u64,
}

impl RackSlots {
    /// How many nodes a replica needing `need` slots would use here (largest first).
    fn nodes_needed(&self, mut need: u64) -> u32 {
        let mut k = 0u32;
        for s in (1..self.buckets.len()).rev() {
            let n = self.buckets[s].len() as u64;
            if n == 0 {
                continue;
            }
            let su = s as u64;
            let want = need.div_ceil(su);
            if want <= n {
                return k + want as u32;
            }
            k += n as u32;
            need -= n * su;
        }
        u32::MAX
    }

    /// Takes `need` slots: the best-fitting node if one holds enough, otherwise the node with
    /// the most slots, repeatedly. Returns `(node, slots taken)`.
    fn take(&mut self, mut need: u64) -> Vec<(usize, u64)> {
        let mut out = Vec::new();
        let max = self.buckets.len();
        while need > 0 {
            let fit = (need as usize..max).find(|&s| !self.buckets[s].is_empty());
            let s = match fit {
                Some(s) => s,
                None => match (1..max.min(need as usize))
                    .rev()
                    .find(|&s| !self.buckets[s].is_empty())
                {
                    Some(s) => s,
                    None => break, // callers check `total` first; never reached
                },
            };
            let Some(node) = self.buckets[s].pop() else { break };
            let took = (s as u64).min(need);
            let left = s - took as usize;
            if left > 0 {
                self.buckets[left].push(node);
            }
            self.total -= took;
            need -= took;
            out.push((node, took));
        }
        out
    }
}

/// Phase 3's index of racks by free GPUs: best fit, roomiest and the count of whole TP groups
/// the racks could still make, each in O(log racks). Keyed `(free, Reverse(rack))` so that
/// ties go to the first rack in the file.
struct FreeIndex {
    set: BTreeSet<(u64, Reverse<usize>)>,
    /// The value each rack has in `set`.
    shown: Vec<u64>,
    /// Sum over racks of `free / tp`.
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

    /// The rack with the fewest free GPUs that still has `need`.
    fn best_fit(&self, need: u64) -> Option<usize> {
        let (f0, _) = *self.set.range((need, Reverse(usize::MAX))..).next()?;
        let &(_, Reverse(r)) = self
            .set
            .range((f0, Reverse(usize::MAX))..=(f0, Reverse(0)))
            .next_back()?;
        Some(r)
    }

    /// The rack with the most free GPUs, and how many.
    fn roomiest(&self) -> Option<(u64, usize)> {
        self.set.last().map(|&(f, Reverse(r))| (f, r))
    }
}

/// The search state: free GPU masks per node, free GPUs and node-local slots per rack.
pub(super) struct Engine<'a> {
    pub(super) c: &'a Cluster,
    /// Per node, bit `i` set = GPU `i` still free.
    pub(super) free: Vec<u128>,
    pub(super) t: u32,
    pub(super) p: u32,
    pub(super) rack_nodes: Vec<Vec<usize>>,
    pub(super) slots: Vec<RackSlots>,
    pub(super) rack_free: Vec<u64>,
    /// Phase 3 only: per rack, `free_buckets[r][f]` = nodes that had `f` free GPUs when
    /// pushed (stale entries are skipped on pop, as counts only fall). Empty until built.
    free_buckets: Vec<Vec<Vec<usize>>>,
}

impl<'a> Engine<'a> {
    pub(super) fn new(c: &'a Cluster, t: u32, p: u32) -> Self {
        let mut rack_nodes = vec![Vec::new(); c.racks.len()];
        for (i, n) in c.nodes.iter().enumerate() {
            rack_nodes[n.rack].push(i);
        }
        let free: Vec<u128> = c.nodes.iter().map(|n| n.free).collect();
        let mut slots = Vec::with_capacity(c.racks.len());
        let mut rack_free = Vec::with_capacity(c.racks.len());
        for nodes in &rack_nodes {
            // Buckets up to the most slots a node of this rack holds: memory stays
            // proportional to the cluster.
            let rack_max = nodes.iter().map(|&i| c.nodes[i].gpus / t).max().unwrap_or(0) as usize;
            let mut rs = RackSlots {
                buckets: vec![Vec::new(); rack_max + 1],
                total: 0,
            };
            let mut f = 0u64;
            for &i in nodes.iter().rev() {
                let cnt = free[i].count_ones();
                f += u64::from(cnt);
                let s = (cnt / t) as usize;
                if s > 0 {
                    rs.buckets[s].push(i);
                    rs.total += s as u64;
                }
            }
            slots.push(rs);
            rack_free.push(f);
        }
        Engine {
            c,
            free,
            t,
            p,
            rack_nodes,
            slots,
            rack_free,
            free_buckets: Vec::new(),
        }
    }

    /// Takes `k` free GPUs (lowest indices) from node `i`.
    fn grab(&mut self, i: usize, k: u32) -> Vec<(usize, u32)> {
        let mut out = Vec::with_capacity(k as usize);
        let mut m = self.free[i];
        for _ in 0..k {
            if m == 0 {
                break; // callers ask only for GPUs that are free; never reached
            }
            let g = m.trailing_zeros();
            m &= !(1u128 << g);
            out.push((i, g));
        }
        self.free[i] = m;
        self.rack_free[self.c.nodes[i].rack] -= out.len() as u64;
        if !self.free_buckets.is_empty() && m != 0 {
            let r = self.c.nodes[i].rack;
            self.free_buckets[r][m.count_ones() as usize].push(i);
        }
        out
    }

    /// Indexes every node by its free GPU count, for the spanning search of phase 3.
    fn build_free_buckets(&mut self) {
        let mut fb = Vec::with_capacity(self.rack_nodes.len());
        for nodes in &self.rack_nodes {
            let max = nodes.iter().map(|&i| self.c.nodes[i].gpus).max().unwrap_or(0) as usize;
            let mut b: Vec<Vec<usize>> = vec![Vec::new(); max + 1];
            for &i in nodes.iter().rev() {
                let f = self.free[i].count_ones() as usize;
                if f > 0 {
                    b[f].push(i);
                }
            }
            fb.push(b);
        }
        self.free_buckets = fb;
    }

    /// A node of rack `r` with exactly `f` free GPUs, removed from its bucket.
    fn pop_free(&mut self, r: usize, f: usize) -> Option<usize> {
        while let Some(i) = self.free_buckets[r][f].pop() {
            if self.free[i].count_ones() as usize == f {
                return Some(i);
            }
        }
        None
    }

    /// Moves node `i` to the slot bucket that matches its free GPUs after a spanning group
    /// took some of them (`before` = its free count then).
    fn resync_slots(&mut self, i: usize, before: u32) {
        let old = (before / self.t) as usize;
        let new = (self.free[i].count_ones() / self.t) as usize;
        if old == new {
            return;
        }
        let rs = &mut self.slots[self.c.nodes[i].rack];
        if old > 0
            && let Some(pos) = rs.buckets[old].iter().position(|&x| x == i)
        {
            rs.buckets[old].swap_remove(pos);
        }
        if new > 0 {
            rs.buckets[new].push(i);
        }
        rs.total = rs.total + new as u64 - old as u64;
    }

    /// Stages from node-local slots of rack `r`.
    fn slot_stages(&mut self, r: usize, need: u64) -> Placed {
        let taken = self.slots[r].take(need);
        let mut stages = Vec::with_capacity(need as usize);
        for (node, k) in taken {
            for _ in 0..k {
                let g = self.grab(node, self.t);
                stages.push(g);
            }
        }
        stages
    }

    /// A TP group of `need` GPUs from rack `r`'s nodes when no node holds a whole one: most
    /// free first, the last from the best-fitting node. Returns fewer when the rack runs out.
    fn span_in_rack(&mut self, r: usize, mut need: u32) -> Vec<(usize, u32)> {
        if self.free_buckets.is_empty() {
            self.build_free_buckets();
        }
        let mut out = Vec::with_capacity(need as usize);
        let maxf = self.free_buckets[r].len().saturating_sub(1);
        while need > 0 {
            // Best fit when one node holds the rest, otherwise the node with the most free.
            let n = need as usize;
            let mut pick = None;
            for f in n..=maxf {
                if let Some(i) = self.pop_free(r, f) {
                    pick = Some((f as u32, i));
                    break;
                }
            }
            if pick.is_none() {
                for f in (1..n.min(maxf + 1)).rev() {
                    if let Some(i) = self.pop_free(r, f) {
                        pick = Some((f as u32, i));
                        break;
                    }
                }
            }
            let Some((f, i)) = pick else { break };
            let k = f.min(need);
            out.extend(self.grab(i, k));
            self.resync_slots(i, f);
            need -= k;
        }
        out
    }

    /// One TP stage inside rack `r`: a node-local slot when the rack has one, else spanning.
    fn stage_in_rack(&mut self, r: usize) -> Vec<(usize, u32)> {
        if self.slots[r].total > 0 {
            let mut s = self.slot_stages(r, 1);
            return s.pop().unwrap_or_default();
        }
        self.span_in_rack(r, self.t)
    }

    /// Replicas from the node-local slots left in `racks`, several racks each: fewest racks
    /// (largest first, the last one best fit).
    fn combine_slots(&mut self, racks: &[usize], target: usize, out: &mut Vec<Placed>) {
        let p = u64::from(self.p);
        // Keyed (slots, Reverse(rack)) so that among equal racks the first in the file wins.
        let mut set: BTreeSet<(u64, Reverse<usize>)> = BTreeSet::new();
        let mut total = 0u64;
        for &r in racks {
            if self.slots[r].total > 0 {
                set.insert((self.slots[r].total, Reverse(r)));
                total += self.slots[r].total;
            }
        }
        while out.len() < target && total >= p {
            let mut need = p;
            let mut stages = Vec::with_capacity(self.p as usize);
            while need > 0 {
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
                    set.insert((self.slots[r].total, Reverse(r)));
                }
            }
            out.push(stages);
        }
    }

    pub(super) fn run(&mut self, target: usize, tp_within: Scope, pp_within: Scope) -> Vec<Placed> {
        let p = u64::from(self.p);
        let mut out: Vec<Placed> = Vec::new();
        let nracks = self.c.racks.len();

        // Phase 1: whole replicas from node-local slots of one rack.
        let mut set: BTreeSet<(u32, u64, usize)> = BTreeSet::new();
        for r in 0..nracks {
            if self.slots[r].total >= p {
                set.insert((self.slots[r].nodes_needed(p), self.slots[r].total, r));
            }
        }
        while out.len() < target {
            let Some(&first) = set.first() else { break };
            if pp_within == Scope::IntraNode && first.0 != 1 {
                break;
            }
            set.remove(&first);
            let r = first.2;
            out.push(self.slot_stages(r, p));
            if self.slots[r].total >= p {
                set.insert((self.slots[r].nodes_needed(p), self.slots[r].total, r));
            }
        }
        drop(set);

        // Phase 2: node-local slots combined across racks, inside one pod first when the
        // cluster names pods, then anywhere.
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

        // Phase 3: TP groups that span nodes, once node-local slots cannot make a replica.
        if tp_within >= Scope::IntraRack && pp_within >= Scope::IntraRack {
            let need_gpus = u64::from(self.t) * p;
            let t = u64::from(self.t);
            let mut idx = FreeIndex::new(&self.rack_free, t);
            while out.len() < target {
                // 3a: one rack, best fit (the fewest free GPUs that hold a replica).
                if let Some(r) = idx.best_fit(need_gpus) {
                    let stages = (0..self.p).map(|_| self.stage_in_rack(r)).collect();
                    idx.refresh(r, self.rack_free[r]);
                    out.push(stages);
                    continue;
                }
                if pp_within < Scope::CrossRack {
                    break;
                }
                // 3b: stages inside racks, the pipeline across racks: stay in the current
                // rack while it holds a stage, else move to the roomiest.
                if idx.stages >= p {
                    let mut stages = Vec::with_capacity(self.p as usize);
                    let mut cur: Option<usize> = None;
                    for _ in 0..self.p {
                        let r = match cur.filter(|&r| self.rack_free[r] >= t) {
                            Some(r) => r,
                            None => match idx.roomiest() {
                                Some((f, r)) if f >= t => r,
                                _ => break, // `idx.stages >= p` rules this out
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
}
