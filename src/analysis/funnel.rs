//! `kmdb funnel` (SPEC §9): the funnel file, and every funnel evaluated over
//! each person's events in one pass.
//!
//! Steps are indexed by event name and by one of their `where` conditions,
//! so an event only visits the steps it can match: a thousand funnels over
//! one "Video View" event with a thousand different `video` values cost each
//! event a handful of checks, not a thousand.

use std::collections::HashMap;

use anyhow::{bail, Result};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};

use super::time::{format_duration, parse_duration};
use super::{cut_255, marks_of, satisfies, Conditions, Event, FastMap, Mark, Tally};

/// A funnel's window when the file gives none.
pub const DEFAULT_WINDOW: i64 = 30 * 86_400;

/// One step: an event name and `where` pairs, in the file's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub event: String,
    pub conditions: Vec<(String, String)>,
}

/// One funnel of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Funnel {
    pub name: String,
    pub steps: Vec<Step>,
    /// Seconds after step 1 within which the later steps must happen.
    pub window: i64,
}

/// Parses and checks a funnel file: a JSON list of
/// `{"name": ..., "steps": [{"event": ..., "where": {...}}, ...], "window": "7d"}`.
/// Errors name the funnel (number from 1, and name), the step and the field.
pub fn parse_funnels(text: &str) -> Result<Vec<Funnel>> {
    let value: sonic_rs::Value =
        sonic_rs::from_str(text).map_err(|e| anyhow::anyhow!("not valid JSON: {e}"))?;
    let Some(list) = value.as_array() else {
        bail!(
            "expected a JSON list of funnels, like \
             [{{\"name\": \"signup\", \"steps\": [{{\"event\": \"visited site\"}}, {{\"event\": \"signed up\"}}]}}]"
        );
    };
    if list.is_empty() {
        bail!("the list holds no funnel");
    }
    list.iter()
        .enumerate()
        .map(|(i, v)| parse_funnel(i + 1, v))
        .collect()
}

fn parse_funnel(number: usize, v: &sonic_rs::Value) -> Result<Funnel> {
    let Some(obj) = v.as_object() else {
        bail!("funnel #{number}: expected an object with \"name\" and \"steps\", found {v}");
    };
    let name = obj.get(&"name").and_then(|n| n.as_str()).map(str::to_owned);
    let which = match &name {
        Some(n) => format!("funnel #{number} ({n:?})"),
        None => format!("funnel #{number}"),
    };
    for (key, _) in obj.iter() {
        if !matches!(key, "name" | "steps" | "window") {
            bail!(
                "{which}: unknown field {key:?} (a funnel has \"name\", \"steps\" and \"window\")"
            );
        }
    }
    let name = match name {
        Some(n) if !n.trim().is_empty() => n,
        _ => bail!("{which}: \"name\" must be a non-empty string"),
    };
    let steps = match obj.get(&"steps").and_then(|s| s.as_array()) {
        Some(steps) if !steps.is_empty() => steps,
        _ => bail!("{which}: \"steps\" must be a non-empty list of steps"),
    };
    let steps = steps
        .iter()
        .enumerate()
        .map(|(i, s)| parse_step(s).map_err(|e| anyhow::anyhow!("{which}: step {}: {e}", i + 1)))
        .collect::<Result<Vec<Step>>>()?;
    let window = match obj.get(&"window") {
        None => DEFAULT_WINDOW,
        Some(w) if w.is_str() => parse_duration(w.as_str().unwrap_or_default())
            .map_err(|e| anyhow::anyhow!("{which}: \"window\": {e}"))?,
        Some(w) => match w.as_u64() {
            Some(secs) if secs <= super::time::END_T as u64 => secs as i64,
            _ => bail!("{which}: \"window\" must be a duration like \"7d\", \"12h\", \"30m\" or a number of seconds, found {w}"),
        },
    };
    Ok(Funnel {
        name,
        steps,
        window,
    })
}

