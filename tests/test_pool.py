"""The pool model (ultrarun._pool) with the worker's inbox (ultrarun.worker.Inbox): pure, with an
injected clock, no threads. A small simulated network between them can lose any message, so
the repairs that the stall, the lost answer and the healed partition need are shown here in
milliseconds, and the end-to-end tests (test_healing.py) show them on real processes."""
from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ultrarun._pool import Pool
from ultrarun.lifecycle import JobStateError, RetryPolicy, move
from ultrarun.errors import ConfigurationError
from ultrarun.job import Job, JobStatus
from ultrarun.protocol import JobMessage, Report, ResultMessage
from ultrarun.worker import Inbox

D = "PYRO:dispatcher@d:1"


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def monotonic(self) -> float:
        return self.t

    def time(self) -> float:
        return 1_000_000.0 + self.t


class Sim:
    """A pool and workers (their inboxes), joined by a network the test may make lose
    messages. ``calls`` and ``pings`` go the way the real ones do (see the dispatcher)."""

    def __init__(self, n_workers: int = 2, prefetch: int = 0, max_retries: int = 3):
        self.clock = Clock()
        self.pool = Pool(RetryPolicy(max_retries), prefetch, address=D, clock=self.clock)
        self.inboxes = {f"w{i}": Inbox() for i in range(n_workers)}
        self.wire: dict[str, list[dict]] = {name: [] for name in self.inboxes}  # pushes
        self.reported: list[Job] = []
        self._ids = itertools.count()
        for name in self.inboxes:
            self.call(name)

    # the driver's part
    def _after(self) -> None:
        for name, message in self.pool.assign():
            self.wire[name].append(message)
        self.reported.extend(self.pool.take_finished())

    def submit(self, n: int = 1) -> list[Job]:
        jobs = [Job(id=next(self._ids), kwargs={"budget": 1.0}) for _ in range(n)]
        for job in jobs:
            self.pool.submit(job)
        self._after()
        return jobs

    # the network
    def deliver(self, name: str, lose: bool = False) -> None:
        """Pushes on the way to ``name`` arrive (or are lost)."""
        pushes, self.wire[name] = self.wire[name], []
        for message in pushes:
            if not lose:
                self.inboxes[name].accept(JobMessage.from_wire(message))

    def call(self, name: str, lose_answer: bool = False, peer: tuple | None = None) -> None:
        """The worker's call with its waiting results; a lost answer leaves them waiting (the
        worker will send them again), and the dispatcher has processed the call anyway."""
        inbox = self.inboxes[name]
        batch = inbox.take_results()
        items = batch[1] if batch else []
        keys = {key for key, _ in items}
        report = Report.from_wire(inbox.report(D, exclude=keys))
        reply, stale = self.pool.on_call(name, f"uri-{name}", report,
                                         [ResultMessage.from_wire(p) for _, p in items],
                                         peer or ("net", name))
        self._after()
        if lose_answer:
            inbox.results.extendleft(reversed(items))
            return
        inbox.delivered(keys)
        for message in reply:
            inbox.accept(JobMessage.from_wire(message))
        inbox.cancel(D, [list(k) for k in stale])

    def ping(self, name: str, lose_pushes: bool = False, lose_answer: bool = False) -> None:
        """A ping travels behind the pushes queued before it, on the same connection."""
        mark = self.pool.mark()
        self.deliver(name, lose=lose_pushes)
        if lose_answer:
            self.pool.missed(name, "no answer")
            self._after()
            return
        resend, stale = self.pool.on_report(name, Report.from_wire(self.inboxes[name].report(D)),
                                            mark)
        self.wire[name].extend(resend)
        self.inboxes[name].cancel(D, [list(k) for k in stale])
        self._after()

    def work(self, name: str) -> bool:
        """The worker runs its next job to the end; False if it had none."""
        inbox = self.inboxes[name]
        job = inbox.start()
        if job is None:
            return False
        inbox.finish({"token": job.token, "attempt": job.attempt, "status": "SUCCESS",
                      "result": {"loss": float(job.id)}, "exception": None,
                      "duration": 0.5})
        return True

    def heal(self, rounds: int = 12) -> None:
        """No more losses: deliver, ping, work and report until nothing is left."""
        for _ in range(rounds):
            for name in self.inboxes:
                self.deliver(name)
                self.ping(name)
                self.deliver(name)
                while self.work(name):
                    self.call(name)
                    self.deliver(name)
                self.call(name)
            if not self.pool.queue and not self.pool.running:
                return

    def agree(self) -> None:
        """The pool's picture is the workers' word."""
        for name, inbox in self.inboxes.items():
            state = self.pool.workers.get(name)
            mine = set() if state is None else {(D, d.job.token, d.job.attempt)
                                                for d in state.jobs.values()}
            assert mine <= set(inbox.holding), f"{name}: the pool thinks it holds more"


