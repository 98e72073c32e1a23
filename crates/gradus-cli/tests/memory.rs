//! Peak memory of `gradus tune` on a narrow table (issue 19, defect 15).
//! Each numeric column of a small table becomes its value and up to 48
//! piecewise-linear bins; held for every row they made tune's memory grow
//! by about 60 times the parsed numbers. They are now computed a batch at a
//! time. Measured as the growth of the peak between two table sizes, so
//! that what does not grow with the rows (the binary, fixed buffers)
//! cancels: before, 62 times the growth of the parsed numbers; now about 4
//! (and 2.9 times the parsed numbers in all on 8.4M rows, `bench/memory.sh`).
//!
//! A test binary of its own: `getrusage(RUSAGE_CHILDREN)` reports the
//! largest peak among the children this process has waited for.
#![cfg(unix)]

use std::process::Command;

/// A CSV of `rows` rows of two integer columns and a 0/1 target.
fn narrow_csv(rows: usize) -> String {
    let mut text = String::from("a,b,y\n");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for i in 0..rows {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        text.push_str(&format!("{},{},{}\n", state % 1000, (state >> 20) % 100, i % 2));
    }
    text
}

/// The peak resident memory, in KB, of the largest child waited for so far.
fn children_peak_kb() -> i64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) }, 0);
    usage.ru_maxrss
}

#[test]
fn tune_memory_grows_with_the_rows_by_a_few_times_the_parsed_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let mut peaks = Vec::new();
    // Smaller first: the children's peak is the largest so far.
    for rows in [300_000, 1_200_000] {
        let file = format!("n{rows}.csv");
        std::fs::write(dir.path().join(&file), narrow_csv(rows)).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_gradus"))
            .args(["tune", "--data", &file, "--trials", "1", "--epochs", "1", "--jobs", "1", "--ensemble", "1"])
            .args(["--quiet", "--storage", &format!("sqlite:{rows}.db")])
            .env("GRADUS_MAX_MEMORY", "100G")
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        peaks.push(children_peak_kb());
    }
    // Three f32 columns a row (the target's labels take as much).
    let parsed_growth_kb = (1_200_000 - 300_000) as f64 * 12.0 / 1024.0;
    let growth = (peaks[1] - peaks[0]) as f64 / parsed_growth_kb;
    eprintln!("peaks {peaks:?} KB: the peak grew by {growth:.1} times the parsed numbers");
    assert!(growth < 8.0, "the peak grew by {growth:.1} times the parsed numbers (peaks {peaks:?} KB)");
}