fn parse_step(v: &sonic_rs::Value) -> Result<Step> {
    let Some(obj) = v.as_object() else {
        bail!("expected an object like {{\"event\": \"signed up\"}}, found {v}");
    };
    for (key, _) in obj.iter() {
        if !matches!(key, "event" | "where") {
            bail!("unknown field {key:?} (a step has \"event\" and \"where\")");
        }
    }
    let event = match obj.get(&"event").and_then(|e| e.as_str()) {
        Some(e) if !e.is_empty() => cut_255(e).to_owned(),
        _ => bail!("\"event\" must be a non-empty string"),
    };
    let mut conditions = Vec::new();
    if let Some(w) = obj.get(&"where") {
        let Some(pairs) = w.as_object() else {
            bail!("\"where\" must be an object of property names and values, like {{\"Plan\": \"gold\"}}, found {w}");
        };
        for (key, value) in pairs.iter() {
            if key.is_empty() {
                bail!("\"where\" has an empty property name");
            }
            conditions.push((cut_255(key).to_owned(), where_value(key, value)?));
        }
    }
    Ok(Step { event, conditions })
}

/// A `where` value as the loader stores it: a string as is, a number as its
/// JSON text, `true` / `false`.
fn where_value(key: &str, v: &sonic_rs::Value) -> Result<String> {
    if let Some(s) = v.as_str() {
        Ok(cut_255(s).to_owned())
    } else if v.is_number() || v.is_boolean() {
        Ok(v.to_string())
    } else {
        bail!("\"where\" value of {key:?} must be a string, a number or true/false, found {v}")
    }
}

impl Step {
    /// `Video View [video=v1, lang=en]`, for tables and charts.
    pub fn label(&self) -> String {
        if self.conditions.is_empty() {
            return self.event.clone();
        }
        let pairs: Vec<String> = self
            .conditions
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("{} [{}]", self.event, pairs.join(", "))
    }
}

impl Funnel {
    pub fn window_text(&self) -> String {
        format_duration(self.window)
    }
}

/// What one funnel gave: people per step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunnelResult {
    pub funnel: Funnel,
    /// People who reached each step (steps 1..k all matched).
    pub users: Vec<u64>,
}

impl FunnelResult {
    /// Conversion of step `k` (from 0) from step 1: 0 when nobody entered.
    pub fn from_first(&self, k: usize) -> f64 {
        ratio(self.users[k], self.users[0])
    }

