//! The run's scheduling decisions as a pure state machine: which stage is
//! ready, which is skipped and why, which may start now under the job limit,
//! and when the run is over. It knows stage indices, upstream edges, the
//! `--only` selection, the job limit and the failure policy; it does no I/O,
//! starts no thread and never sees the cache. The engine drives it: it asks
//! [`Scheduler::next_action`] for an action, carries it out (computes a key and looks
//! it up, starts a stage, waits for one) and feeds the result back.

use std::collections::BTreeSet;

/// What the run does when a stage fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Start nothing more once a stage failed: stages already running finish,
    /// every other stage is skipped as soon as its upstream is settled.
    StopAtFirstFailure,
    /// Keep running every stage that does not depend on a failed one.
    KeepGoing,
}

/// One stage as the scheduler sees it.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    /// Indices of the stages whose outputs this one reads (repeats allowed).
    pub upstream: Vec<usize>,
    /// Selected by `--only` (with its upstream), or every stage without it.
    pub selected: bool,
}

/// Why a stage is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    NotSelected,
    /// The named upstream stage failed or was skipped.
    UpstreamIncomplete(String),
    /// Another stage failed under [`FailurePolicy::StopAtFirstFailure`].
    StoppedAfterFailure,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::NotSelected => f.write_str("not selected by --only"),
            SkipReason::UpstreamIncomplete(name) => {
                write!(f, "upstream `{name}` did not complete")
            }
            SkipReason::StoppedAfterFailure => {
                f.write_str("not started after another stage failed")
            }
        }
    }
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The stage will not run; it is settled as skipped.
    Skip { stage: usize, reason: SkipReason },
    /// Every upstream stage completed: compute the stage's key and look it up
    /// in the cache, then report [`Scheduler::cached`], [`Scheduler::missed`]
    /// or [`Scheduler::unresolved`] before asking again.
    Lookup(usize),
    /// Start the stage now; report [`Scheduler::finished`] when it ends.
    Start(usize),
    /// Nothing can happen until a running stage finishes.
    WaitForRunning,
    /// Stages remain, nothing runs and none can start (a stage's key could
    /// not be computed although its upstream completed).
    Stalled,
    /// Every stage is settled.
    Done,
}

/// How a settled stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Ran,
    Cached,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Not looked up yet, or looked up again after a stage with its key ended.
    Pending,
    /// A [`Action::Lookup`] is out; its answer has not come back.
    LookingUp,
    /// Not in the cache; waits for a job slot or for a running stage with
    /// the same key.
    Missed {
        key: String,
    },
    /// Its key could not be computed; it waits to be skipped or stalls.
    Unresolved,
    Running {
        key: String,
    },
    Settled(Settled),
}

/// The scheduling state of one run.
#[derive(Debug, Clone)]
pub struct Scheduler {
    nodes: Vec<Node>,
    order: Vec<usize>,
    states: Vec<State>,
    jobs: usize,
    policy: FailurePolicy,
    running: usize,
    /// Keys of the running stages: a second stage with the same key (same
    /// kind, params and inputs) waits, then finds the first one's entry.
    running_keys: BTreeSet<String>,
    stopping: bool,
}

impl Scheduler {
    /// `order` lists every stage index once, upstream before downstream;
    /// `jobs` is the most stages running at once (at least one).
    pub fn new(nodes: Vec<Node>, order: Vec<usize>, jobs: usize, policy: FailurePolicy) -> Self {
        let states = vec![State::Pending; nodes.len()];
        Scheduler {
            nodes,
            order,
            states,
            jobs: jobs.max(1),
            policy,
            running: 0,
            running_keys: BTreeSet::new(),
            stopping: false,
        }
    }

