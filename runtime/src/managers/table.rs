//! The server's object table and what each operation does to it. The server runs one request
//! at a time, so each operation here is atomic with respect to every other client.

use super::condition::Condition;
use super::custom::{self, Custom};
use super::protocol::{Bytes, ObjId, Op, Reply, Request, MANAGER};
use super::store::{add_numbers, Dict};
use super::waiting::{Barrier, Caller, Event, Lock, Outbox, Queue, Semaphore, Waiters};
use super::ServerError;
use crate::wire;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// One managed object.
enum Object {
    Dict(Dict),
    List(Vec<Bytes>),
    Namespace { value: Bytes, version: u64 },
    Lock(Lock),
    Condition(Condition),
    Semaphore(Semaphore),
    Barrier(Barrier),
    Event(Event),
    Queue(Queue),
    Custom(Custom),
}

impl Object {
    fn kind(&self) -> &'static str {
        match self {
            Object::Dict(_) => "dict",
            Object::List(_) => "list",
            Object::Namespace { .. } => "namespace",
            Object::Lock(_) => "lock",
            Object::Condition(_) => "condition",
            Object::Semaphore(_) => "semaphore",
            Object::Barrier(_) => "barrier",
            Object::Event(_) => "event",
            Object::Queue(_) => "queue",
            Object::Custom(object) => object.type_name(),
        }
    }

    /// How many requests are parked on a barrier (the one object that cares).
    fn waiting(&self) -> usize {
        match self {
            Object::Barrier(barrier) => barrier.waiting(),
            _ => 0,
        }
    }

    /// A barrier that lost a waiter (timed out, hung up) since it had `before` breaks.
    fn after_losing_waiters(&mut self, before: usize, out: &mut Outbox) {
        if let Object::Barrier(barrier) = self {
            barrier.lose_waiters(before, out);
        }
    }

    /// Runs `f` on every list of parked requests of the object (a queue has its getters and
    /// its joiners).
    fn each_waiters(&mut self, mut f: impl FnMut(&mut Waiters)) {
        match self {
            Object::Queue(queue) => {
                f(&mut queue.waiters);
                f(&mut queue.joiners);
            }
            Object::Condition(cond) => {
                f(&mut cond.sleepers);
                f(&mut cond.lock.waiters);
            }
            other => {
                if let Some((waiters, _)) = other.waiters() {
                    f(waiters);
                }
            }
        }
    }

    /// The requests parked on the object with a deadline, with what a timed-out one is
    /// answered.
    fn waiters(&mut self) -> Option<(&mut Waiters, Reply)> {
        match self {
            Object::Lock(lock) => Some((&mut lock.waiters, ok(&Lock::TIMED_OUT))),
            // Its two lists expire differently (`Condition::expire`).
            Object::Condition(_) => None,
            Object::Semaphore(sem) => Some((&mut sem.waiters, ok(&false))),
            Object::Barrier(barrier) => {
                Some((&mut barrier.waiters, Err(ServerError::BrokenBarrier)))
            }
            Object::Event(event) => Some((&mut event.waiters, ok(&false))),
            Object::Queue(queue) => Some((&mut queue.waiters, ok(&Queue::TIMED_OUT))),
            _ => None,
        }
    }
}

/// Every object the manager serves, by number, and the answers to parked requests that are
/// ready to go.
#[derive(Default)]
pub(crate) struct Table {
    /// Answers for requests parked earlier, by connection: the server sends them.
    pub(crate) outbox: Outbox,
    objects: HashMap<ObjId, Object>,
    /// The last object number handed out; [`MANAGER`] (0) is never one.
    last_id: ObjId,
    /// Advanced by every write: the version a written entry gets, so that a version is never
    /// reused, even after a removal.
    clock: u64,
    /// The objects that may have parked requests: the only ones whose deadlines the server
    /// looks at between requests, so that a request costs the same however many objects there
    /// are.
    parked_on: BTreeSet<ObjId>,
}

/// A result, encoded for the reply.
pub(crate) fn ok<T: Serialize>(value: &T) -> Reply {
    wire::encode(value).map_err(|e| ServerError::Malformed {
        reason: e.to_string(),
    })
}

/// Index `index` of a list of `len`, if it is inside (`inclusive`: the end is allowed too).
fn checked_index(index: u64, len: usize, inclusive: bool) -> Result<usize, ServerError> {
    let inside = if inclusive {
        index <= len as u64
    } else {
        index < len as u64
    };
    if inside {
        Ok(index as usize)
    } else {
        Err(ServerError::IndexOutOfRange {
            index,
            len: len as u64,
        })
    }
}