    /// Conversion of step `k` (from 0) from the step before (step 1: 1, or 0
    /// when nobody entered).
    pub fn from_previous(&self, k: usize) -> f64 {
        ratio(self.users[k], self.users[k.saturating_sub(1)])
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    funnel: u32,
    step: u32,
}

/// The funnels of a run, resolved to key ids and indexed for the pass.
#[derive(Debug)]
pub struct FunnelSet {
    funnels: Vec<Funnel>,
    /// Per funnel, per step: the conditions it needs (sorted), or `None`
    /// when its event or a `where` key is not in `keys` (it never matches).
    needs: Vec<Vec<Option<Box<[u32]>>>>,
    /// Steps without a condition, by event key id.
    plain: Vec<(u32, u32)>,
    /// Steps with conditions, by event key id and their first condition.
    with_cond: FastMap<u64, (u32, u32)>,
    entries: Vec<Entry>,
    /// `--from` / `--to` of step 1.
    from: i64,
    to: i64,
    conditions: Conditions,
    /// The `keys.id` of every event name a step uses.
    names: Vec<u32>,
}

impl FunnelSet {
    /// Resolves names with `keys` (name -> id; absent names never match).
    pub fn new(funnels: Vec<Funnel>, keys: &HashMap<String, u32>, from: i64, to: i64) -> FunnelSet {
        let mut conditions = Conditions::default();
        let mut needs = Vec::with_capacity(funnels.len());
        let mut lists: HashMap<(u32, Option<u32>), Vec<Entry>> = HashMap::new();
        for (f, funnel) in funnels.iter().enumerate() {
            let mut steps = Vec::with_capacity(funnel.steps.len());
            for (s, step) in funnel.steps.iter().enumerate() {
                let need = keys.get(&step.event).and_then(|&n| {
                    let mut conds = step
                        .conditions
                        .iter()
                        .map(|(k, v)| keys.get(k).map(|&key| conditions.add(key, v)))
                        .collect::<Option<Vec<u32>>>()?;
                    let first = conds.first().copied();
                    conds.sort_unstable();
                    conds.dedup();
                    lists.entry((n, first)).or_default().push(Entry {
                        funnel: f as u32,
                        step: s as u32,
                    });
                    Some(conds.into_boxed_slice())
                });
                steps.push(need);
            }
            needs.push(steps);
        }
        let mut entries = Vec::new();
        let mut plain = Vec::new();
        let mut with_cond = FastMap::default();
        let mut names: Vec<u32> = lists.keys().map(|&(n, _)| n).collect();
        names.sort_unstable();
        names.dedup();
        for ((n, cond), list) in lists {
            let range = (entries.len() as u32, list.len() as u32);
            entries.extend(list);
            match cond {
                None => {
                    if plain.len() <= n as usize {
                        plain.resize(n as usize + 1, (0, 0));
                    }
                    plain[n as usize] = range;
                }
                Some(c) => {
                    with_cond.insert(cond_key(n, c), range);
                }
            }
        }
        FunnelSet {
            funnels,
            needs,
            plain,
            with_cond,
            entries,
            from,
            to,
            conditions,
            names,
        }
    }

    /// The event names to read (`keys.id`).
    pub fn names(&self) -> &[u32] {
        &self.names
    }

    pub fn conditions(&self) -> &Conditions {
        &self.conditions
    }

    /// The longest window: events up to `to + max_window` can be later steps.
    pub fn max_window(&self) -> i64 {
        self.funnels.iter().map(|f| f.window).max().unwrap_or(0)
    }

    /// A fresh tally for one worker.
    pub fn tally(&self) -> FunnelTally<'_> {
        let mut offsets = Vec::with_capacity(self.funnels.len());
        let mut total = 0;
        for f in &self.funnels {
            offsets.push(total);
            total += f.steps.len() + 1;
        }
        FunnelTally {
            set: self,
            states: vec![State::default(); self.funnels.len()],
            touched: Vec::new(),
            offsets,
            reached: vec![0; total],
            seq: 0,
        }
    }

    /// People per step of every funnel, in the file's order.
    pub fn results(&self, tally: &FunnelTally<'_>) -> Vec<FunnelResult> {
        self.funnels
            .iter()
            .enumerate()
            .map(|(f, funnel)| {
                let hist = &tally.reached[tally.offsets[f]..][..funnel.steps.len() + 1];
                // users[k]: people who reached step k + 1 or further.
                let mut users = vec![0u64; funnel.steps.len()];
                let mut acc = 0;
                for k in (0..funnel.steps.len()).rev() {
                    acc += hist[k + 1];
                    users[k] = acc;
                }
                FunnelResult {
                    funnel: funnel.clone(),
                    users,
                }
            })
            .collect()
    }
}

fn cond_key(n: u32, cond: u32) -> u64 {
    (u64::from(n) << 32) | u64::from(cond)
}

#[derive(Clone, Copy, Debug)]
struct State {
    /// Steps matched so far.
    reached: u32,
    /// Last second a later step may happen: t(step 1) + window.
    deadline: i64,
    /// The event that last advanced it, so one event advances a funnel once.
    seq: u64,
}

impl Default for State {
    fn default() -> State {
        State {
            reached: 0,
            deadline: 0,
            seq: u64::MAX,
        }
    }
}