    /// The next action, considering stages in topological order. The first
    /// stage that can move decides; an action is applied to the state at
    /// once (a skipped stage is settled, a started one is running).
    pub fn next_action(&mut self) -> Action {
        let mut unsettled = false;
        for position in 0..self.order.len() {
            let index = self.order[position];
            let state = &self.states[index];
            if !matches!(
                state,
                State::Pending | State::Missed { .. } | State::Unresolved
            ) {
                unsettled |= !matches!(state, State::Settled(_));
                continue;
            }
            unsettled = true;
            let node = &self.nodes[index];
            if !node.selected {
                return self.skip(index, SkipReason::NotSelected);
            }
            if let Some(&bad) = node.upstream.iter().find(|&&u| {
                matches!(
                    self.states[u],
                    State::Settled(Settled::Failed | Settled::Skipped)
                )
            }) {
                let name = self.nodes[bad].name.clone();
                return self.skip(index, SkipReason::UpstreamIncomplete(name));
            }
            let upstream_settled = node
                .upstream
                .iter()
                .all(|&u| matches!(self.states[u], State::Settled(_)));
            if self.stopping {
                if upstream_settled {
                    return self.skip(index, SkipReason::StoppedAfterFailure);
                }
                continue;
            }
            if !upstream_settled {
                continue;
            }
            match &self.states[index] {
                State::Pending => {
                    self.states[index] = State::LookingUp;
                    return Action::Lookup(index);
                }
                State::Missed { key }
                    if self.running < self.jobs && !self.running_keys.contains(key) =>
                {
                    let key = key.clone();
                    self.running += 1;
                    self.running_keys.insert(key.clone());
                    self.states[index] = State::Running { key };
                    return Action::Start(index);
                }
                _ => {}
            }
        }
        if !unsettled {
            Action::Done
        } else if self.running > 0 {
            Action::WaitForRunning
        } else {
            Action::Stalled
        }
    }

    /// The looked-up stage has a verified cache entry: it completed.
    pub fn cached(&mut self, stage: usize) {
        self.answer(stage, State::Settled(Settled::Cached));
    }

    /// The looked-up stage (key `key`) must run.
    pub fn missed(&mut self, stage: usize, key: String) {
        self.answer(stage, State::Missed { key });
    }

    /// The looked-up stage's key could not be computed.
    pub fn unresolved(&mut self, stage: usize) {
        self.answer(stage, State::Unresolved);
    }

    /// A started stage ended. Stages waiting on its key are looked up again
    /// (after a success they find its entry).
    pub fn finished(&mut self, stage: usize, succeeded: bool) {
        let State::Running { key } = &self.states[stage] else {
            return;
        };
        let key = key.clone();
        self.running -= 1;
        self.running_keys.remove(&key);
        for state in &mut self.states {
            if matches!(state, State::Missed { key: waiting } if *waiting == key) {
                *state = State::Pending;
            }
        }
        self.states[stage] = State::Settled(if succeeded {
            Settled::Ran
        } else {
            Settled::Failed
        });
        if !succeeded && self.policy == FailurePolicy::StopAtFirstFailure {
            self.stopping = true;
        }
    }

    /// How `stage` ended, once it is settled.
    pub fn settled(&self, stage: usize) -> Option<Settled> {
        match self.states.get(stage) {
            Some(State::Settled(settled)) => Some(*settled),
            _ => None,
        }
    }

    /// Stages running now.
    pub fn running(&self) -> usize {
        self.running
    }

    fn skip(&mut self, stage: usize, reason: SkipReason) -> Action {
        self.states[stage] = State::Settled(Settled::Skipped);
        Action::Skip { stage, reason }
    }

