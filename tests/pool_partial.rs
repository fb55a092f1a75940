//! Maps over a partial (Python's `pool.map(functools.partial(f, k=v), items)`): `task!(f, k = v)`
//! that leaves exactly one parameter unbound maps over it, in `map`, `imap`, `imap_unordered` and
//! `map_async`, with the bound values copied into every call.

use multiproc::prelude::*;
use multiproc::{Error, MapTask, Partial};

#[process_task]
fn pow(base: u64, exp: u32) -> u64 {
    base.pow(exp)
}

/// `prefix` + `word` repeated `times`, then the bound tags, joined by `sep`.
#[process_task]
fn decorate(
    prefix: String,
    word: String,
    tags: Vec<String>,
    #[default(1)] times: usize,
    #[default(",".to_string())] sep: String,
) -> String {
    let mut parts = vec![format!("{prefix}{}", word.repeat(times))];
    parts.extend(tags);
    parts.join(&sep)
}

/// Panics on the item `bad`.
#[process_task]
fn check(x: u64, bad: u64) -> u64 {
    if x == bad {
        panic!("item {x} is bad");
    }
    x
}

#[process_task]
fn scaled(x: u64, #[default(1)] by: u64) -> u64 {
    x * by
}

#[process_task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[test]
fn map_fills_the_one_unbound_parameter() -> multiproc::Result<()> {
    let pool = Pool::new(2)?;
    assert_eq!(
        pool.map(task!(pow, exp = 3), 0..6)?,
        vec![0, 1, 8, 27, 64, 125]
    );
    // The first parameter bound by position: the items are the exponents.
    assert_eq!(pool.map(task!(pow, 2), 0..5)?, vec![1, 2, 4, 8, 16]);
    assert_eq!(
        pool.map_chunked(task!(pow, base = 3), vec![0, 2, 4], 2)?,
        vec![1, 9, 81]
    );
    Ok(())
}

#[test]
fn a_bound_default_leaves_the_one_required_parameter() -> multiproc::Result<()> {
    let pool = Pool::new(2)?;
    assert_eq!(pool.map(task!(scaled, by = 3), 1..4)?, vec![3, 6, 9]);
    assert_eq!(pool.map(task!(scaled), 1..4)?, vec![1, 2, 3]);
    Ok(())
}

#[test]
fn map_async_fills_the_one_unbound_parameter() -> multiproc::Result<()> {
    let pool = Pool::new(2)?;
    let result = pool.map_async(task!(pow, exp = 2), vec![3, 4]);
    assert_eq!(result.get()?, vec![9, 16]);
    Ok(())
}

#[test]
fn imap_yields_in_order_from_a_partial() -> multiproc::Result<()> {
    let pool = Pool::new(2)?;
    let squares: Vec<u64> = pool
        .imap(task!(pow, exp = 2), 0..)
        .take(50)
        .collect::<Result<_, _>>()?;
    assert_eq!(squares, (0..50).map(|x| x * x).collect::<Vec<u64>>());
    Ok(())
}

#[test]
fn imap_unordered_yields_every_result_of_a_partial() -> multiproc::Result<()> {
    let pool = Pool::new(2)?;
    let mut cubes: Vec<u64> = pool
        .imap_unordered_chunked(task!(pow, exp = 3), 0..40, 3)
        .collect::<Result<_, _>>()?;
    cubes.sort_unstable();
    assert_eq!(cubes, (0..40).map(|x| x * x * x).collect::<Vec<u64>>());
    Ok(())
}

#[test]
fn bound_strings_and_vecs_reach_every_call() -> multiproc::Result<()> {
    let pool = Pool::new(2)?;
    let tags = vec!["a".to_string(), "b".to_string()];
    let partial = task!(decorate, "<".to_string(), tags = tags.clone(), times = 2);
    let words = ["x", "yz", ""].map(String::from);
    assert_eq!(
        pool.map_chunked(partial.clone(), words.clone(), 1)?,
        vec!["<xx,a,b", "<yzyz,a,b", "<,a,b"]
    );
    // Defaults left out are filled in each call; a bound default overrides.
    let partial = task!(decorate, prefix = String::new(), word = "w".to_string());
    let got = pool.map(partial, vec![vec![], vec!["t".to_string()]])?;
    assert_eq!(got, vec!["w", "w,t"]);
    let partial = task!(
        decorate,
        word = "w".to_string(),
        tags = tags,
        sep = "/".to_string()
    );
    assert_eq!(
        pool.map(partial, ["1", "2"].map(String::from))?,
        ["1w/a/b", "2w/a/b"]
    );
    Ok(())
}

#[test]
fn a_panic_in_a_partial_names_its_item() -> multiproc::Result<()> {
    let pool = Pool::new(2)?;
    let err = pool
        .map_chunked(task!(check, bad = 37), 0..100, 8)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Panicked { item: Some(37), message, .. } if message == "item 37 is bad"),
        "{err}"
    );
    assert!(err.to_string().contains("panicked on item 37 "), "{err}");
    Ok(())
}

#[test]
fn starmap_still_takes_tuples_of_every_argument() -> multiproc::Result<()> {
    let pool = Pool::new(2)?;
    assert_eq!(
        pool.starmap(task!(add), vec![(1, 2), (3, -4)])?,
        vec![3, -1]
    );
    // A complete `task!` is still a call.
    assert_eq!(pool.apply(task!(add, 1, b = 2))?, 3);
    Ok(())
}

#[test]
fn a_partial_maps_here_as_in_a_worker() {
    fn run_here<M: MapTask>(task: &M, item: M::Item) -> <M::Task as multiproc::Task>::Output {
        multiproc::Call::<M::Task>::new(task.args_for(item)).run()
    }
    let partial = task!(pow, exp = 4);
    assert_eq!(run_here(&partial, 3), 81);
    assert_eq!(run_here(&task!(pow, base = 2), 10), 1024);
    assert!(partial.name().ends_with("::pow"), "{}", partial.name());
    assert!(
        format!("{partial:?}").starts_with("Partial("),
        "{partial:?}"
    );
}

/// A partial's type can be named in a signature through `MapTask`.
fn squares_of(pool: &Pool, task: impl MapTask<Item = u64, Task = pow>) -> Vec<u64> {
    pool.map(task, 1..4).unwrap()
}

#[test]
fn a_partial_passes_as_a_map_task() -> multiproc::Result<()> {
    let pool = Pool::new(1)?;
    assert_eq!(squares_of(&pool, task!(pow, exp = 2)), vec![1, 4, 9]);
    let _: &Partial<_> = &task!(pow, exp = 2);
    Ok(())
}