impl Table {
    /// Runs one request from `caller`: its answer, or `None` if it is parked (its answer will
    /// come through the outbox).
    pub(crate) fn apply(&mut self, caller: Caller, request: Request) -> Option<Reply> {
        self.clock += 1;
        let version = self.clock;
        let Request { obj, op } = request;
        if obj == MANAGER {
            return Some(self.apply_to_manager(op));
        }
        let Some(object) = self.objects.get_mut(&obj) else {
            return Some(Err(ServerError::NoSuchObject { obj }));
        };
        let kind = object.kind();
        let out = &mut self.outbox;
        let applied = match object {
            Object::Dict(dict) => apply_to_dict(dict, op, version).map(Some),
            Object::List(list) => apply_to_list(list, op).map(Some),
            Object::Namespace { value, version: v } => {
                apply_to_namespace(value, v, op, version).map(Some)
            }
            Object::Lock(lock) => apply_to_lock(lock, caller, op, out),
            Object::Condition(cond) => apply_to_condition(cond, caller, op, out),
            Object::Semaphore(sem) => apply_to_semaphore(sem, caller, op, out),
            Object::Barrier(barrier) => apply_to_barrier(barrier, caller, op, out),
            Object::Event(event) => apply_to_event(event, caller, op, out),
            Object::Queue(queue) => apply_to_queue(queue, caller, op, out),
            Object::Custom(object) => custom::apply(object, op).map(Some),
        };
        let answer = applied.unwrap_or_else(|op| {
            Some(Err(ServerError::WrongKind {
                obj,
                kind: kind.to_owned(),
                op: op.name().to_owned(),
            }))
        });
        if answer.is_none() {
            self.parked_on.insert(obj);
        }
        answer
    }

    /// The earliest deadline of a parked request; forgets the objects nothing waits on any
    /// more.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        let objects = &mut self.objects;
        let mut next: Option<Instant> = None;
        self.parked_on.retain(|obj| {
            let mut parked = false;
            if let Some(object) = objects.get_mut(obj) {
                object.each_waiters(|waiters| {
                    parked |= !waiters.is_empty();
                    next = next.into_iter().chain(waiters.next_deadline()).min();
                });
            }
            parked
        });
        next
    }

    /// Answers the parked requests whose deadline has passed.
    pub(crate) fn expire(&mut self, now: Instant) {
        for obj in &self.parked_on {
            let Some(object) = self.objects.get_mut(obj) else {
                continue;
            };
            let before = object.waiting();
            if let Object::Condition(cond) = object {
                cond.expire(now, &mut self.outbox);
            } else if let Some((waiters, timed_out)) = object.waiters() {
                waiters.expire(now, &timed_out, &mut self.outbox);
            }
            object.after_losing_waiters(before, &mut self.outbox);
        }
    }

    /// A connection hung up: its parked requests are dropped, and a lock it held passes on.
    pub(crate) fn forget(&mut self, client: u64) {
        for object in self.objects.values_mut() {
            let before = object.waiting();
            match &mut *object {
                Object::Lock(lock) => lock.forget(client, &mut self.outbox),
                Object::Condition(cond) => cond.forget(client, &mut self.outbox),
                other => other.each_waiters(|waiters| waiters.forget(client)),
            }
            object.after_losing_waiters(before, &mut self.outbox);
        }
    }

    /// The manager shuts down: every parked request is answered `ShuttingDown`.
    pub(crate) fn refuse_all(&mut self) {
        for object in self.objects.values_mut() {
            object.each_waiters(|waiters| waiters.refuse_all(&mut self.outbox));
        }
    }

    fn apply_to_manager(&mut self, op: Op) -> Reply {
        let object = match op {
            Op::NewDict => Object::Dict(Dict::default()),
            Op::NewList => Object::List(Vec::new()),
            Op::NewNamespace { value } => Object::Namespace {
                value,
                version: self.clock,
            },
            Op::NewLock { reentrant: false } => Object::Lock(Lock::default()),
            Op::NewLock { reentrant: true } => Object::Lock(Lock::reentrant()),
            Op::NewSemaphore { value, bounded } => {
                Object::Semaphore(Semaphore::new(value, bounded))
            }
            Op::NewBarrier { parties } => Object::Barrier(Barrier::new(parties)),
            Op::NewCondition => Object::Condition(Condition::default()),
            Op::NewEvent => Object::Event(Event::default()),
            Op::NewQueue => Object::Queue(Queue::default()),
            Op::NewObject {
                type_name,
                constructor,
                args,
            } => Object::Custom(custom::construct(&type_name, &constructor, &args)?),
            Op::Shutdown => return ok(&()),
            other => {
                return Err(ServerError::WrongKind {
                    obj: MANAGER,
                    kind: "manager".to_owned(),
                    op: other.name().to_owned(),
                })
            }
        };
        self.last_id += 1;
        self.objects.insert(self.last_id, object);
        ok(&self.last_id)
    }
}