    fn answer(&mut self, stage: usize, state: State) {
        if self.states.get(stage) == Some(&State::LookingUp) {
            self.states[stage] = state;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, VecDeque};

    use super::FailurePolicy::{KeepGoing, StopAtFirstFailure};
    use super::*;

    type Stages<'a> = &'a [(&'a str, &'a [&'a str])];

    /// Stages in topological order as `(name, upstream names)`.
    fn scheduler(stages: Stages, jobs: usize, policy: FailurePolicy) -> Scheduler {
        let index = |name: &str| stages.iter().position(|(n, _)| *n == name).unwrap();
        let nodes = stages
            .iter()
            .map(|(name, upstream)| Node {
                name: (*name).to_owned(),
                upstream: upstream.iter().map(|u| index(u)).collect(),
                selected: true,
            })
            .collect();
        Scheduler::new(nodes, (0..stages.len()).collect(), jobs, policy)
    }

    /// A driver with a fake cache: a stage's key is `key-NAME` unless set,
    /// keys in `cached` are hits, a stage that runs puts its key there unless
    /// it is `failing`, running stages end first-started first. `run`
    /// returns one line per skip, cache hit, start and end.
    struct Sim {
        machine: Scheduler,
        names: Vec<String>,
        keys: Vec<String>,
        cached: BTreeSet<String>,
        failing: BTreeSet<String>,
        running: VecDeque<usize>,
        most_running: usize,
    }

    impl Sim {
        fn new(stages: Stages, jobs: usize, policy: FailurePolicy) -> Sim {
            Sim {
                machine: scheduler(stages, jobs, policy),
                names: stages.iter().map(|(n, _)| (*n).to_owned()).collect(),
                keys: stages.iter().map(|(n, _)| format!("key-{n}")).collect(),
                cached: BTreeSet::new(),
                failing: BTreeSet::new(),
                running: VecDeque::new(),
                most_running: 0,
            }
        }

        fn index(&self, stage: &str) -> usize {
            self.names.iter().position(|n| n == stage).unwrap()
        }

        fn key(mut self, stage: &str, key: &str) -> Sim {
            let i = self.index(stage);
            self.keys[i] = key.to_owned();
            self
        }

        fn cached(mut self, stage: &str) -> Sim {
            let key = self.keys[self.index(stage)].clone();
            self.cached.insert(key);
            self
        }

        fn failing(mut self, stage: &str) -> Sim {
            self.failing.insert(stage.to_owned());
            self
        }

        fn unselected(mut self, stage: &str) -> Sim {
            let i = self.index(stage);
            self.machine.nodes[i].selected = false;
            self
        }

        fn run(&mut self) -> Vec<String> {
            let mut trace = Vec::new();
            for _ in 0..1000 {
                match self.machine.next_action() {
                    Action::Skip { stage, reason } => {
                        trace.push(format!("skip {}: {reason}", self.names[stage]));
                    }
                    Action::Lookup(stage) => {
                        let key = self.keys[stage].clone();
                        if self.cached.contains(&key) {
                            trace.push(format!("cached {}", self.names[stage]));
                            self.machine.cached(stage);
                        } else {
                            self.machine.missed(stage, key);
                        }
                    }
                    Action::Start(stage) => {
                        trace.push(format!("start {}", self.names[stage]));
                        self.running.push_back(stage);
                        assert_eq!(self.machine.running(), self.running.len());
                        self.most_running = self.most_running.max(self.running.len());
                    }
                    Action::WaitForRunning => {
                        let stage = self.running.pop_front().unwrap();
                        let name = self.names[stage].clone();
                        let ok = !self.failing.contains(&name);
                        if ok {
                            self.cached.insert(self.keys[stage].clone());
                        }
                        trace.push(format!("{} {name}", if ok { "ran" } else { "failed" }));
                        self.machine.finished(stage, ok);
                    }
                    Action::Stalled => {
                        trace.push("stalled".to_owned());
                        return trace;
                    }
                    Action::Done => {
                        for (i, name) in self.names.iter().enumerate() {
                            assert!(self.machine.settled(i).is_some(), "{name} not settled");
                        }
                        return trace;
                    }
                }
            }
            panic!("no end after 1000 actions: {trace:?}");
        }
    }

    #[test]
    fn a_stage_is_looked_up_only_after_its_upstream_completed() {
        let mut m = scheduler(
            &[("a", &[]), ("b", &["a"]), ("c", &["b"])],
            4,
            StopAtFirstFailure,
        );
        assert_eq!(m.next_action(), Action::Lookup(0));
        m.missed(0, "ka".into());
        assert_eq!(m.next_action(), Action::Start(0));
        assert_eq!(m.next_action(), Action::WaitForRunning);
        assert_eq!(m.settled(1), None);
        m.finished(0, true);
        assert_eq!(m.settled(0), Some(Settled::Ran));
        assert_eq!(m.next_action(), Action::Lookup(1));
        m.cached(1);
        assert_eq!(m.settled(1), Some(Settled::Cached));
        assert_eq!(m.next_action(), Action::Lookup(2));
        m.missed(2, "kc".into());
        assert_eq!(m.next_action(), Action::Start(2));
        assert_eq!(m.next_action(), Action::WaitForRunning);
        m.finished(2, true);
        assert_eq!(m.next_action(), Action::Done);
    }

    #[test]
    fn cached_stages_settle_without_starting() {
        let stages: Stages = &[("a", &[]), ("b", &["a"]), ("c", &["b"])];
        let mut sim = Sim::new(stages, 2, StopAtFirstFailure)
            .cached("a")
            .cached("b");
        assert_eq!(sim.run(), ["cached a", "cached b", "start c", "ran c"]);
        let mut all = Sim::new(stages, 2, StopAtFirstFailure)
            .cached("a")
            .cached("b")
            .cached("c");
        assert_eq!(all.run(), ["cached a", "cached b", "cached c"]);
        assert_eq!(all.most_running, 0);
    }

    #[test]
    fn independent_branches_run_in_parallel_up_to_the_job_limit() {
        let stages: Stages = &[("a", &[]), ("b", &[]), ("c", &[]), ("d", &[])];
        let mut m = scheduler(stages, 2, StopAtFirstFailure);
        assert_eq!(m.next_action(), Action::Lookup(0));
        m.missed(0, "ka".into());
        assert_eq!(m.next_action(), Action::Start(0));
        assert_eq!(m.next_action(), Action::Lookup(1));
        m.missed(1, "kb".into());
        assert_eq!(m.next_action(), Action::Start(1));
        assert_eq!(m.next_action(), Action::Lookup(2));
        m.missed(2, "kc".into());
        assert_eq!(m.next_action(), Action::Lookup(3));
        m.missed(3, "kd".into());
        assert_eq!(m.running(), 2);
        assert_eq!(m.next_action(), Action::WaitForRunning);
        m.finished(1, true);
        assert_eq!(m.next_action(), Action::Start(2));
        assert_eq!(m.next_action(), Action::WaitForRunning);

        let mut sim = Sim::new(stages, 3, StopAtFirstFailure);
        assert_eq!(
            sim.run(),
            [
                "start a", "start b", "start c", "ran a", "start d", "ran b", "ran c", "ran d"
            ]
        );
        assert_eq!(sim.most_running, 3);
    }

    #[test]
    fn the_job_limit_is_never_exceeded_and_zero_means_one() {
        let stages: Stages = &[
            ("a", &[]),
            ("b", &[]),
            ("c", &["a"]),
            ("d", &[]),
            ("e", &[]),
        ];
        for (jobs, most) in [(0, 1), (1, 1), (2, 2), (3, 3), (8, 4)] {
            let mut sim = Sim::new(stages, jobs, StopAtFirstFailure);
            let trace = sim.run();
            assert_eq!(trace.iter().filter(|l| l.starts_with("ran ")).count(), 5);
            assert_eq!(sim.most_running, most, "jobs {jobs}: {trace:?}");
        }
        let mut one = Sim::new(stages, 0, StopAtFirstFailure);
        assert_eq!(
            one.run(),
            [
                "start a", "ran a", "start b", "ran b", "start c", "ran c", "start d", "ran d",
                "start e", "ran e"
            ]
        );
    }

    #[test]
    fn a_failed_upstream_skips_everything_downstream_naming_it() {
        let stages: Stages = &[("a", &[]), ("b", &["a"]), ("c", &["b"])];
        let mut sim = Sim::new(stages, 2, KeepGoing).failing("a");
        assert_eq!(
            sim.run(),
            [
                "start a",
                "failed a",
                "skip b: upstream `a` did not complete",
                "skip c: upstream `b` did not complete",
            ]
        );
        assert_eq!(sim.machine.settled(0), Some(Settled::Failed));
        assert_eq!(sim.machine.settled(1), Some(Settled::Skipped));
        assert_eq!(sim.machine.settled(2), Some(Settled::Skipped));
    }

    #[test]
    fn the_first_incomplete_upstream_in_input_order_is_named() {
        let stages: Stages = &[("a", &[]), ("b", &[]), ("c", &["a", "b"])];
        let mut sim = Sim::new(stages, 2, KeepGoing).failing("a").failing("b");
        assert_eq!(
            sim.run(),
            [
                "start a",
                "start b",
                "failed a",
                "skip c: upstream `a` did not complete",
                "failed b",
            ]
        );
    }

    #[test]
    fn stages_not_selected_are_skipped_and_the_rest_runs() {
        let stages: Stages = &[("a", &[]), ("b", &["a"]), ("c", &[]), ("d", &["c"])];
        let mut sim = Sim::new(stages, 2, StopAtFirstFailure)
            .unselected("c")
            .unselected("d");
        assert_eq!(
            sim.run(),
            [
                "start a",
                "skip c: not selected by --only",
                "skip d: not selected by --only",
                "ran a",
                "start b",
                "ran b",
            ]
        );
    }

    #[test]
    fn after_a_failure_nothing_new_starts_and_running_stages_finish() {
        // b fails while a still runs; c waits for a to settle, then is
        // skipped; d (independent, queued behind the job limit) never starts.
        let stages: Stages = &[("b", &[]), ("a", &[]), ("c", &["a"]), ("d", &[])];
        let mut sim = Sim::new(stages, 2, StopAtFirstFailure).failing("b");
        assert_eq!(
            sim.run(),
            [
                "start b",
                "start a",
                "failed b",
                "skip d: not started after another stage failed",
                "ran a",
                "skip c: not started after another stage failed",
            ]
        );
        assert_eq!(sim.machine.settled(1), Some(Settled::Ran));
    }

    #[test]
    fn keep_going_runs_everything_that_does_not_depend_on_a_failure() {
        let stages: Stages = &[
            ("b", &[]),
            ("a", &[]),
            ("c", &["a"]),
            ("d", &[]),
            ("e", &["b"]),
        ];
        let mut sim = Sim::new(stages, 2, KeepGoing).failing("b");
        assert_eq!(
            sim.run(),
            [
                "start b",
                "start a",
                "failed b",
                "start d",
                "skip e: upstream `b` did not complete",
                "ran a",
                "start c",
                "ran d",
                "ran c",
            ]
        );
    }

    #[test]
    fn a_second_stage_with_the_same_key_waits_then_is_a_cache_hit() {
        let stages: Stages = &[("a", &[]), ("b", &[]), ("c", &["b"])];
        let mut m = scheduler(stages, 4, StopAtFirstFailure);
        assert_eq!(m.next_action(), Action::Lookup(0));
        m.missed(0, "same".into());
        assert_eq!(m.next_action(), Action::Start(0));
        assert_eq!(m.next_action(), Action::Lookup(1));
        m.missed(1, "same".into());
        // A job slot is free, but the key is being computed.
        assert_eq!(m.next_action(), Action::WaitForRunning);
        m.finished(0, true);
        assert_eq!(m.next_action(), Action::Lookup(1));
        m.cached(1);
        assert_eq!(m.next_action(), Action::Lookup(2));

        let mut sim = Sim::new(stages, 4, StopAtFirstFailure)
            .key("a", "same")
            .key("b", "same");
        assert_eq!(
            sim.run(),
            ["start a", "ran a", "cached b", "start c", "ran c"]
        );
    }

    #[test]
    fn a_stage_waiting_on_a_key_that_failed_runs_itself_when_keeping_going() {
        let stages: Stages = &[("a", &[]), ("b", &[])];
        let mut sim = Sim::new(stages, 2, KeepGoing)
            .key("a", "same")
            .key("b", "same")
            .failing("a");
        assert_eq!(sim.run(), ["start a", "failed a", "start b", "ran b"]);
        let mut stop = Sim::new(stages, 2, StopAtFirstFailure)
            .key("a", "same")
            .key("b", "same")
            .failing("a");
        assert_eq!(
            stop.run(),
            [
                "start a",
                "failed a",
                "skip b: not started after another stage failed"
            ]
        );
    }

    #[test]
    fn a_diamond_joins_after_both_branches() {
        let stages: Stages = &[("a", &[]), ("b", &["a"]), ("c", &["a"]), ("d", &["b", "c"])];
        let mut sim = Sim::new(stages, 2, StopAtFirstFailure);
        assert_eq!(
            sim.run(),
            [
                "start a", "ran a", "start b", "start c", "ran b", "ran c", "start d", "ran d"
            ]
        );
        assert_eq!(sim.most_running, 2);

        let mut cached_branch = Sim::new(stages, 2, StopAtFirstFailure)
            .cached("a")
            .cached("c");
        assert_eq!(
            cached_branch.run(),
            [
                "cached a", "start b", "cached c", "ran b", "start d", "ran d"
            ]
        );

        let mut failed_branch = Sim::new(stages, 2, KeepGoing).failing("c");
        assert_eq!(
            failed_branch.run(),
            [
                "start a",
                "ran a",
                "start b",
                "start c",
                "ran b",
                "failed c",
                "skip d: upstream `c` did not complete",
            ]
        );
    }

    #[test]
    fn a_stage_whose_key_cannot_be_computed_stalls_the_run() {
        let mut m = scheduler(&[("a", &[]), ("b", &[])], 2, StopAtFirstFailure);
        assert_eq!(m.next_action(), Action::Lookup(0));
        m.unresolved(0);
        assert_eq!(m.next_action(), Action::Lookup(1));
        m.missed(1, "kb".into());
        assert_eq!(m.next_action(), Action::Start(1));
        assert_eq!(m.next_action(), Action::WaitForRunning);
        m.finished(1, true);
        assert_eq!(m.next_action(), Action::Stalled);
        assert_eq!(m.settled(0), None);
    }

    #[test]
    fn an_unresolved_stage_is_skipped_once_the_run_stops() {
        let mut m = scheduler(&[("a", &[]), ("b", &[])], 2, StopAtFirstFailure);
        assert_eq!(m.next_action(), Action::Lookup(0));
        m.unresolved(0);
        assert_eq!(m.next_action(), Action::Lookup(1));
        m.missed(1, "kb".into());
        assert_eq!(m.next_action(), Action::Start(1));
        m.finished(1, false);
        assert_eq!(
            m.next_action(),
            Action::Skip {
                stage: 0,
                reason: SkipReason::StoppedAfterFailure
            }
        );
        assert_eq!(m.next_action(), Action::Done);
    }
}
