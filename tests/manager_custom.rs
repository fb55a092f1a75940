//! Custom objects served by a manager (Python's `BaseManager.register`): `#[manager_object]`
//! types built and called through their generated proxies from several processes under every
//! start method; only exposed methods reachable; errors, panics and forged requests answered
//! while the manager serves on; a custom proxy stored in a managed dict.

use multiproc::__private::managers::{CallError, ObjectHandle, Served};
use multiproc::managers::{manager_object, DictProxy, Manager, ManagerError, ServerError};
use multiproc::prelude::*;
use multiproc::{get_context, StartMethod};
use serde::{Deserialize, Serialize};

mod common;

const METHODS: [StartMethod; 3] = [
    StartMethod::Fork,
    StartMethod::Spawn,
    StartMethod::Forkserver,
];

/// A counter with a private helper, a fallible method and one that panics half-way.
pub struct Counter {
    total: i64,
    calls: u32,
}

/// What `take` refuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overdrawn {
    pub wanted: i64,
    pub left: i64,
}

#[manager_object]
impl Counter {
    pub fn new(start: i64) -> Self {
        Counter {
            total: start,
            calls: 0,
        }
    }

    pub fn zero() -> Self {
        Self::new(0)
    }

    /// Adds `by`; returns the new total.
    pub fn incr(&mut self, by: i64) -> i64 {
        self.bump();
        self.total += by;
        self.total
    }

    pub fn get(&self) -> i64 {
        self.total
    }

    pub fn calls(&self) -> u32 {
        self.calls
    }

    /// `prefix` and the total, `times` times over.
    pub fn describe(&self, prefix: String, times: usize) -> String {
        format!("{prefix}{}", self.total).repeat(times)
    }

    pub fn take(&mut self, n: i64) -> Result<i64, Overdrawn> {
        self.bump();
        if n > self.total {
            return Err(Overdrawn {
                wanted: n,
                left: self.total,
            });
        }
        self.total -= n;
        Ok(self.total)
    }

    /// Adds `by`, then panics: the object keeps the addition.
    pub fn add_then_panic(&mut self, by: i64) {
        self.total += by;
        panic!("gave up after adding {by}");
    }

    fn bump(&mut self) {
        self.calls += 1;
    }
}

/// A type whose proxy names methods `Counter` does not expose, to forge requests to a
/// `Counter`; and a constructor that panics.
pub struct Impostor;

#[manager_object]
impl Impostor {
    pub fn make() -> Self {
        Impostor
    }

    pub fn failing(why: String) -> Self {
        panic!("{why}")
    }

    pub fn bump(&mut self) {}

    pub fn get(&self) -> i64 {
        0
    }
}

/// `Counter`'s proxy in `Impostor`'s clothes: the same object, through another type's proxy.
fn disguised(counter: &CounterProxy) -> ImpostorProxy {
    common::decode(&common::encode(counter)).expect("proxies share the handle's form")
}

#[process_task]
fn add_many(counter: CounterProxy, times: u32) -> multiproc::Result<()> {
    for _ in 0..times {
        counter.incr(1)?;
    }
    Ok(())
}

#[test]
fn a_counter_incremented_from_several_processes_has_the_exact_total() {
    for method in METHODS {
        let ctx = get_context(method).unwrap();
        let manager = ctx.manager().unwrap();
        let counter = CounterProxy::new(&manager, 1000).unwrap();
        let workers: Vec<_> = (0..4)
            .map(|_| {
                ctx.process(task!(add_many, counter.clone(), 250))
                    .start()
                    .unwrap()
            })
            .collect();
        for worker in workers {
            worker.join().unwrap().unwrap();
        }
        assert_eq!(counter.get().unwrap(), 2000, "{method}");
        assert_eq!(
            counter.calls().unwrap(),
            1000,
            "{method}: every call ran once"
        );
        manager.shutdown().unwrap();
    }
}

#[test]
fn pool_tasks_share_a_counter_by_the_default_method() {
    let manager = Manager::start().unwrap();
    let counter = CounterProxy::zero(&manager).unwrap();
    let pool = Pool::new(2).unwrap();
    let jobs: Vec<_> = (0..6).map(|_| (counter.clone(), 10)).collect();
    for outcome in pool.starmap(task!(add_many), jobs).unwrap() {
        outcome.unwrap();
    }
    assert_eq!(counter.get().unwrap(), 60);
}

#[test]
fn each_constructor_builds_its_own_object() {
    let manager = Manager::start().unwrap();
    let a = CounterProxy::new(&manager, 5).unwrap();
    let b = CounterProxy::zero(&manager).unwrap();
    assert_ne!(a, b);
    assert_eq!(a.incr(2).unwrap(), 7);
    assert_eq!(b.get().unwrap(), 0);
    assert_eq!(a.describe("n=".to_string(), 2).unwrap(), "n=7n=7");
    assert_eq!(a.clone(), a, "a clone names the same object");
    assert!(format!("{a:?}").starts_with("CounterProxy {"));
}

#[test]
fn a_method_returning_an_error_gives_it_back() {
    let manager = Manager::start().unwrap();
    let counter = CounterProxy::new(&manager, 3).unwrap();
    assert_eq!(
        counter.take(5).unwrap(),
        Err(Overdrawn { wanted: 5, left: 3 })
    );
    assert_eq!(counter.take(2).unwrap(), Ok(1));
    assert_eq!(counter.get().unwrap(), 1);
}

