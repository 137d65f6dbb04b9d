//! The startup buffer in a real process (`examples/early_logs.rs`): events
//! logged before the destination exists reach it first, in order; with no
//! destination ever set they are printed on stderr when the process exits
//! (the main thread's exit guard).

use std::process::Command;

use selftrace_tests::example_binary;

fn run(args: &[&str]) -> (String, String) {
    let output = Command::new(example_binary("early_logs")).args(args).output().expect("the example runs");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned());
    assert!(output.status.success(), "{stdout}\n{stderr}");
    (stdout, stderr)
}

fn steps(stderr: &str) -> Vec<&str> {
    stderr.lines().filter_map(|l| l.split_once("early_logs: ").map(|(_, rest)| rest)).collect()
}

#[test]
fn kept_events_reach_the_destination_first_in_order() {
    let (stdout, stderr) = run(&[]);
    assert_eq!(
        steps(&stderr),
        ["configuration read step=1", "no endpoint configured yet step=2", "serving step=3"],
        "{stderr}"
    );
    assert!(stdout.contains("== delivered 3, dropped 0, still buffered 0"), "{stdout}");
}

#[test]
fn without_a_destination_they_are_printed_at_exit() {
    let (stdout, stderr) = run(&["--never"]);
    assert!(stdout.contains("no destination was set"), "{stdout}");
    assert_eq!(
        steps(&stderr),
        ["configuration read step=1", "no endpoint configured yet step=2", "exiting without a destination step=3"],
        "{stderr}"
    );
}