def test_jobs_run_once_and_answers_carry_the_next_job():
    sim = Sim(n_workers=1)
    sim.submit(3)
    sim.deliver("w0")
    for _ in range(3):
        assert sim.work("w0")
        sim.call("w0")  # the answer carries the next job: no push needed
        assert not sim.wire["w0"]
    assert sorted(j.id for j in sim.reported) == [0, 1, 2]
    assert all(j.status is JobStatus.SUCCESS and j.attempt == 1 for j in sim.reported)
    assert sim.reported[0].timestamps["submitted"] <= sim.reported[0].timestamps["finished"]


def test_a_finished_job_cannot_be_finished_again():
    job = Job(id="x", kwargs={})
    move(job, JobStatus.RUNNING)
    move(job, JobStatus.SUCCESS)
    for to in (JobStatus.SUCCESS, JobStatus.QUEUED, JobStatus.CANCELLED, JobStatus.RUNNING):
        with pytest.raises(JobStateError, match="cannot go from SUCCESS"):
            move(job, to)


def test_a_stalled_dispatcher_answers_a_repeated_call_with_the_job_it_lost():
    """The stall: the worker's call timed out (the dispatcher was stopped); the dispatcher still
    took it and put the next job in an answer nobody read. The worker calls again: the job
    comes again, and the repeated result is not a second result."""
    sim = Sim(n_workers=1)
    sim.submit(2)
    sim.deliver("w0")
    sim.work("w0")
    sim.call("w0", lose_answer=True)  # the first copy: result taken, job 1 given, answer lost
    assert [j.id for j in sim.reported] == [0]
    assert not sim.inboxes["w0"].queue, "the worker did not get job 1"
    sim.call("w0")  # the repeated call
    assert [j.id for j in sim.inboxes["w0"].queue] == [1]
    sim.work("w0")
    sim.call("w0")
    assert [(j.id, j.attempt) for j in sim.reported] == [(0, 1), (1, 1)]
    assert sim.pool.counts["late"] == 0, "a repeated result is not a late one"


def test_a_lost_push_is_sent_again_after_the_ping_behind_it():
    sim = Sim(n_workers=1)
    sim.submit(1)
    sim.ping("w0", lose_pushes=True)  # the job never arrived; the ping did
    assert len(sim.wire["w0"]) == 1, "the job is sent again"
    sim.deliver("w0")
    assert sim.work("w0")
    sim.call("w0")
    assert [(j.id, j.attempt) for j in sim.reported] == [(0, 1)]


def test_a_worker_idle_while_the_pool_thinks_it_busy_is_repaired_within_one_ping():
    """Any mismatch, whatever caused it: after one ping every job is where the pool says."""
    sim = Sim(n_workers=2)
    sim.submit(4)
    sim.deliver("w0", lose=True)
    sim.deliver("w1", lose=True)
    for name in sim.inboxes:
        sim.ping(name)
        sim.deliver(name)
    sim.agree()
    assert all(inbox.queue for inbox in sim.inboxes.values()), "no worker left idle"