#[test]
fn a_panic_in_a_method_comes_back_and_the_manager_serves_on() {
    let manager = Manager::start().unwrap();
    let counter = CounterProxy::new(&manager, 1).unwrap();
    let err = counter.add_then_panic(10).unwrap_err();
    match err {
        ManagerError::Server(ServerError::Panicked {
            method, message, ..
        }) => {
            assert_eq!(method, "add_then_panic");
            assert_eq!(message, "gave up after adding 10");
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    assert_eq!(counter.get().unwrap(), 11, "the object keeps what it did");
    assert_eq!(counter.incr(1).unwrap(), 12, "and still serves");
    let other = manager.dict::<u8, u8>().unwrap();
    other.insert(1, 2).unwrap();
    assert_eq!(other.get(&1).unwrap(), Some(2));
}

#[test]
fn a_panic_in_a_constructor_comes_back_and_makes_nothing() {
    let manager = Manager::start().unwrap();
    let err = ImpostorProxy::failing(&manager, "no".to_string()).unwrap_err();
    assert!(
        matches!(
            &err,
            ManagerError::Server(ServerError::Panicked { method, message, .. })
                if method == "failing" && message == "no"
        ),
        "{err:?}"
    );
    assert_eq!(ImpostorProxy::make(&manager).unwrap().get().unwrap(), 0);
}

/// The handle under a proxy, as a forger holding the proxy's bytes would build requests.
fn raw_handle(counter: &CounterProxy) -> ObjectHandle {
    common::decode(&common::encode(counter)).expect("a proxy is its handle")
}

#[test]
fn only_exposed_methods_can_be_called_even_by_a_forged_request() {
    let manager = Manager::start().unwrap();
    let counter = CounterProxy::new(&manager, 4).unwrap();
    // `Impostor::get` shares a name with `Counter::get`, but the server checks the type.
    let err = disguised(&counter).get().unwrap_err();
    assert!(
        matches!(
            &err,
            ManagerError::Server(ServerError::WrongKind { kind, op, .. })
                if kind.ends_with("::Counter") && op == "call_method"
        ),
        "{err:?}"
    );
    // `bump` is a private method of `Counter`: a request for it is refused by name.
    let raw = raw_handle(&counter);
    let err = raw.call::<Counter, _, ()>("bump", &()).unwrap_err();
    assert!(
        matches!(
            &err,
            ManagerError::Server(ServerError::NoSuchMethod { kind, method })
                if kind.ends_with("::Counter") && method == "bump"
        ),
        "{err:?}"
    );
    let err = raw
        .call::<Counter, _, i64>("incr", &("not a number",))
        .unwrap_err();
    assert!(
        matches!(err, ManagerError::Server(ServerError::Malformed { .. })),
        "{err:?}"
    );
    // A built-in proxy's operation on a custom object is refused by kind.
    let as_dict: DictProxy<u8, u8> = common::decode(&common::encode(&counter)).unwrap();
    let err = as_dict.len().unwrap_err();
    assert!(
        matches!(
            &err,
            ManagerError::Server(ServerError::WrongKind { kind, op, .. })
                if kind.ends_with("::Counter") && op == "len"
        ),
        "{err:?}"
    );
    assert_eq!(counter.calls().unwrap(), 0, "nothing ran");
    assert_eq!(counter.get().unwrap(), 4);
}

/// A type that implements `Served` by hand and is never registered.
struct Unregistered;

impl Served for Unregistered {
    const NAME: &'static str = "manager_custom::Unregistered";

    fn construct(_: &str, _: &[u8]) -> Result<Self, CallError> {
        Ok(Unregistered)
    }

    fn call(&mut self, _: &str, _: &[u8]) -> Result<Vec<u8>, CallError> {
        Err(CallError::NoSuchMethod)
    }
}

#[test]
fn a_forged_request_for_an_unregistered_type_is_refused() {
    let manager = Manager::start().unwrap();
    let err = ObjectHandle::create::<Unregistered, _>(&manager, "new", &()).unwrap_err();
    assert!(
        matches!(
            &err,
            ManagerError::Server(ServerError::NoSuchType { name })
                if name == "manager_custom::Unregistered"
        ),
        "{err:?}"
    );
    let err = ObjectHandle::create::<Counter, _>(&manager, "incr", &(1i64,)).unwrap_err();
    assert!(
        matches!(
            &err,
            ManagerError::Server(ServerError::NoSuchMethod { method, .. }) if method == "incr"
        ),
        "a method is not a constructor: {err:?}"
    );
}

#[process_task]
fn incr_stored(counters: DictProxy<String, CounterProxy>, name: String) -> multiproc::Result<i64> {
    let counter = counters.get(&name)?.expect("stored");
    Ok(counter.incr(5)?)
}

#[test]
fn a_custom_proxy_stored_in_a_managed_dict_names_the_same_object() {
    for method in METHODS {
        let ctx = get_context(method).unwrap();
        let manager = ctx.manager().unwrap();
        let counters = manager.dict::<String, CounterProxy>().unwrap();
        let counter = CounterProxy::new(&manager, 1).unwrap();
        counters
            .insert("hits".to_string(), counter.clone())
            .unwrap();
        let child = ctx
            .process(task!(incr_stored, counters.clone(), "hits".to_string()))
            .start()
            .unwrap();
        assert_eq!(child.join().unwrap().unwrap(), 6, "{method}");
        assert_eq!(counter.get().unwrap(), 6, "{method}: changed in place");
        let stored = counters.get(&"hits".to_string()).unwrap().unwrap();
        assert_eq!(stored, counter, "{method}");
        manager.shutdown().unwrap();
    }
}

#[test]
fn a_proxy_fails_at_once_after_shutdown() {
    let manager = Manager::start().unwrap();
    let counter = CounterProxy::new(&manager, 0).unwrap();
    manager.shutdown().unwrap();
    assert!(matches!(counter.incr(1), Err(ManagerError::ShutDown)));
    assert!(matches!(
        CounterProxy::new(&manager, 0),
        Err(ManagerError::ShutDown)
    ));
}
