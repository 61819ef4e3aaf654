"""The job table and queue: transitions, dedup, bounded and ordered starts, cancel, rates."""

import pytest

from airsync.service.jobs import (
    TRANSITIONS,
    Job,
    JobError,
    JobQueue,
    Kind,
    RateMeter,
    State,
    conflicts,
    mirror_claims,
    usb_claims,
)


def mirror(q: JobQueue, key: str, now: float = 0.0):
    return q.submit(Kind.MIRROR, "/m", key, key, mirror_claims(), now)


def usb(q: JobQueue, target: str, now: float = 0.0):
    return q.submit(Kind.USB, target, "usb-attach", f"usb:{target}", usb_claims(target), now, label="sdb1")


def test_transition_table_is_enforced():
    job = Job(1, Kind.MIRROR, "/m", "config", "config", mirror_claims(), 0.0)
    for state in State:
        if state in TRANSITIONS[State.QUEUED]:
            assert job.to(state, 1.0).state is state
        else:
            with pytest.raises(JobError, match="job 1 is queued; it cannot become"):
                job.to(state, 1.0)
    done = job.to(State.RUNNING, 1.0).to(State.DONE, 2.0, result={"fetched": 3})
    assert (done.started, done.finished, done.result) == (1.0, 2.0, {"fetched": 3})
    assert all(s.terminal for s in (State.DONE, State.FAILED, State.CANCELLED, State.INTERRUPTED))
    with pytest.raises(JobError):
        done.to(State.RUNNING, 3.0)


def test_round_trip_through_dict():
    job = Job(7, Kind.USB, "/media/a", "usb-attach", "usb:/media/a", usb_claims("/media/a"), 1.5, label="sdb1")
    job = job.to(State.RUNNING, 2.0).to(State.FAILED, 3.0, error="stick pulled")
    assert Job.from_dict(job.as_dict()) == job


def test_duplicates_of_queued_work_are_the_same_job():
    q = JobQueue()
    a, new_a = mirror(q, "request:go.sum")
    b, new_b = mirror(q, "request:go.sum")
    assert new_a and not new_b and a.id == b.id
    q.move(a.id, State.RUNNING, 1.0)
    # The file may have changed since the running job read it: a new job is queued.
    c, new_c = mirror(q, "request:go.sum")
    assert new_c and c.id != a.id
    # A medium being synced right now is not queued again.
    s, _ = usb(q, "/media/a")
    q.move(s.id, State.RUNNING, 1.0)
    assert usb(q, "/media/a") == (q.get(s.id), False)


def test_startable_is_bounded_and_never_overlaps_claims():
    q = JobQueue()
    m1, _ = mirror(q, "a")
    m2, _ = mirror(q, "b")
    assert [j.id for j in q.startable(4)] == [m1.id]  # both need the mirror
    q.move(m1.id, State.RUNNING, 0)
    assert q.startable(4) == []
    q.move(m1.id, State.DONE, 1)
    assert [j.id for j in q.startable(4)] == [m2.id]


def test_syncs_to_different_media_run_together_but_never_beside_a_mirror_job():
    q = JobQueue()
    a, _ = usb(q, "/media/a")
    b, _ = usb(q, "/media/b")
    m, _ = mirror(q, "x")
    c, _ = usb(q, "/media/c")  # younger than the waiting mirror job: does not overtake it
    assert [j.id for j in q.startable(4)] == [a.id, b.id]
    for j in (a, b):
        q.move(j.id, State.RUNNING, 0)
    assert q.startable(4) == []
    for j in (a, b):
        q.move(j.id, State.DONE, 1)
    assert [j.id for j in q.startable(4)] == [m.id]
    q.move(m.id, State.RUNNING, 2)
    assert q.startable(4) == []
    q.move(m.id, State.DONE, 3)
    assert [j.id for j in q.startable(4)] == [c.id]


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ({"mirror"}, {"mirror"}, True),
        ({"mirror"}, {"shared:mirror"}, True),
        ({"shared:mirror"}, {"mirror"}, True),
        ({"shared:mirror"}, {"shared:mirror"}, False),
        ({"shared:mirror", "medium:a"}, {"shared:mirror", "medium:a"}, True),
        ({"x"}, {"y", "shared:z"}, False),
    ],
)
def test_conflicts(a, b, expected):
    assert conflicts(frozenset(a), frozenset(b)) is expected


def test_a_waiting_job_is_not_overtaken():
    q = JobQueue()
    running = q.submit(Kind.USB, "/a", "s", "k1", frozenset({"x"}), 0)[0]
    q.move(running.id, State.RUNNING, 0)
    waiting = q.submit(Kind.MIRROR, "/m", "s", "k2", frozenset({"x", "y"}), 0)[0]
    younger = q.submit(Kind.MIRROR, "/m", "s", "k3", frozenset({"y"}), 0)[0]
    free = q.submit(Kind.MIRROR, "/m", "s", "k4", frozenset({"z"}), 0)[0]
    assert [j.id for j in q.startable(10)] == [free.id]
    assert waiting.id < younger.id
    assert [j.id for j in q.startable(1)] == []  # one running already fills max_running=1


def test_cancel():
    q = JobQueue()
    a, _ = mirror(q, "a")
    b, _ = usb(q, "/media/b")
    assert q.cancel(b.id, 1.0).state is State.CANCELLED
    q.move(a.id, State.RUNNING, 1.0)
    assert q.cancel(a.id, 2.0).state is State.RUNNING  # the supervisor stops it
    q.move(a.id, State.CANCELLED, 3.0)
    with pytest.raises(JobError, match="already cancelled"):
        q.cancel(a.id, 4.0)
    with pytest.raises(JobError, match="no job 99"):
        q.cancel(99, 4.0)


def test_listing_and_forgetting_keep_recent_history():
    q = JobQueue(next_id=10)
    ids = []
    for i in range(5):
        j, _ = mirror(q, f"k{i}")
        q.move(j.id, State.RUNNING, i)
        q.move(j.id, State.DONE, i + 0.5)
        ids.append(j.id)
    active, _ = mirror(q, "live")
    assert ids[0] == 10
    assert [j.id for j in q.listing(2)] == [active.id, ids[4], ids[3]]
    q.forget_old(2)
    assert sorted(q.jobs) == [ids[3], ids[4], active.id]
    assert JobQueue(q.jobs.values()).next_id == active.id + 1


def test_rate_meter():
    m = RateMeter(window=10)
    assert m.rate == 0 and m.eta(100) is None
    for t in range(0, 31):
        m.add(float(t), t * 1000)
    assert m.rate == pytest.approx(1000)
    assert m.samples[0][0] >= 19  # old samples leave the window
    assert m.eta(5000) == pytest.approx(5)
    assert m.eta(None) is None