def test_a_partitioned_worker_is_lost_its_job_reruns_and_its_late_result_is_dropped():
    sim = Sim(n_workers=2)
    sim.submit(1)
    (target,) = [n for n, msgs in sim.wire.items() if msgs]
    other = "w1" if target == "w0" else "w0"
    sim.deliver(target)
    sim.inboxes[target].start()  # it computes, then the link goes down
    sim.ping(target, lose_answer=True)
    sim.ping(target, lose_answer=True)
    assert target not in sim.pool.workers
    sim.deliver(other)
    assert sim.work(other)
    sim.call(other)
    assert [(j.id, j.attempt) for j in sim.reported] == [(0, 2)]
    # the link is back: the old result arrives, and is dropped
    sim.inboxes[target].finish({"token": sim.reported[0].token, "attempt": 1,
                                "status": "SUCCESS", "result": {"loss": 0.0},
                                "exception": None, "duration": 1.0})
    sim.call(target)
    assert len(sim.reported) == 1 and sim.pool.counts["late"] == 1
    assert target in sim.pool.workers, "the worker is back in the pool"
    assert sim.inboxes[target].idle


def test_a_worker_heard_from_within_the_interval_is_not_pinged_a_silent_one_is():
    """Pings go only to workers the pool has not heard from (a call, a ping's answer) for an
    interval: a busy worker whose results come back within it is never pinged, and a silent
    one (stalled, or idle) is pinged once per interval and lost after two missed pings."""
    sim = Sim(n_workers=3)  # all three said hello at t = 100
    sim.submit(3)
    for name in sim.inboxes:
        sim.deliver(name)
        sim.inboxes[name].start()
    sim.clock.t += 6  # w0 finishes: its result is a call, the worker's word
    sim.inboxes["w0"].finish({"token": sim.inboxes["w0"].current.token, "attempt": 1,
                              "status": "SUCCESS", "result": {"loss": 0.0}, "exception": None,
                              "duration": 6.0})
    sim.call("w0")
    assert sim.pool.due_pings(10) == []  # t = 106: nobody silent for 10 s yet
    sim.clock.t += 4  # t = 110: w1 and w2 said nothing for 10 s, w0 for 4 s
    assert sim.pool.due_pings(10) == ["w1", "w2"]
    assert sim.pool.due_pings(10) == [], "pinged now: not due again at once"
    sim.ping("w1")  # w1 answers; w2 is stopped and does not
    sim.pool.missed("w2", "timed out")
    sim.clock.t += 5  # t = 115
    assert sim.pool.due_pings(10) == []
    sim.clock.t += 1  # t = 116: w0 silent since 106
    assert sim.pool.due_pings(10) == ["w0"]
    sim.ping("w0")
    sim.clock.t += 4  # t = 120: w1 answered at 110, w2 was pinged at 110 and said nothing
    assert sim.pool.due_pings(10) == ["w1", "w2"]
    sim.ping("w1")
    assert sim.pool.missed("w2", "timed out"), "two missed pings: lost"
    sim._after()
    assert "w2" not in sim.pool.workers
    (again,) = [d.job for d in sim.pool.workers["w0"].jobs.values()]  # w0 was idle: it runs
    assert again.attempt == 2  # the stopped worker's job again
    assert sim.pool.workers["w0"].missed == 0 and sim.pool.workers["w1"].missed == 0


def test_a_worker_that_hung_up_is_probed_now_and_loses_its_job_only_if_it_is_gone():
    """Its connection closed: the pool names it for a probe at once (not at the next ping).
    A dead worker refuses the probe (the driver removes it) and its job runs elsewhere; a
    healthy one whose connection merely dropped answers, and keeps and finishes its job."""
    for dead in (True, False):
        sim = Sim(n_workers=2)
        sim.submit(1)
        (target,) = [n for n, msgs in sim.wire.items() if msgs]
        other = "w1" if target == "w0" else "w0"
        sim.deliver(target)
        sim.inboxes[target].start()
        assert sim.pool.hung_up(("net", target)) == target
        assert sim.pool.hung_up(("net", target)) is None, "named once per connection"
        if dead:
            sim.pool.remove(target, "did not answer: connection refused")
            sim._after()
            assert target not in sim.pool.workers
            sim.deliver(other)
            assert sim.work(other)
            sim.call(other)
            assert [(j.id, j.attempt, j.worker_name) for j in sim.reported] == [(0, 2, other)]
        else:
            sim.ping(target)  # the probe is answered: nothing changes
            assert sim.pool.running == 1 and not sim.reported
            job = sim.inboxes[target].current
            sim.inboxes[target].finish({"token": job.token, "attempt": job.attempt,
                                        "status": "SUCCESS", "result": {"loss": 0.0},
                                        "exception": None, "duration": 1.0})
            sim.call(target, peer=("net", target, "again"))  # on a new connection
            assert [(j.id, j.attempt) for j in sim.reported] == [(0, 1)]
            assert sim.pool.hung_up(("net", target)) is None
            assert sim.pool.hung_up(("net", target, "again")) == target
        assert sim.pool.hung_up(("net", "nobody")) is None


