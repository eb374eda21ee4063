//! Where cases run: each case keeps to one CPU.
//!
//! A case's thread, the threads it starts for blocking calls and the
//! commands it runs all stay on one CPU of those the process may use, and
//! the cases in flight are spread evenly over them. Measured on a 2-CPU VM
//! (kernel 6.18, HZ=250): a FIN whose ACK the kernel sends from its
//! delayed-ACK timer at the next tick went out a tick (4 ms) late in 13 of
//! 24 runs when the case's threads moved between CPUs while the other one
//! was busy, and in none of 20 when they kept to one CPU; over the kernel's
//! packetdrill selftests, one CPU per case gave packetdrill's verdicts
//! where moving threads lost five of them. packetdrill, one thread, runs
//! like that.

use std::sync::{Mutex, OnceLock};

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

/// The CPUs the process may use, as its main thread had them.
fn allowed() -> &'static [usize] {
    static ALLOWED: OnceLock<Vec<usize>> = OnceLock::new();
    ALLOWED.get_or_init(|| {
        // The process id names the main thread, which no case has placed.
        let Ok(set) = sched_getaffinity(Pid::this()) else {
            return Vec::new();
        };
        (0..CpuSet::count())
            .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
            .collect()
    })
}

/// How many placed cases each allowed CPU holds, by index into [`allowed`].
static LOAD: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// A case's hold on its CPU, given back when dropped.
#[derive(Debug)]
pub(crate) struct Placement {
    index: usize,
}

/// Keeps the calling thread, and what it starts from now on, to the
/// allowed CPU that holds the fewest cases. `None` where there is no
/// choice to make (one CPU) or the kernel refuses.
pub(crate) fn place() -> Option<Placement> {
    let cpus = allowed();
    if cpus.len() < 2 {
        return None;
    }
    let mut load = LOAD.lock().unwrap_or_else(|e| e.into_inner());
    load.resize(cpus.len(), 0);
    let index = (0..cpus.len()).min_by_key(|&i| load[i])?;
    let mut set = CpuSet::new();
    set.set(cpus[index]).ok()?;
    sched_setaffinity(Pid::from_raw(0), &set).ok()?;
    load[index] += 1;
    Some(Placement { index })
}

/// Lets the calling thread run on every allowed CPU again: for threads
/// that serve every case, which a case's thread may happen to start.
pub(crate) fn unplace() {
    let mut set = CpuSet::new();
    for &cpu in allowed() {
        let _ = set.set(cpu);
    }
    if !allowed().is_empty() {
        let _ = sched_setaffinity(Pid::from_raw(0), &set);
    }
}

impl Drop for Placement {
    fn drop(&mut self) {
        let mut load = LOAD.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = load.get_mut(self.index) {
            *n = n.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_placed_thread_runs_on_one_allowed_cpu_and_gives_it_back() {
        std::thread::spawn(|| {
            let placed = place();
            let now = sched_getaffinity(Pid::from_raw(0)).expect("affinity is readable");
            let on: Vec<usize> = (0..CpuSet::count())
                .filter(|&c| now.is_set(c).unwrap_or(false))
                .collect();
            match &placed {
                Some(p) => {
                    assert_eq!(on, vec![allowed()[p.index]]);
                    unplace();
                    let after = sched_getaffinity(Pid::from_raw(0)).expect("affinity is readable");
                    let all = (0..CpuSet::count())
                        .filter(|&c| after.is_set(c).unwrap_or(false))
                        .count();
                    assert_eq!(all, allowed().len());
                }
                None => assert!(allowed().len() < 2, "several CPUs but no placement"),
            }
        })
        .join()
        .expect("the placed thread finished");
    }

    #[test]
    fn cases_in_flight_spread_over_the_cpus() {
        if allowed().len() < 2 {
            return;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let done_rx = std::sync::Arc::new(Mutex::new(done_rx));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let tx = tx.clone();
                let done = done_rx.clone();
                std::thread::spawn(move || {
                    let placed = place();
                    tx.send(placed.as_ref().map(|p| p.index)).expect("the test listens");
                    let _ = done.lock().map(|rx| rx.recv());
                    drop(placed);
                })
            })
            .collect();
        let a = rx.recv().expect("first placed");
        let b = rx.recv().expect("second placed");
        assert!(a.is_some() && b.is_some());
        assert_ne!(a, b, "two cases at once share a CPU while another is free");
        drop(done_tx);
        for t in threads {
            t.join().expect("placed thread finished");
        }
    }
}
