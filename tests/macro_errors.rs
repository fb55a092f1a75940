//! Mistakes in `#[process_task]` and `task!` are compile errors that point at the user's tokens,
//! and programs that would race on shared memory (`soundness_*.rs`) do not compile without
//! `unsafe`. Each file in `tests/compile_fail/` holds one mistake; its `.stderr` holds the exact
//! message.

#[test]
fn mistakes_do_not_compile() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/compile_fail/*.rs");
}