def test_a_leaving_worker_gets_no_new_job_hands_back_what_it_did_not_start_and_leaves():
    sim = Sim(n_workers=1, prefetch=1)
    sim.submit(3)
    sim.deliver("w0")
    sim.inboxes["w0"].start()  # runs job 0, holds job 1
    sim.ping("w0")
    inbox = sim.inboxes["w0"]
    inbox.hand_back()  # it leaves: job 1 goes back
    report = Report.from_wire({**inbox.report(D), "leaving": True})
    reply, _ = sim.pool.on_call("w0", "uri-w0", report, [], ("net", "w0"))
    sim._after()
    assert reply == [] and "w0" in sim.pool.workers
    assert [(j.id, j.attempt) for j in sim.pool.queue] == [(1, 1), (2, 1)], "no attempt spent"
    job = inbox.current
    inbox.finish({"token": job.token, "attempt": job.attempt, "status": "SUCCESS",
                  "result": {"loss": 0.0}, "exception": None, "duration": 1.0})
    batch = inbox.take_results()[1]
    report = Report.from_wire({**inbox.report(D, exclude={k for k, _ in batch}), "leaving": True})
    reply, _ = sim.pool.on_call("w0", "uri-w0", report,
                                [ResultMessage.from_wire(p) for _, p in batch], ("net", "w0"))
    sim._after()
    assert reply == [] and "w0" not in sim.pool.workers
    assert [(j.id, j.attempt, j.status) for j in sim.reported] == [(0, 1, JobStatus.SUCCESS)]
    assert sim.pool.take_events()[-1][0] == "left"


def test_a_job_the_worker_dropped_without_a_result_runs_again():
    sim = Sim(n_workers=1)
    sim.submit(1)
    sim.deliver("w0")
    sim.ping("w0")  # acknowledged
    inbox = sim.inboxes["w0"]
    inbox.delivered(list(inbox.holding))  # it gave up on the result (its dispatcher looked gone)
    inbox.queue.clear()
    sim.ping("w0")
    sim.deliver("w0")
    assert sim.work("w0")
    sim.call("w0")
    assert [(j.id, j.attempt) for j in sim.reported] == [(0, 2)]


def test_a_job_held_by_a_worker_it_no_longer_belongs_to_is_cancelled_there():
    sim = Sim(n_workers=2, prefetch=1)
    jobs = sim.submit(2)
    holder = jobs[0].worker_name
    sim.deliver(holder)
    sim.ping(holder, lose_answer=True)
    sim.ping(holder, lose_answer=True)  # lost: both its jobs go back to the queue
    assert holder not in sim.pool.workers
    sim.heal()
    assert sorted((j.id, j.status) for j in sim.reported) == [(0, JobStatus.SUCCESS),
                                                              (1, JobStatus.SUCCESS)]
    assert len(sim.reported) == 2
    assert not sim.inboxes[holder].queue, "the stale copies were cancelled"


def test_a_worker_computing_another_dispatchers_job_takes_no_new_one():
    sim = Sim(n_workers=1)
    foreign = {"token": 7, "attempt": 1, "id": "old", "kwargs": {}, "dispatcher": "PYRO:old@x:1",
               "seq": 1}
    inbox = sim.inboxes["w0"]
    inbox.accept(JobMessage.from_wire(foreign))
    inbox.start()
    sim.ping("w0")
    sim.submit(1)
    assert not sim.wire["w0"] and len(sim.pool.queue) == 1, "it is busy elsewhere"
    inbox.finish({"token": 7, "attempt": 1, "status": "SUCCESS", "result": {"loss": 1.0}})
    inbox.take_results()  # delivered to the old dispatcher (or dropped)
    inbox.delivered([("PYRO:old@x:1", 7, 1)])
    sim.call("w0")
    assert [j.id for j in inbox.queue] == [0]