/// A dict operation; an operation of another kind comes back as `Err`.
fn apply_to_dict(dict: &mut Dict, op: Op, version: u64) -> Result<Reply, Op> {
    Ok(match op {
        Op::Len => ok(&(dict.len() as u64)),
        Op::Clear => {
            dict.clear();
            ok(&())
        }
        Op::DictInsert { key, value } => ok(&dict.insert(key, value, version)),
        Op::DictGet { key } => ok(&dict.get(&key).map(|e| &e.value)),
        Op::DictRemove { key } => ok(&dict.remove(&key).map(|e| e.value)),
        Op::DictContains { key } => ok(&dict.get(&key).is_some()),
        Op::DictKeys => ok(&dict.entries().map(|e| &e.key).collect::<Vec<_>>()),
        Op::DictValues => ok(&dict.entries().map(|e| &e.value).collect::<Vec<_>>()),
        Op::DictItems => ok(&dict
            .entries()
            .map(|e| (&e.key, &e.value))
            .collect::<Vec<_>>()),
        Op::DictUpdate { pairs } => {
            for (key, value) in pairs {
                dict.insert(key, value, version);
            }
            ok(&())
        }
        Op::DictPop => ok(&dict.pop_last().map(|e| (e.key, e.value))),
        Op::DictSetDefault { key, value } => match dict.get(&key) {
            Some(entry) => ok(&entry.value),
            None => {
                let reply = ok(&value);
                dict.insert(key, value, version);
                reply
            }
        },
        Op::DictGetVersioned { key } => ok(&dict
            .get(&key)
            .map_or((None, 0), |e| (Some(&e.value), e.version))),
        Op::DictSetIfVersion {
            key,
            value,
            version: expected,
        } => {
            let current = dict.get(&key).map_or(0, |e| e.version);
            let matches = current == expected;
            if matches {
                match value {
                    Some(value) => drop(dict.insert(key, value, version)),
                    None => drop(dict.remove(&key)),
                }
            }
            ok(&matches)
        }
        Op::DictFetchAdd {
            key,
            kind,
            delta,
            subtract,
        } => {
            let current = dict.get(&key).map(|e| e.value.as_slice());
            add_numbers(kind, current, &delta, subtract).and_then(|(next, previous)| {
                dict.insert(key, next, version);
                ok(&previous)
            })
        }
        other => return Err(other),
    })
}

/// A list operation; an operation of another kind comes back as `Err`.
fn apply_to_list(list: &mut Vec<Bytes>, op: Op) -> Result<Reply, Op> {
    Ok(match op {
        Op::Len => ok(&(list.len() as u64)),
        Op::Clear => {
            list.clear();
            ok(&())
        }
        Op::ListPush { value } => {
            list.push(value);
            ok(&())
        }
        Op::ListExtend { values } => {
            list.extend(values);
            ok(&())
        }
        Op::ListGet { index } => ok(&usize::try_from(index).ok().and_then(|i| list.get(i))),
        Op::ListSet { index, value } => checked_index(index, list.len(), false)
            .and_then(|i| ok(&std::mem::replace(&mut list[i], value))),
        Op::ListInsert { index, value } => checked_index(index, list.len(), true).and_then(|i| {
            list.insert(i, value);
            ok(&())
        }),
        Op::ListRemove { index } => {
            checked_index(index, list.len(), false).and_then(|i| ok(&list.remove(i)))
        }
        Op::ListPop => ok(&list.pop()),
        Op::ListAll => ok(&*list),
        other => return Err(other),
    })
}

/// A namespace operation; an operation of another kind comes back as `Err`.
fn apply_to_namespace(
    value: &mut Bytes,
    current: &mut u64,
    op: Op,
    version: u64,
) -> Result<Reply, Op> {
    Ok(match op {
        Op::NamespaceGet => ok(&(&*value, *current)),
        Op::NamespaceSet { value: new } => {
            *value = new;
            *current = version;
            ok(&())
        }
        Op::NamespaceSetIfVersion {
            value: new,
            version: expected,
        } => {
            let matches = *current == expected;
            if matches {
                *value = new;
                *current = version;
            }
            ok(&matches)
        }
        other => return Err(other),
    })
}

/// When a wait of `timeout_micros` that starts now ends (`None`: never).
fn deadline(timeout_micros: Option<u64>, now: Instant) -> Option<Instant> {
    timeout_micros.and_then(|micros| now.checked_add(Duration::from_micros(micros)))
}