/// One worker's counts: per funnel, how many people stopped after each
/// number of steps.
pub struct FunnelTally<'a> {
    set: &'a FunnelSet,
    states: Vec<State>,
    /// Funnels a person entered (their states to count and reset).
    touched: Vec<u32>,
    offsets: Vec<usize>,
    reached: Vec<u64>,
    seq: u64,
}

impl FunnelTally<'_> {
    fn visit(&mut self, (start, len): (u32, u32), e: &Event, marks: &[Mark]) {
        let set = self.set;
        for entry in &set.entries[start as usize..][..len as usize] {
            let state = &mut self.states[entry.funnel as usize];
            if state.reached != entry.step || state.seq == self.seq {
                continue;
            }
            if entry.step == 0 {
                if e.t < set.from || e.t >= set.to {
                    continue;
                }
            } else if e.t > state.deadline {
                continue;
            }
            let need = set.needs[entry.funnel as usize][entry.step as usize]
                .as_deref()
                .unwrap_or_default();
            if !satisfies(need, marks) {
                continue;
            }
            if entry.step == 0 {
                let window = set.funnels[entry.funnel as usize].window;
                state.deadline = e.t.saturating_add(window);
                self.touched.push(entry.funnel);
            }
            state.reached += 1;
            state.seq = self.seq;
        }
    }
}