def test_lost_after_max_retries_and_retry_policy():
    sim = Sim(n_workers=1, max_retries=1)
    sim.submit(1)
    for _ in range(2):
        sim.deliver("w0")
        sim.pool.remove("w0", "killed")
        sim._after()
        sim.call("w0")  # a new process of the same name
        sim.inboxes["w0"] = Inbox()
    (job,) = sim.reported
    assert job.status is JobStatus.LOST and "lost 2 times" in job.exception
    with pytest.raises(ConfigurationError, match="retry_on"):
        RetryPolicy(retry_on={JobStatus.SUCCESS})
    with pytest.raises(ConfigurationError, match="max_retries"):
        RetryPolicy(max_retries=-1)


def test_retry_on_runs_a_crashed_job_again():
    sim = Sim(n_workers=1)
    sim.pool.retry = RetryPolicy(max_retries=1, retry_on={JobStatus.CRASHED})
    sim.submit(1)
    for _ in range(2):
        sim.deliver("w0")
        job = sim.inboxes["w0"].start()
        sim.inboxes["w0"].finish({"token": job.token, "attempt": job.attempt,
                                  "status": "CRASHED", "exception": "boom"})
        sim.call("w0")
    (job,) = sim.reported
    assert job.status is JobStatus.CRASHED and job.attempt == 2


def test_prefetch_gives_every_idle_worker_its_first_job_before_any_second():
    sim = Sim(n_workers=3, prefetch=1)
    sim.submit(6)
    first = [msgs[0]["id"] for msgs in sim.wire.values()]
    assert sorted(first) == [0, 1, 2]
    assert all(len(msgs) == 2 for msgs in sim.wire.values())


def test_expected_start_follows_the_pace_of_the_workers_own_timings():
    sim = Sim(n_workers=1)
    assert sim.pool.expected_start() is None  # no pace yet
    sim.submit(1)
    sim.deliver("w0")
    sim.work("w0")  # 0.5 s of compute at budget 1
    sim.call("w0")
    sim.submit(2)  # one runs now, one waits
    assert sim.pool.expected_start() == pytest.approx(sim.clock.t + 1.0)
    sim.clock.t += 0.2
    assert sim.pool.expected_start() == pytest.approx(sim.clock.t + 0.8)


def test_malformed_reports_are_refused_with_the_field_named():
    for raw, words in [(None, "must be a dict"), ({"acked": -1}, "acked"),
                       ({"held": "x"}, "held"), ({"held": [[1, "a"]]}, "pair of ints"),
                       ({"running": [1]}, "running")]:
        with pytest.raises(ValueError, match=words):
            Report.from_wire(raw)


_STEPS = st.lists(st.tuples(st.sampled_from(["submit", "deliver", "work", "call", "ping"]),
                            st.integers(0, 2), st.booleans(), st.booleans()),
                  max_size=60)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=_STEPS, prefetch=st.integers(0, 1))
def test_whatever_is_lost_every_job_ends_exactly_once_and_the_pictures_agree(steps, prefetch):
    """Pushes, answers and pings lost at random; then the network heals. Every job is
    reported exactly once, none is left behind, and the pool's picture is the workers'."""
    sim = Sim(n_workers=3, prefetch=prefetch, max_retries=10)
    submitted = 0
    for kind, who, lose, lose_answer in steps:
        name = f"w{who}"
        if kind == "submit":
            submitted += len(sim.submit(1 + who))
        elif kind == "deliver":
            sim.deliver(name, lose=lose)
        elif kind == "work":
            sim.work(name)
        elif kind == "call":
            sim.call(name, lose_answer=lose)
        else:
            sim.ping(name, lose_pushes=lose, lose_answer=lose_answer)
    sim.heal()
    ids = [j.id for j in sim.reported]
    assert sorted(ids) == list(range(submitted)), "every job reported exactly once"
    assert all(j.status in (JobStatus.SUCCESS, JobStatus.LOST) for j in sim.reported)
    assert not sim.pool.queue and not sim.pool.running
    sim.agree()