/// A lock operation: its answer, or `None` parked; an operation of another kind comes back as
/// `Err`.
fn apply_to_lock(
    lock: &mut Lock,
    caller: Caller,
    op: Op,
    out: &mut Outbox,
) -> Result<Option<Reply>, Op> {
    let now = Instant::now();
    Ok(match op {
        Op::LockAcquire { timeout_micros } => {
            lock.acquire(caller, deadline(timeout_micros, now), now)
        }
        Op::LockRelease => Some(lock.release(caller, out)),
        Op::LockIsLocked => Some(ok(&lock.is_locked())),
        other => return Err(other),
    })
}

/// A condition operation, as [`apply_to_lock`]: its lock's operations, and wait and notify.
fn apply_to_condition(
    cond: &mut Condition,
    caller: Caller,
    op: Op,
    out: &mut Outbox,
) -> Result<Option<Reply>, Op> {
    let now = Instant::now();
    Ok(match op {
        Op::ConditionWait { timeout_micros } => {
            cond.wait(caller, deadline(timeout_micros, now), out)
        }
        Op::ConditionNotify { n } => Some(cond.notify(caller, n, out)),
        lock_op => return apply_to_lock(&mut cond.lock, caller, lock_op, out),
    })
}

/// A semaphore operation, as [`apply_to_lock`].
fn apply_to_semaphore(
    sem: &mut Semaphore,
    caller: Caller,
    op: Op,
    out: &mut Outbox,
) -> Result<Option<Reply>, Op> {
    let now = Instant::now();
    Ok(match op {
        Op::SemaphoreAcquire { timeout_micros } => {
            sem.acquire(caller, deadline(timeout_micros, now), now)
        }
        Op::SemaphoreRelease => Some(sem.release(out)),
        Op::SemaphoreValue => Some(ok(&sem.value())),
        other => return Err(other),
    })
}

/// A barrier operation, as [`apply_to_lock`].
fn apply_to_barrier(
    barrier: &mut Barrier,
    caller: Caller,
    op: Op,
    out: &mut Outbox,
) -> Result<Option<Reply>, Op> {
    let now = Instant::now();
    Ok(match op {
        Op::BarrierWait { timeout_micros } => {
            barrier.wait(caller, deadline(timeout_micros, now), now, out)
        }
        Op::BarrierAbort => {
            barrier.abort(out);
            Some(ok(&()))
        }
        Op::BarrierReset => {
            barrier.reset(out);
            Some(ok(&()))
        }
        Op::BarrierState => Some(ok(&barrier.state())),
        other => return Err(other),
    })
}

/// An event operation, as [`apply_to_lock`].
fn apply_to_event(
    event: &mut Event,
    caller: Caller,
    op: Op,
    out: &mut Outbox,
) -> Result<Option<Reply>, Op> {
    let now = Instant::now();
    Ok(match op {
        Op::EventWait { timeout_micros } => event.wait(caller, deadline(timeout_micros, now), now),
        Op::EventSet | Op::EventClear => {
            event.set(matches!(op, Op::EventSet), out);
            Some(ok(&()))
        }
        Op::EventIsSet => Some(ok(&event.is_set())),
        other => return Err(other),
    })
}

/// A queue operation, as [`apply_to_lock`].
fn apply_to_queue(
    queue: &mut Queue,
    caller: Caller,
    op: Op,
    out: &mut Outbox,
) -> Result<Option<Reply>, Op> {
    let now = Instant::now();
    Ok(match op {
        Op::QueuePut { value } => {
            queue.put(value, out);
            Some(ok(&()))
        }
        Op::QueueGet { timeout_micros } => queue.get(caller, deadline(timeout_micros, now), now),
        Op::Len => Some(ok(&(queue.len() as u64))),
        Op::QueueTaskDone => Some(queue.task_done(out)),
        Op::QueueJoin => queue.join(caller),
        other => return Err(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLER: Caller = Caller { id: 1, pid: 1 };

    fn apply(table: &mut Table, obj: ObjId, op: Op) -> Option<Reply> {
        table.apply(CALLER, Request { obj, op })
    }

    #[test]
    fn only_objects_with_parked_requests_are_watched_for_deadlines() {
        let mut table = Table::default();
        for _ in 0..100 {
            apply(&mut table, MANAGER, Op::NewDict);
        }
        apply(&mut table, MANAGER, Op::NewQueue);
        let queue = table.last_id;
        assert_eq!(table.next_deadline(), None);
        assert!(table.parked_on.is_empty());
        let get = Op::QueueGet {
            timeout_micros: Some(1000),
        };
        assert_eq!(apply(&mut table, queue, get), None, "parked");
        assert_eq!(table.parked_on.len(), 1);
        let deadline = table.next_deadline().expect("a deadline");
        table.expire(deadline);
        assert_eq!(table.outbox, [(CALLER.id, ok(&Queue::TIMED_OUT))]);
        assert_eq!(table.next_deadline(), None);
        assert!(table.parked_on.is_empty(), "forgotten once nothing waits");
    }
}