impl Tally for FunnelTally<'_> {
    fn person(&mut self, events: &[Event], marks: &[Mark]) {
        for e in events {
            self.seq += 1;
            let own = marks_of(marks, e.id);
            if let Some(&range) = self.set.plain.get(e.n as usize) {
                if range.1 > 0 {
                    self.visit(range, e, own);
                }
            }
            if !self.set.with_cond.is_empty() {
                for m in own {
                    if let Some(&range) = self.set.with_cond.get(&cond_key(e.n, m.cond)) {
                        self.visit(range, e, own);
                    }
                }
            }
        }
        for f in self.touched.drain(..) {
            let state = &mut self.states[f as usize];
            self.reached[self.offsets[f as usize] + state.reached as usize] += 1;
            *state = State::default();
        }
    }

    fn merge(&mut self, other: Self) {
        for (a, b) in self.reached.iter_mut().zip(other.reached) {
            *a += b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> HashMap<String, u32> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), i as u32 + 1))
            .collect()
    }

    fn ev(user: i64, t: i64, id: i64, n: u32) -> Event {
        Event { user, t, id, n }
    }

    fn funnel(name: &str, steps: &[&str], window: i64) -> Funnel {
        Funnel {
            name: name.into(),
            steps: steps
                .iter()
                .map(|s| Step {
                    event: s.to_string(),
                    conditions: vec![],
                })
                .collect(),
            window,
        }
    }

    /// Users per step of each funnel over one person's events.
    fn run(
        funnels: Vec<Funnel>,
        people: &[(Vec<Event>, Vec<Mark>)],
        from: i64,
        to: i64,
    ) -> Vec<Vec<u64>> {
        let k = keys(&["a", "b", "c", "video", "lang"]);
        let set = FunnelSet::new(funnels, &k, from, to);
        let mut tally = set.tally();
        for (events, marks) in people {
            tally.person(events, marks);
        }
        set.results(&tally).into_iter().map(|r| r.users).collect()
    }

    const A: u32 = 1;
    const B: u32 = 2;
    const C: u32 = 3;

    #[test]
    fn steps_in_order_within_the_window_edges_inclusive() {
        let f = vec![funnel("f", &["a", "b", "c"], 100)];
        // b at exactly t1 + window counts; c one second later does not.
        let p = vec![
            ev(1, 1000, 1, A),
            ev(1, 1050, 2, B),
            ev(1, 1100, 3, B),
            ev(1, 1101, 4, C),
        ];
        assert_eq!(
            run(f.clone(), &[(p, vec![])], 0, i64::MAX),
            vec![vec![1, 1, 0]]
        );
        let p = vec![ev(1, 1000, 1, A), ev(1, 1100, 2, B), ev(1, 1100, 3, C)];
        assert_eq!(
            run(f.clone(), &[(p, vec![])], 0, i64::MAX),
            vec![vec![1, 1, 1]]
        );
        // Out of order: c before b does not count.
        let p = vec![ev(1, 1000, 1, A), ev(1, 1001, 2, C), ev(1, 1002, 3, B)];
        assert_eq!(run(f, &[(p, vec![])], 0, i64::MAX), vec![vec![1, 1, 0]]);
    }

    #[test]
    fn same_second_counts_in_id_order() {
        let f = vec![funnel("f", &["a", "b"], 0)];
        // Same second, b after a by id: reached (window 0 includes t1 itself).
        let p = vec![ev(1, 1000, 1, A), ev(1, 1000, 2, B)];
        assert_eq!(
            run(f.clone(), &[(p, vec![])], 0, i64::MAX),
            vec![vec![1, 1]]
        );
        // Same second, b before a by id: the events arrive in (t, id) order,
        // so b came first and does not follow a.
        let p = vec![ev(1, 1000, 1, B), ev(1, 1000, 2, A)];
        assert_eq!(run(f, &[(p, vec![])], 0, i64::MAX), vec![vec![1, 0]]);
    }

    #[test]
    fn only_the_first_step_one_occurrence_starts_the_funnel() {
        let f = vec![funnel("f", &["a", "b"], 10)];
        // The first a's window passes before b; a later a would have made it.
        let p = vec![ev(1, 1000, 1, A), ev(1, 2000, 2, A), ev(1, 2005, 3, B)];
        assert_eq!(run(f, &[(p, vec![])], 0, i64::MAX), vec![vec![1, 0]]);
    }

    #[test]
    fn one_event_matches_one_step_of_a_funnel() {
        // Two steps on the same event: one event is not both.
        let f = vec![funnel("f", &["a", "a"], 10)];
        let p = vec![ev(1, 1000, 1, A)];
        assert_eq!(
            run(f.clone(), &[(p, vec![])], 0, i64::MAX),
            vec![vec![1, 0]]
        );
        let p = vec![ev(1, 1000, 1, A), ev(1, 1000, 2, A)];
        assert_eq!(run(f, &[(p, vec![])], 0, i64::MAX), vec![vec![1, 1]]);
    }

    #[test]
    fn from_and_to_bound_step_one_only() {
        let f = vec![funnel("f", &["a", "b"], 100)];
        let p = vec![ev(1, 999, 1, A), ev(1, 1000, 2, A), ev(1, 1050, 3, B)];
        // a at 999 is before --from: the a at 1000 is step 1.
        assert_eq!(
            run(f.clone(), &[(p.clone(), vec![])], 1000, 2000),
            vec![vec![1, 1]]
        );
        // --to 1000 excludes the a at 1000 (from <= t < to), keeps 999.
        assert_eq!(
            run(f.clone(), &[(p.clone(), vec![])], 0, 1000),
            vec![vec![1, 1]]
        );
        // b after --to still counts as a later step.
        assert_eq!(
            run(f.clone(), &[(p.clone(), vec![])], 1000, 1001),
            vec![vec![1, 1]]
        );
        assert_eq!(run(f, &[(p, vec![])], 1001, 2000), vec![vec![0, 0]]);
    }

    #[test]
    fn where_conditions_pick_events_and_each_event_visits_its_own_steps() {
        let k = keys(&["a", "b", "c", "video", "lang"]);
        let step = |v: &str| Step {
            event: "a".into(),
            conditions: vec![("video".into(), v.into())],
        };
        let funnels: Vec<Funnel> = (1..=3)
            .map(|i| Funnel {
                name: format!("t{i}"),
                steps: vec![step(&format!("v{i}")), step(&format!("v{}", i + 1))],
                window: 100,
            })
            .collect();
        let set = FunnelSet::new(funnels, &k, 0, i64::MAX);
        let c = |v: &str| set.conditions().lookup(4, v.as_bytes()).unwrap();
        let (v1, v2, v3) = (c("v1"), c("v2"), c("v3"));
        let mark = |event, cond| Mark {
            user: 1,
            event,
            cond,
        };
        let events = vec![ev(1, 10, 1, A), ev(1, 11, 2, A), ev(1, 12, 3, A)];
        let mut marks = vec![mark(1, v1), mark(2, v2), mark(3, v3)];
        marks.sort_by_key(|m| (m.event, m.cond));
        let mut tally = set.tally();
        tally.person(&events, &marks);
        let users: Vec<Vec<u64>> = set.results(&tally).into_iter().map(|r| r.users).collect();
        // t1: v1 then v2; t2: v2 then v3; t3: v3, then no v4.
        assert_eq!(users, vec![vec![1, 1], vec![1, 1], vec![1, 0]]);
    }

    #[test]
    fn all_where_pairs_must_hold_and_unknown_names_never_match() {
        let k = keys(&["a", "b", "c", "video", "lang"]);
        let both = Step {
            event: "a".into(),
            conditions: vec![("video".into(), "v1".into()), ("lang".into(), "en".into())],
        };
        let blacklisted = Step {
            event: "a".into(),
            conditions: vec![("Screen".into(), "1".into())],
        };
        let unknown = Step {
            event: "never seen".into(),
            conditions: vec![],
        };
        let funnels = vec![
            Funnel {
                name: "both".into(),
                steps: vec![both],
                window: 1,
            },
            Funnel {
                name: "blacklisted".into(),
                steps: vec![blacklisted],
                window: 1,
            },
            Funnel {
                name: "unknown".into(),
                steps: vec![unknown],
                window: 1,
            },
        ];
        let set = FunnelSet::new(funnels, &k, 0, i64::MAX);
        let v1 = set.conditions().lookup(4, b"v1").unwrap();
        let en = set.conditions().lookup(5, b"en").unwrap();
        let mark = |event, cond| Mark {
            user: 1,
            event,
            cond,
        };
        let mut tally = set.tally();
        // Person 1: only video=v1. Person 2: both.
        tally.person(&[ev(1, 10, 1, A)], &[mark(1, v1)]);
        let mut marks = vec![mark(2, v1), mark(2, en)];
        marks.sort_by_key(|m| m.cond);
        tally.person(&[ev(2, 10, 2, A)], &marks);
        let users: Vec<Vec<u64>> = set.results(&tally).into_iter().map(|r| r.users).collect();
        assert_eq!(users, vec![vec![1], vec![0], vec![0]]);
        assert_eq!(set.names(), &[A]);
    }

    #[test]
    fn people_are_counted_once_and_tallies_merge() {
        let f = vec![funnel("f", &["a", "b"], 100), funnel("g", &["b"], 100)];
        let k = keys(&["a", "b", "c"]);
        let set = FunnelSet::new(f, &k, 0, i64::MAX);
        let mut one = set.tally();
        one.person(
            &[
                ev(1, 1, 1, A),
                ev(1, 2, 2, B),
                ev(1, 3, 3, A),
                ev(1, 4, 4, B),
            ],
            &[],
        );
        let mut two = set.tally();
        two.person(&[ev(2, 1, 5, A)], &[]);
        two.person(&[ev(3, 1, 6, B)], &[]);
        one.merge(two);
        let users: Vec<Vec<u64>> = set.results(&one).into_iter().map(|r| r.users).collect();
        assert_eq!(users, vec![vec![2, 1], vec![2]]);
    }

    #[test]
    fn parses_a_funnel_file() {
        let text = r#"[{"name": "tutorial 17",
          "steps": [{"event": "Video View", "where": {"video": "v1", "n": 2, "ok": true}},
                    {"event": "Video View", "where": {"video": "v2"}}],
          "window": "7d"},
          {"name": "plain", "steps": [{"event": "a"}], "window": 60}]"#;
        let f = parse_funnels(text).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].name, "tutorial 17");
        assert_eq!(f[0].window, 7 * 86_400);
        assert_eq!(
            f[0].steps[0].conditions,
            vec![
                ("video".to_string(), "v1".to_string()),
                ("n".to_string(), "2".to_string()),
                ("ok".to_string(), "true".to_string())
            ]
        );
        assert_eq!(f[0].steps[0].label(), "Video View [video=v1, n=2, ok=true]");
        assert_eq!(f[1].window, 60);
        assert_eq!(f[1].steps[0].label(), "a");
        let f = parse_funnels(r#"[{"name": "d", "steps": [{"event": "a"}]}]"#).unwrap();
        assert_eq!(f[0].window, DEFAULT_WINDOW);
        assert_eq!(f[0].window_text(), "30d");
    }

    #[test]
    fn funnel_file_errors_name_the_funnel_and_the_field() {
        let cases = [
            ("{}", "expected a JSON list of funnels"),
            ("[]", "the list holds no funnel"),
            ("[1", "not valid JSON"),
            ("[3]", "funnel #1: expected an object with \"name\" and \"steps\", found 3"),
            (r#"[{"steps": [{"event": "a"}]}]"#, "funnel #1: \"name\" must be a non-empty string"),
            (r#"[{"name": "x", "steps": [{"event": "a"}]}, {"name": "y"}]"#,
             "funnel #2 (\"y\"): \"steps\" must be a non-empty list of steps"),
            (r#"[{"name": "y", "steps": []}]"#, "funnel #1 (\"y\"): \"steps\" must be a non-empty list"),
            (r#"[{"name": "y", "steps": [{"event": "a"}], "windows": "7d"}]"#,
             "funnel #1 (\"y\"): unknown field \"windows\""),
            (r#"[{"name": "y", "steps": [{"event": "a"}, {"name": "b"}]}]"#,
             "funnel #1 (\"y\"): step 2: unknown field \"name\""),
            (r#"[{"name": "y", "steps": [{"event": "a"}, {"event": ""}]}]"#,
             "funnel #1 (\"y\"): step 2: \"event\" must be a non-empty string"),
            (r#"[{"name": "y", "steps": [{"event": "a", "where": ["x"]}]}]"#,
             "funnel #1 (\"y\"): step 1: \"where\" must be an object"),
            (r#"[{"name": "y", "steps": [{"event": "a", "where": {"v": null}}]}]"#,
             "funnel #1 (\"y\"): step 1: \"where\" value of \"v\" must be a string, a number or true/false, found null"),
            (r#"[{"name": "y", "steps": [{"event": "a"}], "window": "7w"}]"#,
             "funnel #1 (\"y\"): \"window\": \"7w\" is not a duration"),
            (r#"[{"name": "y", "steps": [{"event": "a"}], "window": -5}]"#,
             "funnel #1 (\"y\"): \"window\" must be a duration"),
        ];
        for (text, want) in cases {
            let err = format!("{:#}", parse_funnels(text).unwrap_err());
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    mod model {
        use super::*;
        use proptest::prelude::*;

        /// An event of the model: time, name, and the values of property `p`
        /// it holds (at most one each of x, y).
        type ModelEvent = (i64, &'static str, Vec<&'static str>);

        fn matches(e: &ModelEvent, step: &Step) -> bool {
            e.1 == step.event
                && step
                    .conditions
                    .iter()
                    .all(|(k, v)| k == "p" && e.2.iter().any(|have| have == v))
        }

        /// SPEC 9 read literally, one person at a time.
        fn reached(events: &[ModelEvent], f: &Funnel, from: i64, to: i64) -> usize {
            let mut k = 0;
            let mut t1 = 0;
            for e in events {
                if k == f.steps.len() {
                    break;
                }
                if k == 0 {
                    if from <= e.0 && e.0 < to && matches(e, &f.steps[0]) {
                        k = 1;
                        t1 = e.0;
                    }
                } else if e.0 <= t1 + f.window && matches(e, &f.steps[k]) {
                    k += 1;
                }
            }
            k
        }

        fn step() -> impl Strategy<Value = Step> {
            (
                prop::sample::select(vec!["a", "b", "c", "z"]),
                prop::sample::select(vec![
                    vec![],
                    vec![("p", "x")],
                    vec![("p", "y")],
                    vec![("p", "x"), ("p", "y")],
                    vec![("q", "x")],
                ]),
            )
                .prop_map(|(event, conds)| Step {
                    event: event.into(),
                    conditions: conds
                        .into_iter()
                        .map(|(k, v)| (k.into(), v.into()))
                        .collect(),
                })
        }

        fn funnel() -> impl Strategy<Value = Funnel> {
            (prop::collection::vec(step(), 1..5), 0i64..12).prop_map(|(steps, window)| Funnel {
                name: "f".into(),
                steps,
                window,
            })
        }

        fn person() -> impl Strategy<Value = Vec<ModelEvent>> {
            prop::collection::vec(
                (
                    0i64..25,
                    prop::sample::select(vec!["a", "b", "c", "d"]),
                    prop::sample::select(vec![vec![], vec!["x"], vec!["y"], vec!["x", "y"]]),
                ),
                0..14,
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(400))]
            #[test]
            fn the_indexed_pass_counts_what_the_spec_says(
                funnels in prop::collection::vec(funnel(), 1..6),
                people in prop::collection::vec(person(), 1..6),
                from in 0i64..8,
                span in 1i64..30,
            ) {
                let to = from + span;
                // "p" is a key, "q" is not (never loaded); "d" is an event
                // no funnel names, "z" one never loaded.
                let keys: HashMap<String, u32> =
                    [("a", 1), ("b", 2), ("c", 3), ("d", 4), ("p", 10)]
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect();
                let set = FunnelSet::new(funnels.clone(), &keys, from, to);
                let mut tally = set.tally();
                let mut want: Vec<Vec<u64>> =
                    funnels.iter().map(|f| vec![0; f.steps.len()]).collect();
                let mut id = 0;
                for (user, raw) in people.iter().enumerate() {
                    // Ids rise in generation order; the person's events in
                    // (t, id) order, as the reader hands them over.
                    let mut evs: Vec<(i64, i64, &ModelEvent)> = raw
                        .iter()
                        .map(|e| {
                            id += 1;
                            (e.0, id, e)
                        })
                        .collect();
                    evs.sort_by_key(|&(t, id, _)| (t, id));
                    let events: Vec<Event> = evs
                        .iter()
                        .map(|&(t, id, e)| Event { user: user as i64, t, id, n: keys[e.1] })
                        .collect();
                    let conditions = set.conditions();
                    let mut marks: Vec<Mark> = evs
                        .iter()
                        .flat_map(|&(_, id, e)| {
                            e.2.iter().filter_map(move |v| {
                                conditions.lookup(10, v.as_bytes()).map(|cond| Mark {
                                    user: user as i64,
                                    event: id,
                                    cond,
                                })
                            })
                        })
                        .collect();
                    marks.sort_by_key(|m| (m.event, m.cond));
                    tally.person(&events, &marks);
                    let ordered: Vec<ModelEvent> = evs.iter().map(|&(_, _, e)| e.clone()).collect();
                    for (f, funnel) in funnels.iter().enumerate() {
                        let k = reached(&ordered, funnel, from, to);
                        for n in &mut want[f][..k] {
                            *n += 1;
                        }
                    }
                }
                let got: Vec<Vec<u64>> = set.results(&tally).into_iter().map(|r| r.users).collect();
                prop_assert_eq!(got, want);
            }
        }
    }
}
